"""`fleetwatch jersey`: what the real Jersey City refuse-truck feed (shared/data) tells us."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def jersey(
        data_dir: Path = typer.Option(None, help="folder with all_dedup.csv and snapshots_raw.csv.gz "
                                                  "(default ../shared/data/jersey_city_refuse)"),
        replay_engine: bool = typer.Option(True, "--replay/--no-replay", help="also run it through the engine"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    ) -> None:
        """Trucks, valid/stale/duplicate fixes, stops, signal gaps — and what the engine flags on real data."""
        from scenarios import jersey as jc

        if data_dir is not None and not (data_dir / "all_dedup.csv").is_file():
            raise typer.BadParameter(f"{data_dir} has no all_dedup.csv")
        out = jc.report(data_dir)
        if replay_engine:
            d = data_dir or jc.DATA_DIR
            fixes = jc.read_snapshots(d / "snapshots_raw.csv.gz").fixes
            out["engine_episodes"] = jc.replay(fixes)
        if as_json:
            typer.echo(json.dumps(out))
            return
        from rich.console import Console
        from rich.pretty import Pretty

        Console().print(Pretty(out))
