"""HTTP batch ingest: `POST /api/ingest/fixes`.

Accepts a JSON array of fix objects or NDJSON (one object per line), authenticated by a per-source bearer
token (`settings.http.ingest_tokens`: source name → token). The whole batch is validated first: any bad row
gives 422 with every bad row's index and reason, and nothing from that batch is published (so the sender can
fix and resend the batch; resending is safe because history is idempotent by (vehicle, ts)). A 200 means the
fixes are in Redis.

Row fields: `vehicle_id`, `ts` (ISO-8601 with offset) or `ts_ms` (UTC epoch ms), `lon`, `lat` (WGS-84), and
optionally `speed_kmh`, `heading_deg`, `valid`, `alarm`, `status`, `cover_closed`, `lifting`, `load`,
`device_on`, `drum`, `backfill`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import msgspec
import polars as pl
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from tracker.fix import FIX_SCHEMA, conform

MAX_FUTURE_MS = 24 * 3600 * 1000


class FixIn(msgspec.Struct, forbid_unknown_fields=False):
    vehicle_id: str
    lon: float
    lat: float
    ts: datetime | None = None
    ts_ms: int | None = None
    speed_kmh: float = 0.0
    heading_deg: float = 0.0
    valid: bool = True
    alarm: int = 0
    status: int = 0
    cover_closed: bool | None = None
    lifting: bool | None = None
    load: int | None = None
    device_on: bool | None = None
    drum: int | None = None
    backfill: bool = False


class BatchError(ValueError):
    def __init__(self, problems: list[dict[str, Any]]):
        super().__init__(f"{len(problems)} bad row(s)")
        self.problems = problems


def _check(i: int, row: FixIn, now_ms: int) -> tuple[int | None, str | None]:
    if not row.vehicle_id.strip():
        return None, "vehicle_id is empty"
    if row.ts_ms is None and row.ts is None:
        return None, "needs ts (ISO-8601 with offset) or ts_ms"
    if row.ts is not None and row.ts.tzinfo is None:
        return None, "ts has no UTC offset (e.g. 2026-11-22T08:00:00+08:00)"
    ts_ms = row.ts_ms if row.ts_ms is not None else int(row.ts.timestamp() * 1000)  # type: ignore[union-attr]
    if ts_ms > now_ms + MAX_FUTURE_MS:
        return None, "ts is more than a day in the future"
    if not (-90 <= row.lat <= 90 and -180 <= row.lon <= 180):
        return None, f"coordinates out of range (lon={row.lon}, lat={row.lat})"
    if row.speed_kmh < 0 or row.speed_kmh > 400:
        return None, f"speed_kmh out of range ({row.speed_kmh})"
    if row.load is not None and row.load not in (0, 1, 3):
        return None, "load must be 0 (empty), 1 (half) or 3 (full)"
    if row.drum is not None and row.drum not in (0, 1, 2):
        return None, "drum must be 0 (stopped), 1 (forward) or 2 (reverse)"
    return ts_ms, None


def parse_batch(body: bytes, content_type: str, source: str, received_ms: int | None = None) -> pl.DataFrame:
    """Bytes → a conformed fix frame, or `BatchError` listing every bad row (0-based `row`)."""
    received_ms = received_ms if received_ms is not None else int(time.time() * 1000)
    text = body.strip()
    raw: list[Any]
    if "ndjson" in content_type or "x-ndjson" in content_type or (text[:1] == b"{"):
        raw = []
        problems: list[dict[str, Any]] = []
        for lineno, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                raw.append(msgspec.json.decode(line))
            except msgspec.DecodeError as exc:
                problems.append({"row": len(raw), "line": lineno + 1, "error": f"not JSON: {exc}"})
                raw.append(None)
        if problems:
            raise BatchError(problems)
    else:
        try:
            raw = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise BatchError([{"row": None, "error": f"body is not JSON: {exc}"}]) from None
        if not isinstance(raw, list):
            raise BatchError([{"row": None, "error": "expected a JSON array of fixes (or NDJSON)"}])
    rows: list[FixIn] = []
    ts_list: list[int] = []
    problems = []
    for i, item in enumerate(raw):
        try:
            row = msgspec.convert(item, FixIn)
        except msgspec.ValidationError as exc:
            problems.append({"row": i, "error": str(exc)})
            continue
        ts_ms, err = _check(i, row, received_ms)
        if err:
            problems.append({"row": i, "vehicle_id": row.vehicle_id, "error": err})
            continue
        rows.append(row)
        ts_list.append(ts_ms)  # type: ignore[arg-type]
    if problems:
        raise BatchError(problems)
    if not rows:
        return conform(pl.DataFrame(schema=FIX_SCHEMA))
    cols = msgspec.to_builtins(rows)
    df = pl.DataFrame(cols, infer_schema_length=None).drop("ts", strict=False)
    df = df.with_columns(
        pl.Series("ts_ms", ts_list, dtype=pl.Int64),
        pl.lit(source).alias("source"),
        pl.lit(received_ms, dtype=pl.Int64).alias("received_ts_ms"),
    )
    return conform(df).unique(subset=["vehicle_id", "ts_ms"], keep="first", maintain_order=True)


def make_router(get_state) -> APIRouter:  # get_state() -> dashboard.appstate.AppState-like (settings, redis)
    """The router needs the app's Redis client and settings; passed in to keep this module free of globals."""
    from tracker.edges.bus import publish_fixes

    router = APIRouter(tags=["ingest"])

    @router.post("/api/ingest/fixes", summary="Ingest a batch of fixes (JSON array or NDJSON)")
    async def ingest_fixes(request: Request,
                           authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        state = get_state()
        tokens: dict[str, str] = state.settings.http.ingest_tokens
        token = (authorization or "").removeprefix("Bearer ").strip()
        source = next((name for name, t in tokens.items() if t == token), None)
        if source is None:
            raise HTTPException(401, "missing or unknown ingest token (Authorization: Bearer <token>)")
        limit = state.settings.http.max_body_bytes
        declared = int(request.headers.get("content-length") or 0)
        if declared > limit:
            raise HTTPException(413, f"batch of {declared} bytes exceeds the limit of {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise HTTPException(413, f"batch exceeds the limit of {limit} bytes")
        try:
            df = parse_batch(bytes(body), request.headers.get("content-type", ""), source)
        except BatchError as exc:
            return JSONResponse({"detail": "bad rows; nothing from this batch was accepted",
                                 "errors": exc.problems}, status_code=422)
        ids = await state.run_sync(publish_fixes, state.redis, state.names, df, state.settings.bus.block_size)
        return JSONResponse({"accepted": df.height, "entries": len(ids)})

    return router
