"""Closed vocabularies of the case workflow that `tracker.vocab` does not (yet) hold.

`tracker.vocab` owns stages (`CaseStage`) and roles (`Role`); the actions that move a case between stages,
priorities, categories and resolutions live here so the workflow can grow without touching the shared
module. Values are the wire/database spelling; `LABELS_ZH` gives the UI label.
"""

from __future__ import annotations

from enum import StrEnum

from tracker.vocab import CaseStage, Role, VehicleKind, ViolationKind

__all__ = [
    "Action", "Priority", "Resolution", "Source", "Clock", "CaseStage", "Role", "SANITATION_KINDS",
    "DEFAULT_CATEGORY", "DEFAULT_URGENT_KINDS", "OPEN_STAGES", "LABELS_ZH",
]


class Action(StrEnum):
    """What a person (or the intake) does to a case. Every action is one row of the case history."""

    ACCEPT = "accept"  # 受理/立案
    DISMISS = "dismiss"  # 不予立案 (false alarm, duplicate)
    DISPATCH = "dispatch"  # 派遣 (also re-dispatch after a return)
    RETURN = "return"  # 退回: the team says the case is not theirs; the centre dispatches again
    START = "start"  # the team takes the case on (处置开始)
    REQUEST_EXTENSION = "request_extension"  # 申请延期
    EXTEND = "extend"  # 延期 granted by the centre
    FEEDBACK = "feedback"  # 反馈: the team reports the result
    REWORK = "rework"  # 返工: the centre rejects the feedback as incomplete; the same team handles again
    VERIFY = "verify"  # 核查: passed → verified; failed → dispatched again (再次派遣)
    CLOSE = "close"  # 结案
    ASSESS = "assess"  # 评价考核


class Priority(StrEnum):
    URGENT = "urgent"  # 紧急
    NORMAL = "normal"  # 一般


class Resolution(StrEnum):
    RESOLVED = "resolved"  # closed after a passed verification
    DISMISSED = "dismissed"  # closed without being accepted


class Source(StrEnum):
    ALERT = "alert"  # opened from a rule's alert (episode)
    MANUAL = "manual"  # reported by a person (采集员, 12345 hotline, patrol)


class Clock(StrEnum):
    """The SLA clock running in each open stage (the stage's time limit)."""

    ACCEPT = "accept"  # collected → accepted/dismissed
    DISPATCH = "dispatch"  # accepted → dispatched
    HANDLE = "handle"  # dispatched/handling → feedback (moved by extensions)
    VERIFY = "verify"  # feedback → verified / re-dispatched / rework
    CLOSE = "close"  # verified → closed


OPEN_STAGES: frozenset[CaseStage] = frozenset(
    {CaseStage.COLLECTED, CaseStage.ACCEPTED, CaseStage.DISPATCHED, CaseStage.HANDLING, CaseStage.FEEDBACK,
     CaseStage.VERIFIED}
)

SANITATION_KINDS: frozenset[str] = frozenset(
    {VehicleKind.SWEEPER, VehicleKind.SPRINKLER, VehicleKind.REFUSE_TRUCK}
)
"""Vehicle kinds a sanitation manager (环卫) supervises."""

DEFAULT_CATEGORY: dict[str, str] = {
    ViolationKind.ROUTE_DEVIATION: "construction_waste",
    ViolationKind.UNSEALED_TRANSPORT: "construction_waste",
    ViolationKind.ILLEGAL_DUMPING: "construction_waste",
    ViolationKind.SUSPECTED_DUMPING: "construction_waste",
    ViolationKind.OUT_OF_WINDOW: "construction_waste",
    ViolationKind.NO_PERMIT: "construction_waste",
    ViolationKind.MIXER_DISCHARGE: "construction_waste",
    ViolationKind.RESTRICTED_ZONE: "traffic",
    ViolationKind.SPEEDING: "traffic",
    ViolationKind.SIGNAL_LOSS: "device",
    ViolationKind.SWEEPING_TOO_FAST: "sanitation",
    ViolationKind.MISSED_SEGMENT: "sanitation",
    ViolationKind.MISSED_COLLECTION: "sanitation",
    ViolationKind.BANNED_HOURS_WORK: "sanitation",
    ViolationKind.NO_TRANSFER_ARRIVAL: "sanitation",
}
"""Violation kind → case category (案件类别), the unit SLA limits are configured by. Cities override it."""

DEFAULT_URGENT_KINDS: frozenset[str] = frozenset(
    {ViolationKind.ILLEGAL_DUMPING, ViolationKind.MIXER_DISCHARGE, ViolationKind.UNSEALED_TRANSPORT}
)
"""Kinds dispatched on the urgent clock by default: pollution in progress that a team can still stop."""

LABELS_ZH: dict[str, str] = {
    "collect": "采集",  # the history row of a case's creation (not a command)
    "escalate": "督办",  # the history row of an SLA escalation (by the system)
    Action.ACCEPT: "立案",
    Action.DISMISS: "不予立案",
    Action.DISPATCH: "派遣",
    Action.RETURN: "退回",
    Action.START: "开始处置",
    Action.REQUEST_EXTENSION: "申请延期",
    Action.EXTEND: "延期",
    Action.FEEDBACK: "反馈",
    Action.REWORK: "返工",
    Action.VERIFY: "核查",
    Action.CLOSE: "结案",
    Action.ASSESS: "评价",
    Priority.URGENT: "紧急",
    Priority.NORMAL: "一般",
    Resolution.RESOLVED: "已办结",
    Resolution.DISMISSED: "不予立案",
    Source.ALERT: "系统报警",
    Source.MANUAL: "人工上报",
    "construction_waste": "渣土/商砼",
    "traffic": "交通秩序",
    "device": "终端设备",
    "sanitation": "环卫作业",
    "other": "其他",
}
