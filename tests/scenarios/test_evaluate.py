from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from scenarios.evaluate import detections_frame, drop_unscored, match, score
from tracker.episode import Episode

T = {"kind": pl.String, "vehicle_id": pl.String, "start_ts_ms": pl.Int64, "end_ts_ms": pl.Int64,
     "place_id": pl.String}


def _truth(rows):
    return pl.DataFrame(rows, schema=T, orient="row")


def _det(eps, seen):
    latest = {e.id: e for e in eps}
    return detections_frame(latest, seen, 10_000_000)


def test_matching_is_one_to_one_same_vehicle_and_kind_with_tolerance():
    truth = _truth([("speeding", "A", 100_000, 200_000, None), ("speeding", "A", 1_000_000, 1_100_000, None),
                    ("route_deviation", "B", 0, 500_000, "r1")])
    eps = [Episode.new("speeding", "A", 150_000, end_ts_ms=260_000),
           Episode.new("speeding", "A", 170_000, end_ts_ms=180_000),  # a split alert: second one is false
           Episode.new("speeding", "B", 100_000, end_ts_ms=200_000),  # wrong vehicle
           Episode.new("route_deviation", "B", 550_000, end_ts_ms=600_000)]  # within 120 s tolerance
    seen = {e.id: e.start_ts_ms + 30_000 for e in eps}
    det = _det(eps, seen)
    pairs = match(truth, det, tolerance_s=120)
    assert pairs.height == 2
    per, fa = score(truth, det, pairs, vehicle_hours=10.0)
    assert per["speeding"].support == 2 and per["speeding"].detected == 3
    assert per["speeding"].recall == 0.5 and abs(per["speeding"].precision - 1 / 3) < 1e-9
    assert per["route_deviation"].f1 == 1.0
    assert per["route_deviation"].delay_p50_s == 580.0  # detected at 580 s, true start 0
    assert fa == 1000.0 * 2 / 10.0


def test_borderline_acts_are_left_out_of_the_score_both_ways():
    """A detection of an act just under the threshold (unscored) is not a false alert; one a truth row claims
    stays a hit even if it also overlaps a borderline act; unmatched borderline acts are not misses."""
    truth = _truth([("out_of_window", "A", 100_000, 300_000, "P1")])
    unscored = _truth([("out_of_window", "B", 100_000, 200_000, "P2"), ("out_of_window", "A", 250_000, 350_000, "P1"),
                       ("out_of_window", "C", 0, 100_000, "P3")])
    eps = [Episode.new("out_of_window", "A", 110_000, end_ts_ms=290_000),
           Episode.new("out_of_window", "B", 90_000, end_ts_ms=210_000),
           Episode.new("speeding", "B", 90_000, end_ts_ms=210_000)]  # another kind: still false
    det = _det(eps, {e.id: e.start_ts_ms for e in eps})
    pairs = match(truth, det)
    kept, pairs2, n = drop_unscored(det, pairs, unscored)
    assert n == 1 and kept.height == 2
    assert set(kept["vehicle_id"]) == {"A", "B"} and set(kept["kind"]) == {"out_of_window", "speeding"}
    per, fa = score(truth, kept, pairs2, vehicle_hours=10.0)
    assert per["out_of_window"].f1 == 1.0 and per["out_of_window"].support == 1
    assert fa == 1000.0 * 1 / 10.0  # only the speeding detection
    assert drop_unscored(det, pairs, None)[2] == 0


def test_tolerance_bounds_matching():
    truth = _truth([("speeding", "A", 100_000, 200_000, None)])
    eps = [Episode.new("speeding", "A", 400_000, end_ts_ms=450_000)]
    det = _det(eps, {eps[0].id: 400_000})
    assert match(truth, det, tolerance_s=120).height == 0
    assert match(truth, det, tolerance_s=250).height == 1


def test_retracted_episodes_do_not_count():
    e = Episode.new("speeding", "A", 100_000, end_ts_ms=200_000, retracted=True)
    assert _det([e], {e.id: 0}).height == 0


def test_evaluate_cli_prints_one_json_object():
    from scenarios.cli import app

    r = CliRunner().invoke(app, ["evaluate", "standard", "--vehicles", "40", "--hours", "0.5", "--seed", "3",
                                 "--json"])
    assert r.exit_code in (0, 1), r.output
    obj = json.loads(r.stdout)
    assert set(obj) == {"scenario", "seed", "vehicles", "vehicle_hours", "per_kind",
                        "false_alerts_per_1000_vehicle_hours", "unscored_detections", "elapsed_s"}
    assert obj["seed"] == 3 and obj["vehicles"] == 40
    for k, s in obj["per_kind"].items():
        assert set(s) == {"precision", "recall", "f1", "support", "detected", "delay_p50_s", "delay_p95_s"}
        assert s["support"] > 0 or s["detected"] > 0, k


def test_simulate_cli_writes_every_file(tmp_path):
    from scenarios.cli import app
    from scenarios.sim.output import FILES

    r = CliRunner().invoke(app, ["simulate", "sanitation", "--out", str(tmp_path), "--vehicles", "30",
                                 "--hours", "1"])
    assert r.exit_code == 0, r.output
    for f in FILES:
        assert (tmp_path / f).stat().st_size > 0, f
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["vehicles"] == 30 and man["scenario"] == "sanitation"


def test_live_stream_posts_batches_in_delivery_order(monkeypatch):
    """The live streamer paces by delivery time and posts NDJSON batches (a fake transport records them)."""
    import httpx

    from scenarios.sim import generate, load_scenario
    from scenarios.sim.live import stream

    sim = generate(load_scenario("standard", vehicles=10, hours=0.1, seed=2))
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        rows = [json.loads(line) for line in request.content.decode().splitlines() if line]
        seen.extend(r["ts_ms"] for r in rows)
        assert request.headers["Authorization"] == "Bearer t"
        return httpx.Response(200, json={"accepted": len(rows)})

    real = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(handler), **kw))
    clock = iter(range(0, 10_000_000, 5)).__next__  # 5 s of wall time per tick
    st = stream(sim.fixes, "http://x", "t", speed=1.0, sleep=lambda s: None, clock=clock)
    assert st.sent == sim.fixes.height == len(seen) and st.rejected_batches == 0
    assert st.batches > 10
