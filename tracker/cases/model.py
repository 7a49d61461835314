"""The case record, the person acting on it, the command they give, and the history row it leaves.

A `Case` is an immutable value: the state machine (`tracker.cases.machine`) returns a new one for every
action, together with the `CaseEvent` to append to the history, so the store can write both in one
transaction and an old value can never be mutated behind the store's back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from tracker.cases.vocab import CaseStage, Role

__all__ = ["Actor", "Case", "CaseEvent", "Command"]


class Actor(msgspec.Struct, kw_only=True, frozen=True):
    """Who acts: a user (or `system` for the automatic intake) with the scope that user has."""

    username: str
    role: str  # tracker.vocab.Role value
    districts: frozenset[str] = frozenset()
    companies: frozenset[str] = frozenset()
    team: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(username="system", role=Role.SUPERVISOR)


class Command(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One action with its arguments; which arguments an action needs is checked by the machine."""

    action: str  # tracker.cases.vocab.Action value
    note: str = ""
    team: str | None = None  # dispatch / re-dispatch target, accept-time override
    district: str | None = None  # accept-time override
    category: str | None = None  # accept-time override
    priority: str | None = None  # accept-time override
    passed: bool | None = None  # verify
    minutes: float | None = None  # extension (requested or granted)
    rating: int | None = None  # assess, 1..5
    data: dict[str, Any] = msgspec.field(default_factory=dict)  # feedback attachments, measurements


class Case(msgspec.Struct, kw_only=True, frozen=True):
    id: int = 0  # 0 until the store assigns one
    source: str  # tracker.cases.vocab.Source
    kind: str  # tracker.vocab.ViolationKind value, or "other" for manual reports
    category: str
    priority: str
    stage: str = CaseStage.COLLECTED
    resolution: str | None = None
    alert_id: str | None = None
    vehicle_id: str | None = None
    vehicle_kind: str | None = None
    company: str | None = None
    district: str | None = None
    grid: str | None = None  # H3 cell (万米单元网格)
    team: str | None = None
    lon: float | None = None
    lat: float | None = None
    occurred_at: datetime | None = None
    description: str = ""
    created_at: datetime
    created_by: str
    accepted_at: datetime | None = None
    first_dispatched_at: datetime | None = None
    dispatched_at: datetime | None = None
    handling_at: datetime | None = None
    feedback_at: datetime | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    assessed_at: datetime | None = None
    stage_since: datetime  # the current clock started here
    stage_due_at: datetime | None = None  # the current clock's deadline
    due_at: datetime | None = None  # overall deadline, fixed at acceptance (+ extensions)
    escalation: int = 0  # escalation level already published for the current clock
    extension_min: float = 0.0
    dispatch_count: int = 0
    return_count: int = 0
    rework_count: int = 0  # feedback sent back for rework
    verify_fail_count: int = 0  # failed verifications (each one re-dispatches)
    extension_count: int = 0
    on_time: bool | None = None  # set at closure
    rating: int | None = None
    version: int = 0  # optimistic concurrency: bumped by every action

    @property
    def is_open(self) -> bool:
        return self.stage not in (CaseStage.CLOSED, CaseStage.ASSESSED)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


class CaseEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One row of a case's history (and of the audit log)."""

    action: str
    at: datetime
    actor: str
    role: str
    from_stage: str | None
    to_stage: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)
