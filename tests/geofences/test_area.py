"""Area → H3 ranges: every fine cell of the area is in a range, interior ranges hold only inside points,
and PostgreSQL answers the range query with the B-tree."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geofences.area import area_ranges, area_where_sql, coarsen, h3_ranges, ranges_sql
from geofences.h3util import cells_at

from .strategies import corridor_fences, polygon_fences


def _in(ranges, cells: np.ndarray) -> np.ndarray:
    out = np.zeros(cells.size, bool)
    for lo, hi in ranges:
        out |= (cells.astype(np.int64) >= lo) & (cells.astype(np.int64) <= hi)
    return out


@settings(max_examples=30, deadline=None)
@given(fence=st.one_of(polygon_fences("p"), corridor_fences("r")), seed=st.integers(0, 2**31))
def test_ranges_cover_area_and_interior_is_inside(fence, seed) -> None:
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = fence.area_geometry().bounds
    lon, lat = rng.uniform(minx - 1e-3, maxx + 1e-3, 4000), rng.uniform(miny - 1e-3, maxy + 1e-3, 4000)
    cells = cells_at(lon, lat, 12)
    inside = fence.contains(lon, lat)
    ar = area_ranges(fence)
    assert _in(ar.all, cells)[inside].all()
    assert inside[_in(ar.interior, cells)].all()
    all_ranges = ar.all
    assert all(lo <= hi for lo, hi in all_ranges) and all(a[1] < b[0] for a, b in zip(all_ranges, all_ranges[1:]))
    capped = h3_ranges(fence, max_ranges=5)
    assert len(capped) <= 5 and _in(capped, cells)[inside].all()


def test_compaction_makes_few_ranges() -> None:
    zone = shapely.Point(114.05, 22.54).buffer(0.02, quad_segs=32)  # ~4 km across
    ar = area_ranges(zone)
    n_cells = zone.area / 2.6e-8  # ~ res-12 cells in it
    assert len(ar.all) < n_cells / 50


def test_sql_fragment() -> None:
    sql, params = ranges_sql([(1, 2), (5, 9)])
    assert sql == "(h3 BETWEEN %s AND %s OR h3 BETWEEN %s AND %s)" and params == [1, 2, 5, 9]
    assert ranges_sql([]) == ("FALSE", [])
    with pytest.raises(ValueError):
        ranges_sql([(1, 2)], column="h3; DROP TABLE fixes")
    assert coarsen([(1, 2), (5, 9), (100, 101)], 2, res=0) in ([(1, 9), (100, 101)],)


def test_area_query_in_postgres(pg_conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    lon, lat = 114.05 + rng.uniform(-0.03, 0.03, n), 22.54 + rng.uniform(-0.03, 0.03, n)
    ts = rng.integers(0, 10, n)
    cells = cells_at(lon, lat, 12).astype(np.int64)
    pg_conn.execute("CREATE TEMP TABLE fx (id int, ts int, lon float8, lat float8, h3 bigint)")
    pg_conn.execute("CREATE INDEX ON fx (h3, ts)")
    with pg_conn.cursor().copy("COPY fx FROM STDIN") as cp:
        for row in zip(range(n), ts.tolist(), lon.tolist(), lat.tolist(), cells.tolist()):
            cp.write_row(row)
    pg_conn.execute("ANALYZE fx")
    area = shapely.Polygon([(114.04, 22.53), (114.065, 22.535), (114.06, 22.555), (114.035, 22.55)],
                           [[(114.048, 22.54), (114.052, 22.54), (114.05, 22.544)]])
    sql, params = area_where_sql(area, 3, 7)
    rows = pg_conn.execute(f"SELECT id, lon, lat FROM fx WHERE {sql}", params).fetchall()
    ids = np.array([r[0] for r in rows])
    got = set(ids[shapely.intersects_xy(area, lon[ids], lat[ids])].tolist())
    want = set(np.flatnonzero(shapely.intersects_xy(area, lon, lat) & (ts >= 3) & (ts < 7)).tolist())
    assert got == want and len(ids) < 1.2 * len(want)
    plan = " ".join(r[0] for r in pg_conn.execute(f"EXPLAIN SELECT id FROM fx WHERE {sql}", params).fetchall())
    assert "Index" in plan
