"""`fleetwatch history retention --days N`: drop raw positions older than N days (whole daily partitions),
logged in the audit chain."""

from __future__ import annotations

import json

import typer

app = typer.Typer(name="history", help="Position history in PostgreSQL (retention).", no_args_is_help=True)


@app.command()
def retention(
    days: int = typer.Option(..., "--days", min=1, help="keep this many whole UTC days before today"),
    actor: str = typer.Option("retention", help="who runs it (recorded in the audit log)"),
) -> None:
    """Drop every daily partition of `fixes` that ends before midnight UTC N days ago. This is the only
    deletion the append-only guard allows; each run is appended to the audit chain."""
    from tracker.config import get_settings
    from tracker.edges.db import connect_from_settings
    from tracker.edges.history import apply_retention

    with connect_from_settings(get_settings()) as conn:
        summary = apply_retention(conn, days, actor=actor)
    typer.echo(json.dumps(summary, ensure_ascii=False))
