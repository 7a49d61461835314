"""`fleetwatch replay VEHICLE --from T --to T --out FILE.(parquet|csv|gpx)`: export a vehicle's track."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer


def write_track(df, vehicle: str, out: Path) -> None:  # noqa: ANN001 - a polars frame of history rows
    """Parquet/CSV: the history columns as stored; GPX 1.1: one track, valid fixes, UTC times."""
    from xml.sax.saxutils import escape

    ext = out.suffix.lower()
    if ext == ".parquet":
        df.write_parquet(out)
    elif ext == ".csv":
        df.write_csv(out)
    elif ext == ".gpx":
        pts = []
        for r in df.filter(df["valid"]).iter_rows(named=True):
            t = r["ts"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            pts.append(f'      <trkpt lat="{r["lat"]:.7f}" lon="{r["lon"]:.7f}"><time>{t}</time>'
                       f'<extensions><speed_kmh>{r["speed_kmh"]:.1f}</speed_kmh></extensions></trkpt>')
        out.write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                       '<gpx version="1.1" creator="FleetWatch" xmlns="http://www.topografix.com/GPX/1/1">\n'
                       f'  <trk><name>{escape(vehicle)}</name>\n    <trkseg>\n' + "\n".join(pts) +
                       '\n    </trkseg>\n  </trk>\n</gpx>\n', encoding="utf-8")
    else:
        raise typer.BadParameter("--out must end in .parquet, .csv or .gpx")


def register(app: typer.Typer) -> None:
    @app.command()
    def replay(
        vehicle: str = typer.Argument(..., help="vehicle id"),
        ts_from: datetime = typer.Option(..., "--from", help="ISO-8601 with offset, e.g. 2026-11-22T06:00+08:00"),
        ts_to: datetime = typer.Option(..., "--to", help="ISO-8601 with offset (exclusive)"),
        out: Path = typer.Option(..., "--out", help="FILE.parquet | FILE.csv | FILE.gpx"),
    ) -> None:
        """Export one vehicle's fixes in [from, to) from the history."""
        from tracker.config import get_settings
        from tracker.edges.db import connect_from_settings
        from tracker.edges.history import track

        if ts_from.tzinfo is None or ts_to.tzinfo is None:
            raise typer.BadParameter("--from/--to need a UTC offset (e.g. +08:00)")
        if out.suffix.lower() not in (".parquet", ".csv", ".gpx"):
            raise typer.BadParameter("--out must end in .parquet, .csv or .gpx")
        with connect_from_settings(get_settings()) as conn:
            df = track(conn, vehicle, ts_from, ts_to)
        write_track(df, vehicle, out)
        typer.echo(f"{df.height} fixes of {vehicle} → {out}")
