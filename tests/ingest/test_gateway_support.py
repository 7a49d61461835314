"""Shared pieces of the gateway tests (no tests here): registry rows, reading the bus back."""

from __future__ import annotations

import polars as pl
import psycopg
import redis

from tracker.edges import bus
from tracker.fix import decode_block


def add_vehicles(database_url: str, rows: list[tuple[str, str, str | None, str]]) -> None:
    """(vehicle_id, phone, plate, vendor_profile) rows in the terminal registry."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO vehicles (vehicle_id, kind, company, phone, plate, vendor_profile) "
                "VALUES (%s, 'muck_truck', 'ACME', %s, %s, %s)", rows)


def bus_frame(r: redis.Redis, names: bus.StreamNames) -> pl.DataFrame:
    """Every fix on every shard stream (XRANGE, no consumer group involved)."""
    frames = []
    for stream in names.all_fixes():
        for _, fields in r.xrange(stream):
            frames.append(decode_block(fields[bus.BLOCK_FIELD]))
    return pl.concat(frames) if frames else pl.DataFrame()
