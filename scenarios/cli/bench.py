"""`fleetwatch bench [NAME…] [--json] [--quick]`: run the benchmarks and print their figures."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        names: list[str] = typer.Argument(None, help="figure or module name prefixes, e.g. geofences tracker"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object {\"figures\": [...]}"),
        quick: bool = typer.Option(False, "--quick", help="smaller inputs (for smoke tests)"),
    ) -> None:
        """Measure speed and memory goals (medians; baselines are naive implementations run alongside)."""
        from scenarios.bench import discover

        benches = discover()
        wanted = names or []
        figures = []
        console = Console(stderr=True)
        for key, fn in benches.items():
            module = key.split(".")[0]
            if wanted and not any(key.startswith(w) or module.startswith(w) or w.startswith(module)
                                  for w in wanted):
                continue
            console.print(f"[dim]running {key}…[/dim]")
            for fig in fn(quick=quick):
                if wanted and not any(fig["name"].startswith(w) or key.startswith(w) or
                                      w.startswith(module) or module.startswith(w) for w in wanted):
                    continue
                figures.append(fig)
        if as_json:
            sys.stdout.write(json.dumps({"figures": figures}) + "\n")
            return
        table = Table(title="FleetWatch benchmark")
        for col in ("figure", "value", "unit", "target", "baseline", "ratio"):
            table.add_column(col, justify="right" if col != "figure" else "left")
        for f in figures:
            table.add_row(f["name"], f"{f['value']:,.1f}", f["unit"],
                          "" if f["target"] is None else f"{f['target']:,.0f}",
                          "" if f["baseline"] is None else f"{f['baseline']:,.1f}",
                          "" if f["ratio"] is None else f"{f['ratio']:.1f}×")
        Console().print(table)
