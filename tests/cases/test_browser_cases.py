"""The cases page in headless Chromium against the real app (Redis, PostgreSQL, uvicorn, the periodic
intake/escalation scan): an overdue escalation reaches another page as a toast and a badge, the seeded case
is listed and filtered, the admin accepts and dispatches it through the buttons and sees the stage change
and the history grow, the evidence map and package load, the statistics and company scores show the
case, both CSV exports download — and the browser never asks anything of a non-local host."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from scenarios.runtime import Runtime
from tests.cases.conftest import D1, D2, IN_D1, add_alert, add_track
from tests.dashboard.conftest import CHROMIUM, LOCAL_HOSTS, Browser, free_port
from tracker.config import Settings
from tracker.edges import users
from tracker.edges.refstore import save_vehicles
from tracker.reference import Vehicle

pytestmark = pytest.mark.browser

ADMIN, OPERATOR, PASSWORD = "case-admin", "case-op-b", "cases page test password"
OCCURRED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
MONTH = (OCCURRED + timedelta(hours=8)).strftime("%Y-%m")  # the city's local month (UTC+8)
# the accept clock runs out 3 s after collection (escalation level 1); the scan runs every second; alerts are
# opened as cases by the test (no automatic intake of the seeded kind)
CASES = {
    "scan_interval_s": 1, "intake_kinds": ["speeding"], "evidence_minutes": 3,
    "sla": {"normal": {"accept": 0.05}, "urgent": {"accept": 0.05}},
    "routing": {"districts": {"d1": {"name": "West", "polygon": D1}, "d2": {"name": "East", "polygon": D2}},
                "rules": [{"district": "d1", "team": "team-d1"}, {"district": "d2", "team": "team-d2"}]},
}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, services) -> Iterator[Runtime]:
    from tests.conftest import scratch_database

    with scratch_database(services, "fwk") as url:
        yield from _runtime(tmp_path_factory, services, url)


def _runtime(tmp_path_factory: pytest.TempPathFactory, services, url: str) -> Iterator[Runtime]:
    with psycopg.connect(url, autocommit=True) as conn:
        save_vehicles(conn, [Vehicle(id="VA1", kind="muck_truck", company="A", district="d1", plate="粤B-A1"),
                             Vehicle(id="VB1", kind="muck_truck", company="B", district="d2", plate="粤B-B1")])
        users.create_user(conn, "test", ADMIN, "admin", password=PASSWORD, display_name="案件管理员")
        users.create_user(conn, "test", OPERATOR, "operator", password=PASSWORD, companies=["B"])
    s = Settings(data_dir=tmp_path_factory.mktemp("fw-cases-page"), redis_url=services.redis_url, database_url=url,
                 cases=CASES)
    s.bus.prefix = f"k{uuid.uuid4().hex[:8]}"
    s.http.port = free_port()
    rt = Runtime(s)
    rt.start_services()
    rt.start_server()
    try:
        yield rt
    finally:
        rt.stop()


def _login(runtime: Runtime, user: str) -> str:
    r = httpx.post(f"{runtime.base_url}/api/auth/login", json={"username": user, "password": PASSWORD}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["token"]


@pytest.fixture(scope="module")
def token(runtime: Runtime) -> str:
    return _login(runtime, ADMIN)


@pytest.fixture(scope="module")
def pw() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required for the browser tests (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(pw, token: str) -> Iterator[Browser]:
    b = Browser(pw, {"width": 1600, "height": 950})
    b.login(token)
    yield b
    b.close()


def _state(page, expr: str, timeout_ms: int = 60_000) -> None:
    """Wait until `expr` (over `s` = window.fleetwatch) holds; on timeout say what the page state was."""
    try:
        page.wait_for_function(f"() => {{ const s = window.fleetwatch; try {{ return !!({expr}); }} "
                               f"catch (e) {{ return false; }} }}", timeout=timeout_ms)
    except Exception as exc:
        got = page.evaluate("() => JSON.stringify({cases: (window.fleetwatch || {}).cases, "
                            "sockets: (window.fleetwatch || {}).sockets})")
        raise AssertionError(f"{expr} did not hold: {got}") from exc


def test_the_cases_page_lists_acts_and_reports(runtime: Runtime, browser: Browser, token: str, tmp_path: Path,
                                               artifacts_dir: Path):
    base = runtime.base_url
    api = httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"})
    assert runtime.services is not None
    with psycopg.connect(runtime.services.database_url, autocommit=True) as conn:
        add_track(conn, "VA1", IN_D1[0] - 0.003, IN_D1[1], OCCURRED, minutes=10)
        alert_id = add_alert(conn, "illegal_dumping", "VA1", *IN_D1, t0=OCCURRED)

    # another page, open before the case exists: the escalation arrives there as a toast and a badge
    other = browser.page()
    page = browser.page()
    try:
        other.goto(f"{base}/stats?static=1")
        _state(other, "s.casesReady")
        assert other.locator('header nav a[data-p="cases"]').count() == 1
        r = api.post("/api/cases", json={"alert_id": alert_id})
        assert r.status_code == 201, r.text
        case = r.json()
        cid = case["id"]
        assert (case["stage"], case["team"], case["company"]) == ("collected", "team-d1", "A")
        _state(other, f"s.caseToasts > 0 && s.casesReceived.includes({cid})", 60_000)
        toast = other.locator(".toast.case-escalation").first.inner_text()
        assert f"#{cid}" in toast and "案件督办" in toast, toast
        other.wait_for_function("() => document.getElementById('case-badge').textContent.includes('1')", timeout=30_000)
        assert other.locator("#case-badge").inner_text().startswith("超期案件")
        assert api.get("/api/cases/counts").json() == {"open": 1, "overdue": 1}

        # the list: the case is there, and the overdue filter keeps it (its accept clock has run out)
        page.goto(f"{base}/cases?static=1")
        _state(page, f"s.cases && s.cases.loads > 0 && s.cases.ids.includes({cid})")
        row = page.locator(f'#rows tr[data-id="{cid}"]')
        assert "待受理" in row.inner_text() and "超期" in row.inner_text()
        page.check('#filters input[name="overdue"]')
        _state(page, "s.cases.loads > 1")
        assert page.evaluate("() => window.fleetwatch.cases.ids") == [cid]
        page.select_option('#filters select[name="company"]', "B")  # another company: nothing
        _state(page, "s.cases.loads > 2 && s.cases.ids.length === 0")
        page.click("#reset-filters")
        _state(page, f"s.cases.loads > 3 && s.cases.ids.includes({cid})")

        # the detail: history (collected, escalated by the scan) and the admin's actions as buttons
        row.click()
        _state(page, f"s.cases.detail && s.cases.detail.id === {cid}")
        detail = page.evaluate("() => window.fleetwatch.cases.detail")
        assert detail["stage"] == "collected" and sorted(detail["allowed"]) == ["accept", "dismiss"]
        assert detail["history"][:2] == ["collect", "escalate"]
        assert page.locator("#case-stage").inner_text() == "待受理"
        _state(page, "s.cases.mapLoaded > 0", 60_000)
        assert page.evaluate("() => document.getElementById('case-map').naturalWidth") > 100

        # a refused action says why and changes nothing (dismissing needs a note)
        page.click('#case-actions button[data-action="dismiss"]')
        page.wait_for_function("() => document.querySelector('#case-msg.bad') && "
                               "document.querySelector('#case-msg').textContent.includes('note')", timeout=30_000)
        assert page.evaluate("() => window.fleetwatch.cases.errors.splice(0)")[0].startswith("dismiss: 422")
        assert api.get(f"/api/cases/{cid}").json()["stage"] == "collected"

        # a malformed entry on the cases stream is skipped; the pushes after it still arrive (the badge below)
        import redis

        rc = redis.Redis.from_url(runtime.services.redis_url)
        rc.xadd(f"{runtime.settings.bus.prefix}:cases", {b"x": b"no e field"})
        rc.xadd(f"{runtime.settings.bus.prefix}:cases", {b"e": b"{not json"})
        rc.close()

        # act through the UI: accept, then dispatch to the routed team; the stage changes in place and in the list
        page.click('#case-actions button[data-action="accept"]')
        _state(page, "s.cases.detail.stage === 'accepted'")
        assert page.locator("#case-stage").inner_text() == "已立案"
        _state(page, "s.cases.acted === 1")
        page.wait_for_function(f"() => document.querySelector('#rows tr[data-id=\"{cid}\"]').textContent.includes('已立案')",
                               timeout=30_000)
        page.click('#case-actions button[data-action="dispatch"]')
        _state(page, "s.cases.detail.stage === 'dispatched'")
        assert page.evaluate("() => window.fleetwatch.cases.detail.history") == ["collect", "escalate", "accept",
                                                                                    "dispatch"]
        assert "team-d1" in page.inner_text("#case-history")
        # the centre grants extensions here; starting and returning are the team's, so no such buttons
        assert page.locator('#case-actions button[data-action="extend"]').count() == 1
        assert page.locator('#case-actions button[data-action="start"], #case-actions button[data-action="return"]'
                            ).count() == 0
        server_view = api.get(f"/api/cases/{cid}").json()
        assert (server_view["stage"], server_view["team"]) == ("dispatched", "team-d1")
        # no longer overdue (a fresh handling clock): the other page's badge clears on the push
        other.wait_for_function("() => document.getElementById('case-badge').textContent === ''", timeout=30_000)
        assert api.get("/api/cases/counts").json() == {"open": 1, "overdue": 0}

        page.screenshot(path=str(artifacts_dir / "cases-page.png"))

        # the evidence package downloads as a zip with the map in it
        with page.expect_download() as dl:
            page.click("#evidence-zip")
        path = tmp_path / "evidence.zip"
        dl.value.save_as(path)
        names = zipfile.ZipFile(path).namelist()
        assert any(n.endswith(".png") for n in names) and any(n.endswith(".json") for n in names), names

        # statistics and company scores
        page.click('.tabs button[data-tab="stats"]')
        _state(page, "s.cases.statsRendered > 0 && s.cases.scoresRendered > 0")
        page.fill("#scores-month", MONTH)
        page.dispatch_event("#scores-month", "change")
        _state(page, "s.cases.scores && s.cases.scores.some((r) => r.company === 'A')")
        _state(page, "s.cases.stats && s.cases.stats.keys.includes('team-d1') && s.cases.stats.all.dispatched === 1")
        kpis = page.inner_text("#kpis")
        assert "派遣率" in kpis and "100.0%" in kpis and "结案率" in kpis and "返工率" in kpis, kpis
        assert "team-d1" in page.inner_text("#stats-table")
        scores = {r["company"]: r for r in page.evaluate("() => window.fleetwatch.cases.scores")}
        assert (scores["A"]["score"], scores["A"]["grade"], scores["A"]["list"]) == (90, "A", None)  # 1 dumping: -10
        assert (scores["B"]["grade"], scores["B"]["list"]) == ("A", "red")
        assert "红名单" in page.inner_text("#scores-table")
        page.screenshot(path=str(artifacts_dir / "cases-stats.png"))
        page.select_option("#stats-by", "district")
        _state(page, "s.cases.stats.by === 'district' && s.cases.stats.keys.includes('d1')")
        with page.expect_download() as dl:
            page.click("#stats-csv")
        rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8-sig"))))
        assert dl.value.suggested_filename == "case-stats-district.csv"
        assert [(r["key"], r["accepted"], r["dispatched"]) for r in rows] == [("d1", "1", "1")]
        with page.expect_download() as dl:
            page.click("#scores-csv")
        rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8-sig"))))
        assert {(r["company"], r["grade"], r["list"]) for r in rows} == {("A", "A", ""), ("B", "A", "red")}

        # English labels re-render
        before = page.evaluate("() => window.fleetwatch.cases.statsRendered")
        page.click("#lang")
        _state(page, f"s.cases.statsRendered > {before}")
        assert "Dispatch rate" in page.inner_text("#kpis")
        page.click("#lang")

        assert not page.evaluate("() => window.fleetwatch.cases.errors")
        assert not browser.errors, browser.errors
        dropped = page.evaluate("() => window.fleetwatch.sockets") + other.evaluate("() => window.fleetwatch.sockets")
        assert not dropped, dropped
        assert browser.hosts <= LOCAL_HOSTS, browser.hosts
        assert all(u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "blob:", "data:")) for u in browser.requests), \
            [u for u in browser.requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1"))][:5]
    finally:
        page.close()
        other.close()
        api.close()


def test_an_operator_sees_only_its_company_and_no_buttons(runtime: Runtime, pw, token: str):
    """The page offers what the server allows: a fleet operator of company B sees B's case and may not act."""
    api = httpx.Client(base_url=runtime.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"})
    made = {}
    for vehicle in ("VB1", "VA1"):
        r = api.post("/api/cases", json={"kind": "speeding", "vehicle_id": vehicle, "description": "manual report"})
        assert r.status_code == 201, r.text
        made[vehicle] = r.json()["id"]
    cid_b = made["VB1"]
    foreign = [c["id"] for c in api.get("/api/cases").json() if c["company"] == "A"]
    assert made["VA1"] in foreign
    op_token = _login(runtime, OPERATOR)
    opened = httpx.get(f"{runtime.base_url}/api/cases/counts", headers={"Authorization": f"Bearer {op_token}"},
                       timeout=60).json()["open"]
    assert (opened, api.get("/api/cases/counts").json()["open"]) == (1, len(api.get("/api/cases?open=true").json()))
    b = Browser(pw, {"width": 1400, "height": 900})
    b.login(op_token)
    page = b.page()
    try:
        page.goto(f"{runtime.base_url}/cases?static=1#case={cid_b}")
        _state(page, f"s.cases && s.cases.loads > 0 && s.cases.detail && s.cases.detail.id === {cid_b}")
        ids = page.evaluate("() => window.fleetwatch.cases.ids")
        assert cid_b in ids and not set(ids) & set(foreign), ids
        assert page.evaluate("() => window.fleetwatch.cases.detail.allowed") == []
        assert page.locator("#case-actions button").count() == 0
        assert "无可办理操作" in page.inner_text("#case-actions")
        assert not b.errors, b.errors
        assert b.hosts <= LOCAL_HOSTS, b.hosts
    finally:
        page.close()
        b.close()
        api.close()
