"""Done-when 1: an alert driven through every stage over real HTTP, each step by the role the seed
workflow assigns it (centre: supervisor; field: the district's enforcement team), including a return, an
extension, a rework, a failed verification with re-dispatch — then the statistics, the evidence package,
the audit log and the pushes reflect exactly that."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta

from websockets.sync.client import connect as ws_connect

from tests.cases.conftest import IN_D1, IN_D2, T_ALERT, add_alert, add_track
from tracker.edges import cases_store


class Pushes:
    """Collects /ws/cases messages in a thread."""

    def __init__(self, base_url: str, token: str):
        self.url = base_url.replace("http", "ws") + f"/ws/cases?token={token}"
        self.messages: list[dict] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        assert self.ready.wait(20), "websocket did not say hello"

    def _run(self):
        with ws_connect(self.url, open_timeout=20) as ws:
            hello = json.loads(ws.recv(timeout=20))
            if hello.get("type") == "hello":
                self.ready.set()
            while not self.stop.is_set():
                try:
                    self.messages.append(json.loads(ws.recv(timeout=0.2)))
                except TimeoutError:
                    continue
                except Exception:
                    return

    def wait_for(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(m) for m in self.messages):
                return
            time.sleep(0.05)
        raise AssertionError(f"no matching push in {self.messages}")

    def close(self):
        self.stop.set()
        self.t.join(5)


def test_alert_to_assessed_case_through_every_stage(server, pg_conn, artifacts_dir):
    fixes = add_track(pg_conn, "VA1", IN_D1[0] - 0.003, IN_D1[1], T_ALERT + timedelta(minutes=1), minutes=20)
    alert_id = add_alert(pg_conn, "illegal_dumping", "VA1", *IN_D1)
    false_alarm = add_alert(pg_conn, "speeding", "VA1", *IN_D1, t0=T_ALERT + timedelta(hours=1))
    sup, enf1, enf2, opA, aud = (server.client(u) for u in ("sup", "enf1", "enf2", "opA", "aud"))
    push_sup = Pushes(server.base_url, server.tokens["sup"])
    push_enf2 = Pushes(server.base_url, server.tokens["enf2"])

    r = sup.post("/api/cases", json={"alert_id": alert_id})
    assert r.status_code == 201, r.text
    case = r.json()
    cid = case["id"]
    assert (case["stage"], case["district"], case["team"], case["company"]) == ("collected", "d1", "team-d1", "A")
    assert (case["priority"], case["category"], case["created"]) == ("urgent", "construction_waste", True)
    assert sup.post("/api/cases", json={"alert_id": alert_id}).json()["id"] == cid  # one case per alert

    def do(client, action, expect=200, **kw):
        resp = client.post(f"/api/cases/{cid}/actions", json={"action": action, **kw})
        assert resp.status_code == expect, (action, resp.status_code, resp.text)
        return resp.json()

    do(sup, "accept")
    do(enf1, "start", expect=409)  # not dispatched yet
    assert do(sup, "dispatch")["team"] == "team-d1"  # routed by the d1 polygon
    do(enf2, "start", expect=404)  # another district's team cannot even see it
    do(opA, "start", expect=403)  # the operator is not a team
    do(enf1, "return", note="the truck left our district")
    assert do(sup, "dispatch", team="team-d1")["dispatch_count"] == 2
    do(enf1, "start")
    do(enf1, "request_extension", note="need a loader", minutes=60)
    do(enf1, "extend", expect=403, minutes=60)  # teams ask, the centre grants
    do(sup, "extend", minutes=60)
    do(enf1, "feedback", note="site cleaned")
    do(enf1, "verify", expect=403, passed=True)  # no one verifies their own work
    do(sup, "rework", note="no photo of the cleaned road")
    do(enf1, "feedback", note="site cleaned", data={"photos": ["p1.jpg"]})
    failed = do(sup, "verify", passed=False, note="debris still on the kerb")
    assert (failed["stage"], failed["verify_fail_count"], failed["dispatch_count"]) == ("dispatched", 1, 3)
    do(enf1, "start")
    do(enf1, "feedback", note="kerb cleaned")
    do(sup, "verify", passed=True)
    do(aud, "close", expect=403)  # the auditor only reads
    closed = do(sup, "close")
    assert closed["on_time"] is True and closed["resolution"] == "resolved"
    final = do(sup, "assess", rating=4)
    assert final["stage"] == "assessed" and final["allowed_actions"] == []

    detail = sup.get(f"/api/cases/{cid}").json()
    actions = [e["action"] for e in detail["history"]]
    assert actions == ["collect", "accept", "dispatch", "return", "dispatch", "start", "request_extension",
                       "extend", "feedback", "rework", "feedback", "verify", "start", "feedback", "verify",
                       "close", "assess"]
    assert [e["actor"] for e in detail["history"]][1:4] == ["sup", "sup", "enf1"]

    # a second alert the centre dismisses: not accepted, so it counts nowhere but `dismissed`
    r = sup.post("/api/cases", json={"alert_id": false_alarm})
    sup.post(f"/api/cases/{r.json()['id']}/actions", json={"action": "dismiss", "note": "GPS jump"})

    [row] = sup.get("/api/cases/stats", params={"by": "team"}).json()["rows"]
    assert row["key"] == "team-d1"
    assert (row["collected"], row["accepted"], row["dismissed"], row["dispatched"], row["closed"]) == (2, 1, 1, 1, 1)
    [row] = sup.get("/api/cases/stats", params={"by": "company"}).json()["rows"]
    assert (row["key"], row["collected"], row["accepted"], row["dismissed"]) == ("A", 2, 1, 1)
    assert (row["dispatch_rate"], row["closure_rate"], row["on_time_closure_rate"], row["rework_rate"]) == (1, 1, 1, 1)
    assert row["returned"] == 1 and row["mean_handling_min"] >= 0
    month = (T_ALERT + timedelta(hours=8)).strftime("%Y-%m")
    by_month = sup.get("/api/cases/stats", params={"by": "month"}).json()["rows"]
    assert [r["key"] for r in by_month] == [(datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m")]  # collected
    csv_text = sup.get("/api/cases/stats", params={"by": "kind", "format": "csv"}).content.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("key,collected") and "illegal_dumping" in csv_text
    # the case was created now, but the violation happened in `month`: scoring follows the violation
    scores = sup.get("/api/cases/scores", params={"month": month}).json()["rows"]
    a = next(s for s in scores if s["company"] == "A")
    b = next(s for s in scores if s["company"] == "B")
    assert (a["violations"], a["score"], a["grade"]) == ({"illegal_dumping": 1}, 90.0, "A")
    assert (b["score"], b["rank"], a["rank"]) == (100.0, 1, 2)

    # evidence: ±3 min around the 2-minute alert → 8 minutes of 10 s fixes
    z = sup.get(f"/api/cases/{cid}/evidence.zip")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(z.content))
    (artifacts_dir / "case-evidence-example.zip").write_bytes(z.content)  # for a person to look at
    (artifacts_dir / "case-evidence-map.png").write_bytes(zf.read("map.png"))
    assert sorted(zf.namelist()) == ["case.json", "manifest.json", "map.png", "track.geojson"]
    manifest = json.loads(zf.read("manifest.json"))
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(zf.read(name)).hexdigest() == digest
    assert zf.read("map.png")[:8] == b"\x89PNG\r\n\x1a\n"
    body = json.loads(zf.read("case.json"))
    assert body["window"]["fixes"] == 8 * 6 and fixes == 120
    assert body["rule"]["thresholds"] == {"min_duration_s": 30, "min_speed_kmh": 5}
    assert body["references"]["permit_version"] == 2 and body["references"]["fence"]["properties"]["version"] == 3
    covers = [s for s in body["sensor_timeline"] if s["sensor"] == "cover_closed"]
    assert [c["value"] for c in covers] == [True, False, True]
    gj = json.loads(zf.read("track.geojson"))
    roles = [f["properties"]["role"] for f in gj["features"]]
    assert roles.count("fix") == 48 and "track" in roles and "case" in roles and "route" in roles

    # the audit log holds every action and the export, and the chain verifies
    audit_rows = aud.get("/api/admin/audit", params={"object_type": "case", "object_id": str(cid),
                                                     "limit": 100}).json()
    assert [e["action"] for e in reversed(audit_rows)] == [f"case.{a}" for a in actions] + ["case.export_evidence"]
    assert aud.get("/api/admin/audit/verify").json()["ok"] is True

    # pushes: the supervisor saw every step; the other district's team saw none of them
    push_sup.wait_for(lambda m: m.get("case_id") == cid and m.get("action") == "assess")
    assert [m["action"] for m in push_sup.messages if m.get("case_id") == cid] == actions
    assert not [m for m in push_enf2.messages if m.get("case_id") == cid]
    push_sup.close()
    push_enf2.close()


def test_overdue_cases_escalate_once_per_level_and_reach_the_right_screens(server, pg_conn):
    alert_d1 = add_alert(pg_conn, "illegal_dumping", "VA1", *IN_D1)
    alert_d2 = add_alert(pg_conn, "route_deviation", "VB1", *IN_D2)
    sup = server.client("sup")
    push_enf1 = Pushes(server.base_url, server.tokens["enf1"])
    c1 = sup.post("/api/cases", json={"alert_id": alert_d1}).json()
    c2 = sup.post("/api/cases", json={"alert_id": alert_d2}).json()
    sup.post(f"/api/cases/{c1['id']}/actions", json={"action": "accept"})
    sup.post(f"/api/cases/{c2['id']}/actions", json={"action": "accept"})

    from dashboard.routes_cases import _scan_once
    from tracker.cases.dispatch import Dispatcher
    from tests.cases.conftest import cases_config

    cfg = cases_config()
    state = server.rt.server.config.app.state.fw
    now = datetime.now(UTC)
    # urgent c1: dispatch within 10 min; normal c2: 30 min. At +12 min only c1 is late.
    got = cases_store.escalate(pg_conn, cfg.sla, now=now + timedelta(minutes=12))
    assert [(c.id, e.level, e.clock) for c, e in got] == [(c1["id"], 1, "dispatch")]
    assert cases_store.escalate(pg_conn, cfg.sla, now=now + timedelta(minutes=13)) == []  # once per level
    got = cases_store.escalate(pg_conn, cfg.sla, now=now + timedelta(minutes=45))
    assert sorted((c.id, e.level) for c, e in got) == [(c1["id"], 2), (c2["id"], 1)]
    for case, esc in got:
        cases_store.publish(state.redis, state.settings.bus.prefix, cases_store.case_message(case, esc=esc))
    push_enf1.wait_for(lambda m: m.get("type") == "escalation" and m["case_id"] == c1["id"] and m["level"] == 2)
    assert not [m for m in push_enf1.messages if m.get("case_id") == c2["id"]]  # d2's escalation is not d1's
    hist = sup.get(f"/api/cases/{c1['id']}").json()["history"]
    assert [(e["action"], e["details"].get("level")) for e in hist if e["action"] == "escalate"] == [
        ("escalate", 1), ("escalate", 2)]
    # the periodic scan (what include_routers runs) opens cases for alerts nobody opened yet
    alert_new = add_alert(pg_conn, "speeding", "VB1", *IN_D2, t0=T_ALERT + timedelta(hours=2))
    assert _scan_once(state, cfg, Dispatcher(cfg.routing)) >= 1
    opened = sup.get("/api/cases", params={"kind": "speeding"}).json()
    assert [c["alert_id"] for c in opened] == [alert_new] and opened[0]["created_by"] == "system"
    push_enf1.close()
