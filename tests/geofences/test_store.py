"""Versioned fence store against a real PostgreSQL (fixture `pg_conn`: fresh database, migrations applied)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
import shapely

from geofences.kinds import FenceKind, ShapeKind
from geofences.model import Fence
from geofences.store import fence_versions, fences_in_force, list_fences, retire_fences, save_fences


def site(fid: str = "s1", **kw) -> Fence:
    base = dict(id=fid, name="工地", kind=FenceKind.CONSTRUCTION_SITE, shape=ShapeKind.POLYGON,
                geometry=shapely.Polygon([(114.05, 22.54), (114.06, 22.54), (114.06, 22.55), (114.05, 22.541)],
                                         [[(114.054, 22.544), (114.055, 22.544), (114.055, 22.545)]]),
                company="深建", district="福田", windows=((1320, 360),), tags={"permit": "P-1"})
    return Fence(**(base | kw))


def now(conn: psycopg.Connection) -> datetime:
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def test_round_trip_every_shape(pg_conn: psycopg.Connection) -> None:
    fences = [
        site(valid_from=date(2024, 1, 1), valid_to=date(2030, 1, 1)),
        Fence(id="c1", name="收集点", kind="collection_point", shape="circle", geometry=shapely.Point(114.05, 22.54),
              radius_m=12.5),
        Fence(id="r1", name="路线", kind="route", shape="corridor",
              geometry=shapely.LineString([(114.05, 22.54), (114.06, 22.55), (114.07, 22.55)]), half_width_m=40),
    ]
    stored = save_fences(pg_conn, fences, actor="clerk")
    assert [f.version for f in stored] == [1, 1, 1]
    assert list_fences(pg_conn) == sorted(stored, key=lambda f: f.id)


def test_versions_and_in_force(pg_conn: psycopg.Connection) -> None:
    v1 = save_fences(pg_conn, [site(), site("s2")], actor="a")
    t1 = now(pg_conn)
    assert save_fences(pg_conn, [site()], actor="a") == [v1[0]]  # unchanged: no new version
    moved = site(geometry=shapely.box(114.07, 22.54, 114.08, 22.55))
    v2 = save_fences(pg_conn, [moved], actor="b")
    assert v2[0].version == 2
    t2 = now(pg_conn)
    renamed = save_fences(pg_conn, [dataclasses.replace(moved, name="新工地")], actor="c")[0]
    assert renamed.version == 3

    at_t1 = {f.id: f for f in fences_in_force(pg_conn, t1)}
    assert at_t1["s1"] == v1[0] and at_t1["s1"].geometry.equals(site().geometry)
    assert fences_in_force(pg_conn, t2)[0] == v2[0]
    assert fences_in_force(pg_conn, now(pg_conn))[0] == renamed
    assert fences_in_force(pg_conn, t1 - timedelta(hours=1)) == []

    history = fence_versions(pg_conn, "s1")
    assert [(h.fence.version, h.actor) for h in history] == [(1, "a"), (2, "b"), (3, "c")]
    assert history[0].recorded_to == history[1].recorded_from and history[-1].recorded_to is None


def test_in_force_respects_validity(pg_conn: psycopg.Connection) -> None:
    today = now(pg_conn).astimezone(timezone(timedelta(hours=8))).date()
    save_fences(pg_conn, [
        site("current", valid_from=today - timedelta(days=3), valid_to=today + timedelta(days=3)),
        site("expired", valid_to=today - timedelta(days=5)),
        site("last-night", valid_to=today - timedelta(days=1)),  # a night shift may still be running
        site("future", valid_from=today + timedelta(days=2)),
    ])
    assert [f.id for f in fences_in_force(pg_conn, now(pg_conn))] == ["current", "last-night"]


def test_retire_and_append_only(pg_conn: psycopg.Connection) -> None:
    save_fences(pg_conn, [site("a"), site("b")])
    assert retire_fences(pg_conn, ["a", "missing"], actor="x") == 1
    assert [f.id for f in list_fences(pg_conn)] == ["b"]
    assert len(fence_versions(pg_conn, "a")) == 1
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        pg_conn.execute("UPDATE fence_versions SET name = 'forged' WHERE fence_id = 'b'")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        pg_conn.execute("DELETE FROM fence_versions WHERE fence_id = 'a'")
    again = save_fences(pg_conn, [site("a")])[0]  # re-created after retirement: next version number
    assert again.version == 2


def test_save_inside_callers_transaction_rolls_back(pg_conn: psycopg.Connection) -> None:
    with pytest.raises(RuntimeError):
        with pg_conn.transaction():
            save_fences(pg_conn, [site("t")])
            raise RuntimeError("caller fails later")
    assert list_fences(pg_conn) == []
    with pytest.raises(ValueError, match="duplicate"):
        save_fences(pg_conn, [site("d"), site("d")])
