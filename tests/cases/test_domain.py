"""Pure parts besides the machine: dispatch routing, scopes, statistics definitions (against the seed
city's published figures), company scoring, evidence helpers, the settings section."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests.cases.conftest import D1, D2, cases_config
from tracker.cases.access import Scope, scope_of
from tracker.cases.dispatch import Dispatcher, RoutingSettings
from tracker.cases.evidence import build_package, find_geometries, reference_versions, sensor_timeline
from tracker.cases.model import Case
from tracker.cases.scoring import ScoringPolicy, score_companies
from tracker.cases.settings import CasesSettings
from tracker.cases.stats import compute

T0 = datetime(2026, 3, 31, 17, 0, tzinfo=UTC)  # 01:00 on 1 April local


def routing(**over) -> RoutingSettings:
    raw = {"districts": {"d1": {"polygon": D1}, "d2": {"polygon": {"type": "Polygon", "coordinates": [D2]}}},
           "rules": [{"team": "city-patrol"},
                     {"kinds": ["illegal_dumping"], "team": "city-dumping"},
                     {"district": "d1", "team": "d1-joint"},
                     {"district": "d1", "kinds": ["illegal_dumping"], "team": "d1-dumping", "priority": "normal"}]}
    raw.update(over)
    return RoutingSettings.model_validate(raw)


def test_dispatch_by_polygon_then_registered_district_and_most_specific_rule():
    d = Dispatcher(routing())
    a = d.route("illegal_dumping", 114.02, 22.52, vehicle_district="d2")
    assert (a.district, a.team, a.priority, a.category) == ("d1", "d1-dumping", "normal", "construction_waste")
    assert d.route("speeding", 114.02, 22.52).team == "d1-joint"  # district rule beats the city-wide one
    assert d.route("illegal_dumping", 114.08, 22.52).team == "city-dumping"  # d2 has no rule of its own
    assert (d.route("speeding", 114.08, 22.52).team, d.route("speeding", 114.08, 22.52).priority) == ("city-patrol", "normal")
    outside = d.route("unsealed_transport", 113.0, 22.0, vehicle_district="d1")
    assert (outside.district, outside.team, outside.priority) == ("d1", "d1-joint", "urgent")
    nowhere = d.route("missed_segment", None, None)
    assert (nowhere.district, nowhere.grid, nowhere.team, nowhere.category) == (None, None, "city-patrol", "sanitation")
    assert a.grid is not None and len(a.grid) == 15  # H3 res-10 cell
    assert d.route("speeding", 114.05, 22.52).district == "d1"  # on the shared border: first listed wins
    assert Dispatcher(RoutingSettings()).route("speeding", 114.0, 22.5).team is None  # no rules: centre picks


def test_bad_district_polygon_is_refused():
    with pytest.raises(ValueError):
        Dispatcher(routing(districts={"x": {"polygon": [[0, 0], [1, 1], [0, 0]]}}))


def test_scopes():
    s = scope_of("operator", ["A"])
    assert s.allows(company="A") and not s.allows(company="B") and not s.allows(company=None)
    companies, districts = s
    assert (companies, districts) == (frozenset({"A"}), None)
    assert scope_of("operator", []).companies == frozenset()  # no company: nothing, not everything
    e = scope_of("enforcement", districts=["d1"])
    assert e.allows(district="d1", company="Z") and not e.allows(district="d2")
    san = scope_of("sanitation")
    assert san.allows(vehicle_kind="sweeper") and not san.allows(vehicle_kind="muck_truck")
    assert san.allows(vehicle_kind=None, category="sanitation")  # a manual sanitation report
    for role in ("admin", "supervisor", "auditor"):
        assert scope_of(role).unrestricted and scope_of(role).allows(company="anything")
    assert scope_of("supervisor", districts=["d1"]).districts == frozenset({"d1"})  # narrowed when set
    assert Scope().allows()


def _case(i: int, **kw) -> Case:
    base = dict(id=i, source="alert", kind="illegal_dumping", category="construction_waste", priority="normal",
                created_at=T0, created_by="system", stage_since=T0, company="A", district="d1", team="t1")
    base.update(kw)
    return Case(**base)


def _closed(i, on_time=True, **kw):
    return _case(i, stage="closed", resolution="resolved", accepted_at=T0, first_dispatched_at=T0 + timedelta(minutes=10),
                 feedback_at=T0 + timedelta(minutes=70), verified_at=T0 + timedelta(minutes=80),
                 closed_at=T0 + timedelta(minutes=90), due_at=T0 + timedelta(hours=2), on_time=on_time, **kw)


def test_statistics_definitions():
    now = T0 + timedelta(days=1)
    cases = [
        _closed(1),
        _closed(2, on_time=False, verify_fail_count=1, team="t2"),
        _case(3, stage="dispatched", accepted_at=T0, first_dispatched_at=T0, due_at=T0 + timedelta(hours=1)),  # overdue
        _case(4, stage="accepted", accepted_at=T0, due_at=now + timedelta(hours=1)),  # not yet due, not dispatched
        _case(5, stage="closed", resolution="dismissed", closed_at=T0),
        _case(6),  # collected, not accepted yet
    ]
    [r] = compute(cases, "all", now)
    assert (r.collected, r.dismissed, r.accepted, r.dispatched, r.should_close, r.closed, r.closed_on_time) == \
        (6, 1, 4, 3, 3, 2, 1)
    assert (r.dispatch_rate, r.closure_rate, r.on_time_closure_rate) == (0.75, round(2 / 3, 6), round(1 / 3, 6))
    assert (r.with_feedback, r.reworked, r.rework_rate, r.overdue_open) == (2, 1, 0.5, 1)
    assert (r.mean_handling_min, r.mean_closure_min) == (60.0, 90.0)
    by_team = {row.key: row for row in compute(cases, "team", now)}
    assert set(by_team) == {"t1", "t2"} and by_team["t2"].rework_rate == 1.0
    assert [row.key for row in compute(cases, "month", now)] == ["2026-04"]  # local month, not UTC's March
    assert compute([], "district", now) == []
    with pytest.raises(ValueError):
        compute(cases, "colour", now)


def test_seed_city_closure_rate_is_reproduced():
    """亳州 2017: 应结案 606 077, 结案 590 417 → 97.42%. Scaled down 1:1000 with the same definitions."""
    now = T0 + timedelta(days=400)
    closed = [_closed(i) for i in range(590)]
    open_due = [_case(1000 + i, stage="handling", accepted_at=T0, first_dispatched_at=T0, due_at=T0)
                for i in range(606 - 590)]
    not_due = [_case(2000 + i, stage="dispatched", accepted_at=T0, first_dispatched_at=T0, due_at=now + timedelta(days=1))
               for i in range(9)]
    [r] = compute(closed + open_due + not_due, "all", now)
    assert (r.accepted, r.dispatch_rate, r.should_close, r.closed) == (615, 1.0, 606, 590)
    assert round(100 * r.closure_rate, 2) == 97.36  # 590/606 (the seed's 590417/606077 rounds to 97.42)


def test_company_scoring_grades_lists_and_ranks():
    policy = ScoringPolicy.model_validate({"deductions": {"illegal_dumping": 10, "speeding": 2},
                                           "black_list_kinds": {"illegal_dumping": 2}})
    acc = dict(accepted_at=T0)
    cases = (
        [_case(i, company="A", kind="speeding", occurred_at=T0, **acc) for i in range(3)]  # -6 → 94 A
        + [_case(10 + i, company="B", occurred_at=T0, **acc) for i in range(2)]  # 2 dumpings: black list
        + [_case(20, company="C", kind="illegal_dumping", occurred_at=T0)]  # not accepted: no deduction
        + [_case(21, company="C", occurred_at=T0, stage="closed", resolution="dismissed", **acc)]  # dismissed
        + [_case(22, company="A", occurred_at=T0 - timedelta(days=40), **acc)]  # another month
        + [_case(23, company="E", kind="mystery", occurred_at=T0, **acc)]  # default deduction 2
    )
    got = {s.company: s for s in score_companies(cases, "2026-04", policy, companies=["A", "B", "C", "D"])}
    assert (got["A"].score, got["A"].grade, got["A"].list, got["A"].violations) == (94, "A", None, {"speeding": 3})
    assert (got["B"].score, got["B"].grade, got["B"].list) == (80, "B", "black")
    assert (got["C"].score, got["C"].list, got["C"].cases) == (100, "red", 0)
    assert (got["D"].score, got["E"].score) == (100, 98)
    assert [s.company for s in sorted(got.values(), key=lambda s: s.rank)] == ["C", "D", "E", "A", "B"]
    assert policy.grade(59.9) == "D" and policy.grade(60) == "C"


def test_sensor_timeline_and_reference_extraction():
    t = [datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(5)]
    track = [{"ts": t[i], "cover_closed": v, "lifting": None, "valid": True, "load": 3, "device_on": None,
              "drum": None} for i, v in enumerate([True, True, False, None, None])]
    runs = [r for r in sensor_timeline(track) if r["sensor"] == "cover_closed"]
    assert [(r["value"], r["fixes"]) for r in runs] == [(True, 2), (False, 1), (None, 2)]
    assert runs[0]["to"] == t[1].isoformat()
    ev = {"rule": "route_deviation", "thresholds": {"corridor_m": 50}, "permit_version": 4,
          "fences": [{"type": "Feature", "properties": {"id": "F1", "kind": "route"},
                      "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}],
          "track": [{"x": 1}], "place": {"type": "Point", "coordinates": [0, 0]}}
    geoms = find_geometries(ev)
    assert [(g.name, g.role) for g in geoms] == [("F1", "route"), ("evidence.place", "evidence")]
    refs = reference_versions(ev)
    assert refs["permit_version"] == 4 and refs["fences"] == [{"type": "Feature", "properties": {"id": "F1", "kind": "route"}}]
    assert "thresholds" not in refs and "track" not in refs


def test_package_without_track_or_position_still_renders():
    case = _case(9, vehicle_id=None, lon=None, lat=None)
    pkg = build_package(case=case, events=[], alert=None, vehicle=None, track=[], window=(T0, T0))
    files = zipfile.ZipFile(io.BytesIO(pkg.to_zip())).namelist()
    assert sorted(files) == ["case.json", "manifest.json", "map.png", "track.geojson"]
    assert pkg.geojson["features"] == [] and pkg.png[:4] == b"\x89PNG"


def test_settings_section_validates_and_has_defaults():
    cfg = CasesSettings()
    assert cfg.sla.urgent.dispatch == 10 and cfg.sla.normal.dispatch == 30 and cfg.evidence_minutes == 5
    with pytest.raises(ValueError):
        CasesSettings.model_validate({"sla": {"normal": {"dispatch": -1}}})
    with pytest.raises(ValueError):
        CasesSettings.model_validate({"typo_field": 1})
    assert cases_config().routing.rules[0].team == "team-d1"


def test_settings_loader_reads_the_toml_table(tmp_path, monkeypatch):
    from tracker.config import Settings
    from tracker.edges.cases_store import cases_settings

    toml = tmp_path / "fleetwatch.toml"
    toml.write_text('[cases]\nevidence_minutes = 7\n[cases.sla.urgent]\ndispatch = 5\n'
                    '[[cases.routing.rules]]\ndistrict = "d1"\nteam = "t"\n')
    monkeypatch.setenv("FLEETWATCH_CONFIG", str(toml))
    cfg = cases_settings(Settings())
    assert (cfg.evidence_minutes, cfg.sla.urgent.dispatch, cfg.routing.rules[0].team) == (7, 5, "t")
    monkeypatch.setenv("FLEETWATCH_CONFIG", str(tmp_path / "missing.toml"))
    assert cases_settings(Settings()).evidence_minutes == 5


def test_case_roundtrips_through_json():
    c = _closed(3)
    assert msgspec.json.decode(msgspec.json.encode(c), type=Case) == c
