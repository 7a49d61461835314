"""Done-when 2: every endpoint and websocket, tried as every role (and anonymously) against *foreign*
company/district ids: no cross-tenant read or write succeeds (401/403/404, or a list that leaves the
foreign rows out), the auditor never writes, and the matrix actually covered is printed.

Two tests: the cases workflow in depth (artifacts/cases-access-matrix.txt), and every route the app serves,
enumerated from `app.routes` (artifacts/access-matrix.txt) — vehicles, live, alerts, fences, permits,
orders, trips, replay, density, stats, exports, history tracks, sanitation coverage, cases, admin, ingest and
the three websockets. A route the second test has no probe for fails it, as does one that answers without a login,
shows a tenant something foreign (ids and plates searched in every answer, totals counted) or hides the
tenant's own data.

Tenants: enforcement `enf1` owns district d1; operator `opA` owns company A; sanitation `san` owns the
sanitation vehicles (sweeper SB1) and sanitation cases. Their foreign objects are the others' cases,
alerts, vehicles, companies and districts. admin, supervisor and auditor are city-wide.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import psycopg
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.cases.conftest import IN_D1, IN_D2, PASSWORD, T_ALERT, USERS, add_alert, add_track

ROLES = ["anonymous", "admin", "sup", "enf1", "opA", "san", "aud"]
TENANTS = {"enf1", "opA", "san"}
DENY = {401, 403, 404}


@dataclass
class World:
    cases: dict[str, int]  # A (VA1, company A, d1), B (VB1, company B, d2), S (SB1 sweeper, company B, d2)
    alerts: dict[str, str]


# For each tenant: which of the world's objects are foreign.
FOREIGN = {
    "enf1": dict(cases=["B", "S"], alert="B", vehicle="VB1", company=None, district="d2", report_at=IN_D2,
                 companies_hidden=["B"], districts_hidden=["d2"]),
    "opA": dict(cases=["B", "S"], alert="B", vehicle="VB1", company="B", district=None, report_at=IN_D2,
                companies_hidden=["B"], districts_hidden=["d2"]),
    "san": dict(cases=["A", "B"], alert="A", vehicle="VA1", company=None, district=None, report_at=IN_D1,
                companies_hidden=["A"], districts_hidden=["d1"]),
}
READERS_ADMIN = {"admin", "aud"}
WRITERS_ADMIN = {"admin"}


def _setup(server, pg_conn) -> World:
    add_track(pg_conn, "VA1", *IN_D1, T_ALERT)
    add_track(pg_conn, "VB1", *IN_D2, T_ALERT)
    alerts = {"A": add_alert(pg_conn, "illegal_dumping", "VA1", *IN_D1),
              "B": add_alert(pg_conn, "route_deviation", "VB1", *IN_D2),
              "S": add_alert(pg_conn, "sweeping_too_fast", "SB1", *IN_D2)}
    sup = server.client("sup")
    cases = {k: sup.post("/api/cases", json={"alert_id": a}).json()["id"] for k, a in alerts.items()}
    # alerts with no case yet, to try opening them
    alerts.update({f"new{k}": add_alert(pg_conn, kind, v, *at, t0=T_ALERT + timedelta(hours=1))
                   for k, kind, v, at in (("A", "speeding", "VA1", IN_D1), ("B", "speeding", "VB1", IN_D2))})
    return World(cases, alerts)


def _foreign_cases(role: str, w: World) -> list[int]:
    return [w.cases[k] for k in FOREIGN[role]["cases"]] if role in TENANTS else []


def _probe_case(role: str, w: World) -> int:
    """The case a role is probed with: a foreign one for tenants, case B for the city-wide roles."""
    return _foreign_cases(role, w)[0] if role in TENANTS else w.cases["B"]


def _check_list_has_no_foreign(role, w, resp):
    if resp.status_code != 200:
        return resp.status_code in DENY
    ids = {c["id"] for c in resp.json()}
    return not (ids & set(_foreign_cases(role, w)))


def _check_rows(role, key_field, hidden_key, resp):
    if resp.status_code != 200:
        return resp.status_code in DENY
    if role not in TENANTS:
        return True
    keys = {r[key_field] for r in resp.json()["rows"]}
    return not (keys & set(FOREIGN[role][hidden_key]))


def probes(w: World):
    """(name, method, path(role), body(role), kind). kind: 'object' = must be denied to tenants (a foreign
    object); 'list' = may answer 200 but without foreign rows; 'admin-read'/'admin-write' = admin router;
    'self' = about the caller only."""
    pc = lambda r: _probe_case(r, w)  # noqa: E731
    fa = lambda r: w.alerts["newB" if r in ("enf1", "opA") else "newA"] if r in TENANTS else w.alerts["newB"]  # noqa: E731
    fv = lambda r: FOREIGN[r]["vehicle"] if r in TENANTS else "VB1"  # noqa: E731
    at = lambda r: FOREIGN[r]["report_at"] if r in TENANTS else IN_D2  # noqa: E731
    return [
        ("GET /api/auth/me", "GET", lambda r: "/api/auth/me", None, "self"),
        ("GET /api/cases", "GET", lambda r: "/api/cases", None, "list"),
        ("GET /api/cases?company=foreign", "GET",
         lambda r: f"/api/cases?company={FOREIGN.get(r, {}).get('company') or 'B'}", None, "list"),
        ("GET /api/cases?district=foreign", "GET",
         lambda r: f"/api/cases?district={FOREIGN.get(r, {}).get('district') or 'd2'}", None, "list"),
        ("POST /api/cases {foreign alert}", "POST", lambda r: "/api/cases", lambda r: {"alert_id": fa(r)}, "object"),
        ("POST /api/cases {existing case's alert}", "POST", lambda r: "/api/cases",
         lambda r: {"alert_id": w.alerts[FOREIGN[r]["alert"] if r in TENANTS else "B"]}, "object"),
        ("POST /api/cases {manual, foreign place}", "POST", lambda r: "/api/cases",
         lambda r: {"kind": "illegal_dumping", "description": "probe", "lon": at(r)[0], "lat": at(r)[1]}, "object"),
        ("POST /api/cases {manual, foreign vehicle}", "POST", lambda r: "/api/cases",
         lambda r: {"kind": "sweeping_too_fast", "description": "probe", "vehicle_id": fv(r)}, "object"),
        ("GET /api/cases/{id}", "GET", lambda r: f"/api/cases/{pc(r)}", None, "object"),
        ("POST /api/cases/{id}/actions", "POST", lambda r: f"/api/cases/{pc(r)}/actions",
         lambda r: {"action": "accept"}, "object"),
        ("GET /api/cases/{id}/evidence", "GET", lambda r: f"/api/cases/{pc(r)}/evidence", None, "object"),
        ("GET /api/cases/{id}/evidence.zip", "GET", lambda r: f"/api/cases/{pc(r)}/evidence.zip", None, "object"),
        ("GET /api/cases/{id}/map.png", "GET", lambda r: f"/api/cases/{pc(r)}/map.png", None, "object"),
        ("GET /api/cases/stats?by=company", "GET", lambda r: "/api/cases/stats?by=company", None, "rows:company"),
        ("GET /api/cases/stats?by=district", "GET", lambda r: "/api/cases/stats?by=district", None, "rows:district"),
        ("GET /api/cases/stats?company=foreign", "GET",
         lambda r: f"/api/cases/stats?by=all&company={FOREIGN.get(r, {}).get('companies_hidden', ['B'])[0]}",
         None, "filter"),
        ("GET /api/cases/stats?district=foreign", "GET",
         lambda r: f"/api/cases/stats?by=all&district={FOREIGN.get(r, {}).get('districts_hidden', ['d2'])[0]}",
         None, "filter"),
        ("GET /api/cases/scores", "GET", lambda r: "/api/cases/scores?month=2026-03", None, "rows:scores"),
        ("GET /api/admin/users", "GET", lambda r: "/api/admin/users", None, "admin-read"),
        ("POST /api/admin/users", "POST", lambda r: "/api/admin/users",
         lambda r: {"username": f"new-{r}", "role": "admin", "password": PASSWORD}, "admin-write"),
        ("PATCH /api/admin/users/{other}", "PATCH", lambda r: "/api/admin/users/opB",
         lambda r: {"companies": ["A", "B"]}, "admin-write"),
        ("GET /api/admin/users/{other}/tokens", "GET", lambda r: "/api/admin/users/opB/tokens", None, "admin-read"),
        ("POST /api/admin/users/{other}/tokens", "POST", lambda r: "/api/admin/users/opB/tokens",
         lambda r: {"name": f"probe-{r}"}, "admin-write"),
        ("DELETE /api/admin/users/{other}/tokens/{id}", "DELETE",
         lambda r: "/api/admin/users/opB/tokens/0123456789abcdef", None, "admin-write"),
        ("GET /api/admin/audit", "GET", lambda r: "/api/admin/audit", None, "admin-read"),
        ("GET /api/admin/audit/verify", "GET", lambda r: "/api/admin/audit/verify", None, "admin-read"),
    ]


def _judge(role, kind, resp, w) -> bool:
    s = resp.status_code
    if role == "anonymous":
        return s == 401
    if kind == "self":
        return s == 200 and resp.json()["username"] == role
    if kind == "admin-read":
        return (200 <= s < 300) if role in READERS_ADMIN else s == 403
    if kind == "admin-write":
        return (200 <= s < 300 or s == 404) if role in WRITERS_ADMIN else s == 403
    if role == "aud" and resp.request.method != "GET":
        return s == 403
    if kind == "list":
        if role in TENANTS:
            return _check_list_has_no_foreign(role, w, resp)
        return s == 200
    if kind.startswith("rows:"):
        field, hidden = {"rows:company": ("key", "companies_hidden"), "rows:district": ("key", "districts_hidden"),
                         "rows:scores": ("company", "companies_hidden")}[kind]
        return _check_rows(role, field, hidden, resp) and (s == 200 or role in TENANTS)
    if kind == "filter":  # refused, or (a constraint the role doesn't have) answered with nothing foreign
        if role not in TENANTS:
            return s == 200
        return s in DENY or (s == 200 and all(r["collected"] == 0 for r in resp.json()["rows"]))
    # a foreign object: tenants are refused; city-wide roles pass auth (the workflow may still say 409/422)
    if role in TENANTS:
        return s in DENY
    return s < 500 and s not in (401, 403) or (role == "aud" and s == 403)


class WsProbe:
    def __init__(self, base_url: str, token: str | None, first_message: bool = False):
        url = base_url.replace("http", "ws") + "/ws/cases"
        if token and not first_message:
            url += f"?token={token}"
        self.messages: list[dict] = []
        self.close_code: int | None = None
        self.hello = threading.Event()
        self.done = threading.Event()
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, args=(url, token if first_message else None), daemon=True)
        self.t.start()

    def _run(self, url, first):
        try:
            with ws_connect(url, open_timeout=20) as ws:
                if first:
                    ws.send(json.dumps({"token": first}))
                while not self.stop.is_set():
                    try:
                        msg = json.loads(ws.recv(timeout=0.2))
                    except TimeoutError:
                        continue
                    if msg.get("type") == "hello":
                        self.hello.set()
                    else:
                        self.messages.append(msg)
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None
        finally:
            self.done.set()

    def case_ids(self) -> set[int]:
        return {m["case_id"] for m in self.messages}


def _ws_matrix(server, w: World) -> dict[str, str]:
    """Connect every role, then open five cases in an order where each tenant's last visible case comes
    after every case foreign to it; once that arrives, nothing foreign may have arrived before it."""
    socks = {"anonymous": WsProbe(server.base_url, None), "bad-token": WsProbe(server.base_url, "fw_forged")}
    for r in ROLES[1:]:
        socks[r] = WsProbe(server.base_url, server.tokens[r], first_message=(r == "opA"))
    for r in ROLES[1:]:
        assert socks[r].hello.wait(20), f"{r}: no hello"
    sup = server.client("sup")
    order = [("B", "VB1", IN_D2, "route_deviation"), ("A", "VA1", IN_D1, "illegal_dumping"),
             ("S", "SB1", IN_D2, "sweeping_too_fast"), ("A", "VA1", IN_D1, "illegal_dumping"),
             ("S", "SB1", IN_D2, "sweeping_too_fast")]
    made: list[tuple[str, int]] = []
    for key, vehicle, place, kind in order:
        resp = sup.post("/api/cases", json={"kind": kind, "description": "ws probe", "vehicle_id": vehicle,
                                            "lon": place[0], "lat": place[1]})
        assert resp.status_code == 201, resp.text
        made.append((key, resp.json()["id"]))
    last_visible = {"enf1": made[3][1], "opA": made[3][1], "san": made[4][1]}
    all_ids = {i for _, i in made}
    deadline = time.monotonic() + 20
    cells = {}
    for r, sock in socks.items():
        if r in ("anonymous", "bad-token"):
            assert sock.done.wait(20)
            cells[r] = str(sock.close_code)
            assert sock.close_code == 4401, (r, sock.close_code)
            continue
        want = {last_visible[r]} if r in TENANTS else all_ids
        while not want <= sock.case_ids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert want <= sock.case_ids(), (r, sock.messages)
        foreign_keys = set(FOREIGN[r]["cases"]) if r in TENANTS else set()
        foreign_ids = {i for k, i in made if k in foreign_keys}
        leaked = sock.case_ids() & foreign_ids
        assert not leaked, f"{r} received foreign cases {leaked}"
        cells[r] = f"ok:{len(sock.case_ids() & all_ids)}/5"
        sock.stop.set()
    return cells


def test_no_cross_tenant_read_or_write(server, pg_conn, artifacts_dir):
    w = _setup(server, pg_conn)
    before = {k: server.client("sup").get(f"/api/cases/{i}").json() for k, i in w.cases.items()}
    clients = {r: server.client(None if r == "anonymous" else r) for r in ROLES}
    matrix: dict[str, dict[str, str]] = {}
    failures = []
    for name, method, path, body, kind in probes(w):
        row = matrix.setdefault(name, {})
        for role in ROLES:
            resp = clients[role].request(method, path(role), json=body(role) if body else None)
            ok = _judge(role, kind, resp, w)
            row[role] = f"{resp.status_code}{'' if ok else '!'}"
            if not ok:
                failures.append(f"{name} as {role}: {resp.status_code} {resp.text[:200]}")
    matrix["WS /ws/cases (pushes)"] = _ws_matrix(server, w)
    # bad / other users' credentials
    forged = server.client(token="fw_forged").get("/api/cases")
    matrix["GET /api/cases with a forged token"] = {"anonymous": str(forged.status_code)}
    assert forged.status_code == 401
    steal = server.login("opB", PASSWORD + "x")
    matrix["POST /api/auth/login (wrong password)"] = {"anonymous": str(steal.status_code)}
    assert steal.status_code == 401
    # logout revokes only the caller's own token (the last probe: it spends the matrix tokens)
    logged_in = ROLES[1:]
    matrix["POST /api/auth/logout"] = {"anonymous": str(clients["anonymous"].post("/api/auth/logout").status_code)}
    for i, role in enumerate(logged_in):
        out = clients[role].post("/api/auth/logout").status_code
        after = clients[role].get("/api/auth/me").status_code
        others = {clients[o].get("/api/auth/me").status_code for o in logged_in[i + 1:]}
        matrix["POST /api/auth/logout"][role] = f"{out}->{after}"
        assert (out, after) == (204, 401) and others <= {200}, (role, out, after, others)
    text = _render(matrix)
    print("\n" + text)
    (artifacts_dir / "cases-access-matrix.txt").write_text(text)
    assert not failures, "\n".join(failures)

    # the foreign cases were changed by nobody but the city-wide roles
    sup = server.client(token=server.login("sup").json()["token"])
    for k, i in w.cases.items():
        hist = sup.get(f"/api/cases/{i}").json()["history"]
        assert {e["actor"] for e in hist} <= {"sup", "admin"}, (k, hist)
    assert sup.get(f"/api/cases/{w.cases['S']}").json()["version"] == before["S"]["version"]  # nobody may touch S
    # nobody but admin could create users or tokens
    admin = server.client(token=server.login("admin").json()["token"])
    users_now = {u["username"] for u in admin.get("/api/admin/users").json()}
    assert users_now == set(USERS) | {"new-admin"}
    tokens = admin.get("/api/admin/users/opB/tokens").json()
    assert [t["name"] for t in tokens] == ["probe-admin"]


def _render(matrix: dict[str, dict[str, str]]) -> str:
    cols = ["anonymous", "admin", "sup", "enf1", "opA", "san", "aud"]
    width = max(len(k) for k in matrix) + 2
    lines = ["access matrix (status per role; tenants probed with FOREIGN ids; '!' = violation)",
             "roles: enf1=enforcement(d1) opA=operator(company A) san=sanitation sup=supervisor aud=auditor",
             "".ljust(width) + "".join(c.ljust(12) for c in cols)]
    for name, row in matrix.items():
        lines.append(name.ljust(width) + "".join(row.get(c, "-").ljust(12) for c in cols))
    return "\n".join(lines)


# ======================================================================================================
# Every route of the app, enumerated from app.routes: a new endpoint or websocket without a probe here makes
# this test fail, and so does one that answers without a login or leaks a foreign tenant's data.
# ======================================================================================================




CITY = ("admin", "sup", "aud")
# what each tenant can see (conftest: VA1 company A / d1 muck truck, VB1 company B / d2 muck truck,
# SB1 company B / d2 sweeper)
VISIBLE = {"enf1": {"VA1"}, "opA": {"VA1"}, "san": {"SB1"}, **{r: {"VA1", "VB1", "SB1"} for r in CITY}}
PLATES = {"VA1": "粤B-A1", "VB1": "粤B-B1", "SB1": "粤B-S1"}
ALERT_VEHICLE = {"A": "VA1", "B": "VB1", "S": "SB1", "newA": "VA1", "newB": "VB1"}
FENCES = {"F-SITE-A": "A", "F-SITE-B": "B", "F-CITY-ZONE": None}  # fence id → owning company
DOCS = {"P-A-1": ("permit", "VA1"), "P-B-1": ("permit", "VB1"), "O-S-1": ("order", "SB1")}
# the fences a tenant sees: city ones, and companies it sees a vehicle of (scoping.visible_companies)
FENCE_COMPANIES = {"enf1": {"A"}, "opA": {"A"}, "san": {"B"}}
PUBLIC = {"/api/health", "/api/auth/login", "/api/auth/link", "/", "/alerts", "/replay", "/stats", "/login", "/cases",
          "/coverage", "/docs", "/openapi.json"}
PUBLIC_MOUNTS = {"/static": "/static/common.js", "/static/deckgl": "/static/deckgl/index.js",
                 "/static/swagger": "/static/swagger/swagger-ui.css"}
MACHINE = {"/api/ingest/fixes"}  # per-source ingest tokens, never a user's
NOT_BUILT: set[str] = set()  # endpoints that answer 503 "not stored yet" to everyone allowed to ask
WEBSOCKETS = {"/ws/live", "/ws/alerts", "/ws/cases"}
T_FROM, T_TO = T_ALERT - timedelta(hours=1), T_ALERT + timedelta(hours=2)


@dataclass
class Tenancy:
    alerts: dict[str, str]
    cases: dict[str, int]

    def foreign(self, role: str) -> dict[str, str]:
        """The object of each type this role is probed with: a foreign one for a tenant, another
        company's (B) for the city-wide roles (who must be able to read it)."""
        if role in ("san",):
            return {"vehicle": "VA1", "alert": self.alerts["A"], "fence": "F-SITE-A", "permit": "P-A-1",
                    "case": str(self.cases["A"]), "company": "A", "district": "d1"}
        return {"vehicle": "VB1", "alert": self.alerts["B"], "fence": "F-SITE-B", "permit": "P-B-1",
                "case": str(self.cases["B"]), "company": "B", "district": "d2"}

    def markers(self, role: str) -> set[str]:
        """Strings that must never appear in an answer to this role (ids and plates of what isn't theirs)."""
        if role not in TENANTS:
            return set()
        seen = VISIBLE[role]
        out = {v for v in PLATES if v not in seen} | {PLATES[v] for v in PLATES if v not in seen}
        out |= {self.alerts[k] for k, v in ALERT_VEHICLE.items() if v not in seen}
        out |= {f for f, c in FENCES.items() if c is not None and c not in FENCE_COMPANIES[role]}
        out |= {d for d, (_, v) in DOCS.items() if v not in seen}
        return out


