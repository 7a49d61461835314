"""`fleetwatch jersey` on the real feed: one JSON object with the facts a person would check first."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from scenarios.cli import app


def test_jersey_report_json(shared_dir):
    res = CliRunner().invoke(app, ["jersey", "--json", "--no-replay", "--data-dir",
                                   str(shared_dir / "data" / "jersey_city_refuse")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["dedup"]["trucks"] == 68
    assert out["snapshots"]["stale_repeats"] > 100_000  # polls repeat a parked truck's last fix
    assert out["snapshots"]["new_fixes"] < out["snapshots"]["rows"] // 10  # …and those are not new positions


def test_jersey_rejects_a_folder_without_the_feed(tmp_path):
    res = CliRunner().invoke(app, ["jersey", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "all_dedup.csv" in res.output
