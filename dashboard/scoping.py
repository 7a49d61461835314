"""Tenancy for the dashboard's data: which vehicles, alerts, tracks, fences and permits a user's `Scope`
lets them see (`tracker.cases.access` derives the scope from the role; `dashboard.auth` resolves the user).

One rule everywhere: an object is visible when *its vehicle* is — `Scope.allows(company, district,
vehicle_kind)` of the vehicle's registry entry (an unregistered vehicle passes only an unrestricted scope).
Derived data follows: an alert, a track, a density count, a permit (any of its vehicles). Fences are places:
one with no owning company is city reference data every logged-in user sees (restricted zones, disposal
sites); one a company owns (its sites, its permitted routes) is visible when the scope allows that company
(operators: their own; enforcement and sanitation: companies with a vehicle they can see).

How the endpoints answer: a foreign object named in the path is 404 (its existence is not revealed); an
explicit filter on a foreign company or district is 403; lists simply leave foreign rows out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException

from tracker.cases.access import Scope

__all__ = ["sql", "check_filters", "vehicle_allowed", "visible_ids", "visible_companies", "require_vehicles",
           "fence_visible", "doc_visible", "trim_doc"]


def sql(scope: Scope, alias: str = "v", prefix: str = "sc") -> tuple[str, dict[str, Any]]:
    """A WHERE fragment restricting rows of `vehicles AS {alias}` (or a join on it) to the scope."""
    parts, params = [], {}
    for col, name, values in (("company", "c", scope.companies), ("district", "d", scope.districts),
                              ("kind", "k", scope.vehicle_kinds)):
        if values is not None:
            key = f"{prefix}_{name}"
            parts.append(f"{alias}.{col} = ANY(%({key})s)")
            params[key] = sorted(values)
    return (" AND ".join(parts) or "TRUE"), params


def check_filters(scope: Scope, companies: Iterable[str] = (), districts: Iterable[str] = ()) -> None:
    """403 for an explicit filter on a company or district outside the scope."""
    for c in companies:
        if scope.companies is not None and c not in scope.companies:
            raise HTTPException(403, f"company {c!r} is outside your scope")
    for d in districts:
        if scope.districts is not None and d not in scope.districts:
            raise HTTPException(403, f"district {d!r} is outside your scope")


def vehicle_allowed(scope: Scope, v: dict[str, Any] | None) -> bool:
    """A registry row (`queries.vehicles` shape) in scope? Unregistered (None) passes only unrestricted."""
    if scope.unrestricted:
        return True
    if v is None:
        return False
    return scope.allows(company=v.get("company"), district=v.get("district"), vehicle_kind=v.get("kind"))


def visible_ids(scope: Scope, registry: dict[str, dict[str, Any]]) -> set[str] | None:
    """Vehicle ids the scope sees (None = all, including unregistered ones)."""
    if scope.unrestricted:
        return None
    return {vid for vid, v in registry.items() if vehicle_allowed(scope, v)}


def visible_companies(scope: Scope, registry: dict[str, dict[str, Any]]) -> frozenset[str] | None:
    """Companies whose places a scope sees: its own companies, or the companies of vehicles it sees."""
    if scope.unrestricted:
        return None
    own = set(scope.companies or ())
    if scope.companies is None or scope.districts is not None or scope.vehicle_kinds is not None:
        own |= {v["company"] for v in registry.values() if v.get("company") and vehicle_allowed(scope, v)}
        if scope.companies is not None:
            own &= scope.companies
    return frozenset(own)


def require_vehicles(scope: Scope, registry: dict[str, dict[str, Any]], vehicle_ids: Iterable[str]) -> None:
    """404 unless every vehicle is visible (unknown and foreign answer alike)."""
    if scope.unrestricted:
        return
    for vid in vehicle_ids:
        if not vehicle_allowed(scope, registry.get(vid)):
            raise HTTPException(404, f"unknown vehicle {vid!r}")


def fence_visible(company: str | None, companies: frozenset[str] | None) -> bool:
    """`companies` from `visible_companies` (None = unrestricted)."""
    return companies is None or company is None or company in companies


def doc_visible(doc: dict[str, Any], ids: set[str] | None) -> bool:
    """A permit / delivery order: visible when any vehicle it names is (`ids` from `visible_ids`)."""
    return ids is None or bool(ids & set(doc.get("vehicles") or ()))


def trim_doc(doc: dict[str, Any], ids: set[str] | None) -> dict[str, Any]:
    """The document with foreign vehicles left out of its vehicle list (they are not the reader's)."""
    if ids is None:
        return doc
    return {**doc, "vehicles": [v for v in doc.get("vehicles") or () if v in ids]}