def _setup_tenancy(server, pg_conn) -> Tenancy:
    """Every kind of tenant data the dashboard serves: tracks (real H3 cells), live state, alerts (table and
    stream), cases, fences owned by each company and by the city, permits and an order."""
    from datetime import date

    from shapely.geometry import Point, Polygon

    from geofences.model import Fence
    from geofences.store import save_fences
    from tests.dashboard import seed
    from tracker.edges.bus import StreamNames
    from tracker.edges.live import publish_live
    from tracker.edges.refstore import save_docs
    from tracker.reference import DeliveryOrder, Permit

    t0 = int((T_ALERT - timedelta(minutes=10)).timestamp() * 1000)
    starts = {"VA1": IN_D1, "VB1": IN_D2, "SB1": (IN_D2[0] + 0.01, IN_D2[1] + 0.01)}
    for vid, at in starts.items():
        seed.write_fixes(pg_conn, seed.track_rows(vid, t0, 20, at, radius_m=300, muck=vid != "SB1"))
    alerts = {"A": add_alert(pg_conn, "illegal_dumping", "VA1", *IN_D1),
              "B": add_alert(pg_conn, "route_deviation", "VB1", *IN_D2),
              "S": add_alert(pg_conn, "sweeping_too_fast", "SB1", *starts["SB1"]),
              "newA": add_alert(pg_conn, "speeding", "VA1", *IN_D1, t0=T_ALERT + timedelta(hours=1)),
              "newB": add_alert(pg_conn, "speeding", "VB1", *IN_D2, t0=T_ALERT + timedelta(hours=1))}
    sup = server.client("sup")
    cases = {k: sup.post("/api/cases", json={"alert_id": alerts[k]}).json()["id"] for k in ("A", "B", "S")}
    box = lambda x, y: Polygon([(x, y), (x + .002, y), (x + .002, y + .002), (x, y + .002)])  # noqa: E731
    save_fences(pg_conn, [
        Fence(id="F-SITE-A", name="A 工地", kind="construction_site", shape="polygon", geometry=box(*IN_D1),
              company="A", district="d1"),
        Fence(id="F-SITE-B", name="B 工地", kind="construction_site", shape="polygon", geometry=box(*IN_D2),
              company="B", district="d2"),
        Fence(id="F-CITY-ZONE", name="禁行区", kind="restricted_zone", shape="circle",
              geometry=Point(114.05, 22.525), radius_m=200)], actor="test")
    valid = dict(valid_from=date(2020, 1, 1), valid_to=date(2099, 1, 1))
    save_docs(pg_conn, "permit", [
        Permit(id="P-A-1", vehicles=("VA1",), company="A", origin_fence="F-SITE-A", disposal_fence="F-CITY-ZONE",
               route_fence="F-CITY-ZONE", **valid),
        Permit(id="P-B-1", vehicles=("VB1",), company="B", origin_fence="F-SITE-B", disposal_fence="F-CITY-ZONE",
               route_fence="F-CITY-ZONE", **valid)], actor="test")
    save_docs(pg_conn, "order", [DeliveryOrder(id="O-S-1", vehicles=("SB1",), company="B", plant_fence="F-SITE-B",
                                               site_fence="F-CITY-ZONE", **valid)], actor="test")
    # a trip per vehicle, as the worker's TripSink writes them (site → disposal site / plant → site)
    day = (T_ALERT.date() - date(1970, 1, 1)).days
    for vid, (kind, company, origin, dest, doc) in {
            "VA1": ("muck_truck", "A", "F-SITE-A", "F-CITY-ZONE", "P-A-1"),
            "VB1": ("muck_truck", "B", "F-SITE-B", "F-CITY-ZONE", "P-B-1"),
            "SB1": ("concrete_mixer", "B", "F-SITE-B", "F-CITY-ZONE", "O-S-1")}.items():
        pg_conn.execute(
            "INSERT INTO trips (trip_id, vehicle_id, vehicle_kind, company, start_ts, end_ts, origin_fence, "
            "dest_fence, doc_id, outcome, load_source, local_day, decided_ts) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 'completed', 'sensor', %s, %s)",
            (f"trip-{vid}", vid, kind, company, T_ALERT - timedelta(minutes=30), T_ALERT - timedelta(minutes=5),
             origin, dest, doc, day, T_ALERT - timedelta(minutes=5)))
    r = redis.Redis.from_url(server.rt.services.redis_url)
    names = StreamNames(server.rt.settings.bus.prefix, server.rt.settings.bus.shards)
    live_t = int((T_ALERT + timedelta(minutes=10)).timestamp() * 1000)
    publish_live(r, names, [{"vehicle_id": vid, "ts_ms": live_t, "lon": at[0], "lat": at[1], "speed_kmh": 20.0,
                             "heading_deg": 90.0, "alarm_kinds": ["speeding"] if vid == "VB1" else []}
                            for vid, at in starts.items()])
    r.close()
    # the fleet clock follows the live state: wait until the app has read it (density/stats windows)
    deadline = time.monotonic() + 30
    while abs(sup.get("/api/live").json()["t"] - live_t) > 3_600_000:
        assert time.monotonic() < deadline, "the live hub never picked up the live state"
        time.sleep(0.3)
    return Tenancy(alerts, cases)


