"""Websocket endpoints: `/ws/live` (protocol in `dashboard.wire`) and `/ws/alerts` (`dashboard.alert_hub`).

Both need a login: the token goes in the first message (`{"token": "…"}`, what the pages do: a token in a
URL ends up in proxy logs) or in `?token=`; without a valid one the socket closes with 4401
(`dashboard.auth.ws_user`). A connection receives only what the user's scope allows — the vehicles of its
companies / districts / kinds on `/ws/live` (and fleet totals over those), their alerts on `/ws/alerts`;
the client's own filters and viewport can only narrow that.

Each connection runs two tasks: one sends what its hub prepared, one reads what the client says (viewport,
filters). Either ending closes both, and the connection leaves its hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from dashboard import wire
from dashboard.alert_hub import AlertSubscription, encode, sid_after, sid_tuple
from dashboard.auth import ws_user
from dashboard.state import AppState

log = logging.getLogger(__name__)


async def _both(send: Callable[[], Awaitable[None]], receive: Callable[[], Awaitable[None]]) -> None:
    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await t


def parse_bbox(raw: object) -> tuple[float, float, float, float] | None:
    if raw is None:
        return None
    if not isinstance(raw, list | tuple) or len(raw) != 4:
        raise ValueError("bbox must be [west, south, east, north] or null")
    w, s, e, n = (float(x) for x in raw)
    if not (w <= e and s <= n):
        raise ValueError("bbox must have west <= east and south <= north")
    return (w, s, e, n)


#: How long a socket may stay open before it sends its token (a slow page on a loaded PC still makes it).
FIRST_MESSAGE_S = 15.0


def make_router(state: AppState) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws/live")
    async def ws_live(ws: WebSocket) -> None:
        """Live positions: binary `fw-live/1` frames (see dashboard.wire), or `?format=json`."""
        fmt = "json" if ws.query_params.get("format") == "json" else "bin"
        user = await ws_user(ws, hello=False, first_message_timeout_s=FIRST_MESSAGE_S)
        if user is None:
            return
        conn = state.live_hub.register(fmt, user.scope)
        if ws.query_params.get("bbox"):
            conn.sub.bbox = parse_bbox([float(x) for x in ws.query_params["bbox"].split(",")])

        async def send() -> None:
            if fmt == "bin":
                await ws.send_text(wire.hello(user=user.username, role=user.role.value).decode())
            while True:
                messages = await conn.outbox.get()
                for m in messages:
                    if isinstance(m, bytes):
                        await ws.send_bytes(m)
                    else:
                        await ws.send_text(m)
                conn.ready = True

        async def receive() -> None:
            while True:
                text = await ws.receive_text()
                try:
                    msg = orjson.loads(text)
                    if msg.get("type") == "viewport":
                        conn.sub.bbox = parse_bbox(msg.get("bbox"))
                except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
                    await ws.send_text(orjson.dumps({"type": "error", "detail": str(exc)}).decode())

        try:
            await _both(send, receive)
        finally:
            state.live_hub.unregister(conn)

    @router.websocket("/ws/alerts")
    async def ws_alerts(ws: WebSocket) -> None:
        """Alerts as they open/update/close. Filters: query (`kinds`, `vehicle_kinds`, `companies`,
        `districts`, comma-separated) or a `{"type":"filter",…}` message; resume with `?since=<sid>`."""
        user = await ws_user(ws, hello=False, first_message_timeout_s=FIRST_MESSAGE_S)
        if user is None:
            return
        hub = state.alert_hub
        conn = hub.register(AlertSubscription.parse(dict(ws.query_params)), user.scope)
        since = ws.query_params.get("since")

        async def send() -> None:
            if since:
                for msg in await state.run_sync(hub.read_since, since):
                    if conn.wants(msg["alert"]):
                        await ws.send_text(encode(msg))
                    conn.last_sid = max(conn.last_sid, sid_tuple(msg["sid"]))
            await ws.send_text(orjson.dumps({"type": "ready"}).decode())
            while True:
                msg = await conn.queue.get()
                if not sid_after(msg["sid"], conn.last_sid):
                    continue  # already sent while catching up
                conn.last_sid = sid_tuple(msg["sid"])
                await ws.send_text(encode(msg))

        async def receive() -> None:
            while True:
                msg = orjson.loads(await ws.receive_text())
                if isinstance(msg, dict) and msg.get("type") == "filter":
                    conn.sub = AlertSubscription.parse(msg)

        try:
            await _both(send, receive)
        finally:
            hub.unregister(conn)

    return router
