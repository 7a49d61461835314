"""`fleetwatch coverage …`: the daily sanitation coverage report, its accuracy against the simulator's ground
truth, and collection stops inferred from the real Jersey City refuse feed.

    fleetwatch coverage report --date 2024-05-14 [--company C] --format csv|xlsx|parquet|png [--out F]
    fleetwatch coverage evaluate [SCENARIO] --seed N [--json]
    fleetwatch coverage jersey [--json]

`report` reads plans, fences and fixes from PostgreSQL (and stores the computed day, `--refresh` recomputes),
or with `--from-sim DIR` the files `fleetwatch simulate --out DIR` wrote. `evaluate` is the coverage side of
the scoreboard: it simulates the scenario and compares the coverage % of every planned segment×window with
the ground truth measured on the simulator's true 1-second trajectories (`truth_coverage`: the same
definition — device on, not faster than the band, inside the window and the corridor — applied to noiseless
positions with an independent, per-sample method: bins entered).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import typer

from scenarios.cli._common import fail as _fail

app = typer.Typer(name="coverage", help="Sanitation coverage: daily report, accuracy, Jersey City stops.",
                  no_args_is_help=True)


@app.command("report")
def report_cmd(
    day: str = typer.Option(..., "--date", help="local date, YYYY-MM-DD"),
    company: str = typer.Option(None, "--company", help="only this company"),
    fmt: str = typer.Option("csv", "--format", help="csv | xlsx | parquet | png"),
    table: str = typer.Option("segments", "--table", help="csv/parquet: segments, points, rounds, vehicles, "
                                                          "companies, road, vehicle, company, district, shift"),
    out: Path = typer.Option(None, "--out", help="file to write (default: standard output)"),
    from_sim: Path = typer.Option(None, "--from-sim", help="a `fleetwatch simulate --out` directory instead of "
                                                            "the database"),
    refresh: bool = typer.Option(False, "--refresh", help="recompute even if the day is stored"),
) -> None:
    """The day's coverage per segment / road / vehicle / company / district / shift, and collection."""
    from tracker.config import get_settings
    from tracker.coverage.render import FORMATS, TABLES, render

    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}")
    if table not in TABLES:
        _fail(f"--table must be one of {', '.join(TABLES)}")
    try:
        d = date.fromisoformat(day)
    except ValueError:
        _fail(f"bad --date {day!r}: expected YYYY-MM-DD")
    settings = get_settings()
    if from_sim is not None:
        rep = _from_sim(from_sim, d, settings)
    else:
        from tracker.edges.coverage_store import report
        from tracker.edges.db import connect_from_settings

        with connect_from_settings(settings) as conn:
            rep = report(conn, d, settings, refresh=refresh, actor="cli")
    rep = rep.filter_company(company)
    data = render(rep, fmt, table)
    if out is None:
        if fmt in ("csv",):
            sys.stdout.write(data.decode("utf-8-sig"))
        else:
            sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
        s = rep.summary()
        typer.echo(f"wrote {out} ({fmt}): coverage {s.get('coverage_pct')}% of {s.get('planned_km')} planned km, "
                   f"{s.get('missed')} missed segment-windows, points visited {s.get('visit_rate_pct')}%", err=True)


def _from_sim(directory: Path, d: date, settings: Any) -> Any:
    import polars as pl

    from geofences.geojson import load_fences
    from tracker.coverage.params import load_coverage_params
    from tracker.coverage.plans import load
    from tracker.coverage.report import Verdicts, compute_day

    need = ("fixes.parquet", "plans.json", "fences.geojson")
    missing = [n for n in need if not (directory / n).is_file()]
    if missing:
        _fail(f"{directory} lacks {', '.join(missing)}")
    manifest = json.loads((directory / "manifest.json").read_text()) if (directory / "manifest.json").is_file() else {}
    off = int(manifest.get("utc_offset_min", settings.city.utc_offset_min))
    return compute_day(pl.read_parquet(directory / "fixes.parquet"), load(directory / "plans.json"),
                       load_fences(directory / "fences.geojson"), d, off, load_coverage_params(settings),
                       Verdicts.from_settings(settings))


