"""Kinds of reference place the geometry library understands.

This is the geometry library's own vocabulary (places, not vehicles). `tracker.vocab` re-exports it so the
application still has exactly one module to look closed vocabularies up in.
"""

from __future__ import annotations

from enum import StrEnum


class FenceKind(StrEnum):
    """What a fence stands for; the rules decide what each kind allows."""

    CONSTRUCTION_SITE = "construction_site"  # 工地
    DISPOSAL_SITE = "disposal_site"  # 消纳场
    BATCHING_PLANT = "batching_plant"  # 搅拌站
    TRANSFER_STATION = "transfer_station"  # 中转站
    LANDFILL = "landfill"  # 处理场
    DEPOT = "depot"  # 停车场
    RESTRICTED_ZONE = "restricted_zone"  # 禁行区
    COLLECTION_POINT = "collection_point"  # 收集点
    WORK_AREA = "work_area"  # 作业区
    ROUTE = "route"  # 核准路线 (a corridor around a permitted route)


class ShapeKind(StrEnum):
    POLYGON = "polygon"  # polygon or multipolygon, holes allowed
    CIRCLE = "circle"  # centre + radius_m
    CORRIDOR = "corridor"  # polyline + half_width_m


class Crs(StrEnum):
    """Coordinate systems fences may arrive in. Everything inside is WGS-84."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"  # AMap, Tencent
    BD09 = "bd09"  # Baidu


FENCE_LABELS_ZH: dict[FenceKind, str] = {
    FenceKind.CONSTRUCTION_SITE: "工地",
    FenceKind.DISPOSAL_SITE: "消纳场",
    FenceKind.BATCHING_PLANT: "搅拌站",
    FenceKind.TRANSFER_STATION: "中转站",
    FenceKind.LANDFILL: "处理场",
    FenceKind.DEPOT: "停车场",
    FenceKind.RESTRICTED_ZONE: "禁行区",
    FenceKind.COLLECTION_POINT: "收集点",
    FenceKind.WORK_AREA: "作业区",
    FenceKind.ROUTE: "核准路线",
}
