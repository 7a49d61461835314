"""Local time windows and the World's document look-ups."""

from datetime import date

import numpy as np

from tests.tracker import synth
from tracker.windows import local_day, local_minute_of_day, window_day_start, window_table


def test_window_crossing_midnight():
    t = window_table(["22:00-06:00"])
    assert t[22 * 60] and t[0] and t[5 * 60 + 59] and not t[6 * 60] and not t[21 * 60 + 59]
    assert window_table(["00:00-24:00"]).all() and window_table([], empty_means_all_day=True).all()


def test_local_minute_and_shift_day():
    ts = np.array([synth.T0], np.int64)  # 05:30 local, 2024-05-14
    assert local_minute_of_day(ts, 480)[0] == 5 * 60 + 30
    day = local_day(ts, 480)[0]
    assert day == (date(2024, 5, 14) - date(1970, 1, 1)).days
    assert window_day_start(ts, window_table(["22:00-06:00"]), 480)[0] == day - 1


def test_doc_match_windows_and_validity():
    w = synth.world()
    v = np.array([w.vidx_of["M1"], w.vidx_of["M1"], w.vidx_of["M3"], w.vidx_of["X1"], w.vidx_of["S1"]], np.int32)
    minute = np.array([5 * 60, 7 * 60, 5 * 60, 12 * 60, 5 * 60], np.int16)
    day = np.full(5, (date(2024, 5, 14) - date(1970, 1, 1)).days, np.int32)
    doc, inwin = w.doc_match(v, minute, day, np.array([0, 0, 0, 1, -1], np.int8))
    ids = [w.docs.ids[d] if d >= 0 else None for d in doc]
    assert ids == ["P1", "P1", None, "O1", None]
    assert inwin.tolist() == [True, False, False, True, False]


def test_unknown_vehicles_are_registered_on_the_fly():
    import polars as pl

    w = synth.world()
    n = w.n_vehicles
    v = w.vidx(pl.Series(["M1", "ghost", "ghost"]))
    assert v[0] == w.vidx_of["M1"] and v[1] == v[2] == n and w.vehicle_kind[n] == 5
