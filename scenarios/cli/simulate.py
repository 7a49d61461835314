"""`fleetwatch simulate SCENARIO --out DIR`: generate a scenario and write fixes, reference data and truth."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        scenario: str = typer.Argument(..., help="catalog name (standard, sanitation, night_muck) or a TOML path"),
        out: Path = typer.Option(..., "--out", help="output directory"),
        seed: int | None = typer.Option(None, help="random seed (city, vehicles, faults)"),
        vehicles: int | None = typer.Option(None, help="fleet size"),
        hours: float | None = typer.Option(None, help="simulated duration"),
        noise_m: float | None = typer.Option(None, "--noise-m", help="GPS noise σ in metres"),
        dropout: float | None = typer.Option(None, help="back-filled outages per vehicle-hour"),
        violation_rate: float | None = typer.Option(None, "--violation-rate", help="violations per vehicle-hour"),
        start_ts_ms: int | None = typer.Option(None, "--start-ts-ms", help="start (UTC epoch ms) instead of the file's"),
        live: str | None = typer.Option(None, "--live", help="also stream to this FleetWatch base URL over HTTP"),
        token: str = typer.Option("demo-token", "--token", help="ingest bearer token for --live"),
        speed: float = typer.Option(1.0, "--speed", help="--live pace: N× real time"),
    ) -> None:
        """Simulate a city (real Futian roads) with ground truth; write Parquet/JSON/GeoJSON to DIR."""
        from scenarios.sim import generate, load_scenario
        from scenarios.sim.output import write_outputs

        try:
            cfg = load_scenario(scenario, seed=seed, vehicles=vehicles, hours=hours, noise_m=noise_m,
                                dropout=dropout, violation_rate=violation_rate, start_ts_ms=start_ts_ms)
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc)) from exc
        r = generate(cfg)
        write_outputs(r, out)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(r.truth.group_by("kind").len().iter_rows()))
        typer.echo(f"{cfg.name} seed {cfg.seed}: {len(r.vehicles)} vehicles, {r.fixes.height} fixes, "
                   f"{r.truth.height} violations ({kinds}) in {r.elapsed_s:.1f} s → {out}")
        if live:
            from scenarios.sim.live import stream

            typer.echo(f"streaming to {live} at {speed}× real time (Ctrl-C stops)")
            st = stream(r.fixes, live, token, speed=speed)
            typer.echo(f"sent {st.sent} fixes in {st.batches} batches; rejected {st.rejected_fixes} "
                       f"in {st.rejected_batches} batches")