def _enumerate(app) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(HTTP (method, path) pairs, websocket paths, mount paths) of every route the app serves."""
    from fastapi import routing
    from starlette.routing import Mount, WebSocketRoute

    contexts = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    http, wss, mounts = [], [], []
    for rc in contexts:
        route = getattr(rc, "original_route", rc)
        path = getattr(rc, "path", None) or route.path
        if isinstance(route, Mount):
            mounts.append(path)
        elif isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            wss.append(path)
        else:
            methods = getattr(rc, "methods", None) or getattr(route, "methods", None) or {"GET"}
            http += [(m, path) for m in sorted(methods) if m != "HEAD"]
    return http, wss, mounts


def _params(spec: dict, method: str, path: str) -> list[dict]:
    op = spec["paths"].get(re.sub(r"\{(\w+):\w+\}", r"{\1}", path), {}).get(method.lower(), {})
    return op.get("parameters", [])


WRITE_BODIES = {
    ("POST", "/api/cases"): lambda r, f: {"alert_id": f["alert"]},
    ("POST", "/api/cases/{case_id:int}/actions"): lambda r, f: {"action": "accept"},
    ("POST", "/api/admin/users"): lambda r, f: {"username": f"gen-{r}", "role": "operator", "companies": ["A"],
                                               "password": PASSWORD},
    ("PATCH", "/api/admin/users/{username}"): lambda r, f: {"display_name": f"probe by {r}"},
    ("POST", "/api/admin/users/{username}/tokens"): lambda r, f: {"name": f"gen-{r}"},
    ("DELETE", "/api/admin/users/{username}/tokens/{token_id}"): lambda r, f: None,
    ("POST", "/api/ingest/fixes"): lambda r, f: [{"vehicle_id": f["vehicle"], "ts_ms": 1_773_151_200_000,
                                                  "lon": 114.08, "lat": 22.52}],
    ("POST", "/api/auth/login"): lambda r, f: {"username": "opB", "password": PASSWORD + "-wrong"},
    ("POST", "/api/auth/link"): lambda r, f: {"code": "not-a-valid-sign-in-code"},
    ("PUT", "/api/coverage/plans"): lambda r, f: {"work_plans": [], "collection_schedules": []},
}
# writes some tenants may make (their own domain): role → allowed; everyone else must be refused
WRITERS = {("PUT", "/api/coverage/plans"): {"admin", "sup", "san"}}
LAST = {("POST", "/api/auth/logout")}  # spends the tokens: probed after everything else


def _fill_path(path: str, f: dict[str, str]) -> str:
    values = {"vehicle_id": f["vehicle"], "alert_id": f["alert"], "fence_id": f["fence"], "permit_id": f["permit"],
              "case_id": f["case"], "username": "opB", "token_id": "0123456789abcdef", "fmt": "csv"}

    def sub(m: re.Match) -> str:
        name = m.group(1)
        assert name in values, f"{path}: no foreign value for path parameter {name!r} — add one to the matrix"
        return quote(values[name], safe="")
    return re.sub(r"\{(\w+)(?::\w+)?\}", sub, path)


def _query_variants(path: str, params: list[dict], f: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The base query (required parameters, and time windows/areas that make data appear), then one
    variant per tenancy filter the endpoint accepts, set to a foreign value."""
    known = {"since": T_FROM.isoformat(), "from": T_FROM.isoformat(), "until": T_TO.isoformat(),
             "to": T_TO.isoformat(), "month": "2026-03", "area": "113.9,22.4,114.2,22.7",
             "date": T_ALERT.date().isoformat()}
    if path == "/api/density":
        known["minutes"] = "1440"
    base: dict[str, str] = {}
    names = {p["name"] for p in params if p.get("in") == "query"}
    for p in params:
        if p.get("in") != "query":
            continue
        name = p["name"]
        if name in known:
            base[name] = known[name]
        elif name in ("vehicle", "vehicle_id") and p.get("required"):
            base[name] = f["vehicle"]
        else:
            assert not p.get("required"), f"no value for required query parameter {name!r} — add it to the matrix"
    out = [("", base)]
    for name, value in (("vehicle", f["vehicle"]), ("vehicle_id", f["vehicle"]), ("company", f["company"]),
                        ("district", f["district"])):
        if name in names and base.get(name) != value:
            out.append((f"?{name}=foreign", {**base, name: value}))
    return out


