"""SLA clocks: each open stage has a time limit per case category and priority; overdue cases escalate.

Why per stage: the city judges the command centre on accept/dispatch speed and the teams on handling speed
(seed: dispatch within 10 min urgent / 30 min otherwise), so one clock per stage says whose delay it was.
A case's *overall* deadline (`Case.due_at`, what "closed on time" is measured against) is fixed at
acceptance as dispatch + handle + verify limits; only a granted extension moves it, so a rework or a
re-dispatch after a failed verification spends the same time budget instead of getting a fresh one.

Escalation levels: level n is reached `escalation_steps_min[n-1]` minutes after the stage deadline (the
default `[0, 30, 120]`: at the deadline, half an hour late, two hours late). Each level is published once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from tracker.cases.model import Case
from tracker.cases.vocab import CaseStage, Clock, Priority

__all__ = ["SlaLimits", "SlaPolicy", "Escalation", "clock_of", "escalation_level", "due_escalations"]

_CLOCK_OF_STAGE: dict[str, Clock] = {
    CaseStage.COLLECTED: Clock.ACCEPT,
    CaseStage.ACCEPTED: Clock.DISPATCH,
    CaseStage.DISPATCHED: Clock.HANDLE,
    CaseStage.HANDLING: Clock.HANDLE,
    CaseStage.FEEDBACK: Clock.VERIFY,
    CaseStage.VERIFIED: Clock.CLOSE,
}


class SlaLimits(BaseModel):
    """Time limits in minutes, one per clock."""

    model_config = ConfigDict(extra="forbid")

    accept: float = Field(10, gt=0, description="collected → accepted or dismissed")
    dispatch: float = Field(30, gt=0, description="accepted → dispatched")
    handle: float = Field(24 * 60, gt=0, description="dispatched → feedback")
    verify: float = Field(4 * 60, gt=0, description="feedback → verified (or re-dispatched)")
    close: float = Field(60, gt=0, description="verified → closed")

    def minutes(self, clock: Clock) -> float:
        return float(getattr(self, clock.value))


class SlaPolicy(BaseModel):
    """`[cases.sla]`: limits for normal and urgent cases, optionally overridden per category."""

    model_config = ConfigDict(extra="forbid")

    normal: SlaLimits = Field(default_factory=SlaLimits)
    urgent: SlaLimits = Field(
        default_factory=lambda: SlaLimits(accept=5, dispatch=10, handle=120, verify=60, close=30))
    by_category: dict[str, dict[Priority, dict[str, float]]] = Field(
        default_factory=dict, description="category → priority → {clock: minutes} overrides")
    escalation_steps_min: list[float] = Field(default_factory=lambda: [0.0, 30.0, 120.0], min_length=1)
    max_extension_min: float = Field(3 * 24 * 60, ge=0, description="total extension a case may be granted")

    def limits(self, category: str, priority: str) -> SlaLimits:
        base = self.urgent if priority == Priority.URGENT else self.normal
        over = self.by_category.get(category, {}).get(Priority(priority))
        return base.model_copy(update=over) if over else base

    def limit(self, category: str, priority: str, clock: Clock) -> timedelta:
        return timedelta(minutes=self.limits(category, priority).minutes(clock))

    def case_budget(self, category: str, priority: str) -> timedelta:
        """Acceptance → closure budget: dispatch + handle + verify."""
        lim = self.limits(category, priority)
        return timedelta(minutes=lim.dispatch + lim.handle + lim.verify)


def clock_of(stage: str) -> Clock | None:
    """The clock running in a stage (None once closed)."""
    return _CLOCK_OF_STAGE.get(stage)


def escalation_level(due: datetime | None, now: datetime, steps_min: list[float]) -> int:
    """How many escalation steps have passed (0 = not overdue)."""
    if due is None or now < due:
        return 0
    late_min = (now - due).total_seconds() / 60.0
    return sum(1 for s in sorted(steps_min) if late_min >= s)


@dataclass(frozen=True)
class Escalation:
    """A case whose current clock passed a new escalation level: published once, then recorded."""

    case_id: int
    version: int  # the case version the escalation was computed from (the store updates only that one)
    stage: str
    clock: Clock
    level: int
    due_at: datetime
    overdue_min: float


def due_escalations(cases: Iterable[Case], now: datetime, policy: SlaPolicy) -> list[Escalation]:
    """Open cases whose current clock reached an escalation level above the one already published."""
    out = []
    for c in cases:
        clock = clock_of(c.stage)
        if clock is None or c.stage_due_at is None:
            continue
        level = escalation_level(c.stage_due_at, now, policy.escalation_steps_min)
        if level > c.escalation:
            out.append(Escalation(case_id=c.id, version=c.version, stage=c.stage, clock=clock, level=level,
                                  due_at=c.stage_due_at,
                                  overdue_min=round((now - c.stage_due_at).total_seconds() / 60, 1)))
    return out
