from __future__ import annotations

import hashlib

import polars as pl

from scenarios.sim import generate, load_scenario
from scenarios.sim.output import FILES, write_outputs


def _digests(tmp, cfg):
    out = write_outputs(generate(cfg), tmp)
    return {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in FILES}


def test_same_seed_gives_byte_identical_outputs(tmp_path):
    cfg = load_scenario("standard", vehicles=60, seed=11)
    a = _digests(tmp_path / "a", cfg)
    b = _digests(tmp_path / "b", cfg)
    assert a == b


def test_different_seeds_give_different_cities_of_the_same_character():
    a = generate(load_scenario("standard", vehicles=120, seed=1))
    b = generate(load_scenario("standard", vehicles=120, seed=2))
    # different: places, routes and tracks
    pos = lambda s: sorted((p.id, round(p.x), round(p.y)) for p in s.city.places.values())  # noqa: E731
    assert pos(a) != pos(b)
    assert not a.fixes.select("lon", "lat").head(1000).equals(b.fixes.select("lon", "lat").head(1000))
    # same character: the same places by kind, fleet mix, similar volumes and violation mix
    kinds = lambda s: sorted((k, n) for k, n in pl.Series([p.kind for p in s.city.places.values()])  # noqa: E731
                             .value_counts().iter_rows() if k != "collection_point")
    assert kinds(a) == kinds(b)
    assert sorted(v.kind for v in a.vehicles) == sorted(v.kind for v in b.vehicles)
    assert 0.8 < a.fixes.height / b.fixes.height < 1.25
    ka, kb = set(a.truth["kind"]), set(b.truth["kind"])
    assert len(ka & kb) >= 0.6 * max(len(ka), len(kb))
