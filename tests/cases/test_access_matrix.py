"""Done-when 2: every endpoint and websocket this package adds, tried as every role (and anonymously)
against *foreign* company/district ids: no cross-tenant read or write succeeds (401/403/404, or a list
that leaves the foreign rows out), the auditor never writes, and the matrix actually covered is printed
(and written to artifacts/cases-access-matrix.txt) so the lead can extend it to every endpoint.

Tenants: enforcement `enf1` owns district d1; operator `opA` owns company A; sanitation `san` owns the
sanitation vehicles (sweeper SB1) and sanitation cases. Their foreign objects are the others' cases,
alerts, vehicles, companies and districts. admin, supervisor and auditor are city-wide.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

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
