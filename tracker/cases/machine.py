"""The case workflow as a pure state machine: `apply(case, command, actor, now, policy)` → (case, event).

Stages (seed: 采集 → 受理/立案 → 派遣 → 处置 → 反馈 → 核查 → 结案 → 评价考核):

    collected ──accept──▶ accepted ──dispatch──▶ dispatched ──start──▶ handling ──feedback──▶ feedback
        │                   ▲   ▲                    │  ▲               │   ▲                  │
     dismiss                │   └──────return────────┴──┼───────────────┘   └──────rework──────┤
        ▼                   │                           └────verify (failed) = re-dispatch─────┤
      closed ◀──close── verified ◀──────────────────────verify (passed)────────────────────────┘
        │
      assess ──▶ assessed

Side actions that keep the stage: `request_extension` (team), `extend` (centre).

Who: the command centre (supervisor, admin) accepts, dispatches, verifies, closes and assesses; the
enforcement team the case is dispatched to starts, returns, asks for more time and reports back. The team
that did the work never verifies it (separation of duties), and the auditor never writes. Checks run in
this order so the HTTP layer can map them: unknown action/bad arguments → `InvalidCommand` (422), wrong
role or not the case's team → `NotAllowed` (403), wrong stage → `InvalidTransition` (409).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from tracker.cases.model import Actor, Case, CaseEvent, Command
from tracker.cases.sla import SlaPolicy
from tracker.cases.vocab import SANITATION_KINDS, Action, CaseStage, Clock, Priority, Resolution, Role

__all__ = [
    "WorkflowError", "InvalidCommand", "NotAllowed", "InvalidTransition", "RULES", "apply", "allowed_actions",
    "can_report", "open_case", "CENTRE", "TEAM", "REPORTERS",
]

S = CaseStage
CENTRE: frozenset[Role] = frozenset({Role.ADMIN, Role.SUPERVISOR})
TEAM: frozenset[Role] = frozenset({Role.ENFORCEMENT})
REPORTERS: frozenset[Role] = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.ENFORCEMENT, Role.SANITATION})


class WorkflowError(ValueError):
    """Base of the three refusals; `.status` is the HTTP status the API answers with."""

    status = 400


class InvalidCommand(WorkflowError):
    status = 422


class NotAllowed(WorkflowError):
    status = 403


class InvalidTransition(WorkflowError):
    status = 409


@dataclass(frozen=True)
class Rule:
    sources: frozenset[str]
    roles: frozenset[Role]
    team_bound: bool = False  # only the team the case is dispatched to


RULES: dict[Action, Rule] = {
    Action.ACCEPT: Rule(frozenset({S.COLLECTED}), CENTRE),
    Action.DISMISS: Rule(frozenset({S.COLLECTED}), CENTRE),
    Action.DISPATCH: Rule(frozenset({S.ACCEPTED}), CENTRE),
    Action.RETURN: Rule(frozenset({S.DISPATCHED, S.HANDLING}), TEAM, team_bound=True),
    Action.START: Rule(frozenset({S.DISPATCHED}), TEAM, team_bound=True),
    Action.REQUEST_EXTENSION: Rule(frozenset({S.DISPATCHED, S.HANDLING}), TEAM, team_bound=True),
    Action.EXTEND: Rule(frozenset({S.DISPATCHED, S.HANDLING}), CENTRE),
    Action.FEEDBACK: Rule(frozenset({S.HANDLING}), TEAM, team_bound=True),
    Action.REWORK: Rule(frozenset({S.FEEDBACK}), CENTRE),
    Action.VERIFY: Rule(frozenset({S.FEEDBACK}), CENTRE),
    Action.CLOSE: Rule(frozenset({S.VERIFIED}), CENTRE),
    Action.ASSESS: Rule(frozenset({S.CLOSED}), CENTRE),
}


def _is_own_team(case: Case, actor: Actor) -> bool:
    if case.team is None:
        return False
    if actor.team is not None:
        return case.team == actor.team
    return case.district is not None and case.district in actor.districts


def _action(name: str) -> Action:
    try:
        return Action(name)
    except ValueError:
        raise InvalidCommand(f"unknown action {name!r}; one of {', '.join(a.value for a in Action)}") from None


def allowed_actions(case: Case, actor: Actor) -> list[Action]:
    """Actions this actor could take on the case now (what the UI offers as buttons)."""
    out = []
    for action, rule in RULES.items():
        if actor.role not in rule.roles or case.stage not in rule.sources:
            continue
        if rule.team_bound and not _is_own_team(case, actor):
            continue
        if action is Action.ASSESS and case.resolution != Resolution.RESOLVED:
            continue
        out.append(action)
    return out


# --- per-action effects ------------------------------------------------------------------------------

Changes = dict[str, Any]
Handler = Callable[[Case, Command, datetime, SlaPolicy], tuple[Changes, dict[str, Any]]]


def _need_note(cmd: Command, why: str) -> str:
    note = cmd.note.strip()
    if not note:
        raise InvalidCommand(f"{cmd.action} needs a note ({why})")
    return note


def _clock(case: Case, clock: Clock, now: datetime, policy: SlaPolicy, **kw: Any) -> Changes:
    category = kw.get("category", case.category)
    priority = kw.get("priority", case.priority)
    return {"stage_since": now, "stage_due_at": now + policy.limit(category, priority, clock), "escalation": 0}


def _accept(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    priority = cmd.priority or case.priority
    try:
        priority = Priority(priority).value
    except ValueError:
        raise InvalidCommand(f"unknown priority {priority!r}") from None
    category = (cmd.category or case.category).strip()
    if not category:
        raise InvalidCommand("category must not be empty")
    changes: Changes = {"stage": S.ACCEPTED, "accepted_at": now, "category": category, "priority": priority,
                        "due_at": now + policy.case_budget(category, priority),
                        **_clock(case, Clock.DISPATCH, now, policy, category=category, priority=priority)}
    if cmd.district:
        changes["district"] = cmd.district
    if cmd.team:
        changes["team"] = cmd.team
    details = {k: changes[k] for k in ("category", "priority") if changes[k] != getattr(case, k)}
    details.update({k: changes[k] for k in ("district", "team") if k in changes})
    return changes, details


def _dismiss(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    _need_note(cmd, "why the report is not a case")
    return ({"stage": S.CLOSED, "resolution": Resolution.DISMISSED, "closed_at": now, "stage_since": now,
             "stage_due_at": None, "escalation": 0}, {})


def _dispatch_to(case: Case, team: str | None, now: datetime, policy: SlaPolicy) -> Changes:
    team = (team or "").strip()
    if not team:
        raise InvalidCommand("dispatch needs a team (no dispatch rule matched this case)")
    return {"stage": S.DISPATCHED, "team": team, "dispatched_at": now,
            "first_dispatched_at": case.first_dispatched_at or now, "dispatch_count": case.dispatch_count + 1,
            **_clock(case, Clock.HANDLE, now, policy)}


def _dispatch(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    changes = _dispatch_to(case, cmd.team or case.team, now, policy)
    return changes, {"team": changes["team"], "redispatch": case.dispatch_count > 0}


def _return(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    _need_note(cmd, "why the case is not this team's")
    return ({"stage": S.ACCEPTED, "team": None, "return_count": case.return_count + 1,
             **_clock(case, Clock.DISPATCH, now, policy)}, {"team": case.team})


def _start(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    return {"stage": S.HANDLING, "handling_at": now}, {}  # the handle clock keeps running


def _positive_minutes(cmd: Command) -> float:
    if cmd.minutes is None or not cmd.minutes > 0:
        raise InvalidCommand(f"{cmd.action} needs minutes > 0")
    return float(cmd.minutes)


def _request_extension(case: Case, cmd: Command, now: datetime, policy: SlaPolicy
                       ) -> tuple[Changes, dict[str, Any]]:
    _need_note(cmd, "why more time is needed")
    return {}, {"minutes": _positive_minutes(cmd)}


def _extend(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    minutes = _positive_minutes(cmd)
    if case.extension_min + minutes > policy.max_extension_min:
        raise InvalidCommand(f"extension would total {case.extension_min + minutes:g} min, above the "
                             f"{policy.max_extension_min:g} min allowed")
    delta = timedelta(minutes=minutes)
    return ({"stage_due_at": case.stage_due_at + delta if case.stage_due_at else None,
             "due_at": case.due_at + delta if case.due_at else None, "escalation": 0,
             "extension_min": case.extension_min + minutes, "extension_count": case.extension_count + 1},
            {"minutes": minutes})


def _feedback(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    _need_note(cmd, "what was done")
    return {"stage": S.FEEDBACK, "feedback_at": now, **_clock(case, Clock.VERIFY, now, policy)}, {}


def _rework(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    _need_note(cmd, "what is missing from the feedback")
    return ({"stage": S.HANDLING, "rework_count": case.rework_count + 1, **_clock(case, Clock.HANDLE, now, policy)},
            {})


def _verify(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    if cmd.passed is None:
        raise InvalidCommand("verify needs passed: true or false")
    if cmd.passed:
        return {"stage": S.VERIFIED, "verified_at": now, **_clock(case, Clock.CLOSE, now, policy)}, {"passed": True}
    _need_note(cmd, "what the verification found")
    changes = _dispatch_to(case, cmd.team or case.team, now, policy)
    changes["verify_fail_count"] = case.verify_fail_count + 1
    return changes, {"passed": False, "team": changes["team"], "redispatch": True}


def _close(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    on_time = case.due_at is None or now <= case.due_at
    return ({"stage": S.CLOSED, "resolution": Resolution.RESOLVED, "closed_at": now, "on_time": on_time,
             "stage_since": now, "stage_due_at": None, "escalation": 0}, {"on_time": on_time})


def _assess(case: Case, cmd: Command, now: datetime, policy: SlaPolicy) -> tuple[Changes, dict[str, Any]]:
    if case.resolution != Resolution.RESOLVED:
        raise InvalidTransition("only a resolved case is assessed (a dismissed report is not)")
    if cmd.rating is None or not 1 <= cmd.rating <= 5:
        raise InvalidCommand("assess needs rating 1..5")
    return {"stage": S.ASSESSED, "assessed_at": now, "rating": cmd.rating}, {"rating": cmd.rating}


_HANDLERS: dict[Action, Handler] = {
    Action.ACCEPT: _accept, Action.DISMISS: _dismiss, Action.DISPATCH: _dispatch, Action.RETURN: _return,
    Action.START: _start, Action.REQUEST_EXTENSION: _request_extension, Action.EXTEND: _extend,
    Action.FEEDBACK: _feedback, Action.REWORK: _rework, Action.VERIFY: _verify, Action.CLOSE: _close,
    Action.ASSESS: _assess,
}


def apply(case: Case, cmd: Command, actor: Actor, now: datetime, policy: SlaPolicy) -> tuple[Case, CaseEvent]:
    """Apply one command; returns the new case (version + 1) and the history event. Raises a
    `WorkflowError` subclass and changes nothing when the command is refused."""
    action = _action(cmd.action)
    rule = RULES[action]
    if actor.role not in rule.roles:
        raise NotAllowed(f"role {actor.role} may not {action.value}")
    if rule.team_bound and not _is_own_team(case, actor):
        raise NotAllowed(f"case {case.id} is not dispatched to {actor.username}'s team")
    if case.stage not in rule.sources:
        raise InvalidTransition(f"cannot {action.value} a case in stage {case.stage} "
                                f"(needs {' or '.join(sorted(rule.sources))})")
    changes, details = _HANDLERS[action](case, cmd, now, policy)
    new = msgspec.structs.replace(case, **changes, version=case.version + 1)
    if cmd.note.strip():
        details = {"note": cmd.note.strip(), **details}
    if cmd.data:
        details["data"] = cmd.data
    event = CaseEvent(action=action.value, at=now, actor=actor.username, role=str(actor.role),
                      from_stage=case.stage, to_stage=new.stage, details=details)
    return new, event


# --- opening a case ----------------------------------------------------------------------------------

def can_report(actor: Actor, *, district: str | None, category: str, vehicle_kind: str | None) -> bool:
    """May this actor open a case here? Teams report in their own districts, sanitation managers report
    sanitation problems, the centre reports anything; operators and auditors never open cases."""
    role = Role(actor.role)
    if role not in REPORTERS:
        return False
    if role is Role.ENFORCEMENT:
        return district is not None and district in actor.districts
    if role is Role.SANITATION:
        return category == "sanitation" or vehicle_kind in SANITATION_KINDS
    return True


def open_case(*, source: str, kind: str, category: str, priority: str, actor: Actor, now: datetime,
              policy: SlaPolicy, **fields: Any) -> tuple[Case, CaseEvent]:
    """A new case in stage `collected` with its accept clock running, and its first history event."""
    try:
        priority = Priority(priority).value
    except ValueError:
        raise InvalidCommand(f"unknown priority {priority!r}") from None
    if not can_report(actor, district=fields.get("district"), category=category,
                      vehicle_kind=fields.get("vehicle_kind")):
        raise NotAllowed(f"{actor.username} ({actor.role}) may not report this case")
    case = Case(source=source, kind=kind, category=category, priority=priority, created_at=now,
                created_by=actor.username, stage_since=now,
                stage_due_at=now + policy.limit(category, priority, Clock.ACCEPT), **fields)
    details = {k: v for k, v in (("source", source), ("kind", kind), ("alert_id", case.alert_id),
                                 ("district", case.district), ("team", case.team)) if v is not None}
    event = CaseEvent(action="collect", at=now, actor=actor.username, role=str(actor.role), from_stage=None,
                      to_stage=S.COLLECTED, details=details)
    return case, event
