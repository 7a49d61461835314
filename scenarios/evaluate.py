"""The scoreboard: run a simulated scenario through the real engine and score its episodes against the truth.

How it runs (`run_engine`): the fixes are fed in *delivery order* (`received_ts_ms`), in batches covering
`batch_s` seconds of arrival time, exactly as a server receives them (late, back-filled, duplicated and
out-of-order fixes included). After each batch the engine is told that time has passed (`advance` to the end
of the batch), so time-based episodes (signal loss, missed work at a window's end) open when they would live.
At the end, `advance` to the end of the period and `finish()`.

Detection time and delay: an episode is *detected* at the processing point (the end of the arrival window of
the batch, or the `advance` time) at which the engine first emitted it, in any state. Delay = detection time
− true start. It includes the debounce a rule needs by design (≥ 60 s for a deviation, ≥ 30 s for speeding),
the batching resolution (`batch_s`), and for back-filled data the wait for the back-fill to arrive: it is the
delay an enforcement team would experience. For missed work the true "start" is the window's end.

Matching (`match`): a detected episode matches a true one when vehicle and kind are equal and their
intervals overlap once each is widened by `tolerance_s` (default 120 s: terminal clock skew, debounce before
the start is known, an episode closed at its last fix). Pairs are assigned one-to-one, best overlap first, so
an engine that splits one violation into two alerts gets one true positive and one false alert. Retracted
episodes (withdrawn after late fixes) are not counted.

Scores per kind: precision = matched detections / detections; recall = matched truths / truths; F1; and
false alerts per 1,000 vehicle-hours over all kinds (detections matching nothing).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from scenarios.sim import ScenarioConfig, SimResult, generate
from tracker.config import Settings
from tracker.episode import Episode

DEFAULT_TOLERANCE_S = 120.0
DEFAULT_BATCH_S = 10.0


@dataclass
class KindScore:
    precision: float
    recall: float
    f1: float
    support: int
    detected: int
    delay_p50_s: float | None
    delay_p95_s: float | None


@dataclass
class Evaluation:
    scenario: str
    seed: int
    vehicles: int
    vehicle_hours: float
    per_kind: dict[str, KindScore]
    false_alerts_per_1000_vehicle_hours: float
    elapsed_s: float
    detections: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)
    truth: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)
    timings: dict[str, float] = field(default_factory=dict)
    unscored: int = 0  # detections of borderline acts (just under a threshold) left out of the score

    def to_json_dict(self) -> dict[str, Any]:
        """Exactly the public report (the `--json` object)."""
        return {
            "scenario": self.scenario, "seed": self.seed, "vehicles": self.vehicles,
            "vehicle_hours": round(self.vehicle_hours, 3),
            "per_kind": {k: {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
                             "support": s.support, "detected": s.detected,
                             "delay_p50_s": None if s.delay_p50_s is None else round(s.delay_p50_s, 1),
                             "delay_p95_s": None if s.delay_p95_s is None else round(s.delay_p95_s, 1)}
                         for k, s in sorted(self.per_kind.items())},
            "false_alerts_per_1000_vehicle_hours": round(self.false_alerts_per_1000_vehicle_hours, 3),
            "unscored_detections": self.unscored,
            "elapsed_s": round(self.elapsed_s, 2),
        }

    def failing(self, min_f1: float) -> list[str]:
        return sorted(k for k, s in self.per_kind.items() if s.f1 < min_f1)


# -- reference data → the engine's world ------------------------------------------------------------------------


def _windows_minutes(ws: Sequence[str]) -> tuple[tuple[int, int], ...]:
    from tracker.reference import parse_window

    out = []
    for w in ws:
        a, b = parse_window(w)
        out.append((a % 1440, b if b <= 1440 else 1440))
    return tuple(out)


def fences_from_features(features: Sequence[dict[str, Any]]) -> list[Any]:
    """GeoJSON features (geofences format) → `geofences.model.Fence`, via the library's loader when present."""
    try:  # the geometry library's own importer: the same path `fleetwatch fences import` takes
        from geofences.geojson import load_fences

        return list(load_fences(list(features)))
    except ImportError:
        pass
    import shapely.geometry

    from geofences.model import Fence

    out = []
    for f in features:
        p = f["properties"]
        out.append(Fence(
            id=p["id"], name=p.get("name") or p["id"], kind=p["kind"], shape=p["shape"],
            geometry=shapely.geometry.shape(f["geometry"]), radius_m=p.get("radius_m"),
            half_width_m=p.get("half_width_m"), company=p.get("company"), district=p.get("district"),
            valid_from=date.fromisoformat(p["valid_from"]) if p.get("valid_from") else None,
            valid_to=date.fromisoformat(p["valid_to"]) if p.get("valid_to") else None,
            windows=_windows_minutes(p.get("windows") or ()), tags=dict(p.get("tags") or {}),
            version=int(p.get("version", 1))))
    return out