def _judge_route(role: str, method: str, path: str, resp, tenancy: Tenancy) -> str | None:
    """None if the answer is right for this role, else why not."""
    s = resp.status_code
    if role == "anonymous":
        return None if s == 401 else f"anonymous got {s}"
    if path in MACHINE:
        return None if s == 401 else f"a user token was accepted by the machine ingest ({s})"
    admin_router = path.startswith("/api/admin")
    write = method not in ("GET", "HEAD")
    if role == "aud" and write:
        return None if s == 403 else f"auditor wrote ({s})"
    if admin_router and role not in ("admin", "aud"):
        return None if s == 403 else f"{role} reached the admin router ({s})"
    if write and (method, path) in WRITERS:
        if role in WRITERS[(method, path)]:
            return None if s < 500 and s not in (401, 403) else f"an allowed writer was refused/failed: {s}"
        return None if s == 403 else f"{role} may not write here, answered {s}"
    if role in TENANTS:
        if write:
            return None if s in DENY else f"tenant write on a foreign object answered {s}"
        if s in DENY:
            return None
        if not (200 <= s < 300 or (path in NOT_BUILT and s == 503)):
            return f"unexpected {s}"
        text = resp.content.decode("utf-8", "replace")
        leaked = sorted(m for m in tenancy.markers(role) if m in text)
        return f"leaked {leaked}" if leaked else None
    # city-wide roles: the route must work for them (a matrix where everything is refused proves nothing,
    # and a probe the endpoint rejects as malformed tests nothing either)
    if s in (401, 403) or (s >= 500 and not (path in NOT_BUILT and s == 503)) or (s == 422 and not write):
        return f"city-wide role refused/failed: {s} {resp.text[:120]}"
    return None


