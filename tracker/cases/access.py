"""Who sees what: a role plus the user's companies/districts become a `Scope`, the one object every query
and every push filter applies.

Why a value and not per-endpoint `if role == ...` checks: the same four constraints (company, district,
vehicle kind, case category) apply to vehicles, tracks, alerts, cases and websocket pushes, so deriving
them once and testing them once keeps the tenants apart everywhere. `None` means "unrestricted"; an empty
set means "nothing" (an operator account with no company sees no vehicle, rather than every vehicle).

| role | sees |
|---|---|
| admin, supervisor, auditor | everything (optionally narrowed by districts/companies set on the user) |
| enforcement | its districts |
| operator | its companies' vehicles, tracks, alerts and cases |
| sanitation | sanitation vehicles (sweeper, sprinkler, refuse truck) and sanitation cases |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tracker.cases.vocab import SANITATION_KINDS, Role

__all__ = ["Scope", "scope_of", "READ_ONLY_ROLES", "ALL_ROLES"]

ALL_ROLES: frozenset[Role] = frozenset(Role)
READ_ONLY_ROLES: frozenset[Role] = frozenset({Role.AUDITOR})


@dataclass(frozen=True)
class Scope:
    """Constraints on what a user may see. `None` = no constraint on that attribute."""

    companies: frozenset[str] | None = None
    districts: frozenset[str] | None = None
    vehicle_kinds: frozenset[str] | None = None
    categories: frozenset[str] | None = None  # case categories that pass the kind constraint too

    @property
    def unrestricted(self) -> bool:
        return self.companies is None and self.districts is None and self.vehicle_kinds is None

    def allows(self, *, company: str | None = None, district: str | None = None,
               vehicle_kind: str | None = None, category: str | None = None) -> bool:
        """Does an object with these attributes pass? A missing attribute fails a set constraint."""
        if self.companies is not None and company not in self.companies:
            return False
        if self.districts is not None and district not in self.districts:
            return False
        if self.vehicle_kinds is not None:
            by_kind = vehicle_kind in self.vehicle_kinds
            by_category = self.categories is not None and category in self.categories
            if not (by_kind or by_category):
                return False
        return True

    def __iter__(self):  # type: ignore[no-untyped-def]
        """`companies, districts = scope` — the two constraints most endpoints need."""
        yield self.companies
        yield self.districts


def _narrow(values: Iterable[str]) -> frozenset[str] | None:
    got = frozenset(v for v in values if v)
    return got or None


def scope_of(role: str, companies: Iterable[str] = (), districts: Iterable[str] = ()) -> Scope:
    """The scope of a user with this role and these assignments."""
    role = Role(role)
    if role is Role.OPERATOR:
        return Scope(companies=frozenset(c for c in companies if c), districts=_narrow(districts))
    if role is Role.ENFORCEMENT:
        return Scope(districts=frozenset(d for d in districts if d), companies=_narrow(companies))
    if role is Role.SANITATION:
        return Scope(companies=_narrow(companies), districts=_narrow(districts),
                     vehicle_kinds=frozenset(str(k) for k in SANITATION_KINDS),
                     categories=frozenset({"sanitation"}))
    return Scope(companies=_narrow(companies), districts=_narrow(districts))
