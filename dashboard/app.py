"""The web application: REST API, websockets, and the offline live map.

`create_app(settings, redis_url, database_url)` builds it; `fleetwatch demo` and `fleetwatch serve` run it
with uvicorn. The live map draws the city's road network from its GeoJSON (no hosted basemap) with the
deck.gl bundle served from the pydeck wheel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, ORJSONResponse, Response
from fastapi.staticfiles import StaticFiles

from dashboard.assets import STATIC_DIR, deckgl_bundle_dir, roads_path
from dashboard.state import AppState
from ingest.http import make_router
from tracker.config import Settings
from tracker.edges.live import read_live
from tracker.vocab import VehicleKind

log = logging.getLogger(__name__)

KIND_ORDER = [k.value for k in VehicleKind]


def _vehicles(state: AppState) -> dict[str, dict[str, Any]]:
    cached = state.cache.get("vehicles")
    if cached and time.monotonic() - cached[0] < 10:
        return cached[1]
    with state.db() as conn:
        rows = conn.execute("SELECT vehicle_id, kind, company, district, plate FROM vehicles").fetchall()
    out = {r[0]: {"id": r[0], "kind": r[1], "company": r[2], "district": r[3], "plate": r[4]} for r in rows}
    state.cache["vehicles"] = (time.monotonic(), out)
    return out


def _live_rows(state: AppState) -> dict[str, list[Any]]:
    """vehicle id → [id, kind index, lon, lat, speed_kmh, heading_deg, ts_ms, alarm kinds]."""
    vehicles = _vehicles(state)
    out = {}
    for vid, s in read_live(state.redis, state.names).items():
        kind = vehicles.get(vid, {}).get("kind")
        out[vid] = [vid, KIND_ORDER.index(kind) if kind in KIND_ORDER else -1, round(s["lon"], 6),
                    round(s["lat"], 6), round(s.get("speed_kmh") or 0, 1), round(s.get("heading_deg") or 0),
                    s["ts_ms"], s.get("alarm_kinds", [])]
    return out


def create_app(settings: Settings, redis_url: str, database_url: str) -> FastAPI:
    state = AppState(settings, redis_url, database_url)
    app = FastAPI(title="FleetWatch", version="0.1.0", default_response_class=ORJSONResponse,
                  description="Real-time monitoring and route compliance · 五车实时监管与路线合规")
    app.state.fw = state
    app.include_router(make_router(lambda: state))
    app.mount("/static/deckgl", StaticFiles(directory=deckgl_bundle_dir()), name="deckgl")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.on_event("shutdown")
    def _close() -> None:  # pragma: no cover - trivial
        state.close()

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/api/health", tags=["system"])
    def health() -> dict[str, Any]:
        return {"ok": True, "redis": bool(state.redis.ping())}

    @app.get("/api/roads", tags=["map"], summary="The city's road network (GeoJSON base layer)")
    def roads() -> Response:
        cached = state.cache.get("roads")
        if cached is None:
            cached = roads_path(settings).read_bytes()
            state.cache["roads"] = cached
        return Response(cached, media_type="application/geo+json")

    @app.get("/api/vehicles", tags=["vehicles"])
    async def vehicles() -> list[dict[str, Any]]:
        return list((await state.run_sync(_vehicles, state)).values())

    @app.get("/api/live", tags=["vehicles"], summary="Live state of every vehicle")
    async def live() -> dict[str, Any]:
        rows = await state.run_sync(_live_rows, state)
        return {"kinds": KIND_ORDER, "vehicles": list(rows.values())}

    @app.websocket("/ws/live")
    async def ws_live(ws: WebSocket) -> None:
        """Position deltas at most once a second: only vehicles whose state changed since the last push."""
        await ws.accept()
        sent: dict[str, list[Any]] = {}
        try:
            while True:
                rows = await state.run_sync(_live_rows, state)
                changed = [r for vid, r in rows.items() if sent.get(vid) != r]
                if changed or not sent:
                    await ws.send_bytes(orjson.dumps({"t": int(time.time() * 1000), "kinds": KIND_ORDER,
                                                      "v": changed}))
                    sent.update({r[0]: r for r in changed})
                await asyncio.sleep(1.0)
        except (WebSocketDisconnect, RuntimeError):
            return

    return app
