"""`fleetwatch fences …`: import, list and export geofences (sites, zones, collection points, routes).

Clerks draw fences on Chinese web maps, so `import` takes the coordinate system they were drawn in
(`--crs gcj02` for AMap/Tencent, `bd09` for Baidu) and stores WGS-84; `export --crs gcj02` converts back
for display on such a map. An import is all-or-nothing: any bad feature is reported (index, id, reason)
and nothing is stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from scenarios.cli._common import CrsOption
from scenarios.cli._common import actor as _actor
from scenarios.cli._common import fail as _fail

app = typer.Typer(name="fences", help="Geofences: import (GeoJSON/KML, any Chinese CRS), list, export.",
                  no_args_is_help=True)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="GeoJSON (.geojson/.json) or KML file"),
    crs: CrsOption = typer.Option(CrsOption.wgs84, "--crs", help="coordinate system the file was drawn in"),
    kind: str = typer.Option(None, "--kind", help="fence kind for features without a 'kind' property"),
    repair: bool = typer.Option(False, "--repair", help="repair invalid (self-intersecting) polygons"),
) -> None:
    """Import fences; changed fences get a new version, identical ones are left as they are."""
    from geofences.geojson import FenceImportError, load_fences
    from geofences.kinds import FenceKind
    from geofences.store import list_fences, save_fences
    from tracker.config import get_settings
    from tracker.edges.db import connect_from_settings

    if kind is not None and kind not in {k.value for k in FenceKind}:
        _fail(f"unknown kind {kind!r} (expected one of {', '.join(k.value for k in FenceKind)})")
    settings = get_settings()
    try:
        fences = load_fences(file, crs=crs.value, default_kind=kind, repair=repair, city_bbox=tuple(settings.city.bbox))
    except FenceImportError as exc:
        _fail(str(exc))
    with connect_from_settings(settings) as conn:
        before = {f.id: f.version for f in list_fences(conn)}
        stored = save_fences(conn, fences, actor=_actor())
    new = sum(1 for f in stored if f.id not in before)
    changed = sum(1 for f in stored if f.id in before and f.version != before[f.id])
    typer.echo(f"imported {len(stored)} fences from {file.name} ({crs.value} → wgs84): "
               f"{new} new, {changed} changed, {len(stored) - new - changed} unchanged")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="one JSON object per fence")) -> None:
    """List the current version of every fence."""
    from geofences.geojson import fence_properties
    from geofences.store import list_fences
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        fences = list_fences(conn)
    for f in fences:
        if as_json:
            typer.echo(json.dumps(fence_properties(f), ensure_ascii=False))
            continue
        size = f"r={f.radius_m:g} m" if f.radius_m else f"±{f.half_width_m:g} m" if f.half_width_m else ""
        windows = ",".join(fence_properties(f).get("windows", [])) or "all day"
        typer.echo(f"{f.id:24} v{f.version:<3} {f.kind.value:18} {f.shape.value:9} {size:10} {windows:24} {f.name}")
    if not as_json:
        typer.echo(f"{len(fences)} fences")


@app.command()
def export(
    crs: CrsOption = typer.Option(CrsOption.wgs84, "--crs", help="coordinate system to write"),
    out: Path = typer.Option(None, "--out", help="file to write (default: standard output)"),
) -> None:
    """Export the current fences as a GeoJSON FeatureCollection."""
    from geofences.geojson import dump_fences
    from geofences.store import list_fences
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        fences = list_fences(conn)
    text = json.dumps(dump_fences(fences, crs=crs.value), ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {len(fences)} fences ({crs.value}) to {out}", err=True)
