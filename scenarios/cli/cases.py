"""`fleetwatch cases …`: list, show and export cases; run the intake/escalation scan; print the figures.

These run with the CLI operator's full (city-wide) view; the web API is where per-user scopes apply.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(name="cases", help="Enforcement cases: list, show, export evidence, scan, statistics.",
                  no_args_is_help=True)


def _ctx():  # type: ignore[no-untyped-def]
    from tracker.config import get_settings
    from tracker.edges.cases_store import cases_settings

    settings = get_settings()
    return settings, cases_settings(settings)


@app.command("list")
def list_(
    stage: str = typer.Option(None),
    open_only: bool = typer.Option(False, "--open", help="only cases not yet closed"),
    district: str = typer.Option(None),
    company: str = typer.Option(None),
    limit: int = typer.Option(50, min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Newest cases first."""
    from tracker.cases.access import Scope
    from tracker.edges import cases_store
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        rows = cases_store.list_cases(conn, Scope(), stage=stage, open_only=open_only, district=district,
                                      company=company, limit=limit)
    for c in rows:
        if as_json:
            typer.echo(json.dumps(c.to_dict(), ensure_ascii=False, default=str))
        else:
            due = c.stage_due_at.strftime("%m-%d %H:%M") if c.stage_due_at else "-"
            typer.echo(f"{c.id:>7}  {c.stage:10} {c.priority:6} {c.kind:20} {c.district or '-':8} "
                       f"{c.team or '-':14} {c.company or '-':10} due {due}")


@app.command()
def show(case_id: int) -> None:
    """One case with its history, as JSON."""
    import msgspec

    from tracker.edges import cases_store
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        case = cases_store.load(conn, case_id)
        if case is None:
            typer.echo(f"fleetwatch: error: no case {case_id}", err=True)
            raise typer.Exit(2)
        history = cases_store.events(conn, case_id)
    out = {"case": msgspec.to_builtins(case), "history": msgspec.to_builtins(history)}
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@app.command("export-evidence")
def export_evidence(
    case_id: int,
    out: Path = typer.Option(None, "--out", "-o", help="zip file (default case-<id>-evidence.zip)"),
    minutes: float = typer.Option(None, help="track ± minutes (default [cases] evidence_minutes)"),
    actor: str = typer.Option(None, help="who exports (recorded in the audit log; default cli:<user>)"),
) -> None:
    """Write the evidence package (case.json, track.geojson, map.png, manifest.json) as one zip."""
    import getpass

    from tracker.edges import cases_store
    from tracker.edges.db import connect_from_settings

    _, cfg = _ctx()
    path = out or Path(f"case-{case_id}-evidence.zip")
    with connect_from_settings() as conn:
        try:
            data = cases_store.export_evidence(conn, case_id, actor or f"cli:{getpass.getuser()}",
                                               minutes=minutes or cfg.evidence_minutes)
        except cases_store.CaseNotFound as exc:
            typer.echo(f"fleetwatch: error: {exc}", err=True)
            raise typer.Exit(2) from None
    path.write_bytes(data)
    typer.echo(f"wrote {path} ({len(data)} bytes)")


@app.command()
def scan() -> None:
    """Open cases for new alerts and escalate overdue ones once (what the web app does periodically)."""
    import psycopg
    import redis

    from tracker.cases.dispatch import Dispatcher
    from tracker.edges import audit, cases_store
    from tracker.edges.db import migrate
    from tracker.edges.services import ensure_services

    settings, cfg = _ctx()
    services = ensure_services(settings)
    try:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            migrate(conn)
            audit.drain_pending(conn)
            opened = cases_store.intake(conn, Dispatcher(cfg.routing), cfg.sla, cfg)
            escalated = cases_store.escalate(conn, cfg.sla)
        r = redis.Redis.from_url(services.redis_url)
        for c in opened:
            cases_store.publish(r, settings.bus.prefix, cases_store.case_message(c), cfg.stream_maxlen)
        for c, e in escalated:
            cases_store.publish(r, settings.bus.prefix, cases_store.case_message(c, esc=e), cfg.stream_maxlen)
        r.close()
    finally:
        services.stop()
    typer.echo(f"opened {len(opened)} case(s), escalated {len(escalated)}")


@app.command()
def stats(
    by: str = typer.Option("all", help="all | team | district | company | kind | category | month"),
    month: str = typer.Option(None, help="YYYY-MM: company scores for that month instead"),
) -> None:
    """Dispatch / closure / on-time / rework rates (or monthly company scores), one JSON row per line."""
    import msgspec

    from tracker.cases.access import Scope
    from tracker.edges import cases_store
    from tracker.edges.db import connect_from_settings

    settings, cfg = _ctx()
    with connect_from_settings() as conn:
        if month:
            rows = [msgspec.to_builtins(s) for s in cases_store.company_scores(
                conn, Scope(), month, cfg.scoring, settings.city.utc_offset_min)]
        else:
            try:
                rows = [r.to_dict() for r in cases_store.case_stats(conn, Scope(), by,
                                                                     utc_offset_min=settings.city.utc_offset_min)]
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
    for row in rows:
        typer.echo(json.dumps(row, ensure_ascii=False))
