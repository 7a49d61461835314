"""Dispatch rules: where a case happened decides its district and grid; district and violation kind decide
the responsible team, category and priority.

Why polygons and not the vehicle's registered district: a muck truck registered in one district dumps in
another, and it is the district where it happened whose team must go. The registered district is only the
fallback when the point is outside every district polygon (or the report has no position).

Rule choice is by specificity, not file order, so adding a city-wide rule never shadows a district's own:
(district and kind) > (district, any kind) > (any district, kind) > (any district, any kind); among equals
the first listed wins. Polygons are WGS-84 lon/lat; overlapping districts resolve to the first listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import h3
import shapely
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from tracker.cases.vocab import DEFAULT_CATEGORY, DEFAULT_URGENT_KINDS, Priority

__all__ = ["DistrictSpec", "DispatchRule", "RoutingSettings", "Assignment", "Dispatcher"]

ANY = "*"


class DistrictSpec(BaseModel):
    """A district (区/街道) polygon: `polygon` is one ring [[lon, lat], ...] or a GeoJSON geometry dict."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    polygon: list[list[float]] | dict


class DispatchRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district: str = ANY
    kinds: list[str] = Field(default_factory=list, description="violation kinds; empty = every kind")
    team: str
    priority: Priority | None = Field(None, description="overrides the kind's default priority")


class RoutingSettings(BaseModel):
    """`[cases.routing]`."""

    model_config = ConfigDict(extra="forbid")

    districts: dict[str, DistrictSpec] = Field(default_factory=dict)
    rules: list[DispatchRule] = Field(default_factory=list)
    categories: dict[str, str] = Field(default_factory=dict, description="kind → category overrides")
    urgent_kinds: list[str] | None = Field(None, description="kinds on the urgent clock (default: dumping, "
                                                             "mixer discharge, unsealed transport)")
    grid_res: int = Field(10, ge=5, le=15, description="H3 resolution of the case grid (10 ≈ 1.5 ha, 万米单元网格)")


@dataclass(frozen=True)
class Assignment:
    district: str | None
    grid: str | None
    team: str | None
    category: str
    priority: str


def _geometry(spec: DistrictSpec) -> BaseGeometry:
    if isinstance(spec.polygon, dict):
        geom = shape(spec.polygon)
    else:
        geom = shapely.Polygon(spec.polygon)
    if geom.is_empty or not geom.is_valid or geom.area == 0:
        raise ValueError(f"district {spec.name!r}: polygon is empty or invalid")
    return geom


def _specificity(rule: DispatchRule) -> int:
    return (2 if rule.district != ANY else 0) + (1 if rule.kinds else 0)


class Dispatcher:
    """Routes a case (kind, position, vehicle's district) to a district, grid cell and team."""

    def __init__(self, routing: RoutingSettings | None = None) -> None:
        self.routing = routing or RoutingSettings()
        self._districts: list[tuple[str, BaseGeometry]] = []
        for did, spec in self.routing.districts.items():
            geom = _geometry(spec)
            shapely.prepare(geom)
            self._districts.append((did, geom))
        self._rules = sorted(self.routing.rules, key=_specificity, reverse=True)  # stable: file order ties
        self._categories: Mapping[str, str] = {**DEFAULT_CATEGORY, **self.routing.categories}
        urgent = self.routing.urgent_kinds
        self._urgent = frozenset(DEFAULT_URGENT_KINDS if urgent is None else urgent)

    def district_at(self, lon: float | None, lat: float | None) -> str | None:
        if lon is None or lat is None:
            return None
        pt = shapely.Point(lon, lat)
        for did, geom in self._districts:
            if geom.covers(pt):
                return did
        return None

    def category_of(self, kind: str) -> str:
        return self._categories.get(kind, "other")

    def team_for(self, district: str | None, kind: str) -> DispatchRule | None:
        for rule in self._rules:
            if rule.district not in (ANY, district):
                continue
            if rule.kinds and kind not in rule.kinds:
                continue
            return rule
        return None

    def route(self, kind: str, lon: float | None, lat: float | None, vehicle_district: str | None = None,
              ) -> Assignment:
        district = self.district_at(lon, lat) or vehicle_district
        grid = None
        if lon is not None and lat is not None:
            grid = h3.latlng_to_cell(lat, lon, self.routing.grid_res)
        rule = self.team_for(district, kind)
        priority = Priority.URGENT if kind in self._urgent else Priority.NORMAL
        if rule is not None and rule.priority is not None:
            priority = rule.priority
        return Assignment(district=district, grid=grid, team=rule.team if rule else None,
                          category=self.category_of(kind), priority=priority.value)
