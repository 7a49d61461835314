"""Trips in PostgreSQL: the engine decides trips in memory (`tracker.trips`); this sink upserts the ones that
changed since the last batch, keyed by their stable id, so trip counts per vehicle, company, site, disposal
site and day are one GROUP BY away and survive a worker restart."""

from __future__ import annotations

import polars as pl
import psycopg

_COLUMNS = ("trip_id", "vehicle_id", "vehicle_kind", "company", "start_ts", "end_ts", "origin_fence", "dest_fence",
            "doc_id", "outcome", "load_source", "local_day", "decided_ts", "backfilled")


class TripSink:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int | None, str]] = {}

    def changed(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows of `Trips.frame()` that are new or changed since the last call."""
        if frame.height == 0:
            return frame
        keys = list(zip(frame["id"].to_list(), frame["decided_ts_ms"].to_list(), frame["end_ts_ms"].to_list(),
                        frame["outcome"].to_list(), strict=True))
        mask = [self._seen.get(i) != (d, e, o) for i, d, e, o in keys]
        for i, d, e, o in keys:
            self._seen[i] = (d, e, o)
        return frame.filter(pl.Series(mask))

    def write(self, conn: psycopg.Connection, frame: pl.DataFrame) -> int:
        rows = self.changed(frame)
        if rows.height == 0:
            return 0
        out = rows.select(
            pl.col("id").alias("trip_id"), "vehicle_id", "vehicle_kind", "company",
            pl.from_epoch("start_ts_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("start_ts"),
            pl.from_epoch("end_ts_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("end_ts"),
            "origin_fence", "dest_fence", "doc_id", "outcome", "load_source", "local_day",
            pl.from_epoch("decided_ts_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("decided_ts"),
            "backfilled",
        )
        cols = ", ".join(_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO trips ({cols}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
                f"ON CONFLICT (trip_id) DO UPDATE SET {updates}, updated_at = now()",
                out.rows(),
            )
        return out.height


def trip_counts(conn: psycopg.Connection, by: str = "vehicle_id", outcome: str = "completed") -> list[tuple]:
    """趟次: completed trips per `by` (vehicle_id, company, origin_fence or dest_fence) and local day."""
    if by not in ("vehicle_id", "company", "origin_fence", "dest_fence"):
        raise ValueError(f"cannot count trips by {by!r}")
    return conn.execute(
        f"SELECT {by}, local_day, count(*) FROM trips WHERE outcome = %s GROUP BY 1, 2 ORDER BY 1, 2", (outcome,)
    ).fetchall()