# positive checks: a tenant sees its own data (scoping that hides everything would pass the leak checks)
OWN_VISIBLE = {("GET", "/api/vehicles"), ("GET", "/api/live"), ("GET", "/api/alerts"), ("GET", "/api/tracks"),
               ("GET", "/api/export/live.html"), ("GET", "/api/cases")}


def _counts(role: str, tenancy: Tenancy, clients) -> dict[str, tuple[int, int]]:
    """Aggregates must count only the role's vehicles: (got, expected)."""
    seen = VISIBLE[role]
    c = clients[role]
    q = {"since": T_FROM.isoformat(), "until": T_TO.isoformat()}
    dens = c.get("/api/density", params={"minutes": 1440}).json()
    stats = c.get("/api/stats", params=q).json()
    live = c.get("/api/live").json()
    facets = c.get("/api/facets").json()
    want_companies = {"VA1": "A", "VB1": "B", "SB1": "B"}
    return {
        "density fixes": (sum(x["fixes"] for x in dens["cells"]), 120 * len(seen)),
        "stats alerts": (sum(x["count"] for x in stats["alerts_per_day"]),
                         sum(1 for v in ALERT_VEHICLE.values() if v in seen)),
        "stats companies": (len(stats["companies"]), len({want_companies[v] for v in seen})),
        "live vehicles": (len(live["vehicles"]), len(seen)),
        "facet companies": (len(facets["companies"]), len({want_companies[v] for v in seen})),
    }