def build_engine(sim: SimResult, settings: Settings | None = None) -> Any:
    from tracker.engine import Engine
    from tracker.world import World

    settings = settings or Settings(city={"utc_offset_min": sim.config.utc_offset_min})  # type: ignore[arg-type]
    kw: dict[str, Any] = dict(fences=fences_from_features(sim.fences), vehicles=sim.vehicles, permits=sim.permits,
                              orders=sim.orders, settings=settings)
    try:
        world = World.build(**kw, plans=sim.plans)
    except TypeError:
        world = World.build(**kw)
    return Engine(world, settings)


# -- running ------------------------------------------------------------------------------------------------------


def run_engine(sim: SimResult, engine: Any, batch_s: float = DEFAULT_BATCH_S
               ) -> tuple[dict[str, Episode], dict[str, int]]:
    """Feed the fixes in delivery order; return the latest version of every episode and when each was first
    emitted (processing time, UTC ms)."""
    fixes = sim.fixes
    latest: dict[str, Episode] = {}
    first_seen: dict[str, int] = {}

    def take(eps: list[Episode], now_ms: int) -> None:
        for e in eps:
            latest[e.id] = e
            first_seen.setdefault(e.id, now_ms)

    recv = fixes.get_column("received_ts_ms").to_numpy()
    step = int(batch_s * 1000)
    t0 = int(recv.min()) if recv.size else sim.start_ts_ms
    slot = (recv - t0) // step
    bounds = np.flatnonzero(np.diff(slot)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [recv.size]])
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        now = t0 + (int(slot[a]) + 1) * step
        take(engine.process(fixes.slice(a, b - a)), now)
        take(engine.advance(now), now)
    end = max(sim.end_ts_ms, t0)
    take(engine.advance(end), end)
    take(engine.finish(), end)
    return latest, first_seen


def detections_frame(latest: dict[str, Episode], first_seen: dict[str, int], end_ms: int) -> pl.DataFrame:
    rows = [{"id": e.id, "kind": e.kind, "vehicle_id": e.vehicle_id, "start_ts_ms": e.start_ts_ms,
             "end_ts_ms": e.end_ts_ms if e.end_ts_ms is not None else end_ms, "place_id": e.place_id,
             "detected_ts_ms": first_seen[e.id], "severity": e.severity, "backfilled": e.backfilled}
            for e in latest.values() if not getattr(e, "retracted", False)]
    schema = {"id": pl.String, "kind": pl.String, "vehicle_id": pl.String, "start_ts_ms": pl.Int64,
              "end_ts_ms": pl.Int64, "place_id": pl.String, "detected_ts_ms": pl.Int64, "severity": pl.String,
              "backfilled": pl.Boolean}
    return pl.DataFrame(rows, schema=schema).sort(["vehicle_id", "kind", "start_ts_ms", "id"])


# -- matching -------------------------------------------------------------------------------------------------------


def match(truth: pl.DataFrame, det: pl.DataFrame, tolerance_s: float = DEFAULT_TOLERANCE_S) -> pl.DataFrame:
    """One-to-one pairs (truth_idx, det_idx) of same vehicle and kind with overlapping (widened) intervals."""
    tol = int(tolerance_s * 1000)
    t = truth.with_row_index("ti").select("ti", "kind", "vehicle_id", "start_ts_ms", "end_ts_ms", "place_id")
    d = det.with_row_index("di").select("di", "kind", "vehicle_id", pl.col("start_ts_ms").alias("ds"),
                                         pl.col("end_ts_ms").alias("de"), pl.col("place_id").alias("dp"))
    pairs = t.join(d, on=["vehicle_id", "kind"], how="inner").filter(
        (pl.col("ds") - tol <= pl.col("end_ts_ms")) & (pl.col("de") + tol >= pl.col("start_ts_ms")))
    pairs = pairs.with_columns(
        (pl.min_horizontal("end_ts_ms", "de") - pl.max_horizontal("start_ts_ms", "ds")).alias("overlap"),
        (pl.col("place_id").is_not_null() & (pl.col("place_id") == pl.col("dp"))).fill_null(False).alias("same_place"),
        (pl.col("ds") - pl.col("start_ts_ms")).abs().alias("gap"),
    ).sort(["same_place", "overlap", "gap", "ti", "di"], descending=[True, True, False, False, False])
    used_t: set[int] = set()
    used_d: set[int] = set()
    out: list[tuple[int, int]] = []
    for ti, di in pairs.select("ti", "di").iter_rows():
        if ti in used_t or di in used_d:
            continue
        used_t.add(ti)
        used_d.add(di)
        out.append((ti, di))
    return pl.DataFrame(out, schema={"ti": pl.UInt32, "di": pl.UInt32}, orient="row")


