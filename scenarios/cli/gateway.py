"""`fleetwatch gateway [--host H] [--port 8808]`: the JT/T 808 TCP gateway in the foreground.

Options come from the `[jt808]` table of the configuration (documented in `ingest.gateway.options`); the
flags override host and port. Stops cleanly on SIGINT/SIGTERM: pending positions are published and
answered before connections close.
"""

from __future__ import annotations

import logging

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def gateway(
        port: int = typer.Option(None, help="TCP port (default: the jt808 table's port, else 8808)"),
        host: str = typer.Option(None, help="bind address (default 127.0.0.1)"),
    ) -> None:
        """Accept JT/T 808 terminals: register/authenticate them, publish their positions to the bus, and
        acknowledge each frame only once its fixes are in Redis."""
        from ingest.gateway import serve
        from scenarios.runtime import Runtime
        from tracker.config import get_settings

        logging.getLogger("ingest.gateway").setLevel(logging.INFO)
        settings = get_settings()
        rt = Runtime(settings)
        services = rt.start_services()
        typer.echo(f"jt808 gateway starting on {host or settings.jt808.get('host', '127.0.0.1')}:"
                   f"{port if port is not None else settings.jt808.get('port', 8808)}")
        try:
            stats = serve(settings, services.redis_url, services.database_url, host=host, port=port)
        finally:
            services.stop()
        typer.echo(f"gateway stopped: {stats.fixes_published} fixes published, {stats.frames} frames, "
                   f"{stats.faults} bad frames")