# -- accuracy against the simulator's ground truth -----------------------------------------------------------------


def truth_coverage(sim: Any, rows: Any, day_ms: tuple[int, int] | None = None, sample_s: float = 0.2,
                   bin_m: float = 1.0) -> np.ndarray:
    """Ground-truth coverage % of (segment_id, window) rows from the simulator's true trajectories.

    Per plan vehicle and window: true positions every `sample_s` seconds; a sample is working when the
    device is on and the true speed is not above the plan's band; it lies on a segment when within the
    segment's half-width of its centreline, at the nearest point; passes per 1 m bin = times the working
    trajectory *entered* the bin. Coverage % = Σ min(passes, required) / (required × bins)."""
    import shapely

    frame = sim.city.net.frame
    t0 = sim.start_ts_ms
    segs = {s.id: (s, w) for w in sim.plans.work_plans for s in w.segments}
    out = np.full(rows.height, np.nan)
    cache: dict[tuple[str, str], Any] = {}
    for i, r in enumerate(rows.select("segment_id", "window", "window_start_ms", "window_end_ms").iter_rows()):
        sid, win, ws, we = r
        s, w = segs[sid]
        key = (w.vehicle_id, win)
        if key not in cache:
            tl = sim.timelines[w.vehicle_id]
            t = np.arange((ws - t0) / 1000, (we - t0) / 1000, sample_s)
            x, y, v, _ = tl.true_at(t)
            dev = tl.state_at("device_on", t, 0).astype(bool)
            ok = dev & (v * 3.6 <= w.speed_max_kmh)
            cache[key] = (x, y, ok)
        x, y, ok = cache[key]
        c = np.asarray(s.coordinates)
        sx, sy = frame.to_xy(c[:, 0], c[:, 1])
        line = shapely.LineString(np.column_stack([sx, sy]))
        L = line.length
        nb = max(int(np.ceil(L / bin_m)), 1)
        idx = np.flatnonzero(ok)
        pts = shapely.points(x[idx], y[idx])
        near = shapely.distance(line, pts) <= s.half_width_m
        b = np.full(x.size, -1)
        b[idx[near]] = np.minimum((shapely.line_locate_point(line, pts[near]) / bin_m).astype(int), nb - 1)
        enter = (b >= 0) & (np.r_[-2, b[:-1]] != b)
        cnt = np.bincount(b[enter], minlength=nb)[:nb]
        width = np.minimum(bin_m, L - np.arange(nb) * bin_m)
        out[i] = 100.0 * float((np.minimum(cnt, s.passes) * width).sum()) / (s.passes * L)
    return out


