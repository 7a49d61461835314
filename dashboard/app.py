"""The web application: REST API (OpenAPI at /docs), websockets, and the offline pages.

`create_app(settings, redis_url, database_url)` builds it; `fleetwatch demo` and `fleetwatch serve` run it
with uvicorn. Pages: `/` live map, `/alerts` alert centre, `/replay`, `/stats`. Everything a page loads is
served from here — the deck.gl bundle straight from the pydeck wheel, the road network from the city's
GeoJSON — so the dashboard works on an air-gapped city network.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from dashboard import api_alerts, api_core, api_export, api_history, api_reference, ws
from dashboard.alert_hub import AlertHub
from dashboard.assets import STATIC_DIR, deckgl_bundle_dir, swagger_ui_dir
from dashboard.live_hub import LiveHub
from dashboard.state import AppState
from ingest.http import make_router as make_ingest_router
from tracker.config import Settings

log = logging.getLogger(__name__)

PAGES = {"/": "index.html", "/alerts": "alerts.html", "/replay": "replay.html", "/stats": "stats.html"}

TAGS = [
    {"name": "vehicles", "description": "Registry and live state"},
    {"name": "alerts", "description": "Violation episodes; pushed live on the `/ws/alerts` websocket"},
    {"name": "fences", "description": "Reference places, versioned"},
    {"name": "permits", "description": "Permits and delivery orders, versioned"},
    {"name": "trips", "description": "Trips and electronic manifests"},
    {"name": "history", "description": "Replay tracks and density"},
    {"name": "statistics", "description": "Figures a city reports"},
    {"name": "export", "description": "Offline HTML of map views for auditors"},
    {"name": "map", "description": "Base layer"},
    {"name": "system", "description": "Health and page configuration"},
    {"name": "ingest", "description": "Batch ingest of fixes"},
]

WS_DOC = """

**Websockets** (not listed by OpenAPI): `/ws/live` pushes position deltas at most once a second — binary
`fw-live/1` frames of 20-byte records, only changed vehicles, optionally only inside the viewport the
client sends (`{"type":"viewport","bbox":[w,s,e,n]}`); `?format=json` for plain JSON. `/ws/alerts` pushes
`{"type":"alert","event":"opened|updated|closed",…}` as episodes change; `?since=<sid>` resumes. Layouts
are documented in `dashboard/wire.py` and `dashboard/alert_hub.py`.
"""


def _page(filename: str):  # noqa: ANN202 - a FastAPI endpoint without parameters
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / filename, headers={"Cache-Control": "no-cache"})

    return page


def create_app(settings: Settings, redis_url: str, database_url: str) -> FastAPI:
    state = AppState(settings, redis_url, database_url)
    state.live_hub = LiveHub(state, state.options)
    state.alert_hub = AlertHub(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Followers start with the server so alerts arriving before the first page opens are not lost.
        state.live_hub.start()
        state.alert_hub.start()
        try:
            yield
        finally:
            await state.live_hub.stop()
            await state.alert_hub.stop()
            state.close()

    app = FastAPI(title="FleetWatch", version="0.1.0", lifespan=lifespan,
                  openapi_tags=TAGS, docs_url=None, redoc_url=None,
                  description="Real-time monitoring and route compliance · 五车实时监管与路线合规" + WS_DOC)
    app.state.fw = state
    app.include_router(make_ingest_router(lambda: state))
    for module in (api_core, api_alerts, api_reference, api_history, api_export, ws):
        app.include_router(module.make_router(state))
    app.mount("/static/deckgl", StaticFiles(directory=deckgl_bundle_dir()), name="deckgl")
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_dir()), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    for route, filename in PAGES.items():
        app.add_api_route(route, _page(filename), include_in_schema=False, methods=["GET"])

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from the swagger-ui-bundle wheel: FastAPI's default pulls it from a CDN."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title="FleetWatch API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon-32x32.png")

    return app
