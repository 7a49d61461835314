"""`fleetwatch demo`: the main job — a live simulated city on the dashboard."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        port: int = typer.Option(8000, help="HTTP port of the dashboard"),
        vehicles: int = typer.Option(60, help="simulated vehicles (all five kinds)"),
        speed: float = typer.Option(1.0, help="simulation speed, × real time"),
        duration: float = typer.Option(None, help="stop after this many seconds (default: until Ctrl-C)"),
        seed: int = typer.Option(7, help="random seed of the simulated city"),
        scenario: str = typer.Option("standard", help="scenario from scenarios/catalog"),
        no_browser: bool = typer.Option(False, "--no-browser", help="don't open a browser"),
        gateway_port: int = typer.Option(8808, help="JT/T 808 gateway TCP port (0: any free port, -1: none)"),
    ) -> None:
        """Start everything (embedded Redis + PostgreSQL, web server, worker, simulator) and serve the live map."""
        from scenarios.demo import DemoOptions, run_demo
        from tracker.config import get_settings

        opts = DemoOptions(port=port, vehicles=vehicles, speed=speed, duration_s=duration, seed=seed,
                           scenario=scenario, open_browser=not no_browser,
                           gateway_port=None if gateway_port < 0 else gateway_port)
        raise typer.Exit(run_demo(get_settings(), opts, echo=typer.echo))