def drop_unscored(det: pl.DataFrame, pairs: pl.DataFrame, unscored: pl.DataFrame | None,
                  tolerance_s: float = DEFAULT_TOLERANCE_S) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Leave out of the score the detections no truth row claimed that match a borderline act (one whose true
    measure lies just under the rule's threshold, within the engine's measuring error): flagging it is not a
    false alert, missing it not a miss. → (detections, pairs re-indexed, how many were left out)."""
    if unscored is None or unscored.height == 0 or det.height == 0:
        return det, pairs, 0
    claimed = np.zeros(det.height, bool)
    claimed[pairs.get_column("di").to_numpy().astype(np.int64)] = True
    free = det.with_row_index("di").filter(pl.Series(~claimed))
    hit = match(unscored, free.drop("di"), tolerance_s)
    if hit.height == 0:
        return det, pairs, 0
    drop = np.zeros(det.height, bool)
    drop[free.get_column("di").to_numpy()[hit.get_column("di").to_numpy().astype(np.int64)]] = True
    new_index = np.cumsum(~drop) - 1
    kept = det.filter(pl.Series(~drop))
    pairs = pairs.with_columns(pl.Series("di", new_index[pairs.get_column("di").to_numpy().astype(np.int64)],
                                         dtype=pl.UInt32))
    return kept, pairs, int(drop.sum())


def score(truth: pl.DataFrame, det: pl.DataFrame, pairs: pl.DataFrame, vehicle_hours: float
          ) -> tuple[dict[str, KindScore], float]:
    kinds = sorted(set(truth.get_column("kind").to_list()) | set(det.get_column("kind").to_list()))
    t_kind = truth.get_column("kind").to_numpy()
    d_kind = det.get_column("kind").to_numpy()
    ti = pairs.get_column("ti").to_numpy().astype(np.int64)
    di = pairs.get_column("di").to_numpy().astype(np.int64)
    delays = (det.get_column("detected_ts_ms").to_numpy()[di] - truth.get_column("start_ts_ms").to_numpy()[ti]) / 1000
    out: dict[str, KindScore] = {}
    for k in kinds:
        support = int((t_kind == k).sum())
        detected = int((d_kind == k).sum())
        m = t_kind[ti] == k if ti.size else np.zeros(0, bool)
        tp = int(m.sum())
        p = tp / detected if detected else 1.0
        r = tp / support if support else 1.0
        f1 = 2 * p * r / (p + r) if (p + r) > 0 else 0.0
        dl = delays[m] if ti.size else np.zeros(0)
        out[k] = KindScore(precision=p, recall=r, f1=f1, support=support, detected=detected,
                           delay_p50_s=float(np.percentile(dl, 50)) if dl.size else None,
                           delay_p95_s=float(np.percentile(dl, 95)) if dl.size else None)
    false_alerts = det.height - pairs.height
    return out, (1000.0 * false_alerts / vehicle_hours if vehicle_hours > 0 else 0.0)


def evaluate(cfg: ScenarioConfig, settings: Settings | None = None, *, batch_s: float = DEFAULT_BATCH_S,
             tolerance_s: float = DEFAULT_TOLERANCE_S) -> Evaluation:
    """Generate the scenario, run it through the real engine offline as fast as it goes, score it."""
    t_all = time.perf_counter()
    sim = generate(cfg)
    t_gen = time.perf_counter() - t_all
    t1 = time.perf_counter()
    engine = build_engine(sim, settings)
    latest, first_seen = run_engine(sim, engine, batch_s)
    t_eng = time.perf_counter() - t1
    det = detections_frame(latest, first_seen, sim.end_ts_ms)
    pairs = match(sim.truth, det, tolerance_s)
    det, pairs, n_unscored = drop_unscored(det, pairs, sim.unscored, tolerance_s)
    vh = len(sim.vehicles) * cfg.hours
    per_kind, fa = score(sim.truth, det, pairs, vh)
    return Evaluation(scenario=cfg.name, seed=cfg.seed, vehicles=len(sim.vehicles), vehicle_hours=vh,
                      per_kind=per_kind, false_alerts_per_1000_vehicle_hours=fa,
                      elapsed_s=time.perf_counter() - t_all, detections=det, truth=sim.truth, unscored=n_unscored,
                      timings={"generate_s": t_gen, "engine_s": t_eng, "fixes": float(sim.fixes.height)})
