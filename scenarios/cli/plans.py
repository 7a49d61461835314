"""`fleetwatch plans …`: sanitation work plans and refuse collection schedules — import, export, list.

The file is the JSON `{"work_plans": [...], "collection_schedules": [...]}` described in
`tracker.coverage.plans` (the simulator's `plans.json` is one). Import is all-or-nothing: every problem
(bad window, empty speed band, unknown collection-point fence, coordinates outside the city) is listed and
nothing is stored. Segments drawn on a Chinese web map are converted with `--crs gcj02|bd09`. Stored plans
are versioned reference documents: re-importing an unchanged plan writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from scenarios.cli._common import CrsOption
from scenarios.cli._common import actor as _actor
from scenarios.cli._common import fail as _fail

app = typer.Typer(name="plans", help="Sanitation work plans and collection schedules: import, export, list.",
                  no_args_is_help=True)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="plans JSON"),
    crs: CrsOption = typer.Option(CrsOption.wgs84, "--crs", help="coordinate system the segments were drawn in"),
    check_fences: bool = typer.Option(True, help="collection points and facilities must be known fences"),
) -> None:
    """Import plans; changed plans get a new version, identical ones are left as they are."""
    from geofences.store import list_fences
    from tracker.config import get_settings
    from tracker.coverage.plans import PlanError, checked, convert_crs, load
    from tracker.edges.coverage_store import save_plans
    from tracker.edges.db import connect_from_settings

    settings = get_settings()
    try:
        plans = convert_crs(load(file), crs.value)
    except PlanError as exc:
        _fail(str(exc))
    with connect_from_settings(settings) as conn:
        fence_ids = {f.id for f in list_fences(conn)} if check_fences else None
        try:
            checked(plans, fence_ids=fence_ids, bbox=tuple(settings.city.bbox))
        except PlanError as exc:
            _fail(str(exc))
        written = save_plans(conn, plans, actor=_actor())
    typer.echo(f"imported {len(plans.work_plans)} work plans and {len(plans.collection_schedules)} collection "
               f"schedules from {file.name} ({crs.value} → wgs84): {written['work_plans']} + "
               f"{written['collection_schedules']} new versions")


@app.command("export")
def export(
    out: Path = typer.Option(None, "--out", help="file to write (default: standard output)"),
    geojson: bool = typer.Option(False, "--geojson", help="the planned segments as a GeoJSON FeatureCollection"),
) -> None:
    """Export the current plans (the import format), or their segments as GeoJSON."""
    from tracker.config import get_settings
    from tracker.coverage.plans import encode, segments_geojson
    from tracker.edges.coverage_store import load_plans
    from tracker.edges.db import connect_from_settings

    with connect_from_settings(get_settings()) as conn:
        plans = load_plans(conn)
    data = (json.dumps(segments_geojson(plans), ensure_ascii=False).encode() if geojson else encode(plans))
    if out is None:
        typer.echo(data.decode())
    else:
        out.write_bytes(data + b"\n")
        typer.echo(f"wrote {len(plans.work_plans)} work plans, {len(plans.collection_schedules)} schedules to {out}",
                   err=True)


@app.command("list")
def list_() -> None:
    """One line per plan and schedule."""
    from tracker.config import get_settings
    from tracker.edges.coverage_store import load_plans
    from tracker.edges.db import connect_from_settings

    with connect_from_settings(get_settings()) as conn:
        plans = load_plans(conn)
    for w in plans.work_plans:
        km = sum(s.length_m * s.passes for s in w.segments) / 1000
        typer.echo(f"{w.id:20} v{w.version:<3} {w.vehicle_id:10} {w.vehicle_kind:10} {len(w.segments):3} segments "
                   f"{km:6.2f} km/window  {','.join(w.windows):24} {w.company}")
    for c in plans.collection_schedules:
        typer.echo(f"{c.id:20} v{c.version:<3} {c.vehicle_id:10} refuse     {len(c.points):3} points → {c.facility:14} "
                   f"{','.join(c.windows):24} {c.company}")
    typer.echo(f"{len(plans.work_plans)} work plans, {len(plans.collection_schedules)} collection schedules")
