"""`fleetwatch audit …`: verify the hash chain, show the head and the log, apply the fixes retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer

app = typer.Typer(name="audit", help="Tamper-evident audit log: verify, head, log, retention.",
                  no_args_is_help=True)


def _anchor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    try:
        seq, h = text.split(":", 1)
        return int(seq), h.strip()
    except ValueError:
        raise typer.BadParameter("expected SEQ:HASH (as printed by `fleetwatch audit head`)") from None


@app.command()
def verify(
    expect: str = typer.Option(None, help="SEQ:HASH published earlier (`audit head`); checked too"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable report"),
) -> None:
    """Recompute the whole chain; name every altered or deleted row. Exit 1 when anything is wrong."""
    from tracker.edges import audit
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        report = audit.verify(conn, _anchor(expect))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for p in report.problems:
            typer.echo(f"TAMPERED row {p.seq} [{p.kind}]: {p.message}")
        seq, h = report.head or (0, "")
        status = "OK" if report.ok else f"FAILED ({len(report.problems)} problem(s))"
        typer.echo(f"audit log {status}: {report.rows} rows checked, head {seq}:{h}")
        if report.pending:
            typer.echo(f"{report.pending} captured change(s) not chained yet (`fleetwatch audit drain`)")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def drain() -> None:
    """Chain the fence/permit/plan changes the database captured (the web app does this periodically)."""
    from tracker.edges import audit
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        n = audit.drain_pending(conn)
    typer.echo(f"chained {n} captured change(s)")


@app.command()
def head() -> None:
    """Print SEQ:HASH of the newest row — publish it outside the database to anchor the chain."""
    from tracker.edges import audit
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        seq, h = audit.head(conn)
    typer.echo(f"{seq}:{h}")


@app.command("log")
def show_log(
    object_type: str = typer.Option(None, help="case, user, fence, permit, plan, fixes …"),
    object_id: str = typer.Option(None),
    actor: str = typer.Option(None),
    limit: int = typer.Option(50, min=1, max=10_000),
) -> None:
    """The newest audit rows, one JSON object per line."""
    from tracker.edges import audit
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        rows = audit.entries(conn, object_type=object_type, object_id=object_id, actor=actor, limit=limit)
    for e in rows:
        typer.echo(json.dumps(e.to_dict(), ensure_ascii=False))


@app.command()
def retention(
    days: int = typer.Option(..., min=1, help="keep raw positions of the last DAYS days"),
    actor: str = typer.Option("retention", help="who applies the policy (recorded in the log)"),
    yes: bool = typer.Option(False, "--yes", help="really delete"),
) -> None:
    """Delete raw positions older than DAYS days — the only sanctioned deletion of fixes, itself logged."""
    from tracker.edges import audit
    from tracker.edges.db import connect_from_settings

    before = datetime.now(UTC) - timedelta(days=days)
    if not yes:
        raise typer.BadParameter(f"this deletes every fix before {before:%Y-%m-%d %H:%M} UTC; add --yes")
    with connect_from_settings() as conn:
        n = audit.purge_fixes(conn, actor, before)
    typer.echo(f"removed {n} fixes before {before.isoformat()}")
