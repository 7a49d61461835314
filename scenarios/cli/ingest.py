"""`fleetwatch ingest FILE [--format csv|parquet|ndjson|gpx] [--vehicle ID]`: publish a file of fixes to the
bus in blocks, with a progress bar. Column mapping: see `ingest.files`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV, Parquet, NDJSON or GPX file"),
        format: str = typer.Option(None, "--format", help="csv|parquet|ndjson|gpx (default: from the extension)"),
        vehicle: str = typer.Option(None, "--vehicle", help="vehicle id for every row (GPX: default track name)"),
    ) -> None:
        """Validate every row (bad rows are listed and nothing is published), then publish to the bus."""
        import redis
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from ingest.files import read_fix_file
        from ingest.http import BatchError
        from scenarios.runtime import Runtime
        from tracker.config import get_settings
        from tracker.edges.bus import StreamNames, publish_fixes

        settings = get_settings()
        try:
            blocks = list(read_fix_file(file, format, vehicle))
        except BatchError as exc:
            for p in exc.problems[:20]:
                typer.echo(f"row {p.get('row')}: {p.get('error')}", err=True)
            raise typer.BadParameter(f"{len(exc.problems)} bad row(s); nothing was published") from None
        except (ValueError, OSError) as exc:
            raise typer.BadParameter(str(exc)) from None
        total = sum(b.height for b in blocks)
        services = Runtime(settings).start_services()
        try:
            r = redis.Redis.from_url(services.redis_url)
            names = StreamNames(settings.bus.prefix, settings.bus.shards)
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn()) as bar:
                task = bar.add_task(f"publishing {file.name}", total=total)
                for block in blocks:
                    publish_fixes(r, names, block, settings.bus.block_size)
                    bar.advance(task, block.height)
            r.close()
        finally:
            services.stop()
        typer.echo(f"published {total} fixes from {file.name}")