def test_every_route_and_websocket_as_every_role(server, pg_conn, artifacts_dir):
    tenancy = _setup_tenancy(server, pg_conn)
    app = server.rt.server.config.app
    http, wss, mounts = _enumerate(app)
    spec = server.client("admin").get("/openapi.json").json()
    clients = {r: server.client(None if r == "anonymous" else r) for r in ROLES}
    matrix: dict[str, dict[str, str]] = {}
    failures: list[str] = []
    unprobed: list[str] = []

    def cell(name: str, role: str, text: str, problem: str | None) -> None:
        matrix.setdefault(name, {})[role] = text + ("" if problem is None else "!")
        if problem:
            failures.append(f"{name} as {role}: {problem}")

    # public routes: answer anyone, and say nothing about any tenant
    every_marker = tenancy.markers("opA") | tenancy.markers("san")
    for method, path in http:
        if path not in PUBLIC:
            continue
        body = WRITE_BODIES.get((method, path), lambda r, f: None)("anonymous", tenancy.foreign("opA"))
        resp = clients["anonymous"].request(method, path, json=body)
        leaked = sorted(m for m in every_marker if m in resp.text)
        ok = (resp.status_code == 401) if method == "POST" else resp.status_code == 200
        cell(f"{method} {path} (public)", "anonymous", str(resp.status_code),
             None if ok and not leaked else f"{resp.status_code} leaked={leaked}")
    for mount in mounts:
        probe = PUBLIC_MOUNTS.get(mount)
        if probe is None:
            unprobed.append(f"mount {mount}")
            continue
        s = clients["anonymous"].get(probe).status_code
        cell(f"GET {probe} (static)", "anonymous", str(s), None if s == 200 else f"{s}")

    # everything else: every role, with foreign ids in the path and foreign tenancy filters in the query
    for method, path in http:
        if path in PUBLIC or (method, path) in LAST:
            continue
        write = method not in ("GET", "HEAD")
        if write and (method, path) not in WRITE_BODIES:
            unprobed.append(f"{method} {path} (no request body known)")
            continue
        params = _params(spec, method, path)
        for role in ROLES:
            f = tenancy.foreign("opA" if role == "anonymous" else role)
            try:
                url = _fill_path(path, f)
                variants = _query_variants(path, params, f)
            except AssertionError as exc:
                unprobed.append(str(exc))
                break
            for suffix, query in variants:
                body = WRITE_BODIES[(method, path)](role, f) if write else None
                resp = clients[role].request(method, url, params=query, json=body)
                cell(f"{method} {path}{suffix}", role, str(resp.status_code),
                     _judge_route(role, method, path, resp, tenancy))
                if role in TENANTS and not suffix and (method, path) in OWN_VISIBLE:
                    text = resp.content.decode("utf-8", "replace")
                    missing = sorted(v for v in VISIBLE[role] if v not in text and PLATES[v] not in text)
                    cell(f"{method} {path}: own vehicles shown", role, "ok" if not missing else "missing",
                         f"{resp.status_code}, own data missing: {missing}" if missing else None)
    # aggregates count the caller's vehicles only
    for role in ROLES[1:]:
        for name, (got, want) in _counts(role, tenancy, clients).items():
            cell(f"count: {name}", role, f"{got}/{want}", None if got == want else f"got {got}, want {want}")

    # websockets
    unknown_ws = sorted(set(wss) - WEBSOCKETS)
    unprobed += [f"websocket {p}" for p in unknown_ws]
    for path in sorted(set(wss) & WEBSOCKETS):
        codes = [_ws_refused(server.base_url, path, token) for token in (None, "fw_forged")]
        cell(f"WS {path} with no / a forged token", "anonymous", "/".join(map(str, codes)),
             None if codes == [4401, 4401] else f"closed with {codes}")
    for role, text, problem in _ws_live(server, tenancy):
        cell("WS /ws/live (positions, totals)", role, text, problem)
    for role, text, problem in _ws_alerts(server, tenancy):
        cell("WS /ws/alerts (pushes, resume, filters)", role, text, problem)
    for role in ROLES[1:]:
        probe = WsProbe(server.base_url, server.tokens[role], first_message=True)
        ok = probe.hello.wait(20)
        probe.stop.set()
        cell("WS /ws/cases (hello; pushes: see the cases matrix)", role, "hello" if ok else "-",
             None if ok else "no hello")

    # logout last: it revokes the caller's token
    for method, path in LAST:
        for role in ROLES:
            s = clients[role].request(method, path).status_code
            after = clients[role].get("/api/auth/me").status_code
            want = (401, 401) if role == "anonymous" else (204, 401)
            cell(f"{method} {path} (then /api/auth/me)", role, f"{s}->{after}",
                 None if (s, after) == want else f"{s}->{after}")

    text = _render(matrix)
    probes_run = sum(len(row) for row in matrix.values())
    text += (f"\n\n{len(http)} HTTP routes, {len(wss)} websockets, {len(mounts)} static mounts enumerated; "
             f"{len(matrix)} rows, {probes_run} probes; violations: {len(failures)}; unprobed: {len(unprobed)}")
    print("\n" + text)
    (artifacts_dir / "access-matrix.txt").write_text(text)
    assert not unprobed, "routes without a probe (extend tests/cases/test_access_matrix.py):\n" + "\n".join(unprobed)
    assert not failures, "\n".join(failures)


