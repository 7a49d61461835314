"""The figures a city is judged by, computed from case records (pure; the store loads the cases).

Definitions (the seed city's report: 受理 614 813, 派遣 614 813 → 派遣率 100%; 应结案 606 077, 结案 590 417 →
结案率 97.42%):

* accepted (立案数): cases accepted, i.e. not dismissed and past `collected`;
* dispatch rate (派遣率) = dispatched at least once / accepted;
* should close (应结案数) = accepted cases that are closed or whose overall deadline (`due_at`) has passed;
  cases still within their time limit are not yet counted against anyone;
* closure rate (结案率) = closed (resolved) / should close;
* on-time closure rate (按期结案率) = closed on or before `due_at` / should close;
* rework rate (返工率) = cases sent back at least once (rework or failed verification) / cases that
  reported feedback at least once;
* mean handling time (平均处置时长) = last feedback − first dispatch, minutes, over closed cases;
* mean closure time = closure − collection, minutes, over closed cases.

Months are the city's local calendar months of collection (`utc_offset_min`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import msgspec

from tracker.cases.model import Case
from tracker.cases.vocab import CaseStage, Resolution

__all__ = ["DIMENSIONS", "StatRow", "compute", "local_month"]


def local_month(ts: datetime, utc_offset_min: int) -> str:
    return (ts + timedelta(minutes=utc_offset_min)).strftime("%Y-%m")


DIMENSIONS: dict[str, Callable[[Case, int], str]] = {
    "all": lambda c, off: "all",
    "team": lambda c, off: c.team or "(none)",
    "district": lambda c, off: c.district or "(none)",
    "company": lambda c, off: c.company or "(none)",
    "kind": lambda c, off: c.kind,
    "category": lambda c, off: c.category,
    "month": lambda c, off: local_month(c.created_at, off),
}


class StatRow(msgspec.Struct, kw_only=True):
    key: str
    collected: int = 0
    accepted: int = 0
    dismissed: int = 0
    dispatched: int = 0
    should_close: int = 0
    closed: int = 0
    closed_on_time: int = 0
    overdue_open: int = 0
    with_feedback: int = 0
    reworked: int = 0
    returned: int = 0
    dispatch_rate: float | None = None
    closure_rate: float | None = None
    on_time_closure_rate: float | None = None
    rework_rate: float | None = None
    mean_handling_min: float | None = None
    mean_closure_min: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 6)


def _mean(values: list[float]) -> float | None:
    return None if not values else round(sum(values) / len(values), 3)


def _row(key: str, cases: list[Case], now: datetime) -> StatRow:
    r = StatRow(key=key, collected=len(cases))
    handling: list[float] = []
    closure: list[float] = []
    for c in cases:
        if c.resolution == Resolution.DISMISSED:
            r.dismissed += 1
            continue
        if c.accepted_at is None:
            continue
        r.accepted += 1
        r.dispatched += c.first_dispatched_at is not None
        resolved = c.resolution == Resolution.RESOLVED and c.closed_at is not None
        due_passed = c.due_at is not None and c.due_at <= now
        if resolved or due_passed:
            r.should_close += 1
        if resolved:
            r.closed += 1
            r.closed_on_time += bool(c.on_time)
            closure.append((c.closed_at - c.created_at).total_seconds() / 60)  # type: ignore[operator]
            if c.first_dispatched_at and c.feedback_at:
                handling.append((c.feedback_at - c.first_dispatched_at).total_seconds() / 60)
        elif due_passed and c.stage not in (CaseStage.CLOSED, CaseStage.ASSESSED):
            r.overdue_open += 1
        if c.feedback_at is not None:
            r.with_feedback += 1
            r.reworked += (c.rework_count + c.verify_fail_count) > 0
        r.returned += c.return_count > 0
    r.dispatch_rate = _ratio(r.dispatched, r.accepted)
    r.closure_rate = _ratio(r.closed, r.should_close)
    r.on_time_closure_rate = _ratio(r.closed_on_time, r.should_close)
    r.rework_rate = _ratio(r.reworked, r.with_feedback)
    r.mean_handling_min = _mean(handling)
    r.mean_closure_min = _mean(closure)
    return r


def compute(cases: Iterable[Case], by: str, now: datetime, utc_offset_min: int = 480) -> list[StatRow]:
    """One row per value of the dimension `by` (see `DIMENSIONS`), sorted by key."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}; one of {', '.join(DIMENSIONS)}")
    key = DIMENSIONS[by]
    groups: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        groups[key(c, utc_offset_min)].append(c)
    return [_row(k, groups[k], now) for k in sorted(groups)]
