"""`fleetwatch evaluate SCENARIO`: the detection scoreboard (see `scenarios.evaluate` for the method)."""

from __future__ import annotations

import json
import sys

import typer


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        scenario: str = typer.Argument(..., help="catalog name (standard, sanitation, night_muck) or a TOML path"),
        seed: int | None = typer.Option(None, help="random seed"),
        vehicles: int | None = typer.Option(None, help="fleet size"),
        hours: float | None = typer.Option(None, help="simulated duration"),
        noise_m: float | None = typer.Option(None, "--noise-m", help="GPS noise σ in metres"),
        dropout: float | None = typer.Option(None, help="back-filled outages per vehicle-hour"),
        violation_rate: float | None = typer.Option(None, "--violation-rate", help="violations per vehicle-hour"),
        as_json: bool = typer.Option(False, "--json", help="print exactly one JSON object"),
        min_f1: float | None = typer.Option(None, "--min-f1", help="exit 1 when any kind's F1 is below this"),
        batch_s: float = typer.Option(10.0, "--batch-s", help="arrival-time span of one engine batch"),
        tolerance_s: float = typer.Option(120.0, "--tolerance-s", help="matching tolerance around intervals"),
    ) -> None:
        """Simulate SCENARIO, run it through the real engine offline, score detections against the truth."""
        from scenarios.evaluate import evaluate
        from scenarios.sim import load_scenario

        try:
            cfg = load_scenario(scenario, seed=seed, vehicles=vehicles, hours=hours, noise_m=noise_m,
                                dropout=dropout, violation_rate=violation_rate)
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc)) from exc
        ev = evaluate(cfg, batch_s=batch_s, tolerance_s=tolerance_s)
        if as_json:
            sys.stdout.write(json.dumps(ev.to_json_dict(), ensure_ascii=False) + "\n")
        else:
            _table(ev)
        if min_f1 is not None and ev.failing(min_f1):
            if not as_json:
                typer.echo(f"F1 below {min_f1}: {', '.join(ev.failing(min_f1))}", err=True)
            raise typer.Exit(1)


def _table(ev: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from scenarios.evaluate import Evaluation

    assert isinstance(ev, Evaluation)
    t = Table(title=f"{ev.scenario} seed {ev.seed}: {ev.vehicles} vehicles, {ev.vehicle_hours:.0f} vehicle-hours")
    for col in ("kind", "support", "detected", "precision", "recall", "F1", "delay p50 s", "delay p95 s"):
        t.add_column(col, justify="left" if col == "kind" else "right")
    for k, s in sorted(ev.per_kind.items()):
        f1 = f"{s.f1:.3f}"
        t.add_row(k, str(s.support), str(s.detected), f"{s.precision:.3f}", f"{s.recall:.3f}",
                  f1 if s.f1 >= 0.95 else f"[red]{f1}[/red]",
                  "-" if s.delay_p50_s is None else f"{s.delay_p50_s:.0f}",
                  "-" if s.delay_p95_s is None else f"{s.delay_p95_s:.0f}")
    c = Console()
    c.print(t)
    c.print(f"false alerts per 1,000 vehicle-hours: {ev.false_alerts_per_1000_vehicle_hours:.2f}    "
            f"borderline acts detected, not scored: {ev.unscored}    "
            f"elapsed {ev.elapsed_s:.1f} s (generate {ev.timings.get('generate_s', 0):.1f} s, "
            f"engine {ev.timings.get('engine_s', 0):.1f} s, {int(ev.timings.get('fixes', 0))} fixes)")
