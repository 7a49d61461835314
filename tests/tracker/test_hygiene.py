"""Fix hygiene: the distance twin agrees with geofences.local, jumps are set aside, invalid and duplicate
fixes never reach the rules."""

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from geofences.local import dist_m
from tests.tracker import synth
from tracker.hygiene import dist_m_nb


@settings(max_examples=200, deadline=None)
@given(st.floats(113.5, 114.5), st.floats(22.0, 23.0), st.floats(-0.05, 0.05), st.floats(-0.05, 0.05))
def test_numba_distance_is_geofences_distance(lon, lat, dlon, dlat):
    a = float(dist_m(lon, lat, lon + dlon, lat + dlat))
    b = dist_m_nb(lon, lat, lon + dlon, lat + dlat)
    assert abs(a - b) <= 1e-9 * max(a, 1.0)


def _straight(n=60, vid="S1"):
    rng = np.random.default_rng(1)
    return synth.track(synth.vehicle(vid), [synth.leg("far", 12.0)], rng, start="depot", noise_m=2.0).head(n)


def test_a_single_multipath_jump_is_set_aside():
    df = _straight()
    lon = df["lon"].to_numpy().copy()
    lon[20] += 0.02  # 2 km away for one fix, 10 s later back: impossible
    _, eng = synth.run(df.with_columns(pl.Series("lon", lon)))
    assert eng.stats["jumps"] == 1


def test_invalid_zero_and_duplicate_fixes_are_dropped():
    df = _straight()
    df = pl.concat([df, df[5:8]]).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(0.0).otherwise(pl.col("lon")).alias("lon"),
        (pl.int_range(pl.len()) != 4).alias("valid"))
    _, eng = synth.run(df)
    assert eng.stats["invalid"] == 2 and eng.stats["duplicates"] == 3


def test_a_real_relocation_is_accepted_after_consistent_fixes():
    df = _straight()
    lon = df["lon"].to_numpy().copy()
    lon[30:] += 0.05  # the terminal is really 5 km east from fix 30 on (moved on a flatbed, or swapped)
    eps, eng = synth.run(df.with_columns(pl.Series("lon", lon)))
    (e,) = synth.of_kind(eps, "signal_loss")
    assert e.severity == "suspected"