def coverage_accuracy(sim: Any, settings: Any = None) -> dict[str, Any]:
    """Measured (from the delivered fixes) vs true coverage % per planned segment×window of a simulation."""
    from datetime import UTC, datetime, timedelta

    from scenarios.evaluate import fences_from_features
    from tracker.config import Settings
    from tracker.coverage.params import load_coverage_params
    from tracker.coverage.report import Verdicts, compute_day

    settings = settings or Settings(city={"utc_offset_min": sim.config.utc_offset_min})  # type: ignore[arg-type]
    off = sim.config.utc_offset_min
    d = (datetime.fromtimestamp(sim.start_ts_ms / 1000, tz=UTC) + timedelta(minutes=off)).date()
    rep = compute_day(sim.fixes, sim.plans, fences_from_features(sim.fences), d, off,
                      load_coverage_params(settings), Verdicts.from_settings(settings))
    segs = rep.segments
    truth = truth_coverage(sim, segs)
    meas = segs["coverage_pct"].to_numpy()
    err = np.abs(meas - truth)
    # a row is verified unless a data gap could hide part of its work (then the product reports its % as a
    # lower bound, `gap_may_hide`; the ones short of coverage are `unverified`)
    verified = ~segs["gap_may_hide"].to_numpy()

    def stats(e: np.ndarray) -> dict[str, Any]:
        if e.size == 0:
            return {"n": 0}
        return {"n": int(e.size), "mean_abs_err_pt": round(float(e.mean()), 3),
                "p95_abs_err_pt": round(float(np.percentile(e, 95)), 3), "max_abs_err_pt": round(float(e.max()), 3),
                "within_2pt_share": round(float((e <= 2.0).mean()), 4)}

    return {"scenario": sim.config.name, "seed": sim.config.seed, "segment_windows": int(segs.height),
            "verified": stats(err[verified]), "unverified_data_gap": int((~verified).sum()),
            "unverified_status": int((segs["status"] == "unverified").sum()),
            "all": stats(err), "measured_coverage_pct": rep.summary().get("coverage_pct"),
            "true_coverage_pct": round(float((truth * (segs["length_m"] * segs["required"]).to_numpy()).sum()
                                             / (segs["length_m"] * segs["required"]).sum()), 2)}


@app.command("evaluate")
def evaluate_cmd(
    scenario: str = typer.Argument("sanitation", help="catalog name or a TOML path"),
    seed: int | None = typer.Option(None, help="random seed"),
    vehicles: int | None = typer.Option(None, help="fleet size"),
    hours: float | None = typer.Option(None, help="simulated duration"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    max_err: float | None = typer.Option(None, "--max-mean-err", help="exit 1 when the verified mean error "
                                                                      "exceeds this many points"),
) -> None:
    """Coverage % per segment×window, measured vs the simulator's ground truth."""
    from scenarios.sim import generate, load_scenario

    cfg = load_scenario(scenario, seed=seed, vehicles=vehicles, hours=hours)
    res = coverage_accuracy(generate(cfg))
    if as_json:
        sys.stdout.write(json.dumps(res, ensure_ascii=False) + "\n")
    else:
        v = res["verified"]
        typer.echo(f"{res['scenario']} seed {res['seed']}: {res['segment_windows']} segment-windows, "
                   f"{res['unverified_data_gap']} unverified (data gaps); verified: mean |err| "
                   f"{v.get('mean_abs_err_pt')} pt, p95 {v.get('p95_abs_err_pt')}, max {v.get('max_abs_err_pt')}, "
                   f"{100 * v.get('within_2pt_share', 0):.1f}% within 2 pt; overall measured "
                   f"{res['measured_coverage_pct']}% vs true {res['true_coverage_pct']}%")
    if max_err is not None and res["verified"].get("mean_abs_err_pt", 0) > max_err:
        raise typer.Exit(1)


@app.command("jersey")
def jersey_cmd(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    data_dir: Path = typer.Option(None, "--data", help="the jersey_city_refuse directory"),
) -> None:
    """Collection stops (dwell clusters) inferred from the real Jersey City refuse feed, per truck."""
    from scenarios.jersey_stops import report

    res = report(data_dir)
    if as_json:
        sys.stdout.write(json.dumps(res, ensure_ascii=False, default=str) + "\n")
        return
    t = res["totals"]
    typer.echo(f"{t['trucks']} trucks, {t['stops']} collection stops at {t['sites']} sites; median dwell "
               f"{t['median_dwell_s']:.0f} s; {t['trucks_with_stops']} trucks stopped at least once")
    for r in res["per_truck"][:20]:
        typer.echo(f"  {r['vehicle_id']:>6}: {r['stops']:3} stops, {r['sites']:3} sites, {r['dwell_min']:6.1f} min "
                   f"dwelling, {r['route_km']:6.1f} km, first {r['first_stop']}, last {r['last_stop']}")
