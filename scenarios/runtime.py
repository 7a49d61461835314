"""Running the system's parts in one process: services, web server, workers, and a live feed.

`fleetwatch demo` composes these; tests use the same pieces so they exercise exactly what a user runs.
Everything started here is stopped by `Runtime.stop()`, including embedded servers this process started.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import polars as pl
import psycopg
import uvicorn

from tracker.config import Settings
from tracker.edges.db import migrate
from tracker.edges.services import ServiceError, Services, ensure_services
from tracker.edges.worker import Worker

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the main thread owns signals
        pass


@dataclass
class Runtime:
    settings: Settings
    services: Services | None = None
    server: _Server | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    gateway: object | None = None  # ingest.gateway.GatewayThread

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.http.host}:{self.settings.http.port}"

    def start_services(self) -> Services:
        self.services = ensure_services(self.settings)
        with psycopg.connect(self.services.database_url, autocommit=True) as conn:
            migrate(conn)
        return self.services

    def start_server(self) -> None:
        from dashboard.app import create_app

        assert self.services is not None
        app = create_app(self.settings, self.services.redis_url, self.services.database_url)
        config = uvicorn.Config(app, host=self.settings.http.host, port=self.settings.http.port,
                                log_level="warning", lifespan="on", ws="websockets-sansio")
        self.server = _Server(config)
        t = threading.Thread(target=self.server.run, name="http", daemon=True)
        t.start()
        self.threads.append(t)
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not t.is_alive() or time.monotonic() > deadline:
                raise ServiceError(f"web server did not start on {self.base_url} (is the port in use?)")
            time.sleep(0.05)

    def start_gateway(self, port: int) -> int:
        """The JT/T 808 TCP gateway in a thread of this process; returns the bound port (0 = any free one)."""
        from ingest.gateway import run_in_thread

        assert self.services is not None
        try:
            self.gateway = run_in_thread(self.settings, self.services, port=port)
        except OSError as exc:
            raise ServiceError(f"JT/T 808 gateway cannot listen on port {port}: {exc.strerror or exc}") from None
        return int(self.gateway.port)  # type: ignore[attr-defined]

    def start_workers(self, count: int = 1) -> None:
        assert self.services is not None
        shards = list(range(self.settings.bus.shards))
        for i in range(count):
            mine = shards[i::count]
            w = Worker(self.settings, self.services.redis_url, self.services.database_url, mine,
                       consumer=f"demo-{i}")
            self.workers.append(w)
            t = threading.Thread(target=w.run, args=(self.stop_event,), name=f"worker-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def start_feed(self, fixes: pl.DataFrame, speed: float, token: str, t0_ms: int,
                   on_done: threading.Event | None = None) -> None:
        """Post fixes to the HTTP ingest as their delivery time comes, at `speed`× real time."""
        t = threading.Thread(target=self._feed, args=(fixes, speed, token, t0_ms, on_done), name="feed",
                             daemon=True)
        t.start()
        self.threads.append(t)

    def _feed(self, fixes: pl.DataFrame, speed: float, token: str, t0_ms: int,
              on_done: threading.Event | None) -> None:
        from scenarios.sim.live import stream

        st = stream(fixes, self.base_url, token, speed=speed, t0_ms=t0_ms, stop=self.stop_event.is_set,
                    sleep=self.stop_event.wait)
        if st.rejected_batches:
            log.error("feed: the ingest rejected %d batch(es) (%d fixes)", st.rejected_batches, st.rejected_fixes)
        if on_done is not None:
            on_done.set()

    def stop(self) -> None:
        self.stop_event.set()
        if self.gateway is not None:
            self.gateway.stop()  # type: ignore[attr-defined]
        if self.server is not None:
            self.server.should_exit = True
        for t in self.threads:
            t.join(timeout=15)
        for w in self.workers:
            w.close()
        if self.services is not None:
            self.services.stop()
