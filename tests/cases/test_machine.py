"""The case state machine, exhaustively: every action × every stage × every role against a table written
out independently here, then the effects of each action, then random walks keeping the invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from tracker.cases.machine import (
    InvalidCommand, InvalidTransition, NotAllowed, allowed_actions, apply, can_report, open_case,
)
from tracker.cases.model import Actor, Case, Command
from tracker.cases.sla import SlaPolicy, due_escalations
from tracker.cases.vocab import Action, CaseStage, Resolution, Role

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
POLICY = SlaPolicy()

# Written out by hand from the seed workflow (not derived from machine.RULES): action → (stages, roles).
C, E = {"admin", "supervisor"}, {"enforcement"}
EXPECTED: dict[str, tuple[set[str], set[str], str | None]] = {
    # action: (stages it may leave, roles that may take it, stage it leads to (None = unchanged))
    "accept": ({"collected"}, C, "accepted"),
    "dismiss": ({"collected"}, C, "closed"),
    "dispatch": ({"accepted"}, C, "dispatched"),
    "return": ({"dispatched", "handling"}, E, "accepted"),
    "start": ({"dispatched"}, E, "handling"),
    "request_extension": ({"dispatched", "handling"}, E, None),
    "extend": ({"dispatched", "handling"}, C, None),
    "feedback": ({"handling"}, E, "feedback"),
    "rework": ({"feedback"}, C, "handling"),
    "verify": ({"feedback"}, C, "verified"),  # with passed=True
    "close": ({"verified"}, C, "closed"),
    "assess": ({"closed"}, C, "assessed"),
}
ARGS = {"note": "n", "team": "team-1", "passed": True, "minutes": 30.0, "rating": 4}

TEAM1 = Actor(username="t1", role="enforcement", districts=frozenset({"d1"}), team="team-1")


def actor(role: str) -> Actor:
    if role == "enforcement":
        return TEAM1
    return Actor(username=role, role=role)


def case_at(stage: str, **kw) -> Case:
    base = dict(id=7, source="alert", kind="illegal_dumping", category="construction_waste",
                priority="urgent", stage=stage, district="d1", team="team-1", created_at=T0,
                created_by="system", stage_since=T0, stage_due_at=T0 + timedelta(minutes=10),
                due_at=T0 + timedelta(hours=4), accepted_at=T0,
                resolution=Resolution.RESOLVED if stage in ("closed", "assessed") else None)
    base.update(kw)
    return Case(**base)


def test_every_action_stage_role_combination():
    covered = 0
    for action, (stages, roles, to_stage) in EXPECTED.items():
        for stage in CaseStage:
            for role in Role:
                case = case_at(stage.value)
                cmd = Command(action=action, **ARGS)
                covered += 1
                if role.value not in roles:
                    with pytest.raises(NotAllowed):
                        apply(case, cmd, actor(role.value), T0, POLICY)
                elif stage.value not in stages:
                    with pytest.raises(InvalidTransition):
                        apply(case, cmd, actor(role.value), T0, POLICY)
                else:
                    new, ev = apply(case, cmd, actor(role.value), T0 + timedelta(minutes=1), POLICY)
                    assert new.stage == (to_stage or stage.value), (action, stage, role)
                    assert new.version == case.version + 1
                    assert (ev.action, ev.from_stage, ev.to_stage) == (action, stage.value, new.stage)
                    assert ev.actor == actor(role.value).username
                    assert action in allowed_actions(case, actor(role.value))
    assert covered == len(Action) * len(CaseStage) * len(Role) == 576
    assert set(EXPECTED) == {a.value for a in Action}


@pytest.mark.parametrize("action", ["start", "feedback", "return", "request_extension"])
def test_team_actions_only_for_the_case_team(action):
    stage = "handling" if action == "feedback" else "dispatched"
    other_team = Actor(username="t2", role="enforcement", districts=frozenset({"d1"}), team="team-2")
    other_district = Actor(username="t3", role="enforcement", districts=frozenset({"d2"}))
    same_district = Actor(username="t4", role="enforcement", districts=frozenset({"d1"}))
    for who in (other_team, other_district):
        with pytest.raises(NotAllowed):
            apply(case_at(stage), Command(action=action, **ARGS), who, T0, POLICY)
        assert action not in allowed_actions(case_at(stage), who)
    apply(case_at(stage), Command(action=action, **ARGS), same_district, T0, POLICY)  # no team: by district
    with pytest.raises(NotAllowed):  # an undispatched case belongs to no team
        apply(case_at(stage, team=None), Command(action=action, **ARGS), same_district, T0, POLICY)


def test_unknown_action_and_missing_arguments_are_invalid_commands():
    sup = actor("supervisor")
    with pytest.raises(InvalidCommand):
        apply(case_at("collected"), Command(action="teleport"), sup, T0, POLICY)
    cases = [
        ("dismiss", "collected", {}, sup),
        ("dispatch", "accepted", {}, sup),  # no team given and none routed
        ("verify", "feedback", {}, sup),  # passed missing
        ("verify", "feedback", {"passed": False}, sup),  # failed without a note
        ("extend", "handling", {"minutes": 0}, sup),
        ("extend", "handling", {"minutes": 10_000}, sup),  # above max_extension_min
        ("assess", "closed", {"rating": 9}, sup),
        ("accept", "collected", {"priority": "whenever"}, sup),
        ("feedback", "handling", {}, TEAM1),
        ("return", "dispatched", {}, TEAM1),
        ("request_extension", "handling", {"note": "x"}, TEAM1),
        ("rework", "feedback", {}, sup),
    ]
    for action, stage, args, who in cases:
        case = case_at(stage, team=None if action == "dispatch" else "team-1")
        with pytest.raises(InvalidCommand):
            apply(case, Command(action=action, **args), who, T0, POLICY)


def test_dismissed_case_is_never_assessed():
    case = case_at("closed", resolution=Resolution.DISMISSED)
    with pytest.raises(InvalidTransition):
        apply(case, Command(action="assess", rating=3), actor("supervisor"), T0, POLICY)
    assert allowed_actions(case, actor("supervisor")) == []


def _open(kind="illegal_dumping", priority="urgent"):
    case, ev = open_case(source="alert", kind=kind, category="construction_waste", priority=priority,
                         actor=Actor.system(), now=T0, policy=POLICY, district="d1", team="team-1",
                         alert_id="a1")
    return msgspec.structs.replace(case, id=1), ev


def test_full_path_with_failed_verification_return_rework_and_extension():
    sup, team = actor("supervisor"), TEAM1
    c, ev = _open()
    assert (c.stage, ev.action, c.stage_due_at) == ("collected", "collect", T0 + timedelta(minutes=5))
    t = T0
    steps = [
        (sup, Command(action="accept"), "accepted"),
        (sup, Command(action="dispatch"), "dispatched"),
        (team, Command(action="return", note="not ours"), "accepted"),
        (sup, Command(action="dispatch", team="team-1"), "dispatched"),
        (team, Command(action="start"), "handling"),
        (team, Command(action="request_extension", note="crane needed", minutes=60), "handling"),
        (sup, Command(action="extend", minutes=60), "handling"),
        (team, Command(action="feedback", note="cleaned"), "feedback"),
        (sup, Command(action="rework", note="photo missing"), "handling"),
        (team, Command(action="feedback", note="cleaned, photo attached", data={"photos": 2}), "feedback"),
        (sup, Command(action="verify", passed=False, note="debris remains"), "dispatched"),
        (team, Command(action="start"), "handling"),
        (team, Command(action="feedback", note="all removed"), "feedback"),
        (sup, Command(action="verify", passed=True), "verified"),
        (sup, Command(action="close"), "closed"),
        (sup, Command(action="assess", rating=4), "assessed"),
    ]
    for who, cmd, stage in steps:
        t += timedelta(minutes=3)
        c, ev = apply(c, cmd, who, t, POLICY)
        assert c.stage == stage, cmd.action
    assert (c.dispatch_count, c.return_count, c.rework_count, c.verify_fail_count, c.extension_count) == (3, 1, 1, 1, 1)
    assert c.first_dispatched_at == T0 + timedelta(minutes=6)
    assert c.resolution == "resolved" and c.rating == 4 and c.version == len(steps)
    # budget from acceptance (urgent: 10 + 120 + 60 min) plus the 60 min extension
    assert c.due_at == T0 + timedelta(minutes=3) + timedelta(minutes=190 + 60)
    assert c.on_time is True


def test_close_after_the_deadline_is_not_on_time():
    c = case_at("verified", due_at=T0)
    new, ev = apply(c, Command(action="close"), actor("supervisor"), T0 + timedelta(seconds=1), POLICY)
    assert new.on_time is False and ev.details == {"on_time": False}
    new, _ = apply(c, Command(action="close"), actor("supervisor"), T0, POLICY)
    assert new.on_time is True


def test_clocks_follow_the_stage_and_escalate_once_per_level():
    c, _ = _open(priority="normal")
    sup = actor("supervisor")
    c, _ = apply(c, Command(action="accept"), sup, T0, POLICY)
    assert c.stage_due_at == T0 + timedelta(minutes=30) and c.due_at == T0 + timedelta(minutes=30 + 1440 + 240)
    assert due_escalations([c], T0 + timedelta(minutes=29), POLICY) == []
    [e] = due_escalations([c], T0 + timedelta(minutes=30), POLICY)
    assert (e.level, e.clock, e.overdue_min) == (1, "dispatch", 0.0)
    [e] = due_escalations([c], T0 + timedelta(minutes=200), POLICY)
    assert e.level == 3
    seen = msgspec.structs.replace(c, escalation=3)
    assert due_escalations([seen], T0 + timedelta(days=9), POLICY) == []
    c2, _ = apply(seen, Command(action="dispatch", team="x"), sup, T0 + timedelta(minutes=40), POLICY)
    assert c2.escalation == 0 and c2.stage_due_at == T0 + timedelta(minutes=40 + 1440)
    c3, _ = apply(c2, Command(action="extend", minutes=30), sup, T0 + timedelta(minutes=41), POLICY)
    assert c3.stage_due_at == c2.stage_due_at + timedelta(minutes=30) and c3.due_at == c2.due_at + timedelta(minutes=30)


def test_category_overrides_change_limits():
    policy = SlaPolicy.model_validate({"by_category": {"sanitation": {"normal": {"dispatch": 120}}}})
    assert policy.limits("sanitation", "normal").dispatch == 120
    assert policy.limits("sanitation", "urgent").dispatch == 10
    assert policy.limits("traffic", "normal").dispatch == 30


def test_who_may_report():
    sanit = Actor(username="s", role="sanitation")
    assert can_report(TEAM1, district="d1", category="traffic", vehicle_kind=None)
    assert not can_report(TEAM1, district="d2", category="traffic", vehicle_kind=None)
    assert not can_report(TEAM1, district=None, category="traffic", vehicle_kind=None)
    assert can_report(sanit, district=None, category="sanitation", vehicle_kind=None)
    assert can_report(sanit, district=None, category="other", vehicle_kind="sweeper")
    assert not can_report(sanit, district=None, category="construction_waste", vehicle_kind="muck_truck")
    for role in ("operator", "auditor"):
        assert not can_report(Actor(username=role, role=role), district="d1", category="traffic", vehicle_kind=None)
    with pytest.raises(NotAllowed):
        open_case(source="manual", kind="other", category="traffic", priority="normal",
                  actor=Actor(username="o", role="operator"), now=T0, policy=POLICY)


ACTORS = [actor(r.value) for r in Role] + [Actor(username="t2", role="enforcement", team="team-2")]
COMMANDS = [Command(action=a.value, **ARGS) for a in Action] + [
    Command(action="verify", passed=False, note="again"), Command(action="dispatch", team="team-2")]


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ACTORS), st.sampled_from(COMMANDS)), max_size=40))
def test_random_walks_keep_the_invariants(walk):
    c, _ = _open()
    t = T0
    for who, cmd in walk:
        t += timedelta(minutes=7)
        before = c
        try:
            c, ev = apply(c, cmd, who, t, POLICY)
        except (NotAllowed, InvalidTransition, InvalidCommand):
            assert c is before
            continue
        assert c.version == before.version + 1 and ev.at == t
        assert who.role != "auditor" and who.role != "operator"
        if before.stage in ("closed", "assessed"):
            assert cmd.action == "assess" and before.stage == "closed"
        assert c.dispatch_count >= c.verify_fail_count
        assert c.dispatch_count >= c.return_count
        if c.stage in ("dispatched", "handling", "feedback", "verified"):
            assert c.team and c.first_dispatched_at is not None
        if c.stage == "closed":
            assert c.closed_at == t or before.stage == "closed"
        if c.resolution == Resolution.RESOLVED:
            assert c.verified_at is not None and c.feedback_at is not None
        if c.stage not in ("closed", "assessed"):
            assert c.stage_due_at is not None and c.stage_due_at >= c.stage_since
        assert c.extension_min <= POLICY.max_extension_min
