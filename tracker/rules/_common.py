"""Small pieces several rules share: load state, 'inside an allowed place' per vehicle kind, trip stops."""

from __future__ import annotations

import numpy as np

from tracker.rules._base import SEV_CONFIRMED, SEV_SUSPECTED, Batch, Events, RuleParams, kinds_bitmask
from tracker.world import KIND_CODE, KINDS


def loaded(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(loaded per row, severity per row): a load seen by the sensor is confirmed, one inferred from
    dwelling at a site (no load sensor) only suspected."""
    ld = batch.extra["loaded"] == 1
    sev = np.where(batch.extra["loaded_src"] == 1, SEV_CONFIRMED, SEV_SUSPECTED).astype(np.int8)
    return ld, sev


def inside_kinds_per_vehicle_kind(batch: Batch, params: RuleParams, field: str) -> np.ndarray:
    """Per row: inside a fence whose kind is in the list `params.<field>` resolved for the row's vehicle kind."""
    key = ("kind_bits", field)
    table = params._cache.get(key)
    if table is None:  # per vehicle kind: bit set of the fence kinds in the list (computed once)
        table = params._cache[key] = np.array(
            [kinds_bitmask(getattr(params.for_kind(kname), field)) for kname in KINDS], np.uint32)
    return (batch.kind_bits() & table[batch.kind]) != 0


def stop_events(rec: dict[str, np.ndarray] | None, world, kinds: tuple[str, ...], outcomes: tuple[int, ...]) -> Events:
    """Failed / open trips with a long loaded stop outside every place and no sensor that contradicts it,
    for vehicles of `kinds`: one suspected episode per trip, placed at the stop."""
    if rec is None or rec["vidx"].size == 0:
        return Events.empty()
    vk = world.vehicle_kind[rec["vidx"]]
    sel = (np.isin(vk, [KIND_CODE[k] for k in kinds]) & np.isin(rec["outcome"], outcomes)
           & (rec["best0"] >= 0) & (rec["sensor"] == 0))
    if not sel.any():
        return Events.empty()
    r = {k: a[sel] for k, a in rec.items()}
    return Events.instant(r["vidx"], r["row"], r["best0"], r["best1"], np.full(r["vidx"].size, SEV_SUSPECTED),
                          np.full(r["vidx"].size, -1), (r["best1"] - r["best0"]) / 1000.0, np.zeros(r["vidx"].size),
                          lon=r["blon"] / 1e7, lat=r["blat"] / 1e7)
