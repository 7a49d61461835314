"""`fleetwatch warmup`: compile and cache the engine's kernels (run once after install or upgrade)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def warmup() -> None:
        """Compile the rule kernels now, so the first live batch isn't slowed by the JIT."""
        from scenarios.warmup import warm_up

        typer.echo(f"engine kernels ready in {warm_up():.1f} s")
