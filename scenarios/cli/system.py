"""`fleetwatch serve` and `fleetwatch worker`: the long-running processes of a deployment."""

from __future__ import annotations

import signal
import threading

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option(None, help="bind address (default from settings: 127.0.0.1)"),
        port: int = typer.Option(None, help="HTTP port (default 8000)"),
    ) -> None:
        """Run the web application (REST, websockets, dashboard, HTTP ingest) in the foreground."""
        import uvicorn

        from dashboard.app import create_app
        from tracker.config import get_settings
        from scenarios.runtime import Runtime

        settings = get_settings()
        if host:
            settings.http.host = host
        if port:
            settings.http.port = port
        rt = Runtime(settings)
        services = rt.start_services()
        try:
            uvicorn.run(create_app(settings, services.redis_url, services.database_url),
                        host=settings.http.host, port=settings.http.port, log_level="info")
        finally:
            services.stop()

    @app.command()
    def worker(
        shard: list[int] = typer.Option(None, "--shard", help="shard(s) to consume (default: all)"),
        name: str = typer.Option(None, help="consumer name; reuse it after a restart to resume pending entries"),
    ) -> None:
        """Consume fixes from the bus: engine → PostgreSQL history and alerts → live state."""
        from scenarios.runtime import Runtime
        from tracker.config import get_settings
        from tracker.edges.worker import Worker

        settings = get_settings()
        rt = Runtime(settings)
        services = rt.start_services()
        shards = shard or list(range(settings.bus.shards))
        w = Worker(settings, services.redis_url, services.database_url, shards,
                   consumer=name or f"worker-{'-'.join(map(str, shards))}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        typer.echo(f"worker {w.consumer} consuming shards {shards}")
        try:
            w.run(stop)
        finally:
            w.close()
            services.stop()
            typer.echo(f"worker stopped after {w.stats.fixes} fixes")
