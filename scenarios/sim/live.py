"""Live mode: stream a simulated scenario to a running FleetWatch over HTTP, paced at `speed`× real time.

Fixes go out in delivery order (`received_ts_ms`), each batch when its simulated arrival time comes, as NDJSON
to `POST /api/ingest/fixes` with a bearer token — exactly what a fleet platform forwarding terminal data does.
A rejected batch (4xx) is counted and skipped (the ingest rejects whole batches; the simulator deliberately
includes invalid fixes); a transport error is retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl


@dataclass
class StreamStats:
    sent: int = 0
    batches: int = 0
    rejected_batches: int = 0
    rejected_fixes: int = 0


def stream(fixes: pl.DataFrame, base_url: str, token: str, *, speed: float = 1.0, t0_ms: int | None = None,
           poll_s: float = 0.25, stop: Callable[[], bool] | None = None,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> StreamStats:
    """Post the fixes as their delivery time comes (simulated time starts at `t0_ms`, default the first
    delivery); blocks until everything is sent or `stop()` returns True."""
    import httpx

    ordered = fixes.sort("received_ts_ms", maintain_order=True)
    due = ordered.get_column("received_ts_ms").to_numpy()
    t0 = int(due[0]) if t0_ms is None and due.size else int(t0_ms or 0)
    wall0 = clock()
    pos = 0
    st = StreamStats()
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        while pos < ordered.height and not (stop and stop()):
            sim_now = t0 + (clock() - wall0) * 1000.0 * speed
            end = int(due.searchsorted(sim_now, side="right"))
            if end > pos:
                batch = ordered.slice(pos, end - pos)
                body = batch.drop("source", "received_ts_ms").write_ndjson()
                try:
                    resp = client.post("/api/ingest/fixes", content=body,
                                       headers={"Content-Type": "application/x-ndjson"})
                except httpx.HTTPError:
                    sleep(poll_s)
                    continue
                st.batches += 1
                if 400 <= resp.status_code < 500:
                    st.rejected_batches += 1
                    st.rejected_fixes += batch.height
                else:
                    resp.raise_for_status()
                    st.sent += batch.height
                pos = end
            sleep(poll_s)
    return st
