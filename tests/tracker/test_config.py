"""Configuration: every rule has a documented defaults table that its Params model accepts, the defaults
file agrees with the models, and a city's override wins (also per vehicle kind)."""

import pytest

from tracker.config import Settings
from tracker.engine import EngineParams
from tracker.hygiene import HygieneParams
from tracker.rules import defaults, discover, load_params
from tracker.trips import TripParams

EXTRA = {"engine": EngineParams, "hygiene": HygieneParams, "trips": TripParams}


def test_every_rule_has_a_defaults_table():
    tables = defaults()["rules"]
    assert {m.NAME for m in discover()} | set(EXTRA) <= set(tables)


@pytest.mark.parametrize("name", sorted({m.NAME for m in discover()} | set(EXTRA)))
def test_defaults_validate_and_match_the_model(name):
    model = EXTRA.get(name) or next(m.Params for m in discover() if m.NAME == name)
    table = defaults()["rules"][name]
    parsed = model.model_validate(table)  # extra keys are refused
    bare = model()
    for key, value in table.items():
        if key != "by_kind":
            assert getattr(parsed, key) == getattr(bare, key), f"{name}.{key}: file and model disagree"


def test_city_override_and_per_kind_override():
    from tracker.rules.speeding import Params

    s = Settings(rules={"speeding": {"min_duration_s": 45, "by_kind": {"muck_truck": {"limit_kmh": 35}}}})
    p = load_params("speeding", Params, s)
    assert p.min_duration_s == 45
    assert p.for_kind("muck_truck").limit_kmh == 35
    assert p.for_kind("concrete_mixer").limit_kmh == 40  # the shipped per-kind default survives


def test_disabling_a_rule_removes_it_from_the_engine():
    from tests.tracker import synth
    from tracker.engine import Engine

    s = Settings(rules={"speeding": {"enabled": False}})
    assert "speeding" not in {r.name for r in Engine(synth.world(s), s).rules}


def test_a_city_file_is_read_from_the_config_argument_the_environment_or_the_working_directory(
        tmp_path, monkeypatch):
    """`Settings(config=path)` (the CLI's --config), FLEETWATCH_CONFIG and ./fleetwatch.toml each load the city's
    TOML — every section, not only the typed ones; the argument wins over the environment."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text("[city]\nutc_offset_min = 420\n[cases]\nmarker = 'a'\n")
    b.write_text("[city]\nutc_offset_min = 540\n[cases]\nmarker = 'b'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLEETWATCH_CONFIG", raising=False)
    assert Settings().cases == {} and Settings().city.utc_offset_min == 480
    s = Settings(config=a)
    assert s.city.utc_offset_min == 420 and s.cases == {"marker": "a"}
    monkeypatch.setenv("FLEETWATCH_CONFIG", str(b))
    assert Settings().cases == {"marker": "b"} and Settings(config=a).cases == {"marker": "a"}
    monkeypatch.delenv("FLEETWATCH_CONFIG")
    (tmp_path / "fleetwatch.toml").write_text(b.read_text())
    assert Settings().city.utc_offset_min == 540
