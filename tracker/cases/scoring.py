"""Monthly company scoring (考核评分): deductions per accepted violation case, grades A–D, red/black lists.

Why accepted cases and not raw alerts: an alert the centre dismissed (false alarm, duplicate) must not cost
a company points, and a single episode is one case however many fixes it spans. Suspected violations are
deducted at their own (smaller) rate, because `suspected_dumping` is its own kind.

Ranking: score descending, then company id, so equal scores rank stably.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from tracker.cases.model import Case
from tracker.cases.stats import local_month
from tracker.cases.vocab import Resolution
from tracker.vocab import ViolationKind as V

__all__ = ["ScoringPolicy", "CompanyScore", "score_companies"]


class ScoringPolicy(BaseModel):
    """`[cases.scoring]`."""

    model_config = ConfigDict(extra="forbid")

    base: float = 100.0
    floor: float = 0.0
    deductions: dict[str, float] = Field(default_factory=lambda: {
        V.ILLEGAL_DUMPING: 10, V.SUSPECTED_DUMPING: 3, V.MIXER_DISCHARGE: 8, V.NO_PERMIT: 8,
        V.UNSEALED_TRANSPORT: 5, V.ROUTE_DEVIATION: 3, V.OUT_OF_WINDOW: 3, V.RESTRICTED_ZONE: 3,
        V.SPEEDING: 2, V.SIGNAL_LOSS: 2, V.NO_TRANSFER_ARRIVAL: 2, V.SWEEPING_TOO_FAST: 1,
        V.MISSED_SEGMENT: 1, V.MISSED_COLLECTION: 1, V.BANNED_HOURS_WORK: 1,
    }, description="points per accepted case of each violation kind")
    default_deduction: float = Field(2.0, description="kinds not listed in `deductions`")
    grades: dict[str, float] = Field(default_factory=lambda: {"A": 90.0, "B": 80.0, "C": 60.0},
                                     description="minimum score per grade; below every minimum is D")
    red_list_min_score: float = Field(95.0, description="红名单: at least this score and no black-list kind")
    black_list_below: float = Field(60.0, description="黑名单: below this score")
    black_list_kinds: dict[str, int] = Field(default_factory=lambda: {V.ILLEGAL_DUMPING: 2},
                                             description="黑名单 also when a kind reaches this count in a month")

    def grade(self, score: float) -> str:
        for name, minimum in sorted(self.grades.items(), key=lambda kv: kv[1], reverse=True):
            if score >= minimum:
                return name
        return "D"


class CompanyScore(msgspec.Struct, kw_only=True):
    company: str
    month: str
    cases: int
    violations: dict[str, int]
    deduction: float
    score: float
    grade: str
    list: str | None  # "red" | "black" | None
    rank: int = 0


def _counts(case: Case) -> bool:
    return case.company is not None and case.accepted_at is not None and case.resolution != Resolution.DISMISSED


def score_companies(cases: Iterable[Case], month: str, policy: ScoringPolicy, companies: Iterable[str] = (),
                    utc_offset_min: int = 480) -> list[CompanyScore]:
    """Scores for `month` ("YYYY-MM", local). `companies` adds companies with no case (they score `base`)."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for c in companies:
        per[c]  # noqa: B018 - materialise an empty counter
    for case in cases:
        if _counts(case) and local_month(case.occurred_at or case.created_at, utc_offset_min) == month:
            per[case.company][case.kind] += 1  # type: ignore[index]
    out = []
    for company, counts in per.items():
        deduction = sum(n * policy.deductions.get(k, policy.default_deduction) for k, n in counts.items())
        score = max(policy.floor, policy.base - deduction)
        black = score < policy.black_list_below or any(
            counts.get(k, 0) >= n for k, n in policy.black_list_kinds.items())
        red = not black and score >= policy.red_list_min_score
        out.append(CompanyScore(company=company, month=month, cases=sum(counts.values()),
                                violations=dict(sorted(counts.items())), deduction=deduction, score=score,
                                grade=policy.grade(score), list="black" if black else "red" if red else None))
    out.sort(key=lambda s: (-s.score, s.company))
    for i, s in enumerate(out, 1):
        s.rank = i
    return out