def _ws_refused(base_url: str, path: str, token: str | None) -> int | None:
    url = base_url.replace("http", "ws") + path
    try:
        with ws_connect(url, open_timeout=20) as ws:
            ws.send(json.dumps({"token": token}))
            while True:
                ws.recv(timeout=20)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None
    except TimeoutError:
        return None


def _ws_live(server, tenancy: Tenancy):
    """Each role on /ws/live (binary and JSON): exactly its vehicles, and fleet totals over them."""
    from dashboard.wire import LiveDecoder

    out = []
    for role in ROLES[1:]:
        want = VISIBLE[role]
        dec = LiveDecoder()
        url = server.base_url.replace("http", "ws") + "/ws/live"
        with ws_connect(url, open_timeout=20) as ws:
            ws.send(json.dumps({"token": server.tokens[role]}))
            deadline = time.monotonic() + 20
            while (set(dec.vehicles) != want or dec.summary.get("total") != len(want)) and \
                    time.monotonic() < deadline:
                try:
                    dec.feed(ws.recv(timeout=1))
                except TimeoutError:
                    continue
            extra_until = time.monotonic() + 2.5  # two more ticks: nothing else may arrive
            while time.monotonic() < extra_until:
                try:
                    dec.feed(ws.recv(timeout=0.5))
                except TimeoutError:
                    pass
        with ws_connect(url + "?format=json", open_timeout=20) as ws:
            ws.send(json.dumps({"token": server.tokens[role]}))
            rows = json.loads(ws.recv(timeout=20))["v"]
        got, total, json_ids = set(dec.vehicles), dec.summary.get("total"), {r[0] for r in rows}
        problem = None if (got, total, json_ids) == (want, len(want), want) else \
            f"binary {sorted(got)} total {total}, json {sorted(json_ids)}; want {sorted(want)}"
        out.append((role, f"{len(got)}v/{total}", problem))
    return out


