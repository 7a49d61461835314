"""`fleetwatch simulate SCENARIO --out DIR`: generate a scenario and write fixes, reference data and truth.

`--live URL` then streams it to a running FleetWatch at `--speed`× real time: `http://HOST:PORT` posts the
fixes to the HTTP ingest; `jt808://HOST:PORT` makes every vehicle a JT/T 808 terminal of the gateway there
(`scenarios.sim.live_jt808`), after registering the scenario's vehicles and reference data in the database
this configuration points at (the gateway's — it refuses unknown terminals).
"""

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
        live: str | None = typer.Option(None, "--live", help="also stream to a running FleetWatch: http://HOST:PORT "
                                        "(HTTP ingest) or jt808://HOST:PORT (its JT/T 808 gateway, one terminal "
                                        "per vehicle)"),
        token: str = typer.Option("demo-token", "--token", help="ingest bearer token for --live"),
        speed: float = typer.Option(1.0, "--speed", help="--live pace: N× real time"),
        profile: str = typer.Option("fleetwatch_sim", "--profile",
                                    help="--live jt808: vendor sensor profile (\\[jt808.profiles.NAME] in the configuration) the "
                                         "terminals encode cover/lift/load/device/drum with"),
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
        if live and live.lower().startswith("jt808:"):
            _live_jt808(r, live, speed, profile)
        elif live:
            from scenarios.sim.live import stream

            typer.echo(f"streaming to {live} at {speed}× real time (Ctrl-C stops)")
            st = stream(r.fixes, live, token, speed=speed)
            typer.echo(f"sent {st.sent} fixes in {st.batches} batches; rejected {st.rejected_fixes} "
                       f"in {st.rejected_batches} batches")


def _live_jt808(r, url: str, speed: float, profile_name: str) -> None:  # r: scenarios.sim.SimResult
    import psycopg

    from scenarios.sim.live_jt808 import (
        SIM_PROFILE_TOML,
        parse_jt808_url,
        register_scenario,
        resolve_profile,
        stream_jt808,
    )
    from tracker.config import get_settings
    from tracker.edges.db import migrate
    from tracker.edges.services import ServiceError, ensure_services

    try:
        target = parse_jt808_url(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--live") from exc
    assert target is not None
    if speed <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--speed")
    settings = get_settings()
    try:
        profile, configured = resolve_profile(settings.jt808, profile_name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--profile") from exc
    if not configured:
        typer.echo(f"note: sensor profile {profile_name!r} is not in the configuration; the gateway reads the "
                   f"sensors only if its fleetwatch.toml has:\n{SIM_PROFILE_TOML}", err=True)
    try:
        services = ensure_services(settings)
    except ServiceError as exc:
        raise typer.BadParameter(str(exc), param_hint="database") from exc
    try:
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            migrate(conn)
        n = register_scenario(services.database_url, r, profile_name)
        if services.embedded_pg is not None and getattr(services.embedded_pg, "started", False):
            typer.echo("note: no running FleetWatch database was found, so one was started for the terminal "
                       "registry; the gateway must use the same database (FLEETWATCH_DATA_DIR / "
                       "FLEETWATCH_DATABASE_URL) or it refuses the terminals", err=True)
        typer.echo(f"registered {n} terminals (profile {profile_name}); streaming to {target[0]}:{target[1]} "
                   f"at {speed}× real time (Ctrl-C stops)")
        st = stream_jt808(r, target[0], target[1], profile, speed=speed)
    finally:
        services.stop()
    lossy = {k: v for k, v in st.lossy.items() if v}
    typer.echo(f"{st.ready}/{st.terminals} terminals online; sent {st.fixes_sent} fixes in {st.frames_sent} frames "
               f"({st.backfill_fixes} back-filled in {st.backfill_frames} 0x0704), {st.heartbeats} heartbeats, "
               f"{st.outages} outages, {st.reconnects} reconnections; acknowledged {st.fixes_ok} fixes, "
               f"{st.frames_not_ok} frames refused, {st.unanswered} unanswered in {st.elapsed_s:.1f} s")
    if lossy:
        typer.echo(f"warning: profile {profile_name} cannot carry some sensor values (read differently by the "
                   f"gateway): {lossy}", err=True)
    if st.refused:
        typer.echo(f"refused terminals: {', '.join(st.refused[:10])}; {'; '.join(st.errors[:3])}", err=True)
    if st.refused or st.frames_not_ok or st.unanswered:
        raise typer.Exit(1)
