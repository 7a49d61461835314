"""Writing a `SimResult` to a directory, in the formats the import commands accept.

    fixes.parquet     FIX_SCHEMA, in delivery order (received_ts_ms)
    vehicles.json     [tracker.reference.Vehicle]
    fences.geojson    FeatureCollection in the geofences format (places, restricted zones, route corridors)
    permits.json      [tracker.reference.Permit]
    orders.json       [tracker.reference.DeliveryOrder]
    plans.json        {"work_plans": [scenarios.city.WorkPlan], "collection_schedules": [CollectionSchedule]}
    truth.parquet     TRUTH_SCHEMA (+ truth.csv); near_misses.parquet likewise
    manifest.json     scenario, seed, period, counts, file list, the full configuration

Byte-identical for the same scenario: parquet written without statistics timestamps, JSON with sorted keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from scenarios.sim.generate import SimResult
from tracker.reference import dump_list

FILES = ("fixes.parquet", "vehicles.json", "fences.geojson", "permits.json", "orders.json", "plans.json",
         "truth.parquet", "truth.csv", "near_misses.parquet", "manifest.json")


def _json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def manifest(r: SimResult) -> dict[str, Any]:
    cfg = r.config
    return {
        "scenario": cfg.name, "description": cfg.description, "seed": cfg.seed, "vehicles": len(r.vehicles),
        "hours": cfg.hours, "start_ts_ms": cfg.start_ms, "end_ts_ms": cfg.end_ms,
        "utc_offset_min": cfg.utc_offset_min, "fixes": r.fixes.height,
        "truth_by_kind": {k: int(n) for k, n in sorted(r.truth.group_by("kind").len().iter_rows())},
        "near_misses_by_kind": {k: int(n) for k, n in sorted(r.near_misses.group_by("kind").len().iter_rows())},
        "fences": len(r.fences), "permits": len(r.permits), "orders": len(r.orders),
        "work_plans": len(r.plans.work_plans), "collection_schedules": len(r.plans.collection_schedules),
        "files": list(FILES),
        "notes": "Simulated on the Futian road network (c) OpenStreetMap contributors, ODbL. Times are UTC epoch "
                 "ms; windows are local time. Ground truth = injected violations measured on the true track.",
        "config": json.loads(cfg.model_dump_json()),
    }


def write_outputs(r: SimResult, out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r.fixes.write_parquet(out / "fixes.parquet", statistics=False)
    dump_list(r.vehicles, out / "vehicles.json")
    _json(r.fence_collection, out / "fences.geojson")
    dump_list(r.permits, out / "permits.json")
    dump_list(r.orders, out / "orders.json")
    (out / "plans.json").write_bytes(msgspec.json.format(msgspec.json.encode(r.plans), indent=1))
    r.truth.write_parquet(out / "truth.parquet", statistics=False)
    r.truth.write_csv(out / "truth.csv")
    r.near_misses.write_parquet(out / "near_misses.parquet", statistics=False)
    _json(manifest(r), out / "manifest.json")
    return out
