"""Local time of day and daily time windows, vectorised.

Permits, restricted zones and banned hours are written in *local* wall-clock windows ("22:00-06:00") while
fixes carry UTC epoch milliseconds. The city has a fixed UTC offset (`settings.city.utc_offset_min`, 480 for
China, which has no daylight saving), so local minute-of-day and local day number are integer arithmetic —
no timezone database on the hot path.

A window list is compiled to a 1440-entry boolean table (`WindowTable`), so "is this fix inside any of the
windows" is one fancy-index per batch. A window whose end is before its start crosses midnight; "00:00-24:00"
(or an empty list, where documented) means all day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from tracker.reference import parse_window

MS_PER_MIN = 60_000
MS_PER_DAY = 86_400_000
MIN_PER_DAY = 1440


def local_minute_of_day(ts_ms: npt.NDArray[np.int64], utc_offset_min: int) -> npt.NDArray[np.int16]:
    """Local minute of day (0..1439) of UTC epoch-ms timestamps."""
    local_ms = np.asarray(ts_ms, dtype=np.int64) + np.int64(utc_offset_min) * MS_PER_MIN
    return ((local_ms // MS_PER_MIN) % MIN_PER_DAY).astype(np.int16)


def local_day(ts_ms: npt.NDArray[np.int64] | int, utc_offset_min: int) -> npt.NDArray[np.int32]:
    """Local calendar day as days since 1970-01-01 (local), for date-valid permits and daily counts."""
    local_ms = np.asarray(ts_ms, dtype=np.int64) + np.int64(utc_offset_min) * MS_PER_MIN
    return (local_ms // MS_PER_DAY).astype(np.int32)


def window_table(windows: Iterable[str], *, empty_means_all_day: bool = False) -> npt.NDArray[np.bool_]:
    """"HH:MM-HH:MM" windows → boolean table over local minutes of day (True = inside a window)."""
    table = np.zeros(MIN_PER_DAY, dtype=np.bool_)
    any_window = False
    for text in windows:
        any_window = True
        start, end = parse_window(text)
        start, end = start % (MIN_PER_DAY + 1), min(end, MIN_PER_DAY)
        if start == end or (start == 0 and end == MIN_PER_DAY):
            table[:] = True  # "00:00-24:00" or "06:00-06:00": all day
        elif start < end:
            table[start:end] = True
        else:  # crosses midnight
            table[start:] = True
            table[:end] = True
    if not any_window and empty_means_all_day:
        table[:] = True
    return table


def window_tables(window_lists: Sequence[Iterable[str]], *, empty_means_all_day: bool = False
                  ) -> npt.NDArray[np.bool_]:
    """Stack of tables, one row per window list: `tables[i, minute]`."""
    if not window_lists:
        return np.zeros((0, MIN_PER_DAY), dtype=np.bool_)
    return np.stack([window_table(w, empty_means_all_day=empty_means_all_day) for w in window_lists])


def window_day_start(ts_ms: npt.NDArray[np.int64], table: npt.NDArray[np.bool_], utc_offset_min: int
                     ) -> npt.NDArray[np.int32]:
    """The local day a window *opened* on: a fix at 02:00 inside a 22:00-06:00 window belongs to the previous
    day's window. Used for date validity of permits (a permit valid until the 5th covers the night 5th→6th)."""
    minute = local_minute_of_day(ts_ms, utc_offset_min)
    day = local_day(ts_ms, utc_offset_min)
    # a crossing window has table[0] True and table[-1] True; early-morning minutes belong to yesterday
    crosses = bool(table[0] and table[-1] and not table.all())
    if not crosses:
        return day
    first_false = int(np.argmin(table))  # end of the morning part
    return np.where(minute < first_false, day - 1, day).astype(np.int32)