def _ws_alerts(server, tenancy: Tenancy):
    """Each role on /ws/alerts: pushed alerts, the ?since= catch-up and a client filter naming a foreign
    company carry only the role's alerts."""
    from tests.dashboard import seed
    from tracker.edges.bus import StreamNames
    from tracker.episode import Episode

    url = server.base_url.replace("http", "ws") + "/ws/alerts"
    names = StreamNames(server.rt.settings.bus.prefix, server.rt.settings.bus.shards)
    r = redis.Redis.from_url(server.rt.services.redis_url)
    conns = {}
    for role in ROLES[1:]:
        ws = ws_connect(url + ("?companies=A,B" if role == "opA" else ""), open_timeout=20)
        conns[role] = ws.__enter__()
        conns[role].send(json.dumps({"token": server.tokens[role]}))
        assert json.loads(conns[role].recv(timeout=20))["type"] == "ready", role
    first_sid = r.xrevrange(names.alerts, count=1)
    first_sid = first_sid[0][0].decode() if first_sid else "0-0"
    t = int((T_ALERT + timedelta(hours=3)).timestamp() * 1000)
    # foreign-to-someone first, then each tenant's own last: once the own one arrives nothing foreign came first
    pushed = {}
    with psycopg.connect(server.rt.settings.database_url, autocommit=True) as conn:
        for vid in ("VB1", "SB1", "VA1", "SB1"):
            t += 1000
            e = Episode.new("speeding", vid, t, lon=114.05, lat=22.52)
            seed.inject_alert(conn, r, names, e)
            pushed.setdefault(vid, []).append(e.id)
    last_own = {"enf1": pushed["VA1"][-1], "opA": pushed["VA1"][-1], "san": pushed["SB1"][-1]}
    all_ids = {i for ids in pushed.values() for i in ids}
    out = []
    for role, ws in conns.items():
        want_ids = {last_own[role]} if role in TENANTS else all_ids
        got: list[dict] = []
        deadline = time.monotonic() + 20
        while not want_ids <= {m["alert"]["id"] for m in got} and time.monotonic() < deadline:
            try:
                msg = json.loads(ws.recv(timeout=1))
            except TimeoutError:
                continue
            if msg.get("type") == "alert":
                got.append(msg)
        ws.__exit__(None, None, None)
        ids = {m["alert"]["id"] for m in got}
        foreign = {i for vid, xs in pushed.items() if vid not in VISIBLE[role] for i in xs}
        # resume from before the pushes: the catch-up is scoped too
        with ws_connect(f"{url}?since={first_sid}", open_timeout=20) as ws2:
            ws2.send(json.dumps({"token": server.tokens[role]}))
            replay = []
            while True:
                msg = json.loads(ws2.recv(timeout=20))
                if msg["type"] == "ready":
                    break
                replay.append(msg["alert"]["id"])
        problems = []
        if not want_ids <= ids:
            problems.append(f"missing own {sorted(want_ids - ids)}")
        if ids & foreign or set(replay) & foreign:
            problems.append(f"foreign pushed {sorted((ids | set(replay)) & foreign)}")
        if role in TENANTS and not set(replay) & set(pushed["VA1" if role != "san" else "SB1"]):
            problems.append("own alerts missing from the ?since= catch-up")
        out.append((role, f"{len(ids)}+{len(replay)}", "; ".join(problems) or None))
    r.close()
    return out
