"""The web application: REST API (OpenAPI at /docs), websockets, and the offline pages.

`create_app(settings, redis_url, database_url)` builds it; `fleetwatch demo` and `fleetwatch serve` run it
with uvicorn. Pages: `/login`, `/` live map, `/alerts` alert centre, `/replay`, `/stats`. Everything a page
loads is served from here — the deck.gl bundle straight from the pydeck wheel, the road network from the
city's GeoJSON — so the dashboard works on an air-gapped city network.

Access (`dashboard.auth`, `dashboard.scoping`; the matrix test `tests/cases/test_access_matrix.py` tries every
route below as every role):

| what | who |
|---|---|
| `/api/health`, `/api/auth/login`, `/api/auth/link` | anyone (a probe; signing in) |
| pages (`/`, `/login`, `/coverage`, …), `/static/…`, `/docs`, `/openapi.json` | anyone: code and documentation, no data — each page sends the user to `/login` without a token |
| `/api/config`, `/api/vocab`, `/api/roads` | any logged-in user (city-wide, no tenant data) |
| vehicles, live, alerts, fences, permits, orders, trips, replay, density, stats, exports, history tracks, coverage | any logged-in user, each answer restricted to the user's scope |
| `/ws/live`, `/ws/alerts`, `/ws/cases` | any logged-in user (token in the first message); only in-scope vehicles / alerts / cases are pushed |
| cases | `dashboard.routes_cases` (roles per action, scope per case) |
| `/api/admin/…` | admin; auditor read-only |
| `/api/ingest/fixes` | machines, by their per-source ingest token (`[http] ingest_tokens`), not user tokens |

The auditor is read-only everywhere (`require`). Routers written elsewhere (`ingest.routes_tracks`,
`dashboard.routes_coverage`) are mounted behind `require()` plus `guard_vehicle_params`, which answers 404
for a foreign `vehicle_id` / `vehicle` and 403 for a foreign `company` / `district` parameter.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from dashboard import api_alerts, api_core, api_export, api_history, api_reference, scoping, ws
from dashboard.alert_hub import AlertHub
from dashboard.assets import STATIC_DIR, deckgl_bundle_dir, swagger_ui_dir
from dashboard.auth import User, require
from dashboard.live_hub import LiveHub
from dashboard.routes_cases import include_routers
from dashboard.state import AppState
from ingest.http import make_router as make_ingest_router
from tracker.config import Settings

log = logging.getLogger(__name__)

PAGES = {"/": "index.html", "/alerts": "alerts.html", "/replay": "replay.html", "/stats": "stats.html",
         "/login": "login.html", "/cases": "cases.html"}

#: Routers other packages provide, mounted when present: (module, what it is). Their pages (paths outside
#: /api/) are public like every page; their API routes sit behind `guard_vehicle_params`.
OPTIONAL_ROUTERS = (("ingest.routes_tracks", "history tracks"), ("dashboard.routes_coverage", "sanitation coverage"))

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

**Login**: `POST /api/auth/login {"username","password"}` → `{"token",…}`; send `Authorization: Bearer <token>`
on every request (machines: an API token). Every endpoint but `/api/health` needs it; answers are limited to
the caller's scope (role, companies, districts).

**Websockets** (not listed by OpenAPI; send `{"token":"…"}` as the first message, or `?token=`): `/ws/live` pushes position deltas at most once a second — binary
`fw-live/1` frames of 20-byte records, only changed vehicles, optionally only inside the viewport the
client sends (`{"type":"viewport","bbox":[w,s,e,n]}`); `?format=json` for plain JSON. `/ws/alerts` pushes
`{"type":"alert","event":"opened|updated|closed",…}` as episodes change; `?since=<sid>` resumes. Layouts
are documented in `dashboard/wire.py` and `dashboard/alert_hub.py`.
"""


def _page(filename: str):  # noqa: ANN202 - a FastAPI endpoint without parameters
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / filename, headers={"Cache-Control": "no-cache"})

    return page


async def guard_vehicle_params(request: Request, user: User = Depends(require())) -> None:
    """For routers written elsewhere: a foreign vehicle named in the path or query is 404, a filter on a
    foreign company or district 403 — the same answers as the dashboard's own endpoints."""
    scope = user.scope
    if scope.unrestricted:
        return
    params = {**request.query_params, **request.path_params}
    multi = request.query_params.getlist
    scoping.check_filters(scope, [c for v in multi("company") for c in v.split(",") if c],
                          [d for v in multi("district") for d in v.split(",") if d])
    ids = [x for key in ("vehicle_id", "vehicle") for v in ([params[key]] if key in request.path_params else
                                                           multi(key)) for x in str(v).split(",") if x]
    if ids:
        state = request.app.state.fw
        await state.run_sync(api_core.check_vehicles, state, scope, ids)


def _optional_router(module_name: str, state: AppState) -> APIRouter | None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the module exists but something it needs does not: say so
            raise
        return None
    maker: Any = getattr(module, "make_router", None)
    if maker is not None:
        return maker(lambda: state)
    return getattr(module, "router", None)


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
    app.include_router(make_ingest_router(lambda: state))  # machines: per-source ingest tokens
    app.include_router(api_core.make_public_router(state))
    include_routers(app)  # login/logout/me, cases, admin (their own role checks)
    logged_in = [Depends(require())]  # + scope inside every endpoint
    for module in (api_core, api_alerts, api_reference, api_history, api_export):
        app.include_router(module.make_router(state), dependencies=logged_in)
    app.include_router(ws.make_router(state))  # websockets authenticate in the handler (ws_user)
    for module_name, what in OPTIONAL_ROUTERS:
        router = _optional_router(module_name, state)
        if router is not None:
            pages, api = APIRouter(), APIRouter()
            for route in router.routes:
                (api if getattr(route, "path", "").startswith("/api/") else pages).routes.append(route)
            app.include_router(pages)  # HTML shells: no data; the page itself signs in (common.js)
            app.include_router(api, dependencies=[Depends(guard_vehicle_params)])
            log.debug("mounted %s (%s)", module_name, what)
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
