"""Every closed vocabulary of the application, in one module.

Values are the wire/database spelling (snake_case English); `LABELS_ZH` gives the Chinese label shown in the
UI. Fence kinds come from the geometry library, which owns them, and are re-exported here.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from geofences.kinds import FENCE_LABELS_ZH, Crs, FenceKind, ShapeKind

__all__ = [
    "Crs", "FenceKind", "ShapeKind", "VehicleKind", "ViolationKind", "CaseStage", "LoadState", "DrumState",
    "VehicleStatus", "Role", "Severity", "LABELS_ZH",
]


class VehicleKind(StrEnum):
    SWEEPER = "sweeper"  # 清扫车
    SPRINKLER = "sprinkler"  # 洒水车
    MUCK_TRUCK = "muck_truck"  # 渣土车
    CONCRETE_MIXER = "concrete_mixer"  # 商砼车
    REFUSE_TRUCK = "refuse_truck"  # 垃圾运输车


class ViolationKind(StrEnum):
    ROUTE_DEVIATION = "route_deviation"  # 偏离路线
    UNSEALED_TRANSPORT = "unsealed_transport"  # 未密闭运输
    ILLEGAL_DUMPING = "illegal_dumping"  # 偷倒乱倒 (sensor-confirmed)
    SUSPECTED_DUMPING = "suspected_dumping"  # 疑似偷倒 (no sensor)
    OUT_OF_WINDOW = "out_of_window"  # 非核准时段
    NO_PERMIT = "no_permit"  # 无证运输
    RESTRICTED_ZONE = "restricted_zone"  # 进入禁行区
    SPEEDING = "speeding"  # 超速
    SIGNAL_LOSS = "signal_loss"  # 离线/屏蔽
    MIXER_DISCHARGE = "mixer_discharge"  # 商砼车违规卸料
    SWEEPING_TOO_FAST = "sweeping_too_fast"  # 超速作业
    MISSED_SEGMENT = "missed_segment"  # 漏扫/漏洒
    MISSED_COLLECTION = "missed_collection"  # 漏收
    BANNED_HOURS_WORK = "banned_hours_work"  # 高峰时段作业
    NO_TRANSFER_ARRIVAL = "no_transfer_arrival"  # 未到中转站


class CaseStage(StrEnum):
    """The seven stages of the digital city-management workflow, then assessment."""

    COLLECTED = "collected"  # 采集
    ACCEPTED = "accepted"  # 受理/立案
    DISPATCHED = "dispatched"  # 派遣
    HANDLING = "handling"  # 处置
    FEEDBACK = "feedback"  # 反馈
    VERIFIED = "verified"  # 核查
    CLOSED = "closed"  # 结案
    ASSESSED = "assessed"  # 评价考核


class LoadState(IntEnum):
    """JT/T 808 status bits 8-9: 00 empty, 01 half, 11 full (10 is reserved and read as unknown)."""

    EMPTY = 0
    HALF = 1
    FULL = 3


class DrumState(IntEnum):
    STOPPED = 0
    FORWARD = 1  # mixing / carrying
    REVERSE = 2  # discharging


class VehicleStatus(StrEnum):
    MOVING = "moving"
    STOPPED = "stopped"
    OFFLINE = "offline"
    ALARM = "alarm"


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"  # city supervisor
    ENFORCEMENT = "enforcement"  # district-scoped
    OPERATOR = "operator"  # fleet operator, company-scoped
    SANITATION = "sanitation"  # sanitation manager
    AUDITOR = "auditor"  # read-only, everything


class Severity(StrEnum):
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"


LABELS_ZH: dict[str, str] = {
    **{str(k): v for k, v in FENCE_LABELS_ZH.items()},
    VehicleKind.SWEEPER: "清扫车",
    VehicleKind.SPRINKLER: "洒水车",
    VehicleKind.MUCK_TRUCK: "渣土车",
    VehicleKind.CONCRETE_MIXER: "商砼车",
    VehicleKind.REFUSE_TRUCK: "垃圾运输车",
    ViolationKind.ROUTE_DEVIATION: "偏离路线",
    ViolationKind.UNSEALED_TRANSPORT: "未密闭运输",
    ViolationKind.ILLEGAL_DUMPING: "偷倒乱倒",
    ViolationKind.SUSPECTED_DUMPING: "疑似偷倒",
    ViolationKind.OUT_OF_WINDOW: "非核准时段运输",
    ViolationKind.NO_PERMIT: "无证运输",
    ViolationKind.RESTRICTED_ZONE: "进入禁行区",
    ViolationKind.SPEEDING: "超速",
    ViolationKind.SIGNAL_LOSS: "信号丢失",
    ViolationKind.MIXER_DISCHARGE: "违规卸料",
    ViolationKind.SWEEPING_TOO_FAST: "超速作业",
    ViolationKind.MISSED_SEGMENT: "漏扫漏洒",
    ViolationKind.MISSED_COLLECTION: "漏收",
    ViolationKind.BANNED_HOURS_WORK: "高峰时段作业",
    ViolationKind.NO_TRANSFER_ARRIVAL: "未到中转站",
    CaseStage.COLLECTED: "采集",
    CaseStage.ACCEPTED: "立案",
    CaseStage.DISPATCHED: "派遣",
    CaseStage.HANDLING: "处置",
    CaseStage.FEEDBACK: "反馈",
    CaseStage.VERIFIED: "核查",
    CaseStage.CLOSED: "结案",
    CaseStage.ASSESSED: "评价",
    VehicleStatus.MOVING: "行驶",
    VehicleStatus.STOPPED: "停车",
    VehicleStatus.OFFLINE: "离线",
    VehicleStatus.ALARM: "报警",
}
