"""restricted_zone: inside a zone while it is in force; a zone outside its window is not."""

import numpy as np

from tests.tracker import synth


def test_parking_in_the_all_day_zone_is_an_episode_naming_the_zone_and_version():
    rng = np.random.default_rng(1)
    eps, _ = synth.run(synth.track(synth.vehicle("S1"), [synth.leg("zone", 25.0, dwell_s=300.0),
                                                          synth.leg("far", 25.0)], rng, start="road"))
    (e,) = synth.of_kind(eps, "restricted_zone")
    assert e.place_id == "zone" and e.evidence["fence"]["version"] == 2


def test_morning_zone_before_seven_is_not_in_force():
    rng = np.random.default_rng(2)
    eps, _ = synth.run(synth.track(synth.vehicle("S1"), [synth.leg("zone_am", 25.0, dwell_s=300.0)], rng,
                                   start="road"))  # 05:30 local: the zone applies 07:00–09:00
    assert synth.of_kind(eps, "restricted_zone") == []


def test_morning_zone_at_eight_is():
    rng = np.random.default_rng(3)
    eps, _ = synth.run(synth.track(synth.vehicle("S1"), [synth.leg("zone_am", 25.0, dwell_s=300.0)], rng,
                                   start="road", t0_ms=synth.T0 + 150 * 60_000))
    assert len(synth.of_kind(eps, "restricted_zone")) == 1


def _parked_in_zone_with_fixes_outside(n_out: int, seed: int):
    """Parked at the zone's centre for 5 minutes; `n_out` consecutive fixes in the middle of the stay read
    250 m away (outside the 200 m circle, plausible for GPS noise at the edge or a multipath jump)."""
    import polars as pl

    from geofences.local import to_lonlat

    rng = np.random.default_rng(seed)
    df = synth.track(synth.vehicle("S1"), [synth.leg("zone", 25.0, dwell_s=300.0), synth.leg("far", 25.0)], rng,
                     start="road")
    x, y = synth.PLACES["zone"]
    cx, cy = to_lonlat(np.array([x]), np.array([y]), synth.ORIGIN)
    near = ((df["lon"] - cx[0]).abs() < 1e-4) & ((df["lat"] - cy[0]).abs() < 1e-4)
    rows = np.flatnonzero(near.to_numpy())
    assert rows.size >= 6  # parked: a fix every 30–60 s
    mid = rows[rows.size // 2: rows.size // 2 + n_out]
    ox, oy = to_lonlat(np.array([x + 250.0]), np.array([y]), synth.ORIGIN)
    lon, lat = df["lon"].to_numpy().copy(), df["lat"].to_numpy().copy()
    lon[mid], lat[mid] = ox[0], oy[0]
    return df.with_columns(pl.Series("lon", lon), pl.Series("lat", lat))


def test_a_fix_thrown_out_of_the_zone_does_not_split_the_visit():
    for seed in range(4):
        eps, _ = synth.run(_parked_in_zone_with_fixes_outside(1, seed))
        assert len(synth.of_kind(eps, "restricted_zone")) == 1


def test_a_real_exit_of_45_s_or_more_does():
    eps, _ = synth.run(_parked_in_zone_with_fixes_outside(3, 7))
    assert len(synth.of_kind(eps, "restricted_zone")) == 2
