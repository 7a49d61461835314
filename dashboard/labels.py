"""Chinese and English labels of every closed vocabulary the pages show.

Chinese comes from `tracker.vocab.LABELS_ZH` (the single source the rest of the system uses); English is
the dashboard's own wording. A value missing here falls back to its wire spelling, so a new violation kind
shows up (untranslated) instead of disappearing.
"""

from __future__ import annotations

from tracker.vocab import LABELS_ZH, FenceKind, VehicleKind, VehicleStatus, ViolationKind

LABELS_EN: dict[str, str] = {
    VehicleKind.SWEEPER: "Sweeper",
    VehicleKind.SPRINKLER: "Sprinkler",
    VehicleKind.MUCK_TRUCK: "Muck truck",
    VehicleKind.CONCRETE_MIXER: "Concrete mixer",
    VehicleKind.REFUSE_TRUCK: "Refuse truck",
    ViolationKind.ROUTE_DEVIATION: "Route deviation",
    ViolationKind.UNSEALED_TRANSPORT: "Unsealed transport",
    ViolationKind.ILLEGAL_DUMPING: "Illegal dumping",
    ViolationKind.SUSPECTED_DUMPING: "Suspected dumping",
    ViolationKind.OUT_OF_WINDOW: "Outside permitted hours",
    ViolationKind.NO_PERMIT: "No permit",
    ViolationKind.RESTRICTED_ZONE: "Restricted zone",
    ViolationKind.SPEEDING: "Speeding",
    ViolationKind.SIGNAL_LOSS: "Signal loss",
    ViolationKind.MIXER_DISCHARGE: "Illegal discharge",
    ViolationKind.SWEEPING_TOO_FAST: "Working too fast",
    ViolationKind.MISSED_SEGMENT: "Missed segment",
    ViolationKind.MISSED_COLLECTION: "Missed collection",
    ViolationKind.BANNED_HOURS_WORK: "Work in banned hours",
    ViolationKind.NO_TRANSFER_ARRIVAL: "No transfer arrival",
    FenceKind.CONSTRUCTION_SITE: "Construction site",
    FenceKind.DISPOSAL_SITE: "Disposal site",
    FenceKind.BATCHING_PLANT: "Batching plant",
    FenceKind.TRANSFER_STATION: "Transfer station",
    FenceKind.LANDFILL: "Landfill",
    FenceKind.DEPOT: "Depot",
    FenceKind.RESTRICTED_ZONE: "Restricted zone",
    FenceKind.COLLECTION_POINT: "Collection point",
    FenceKind.WORK_AREA: "Work area",
    FenceKind.ROUTE: "Permitted route",
    VehicleStatus.MOVING: "Moving",
    VehicleStatus.STOPPED: "Stopped",
    VehicleStatus.OFFLINE: "Offline",
    VehicleStatus.ALARM: "In alarm",
}


def vocabulary() -> dict[str, dict[str, dict[str, str]]]:
    """{"vehicle_kinds"|"violation_kinds"|"fence_kinds"|"statuses": {value: {"zh": …, "en": …}}}."""
    def table(values: list[str]) -> dict[str, dict[str, str]]:
        return {v: {"zh": LABELS_ZH.get(v, v), "en": LABELS_EN.get(v, v)} for v in values}

    return {
        "vehicle_kinds": table([k.value for k in VehicleKind]),
        "violation_kinds": table([k.value for k in ViolationKind]),
        "fence_kinds": table([k.value for k in FenceKind]),
        "statuses": table([k.value for k in VehicleStatus]),
        "colors": colors(),  # type: ignore[dict-item]
    }


#: Colours shared by the pages (via /api/vocab) and the offline exports, so a screenshot, a live screen
#: and an auditor's report read the same. Picked for contrast on the dark control-room map.
KIND_COLORS: dict[str, list[int]] = {
    VehicleKind.SWEEPER: [56, 201, 132], VehicleKind.SPRINKLER: [64, 156, 255],
    VehicleKind.MUCK_TRUCK: [255, 159, 67], VehicleKind.CONCRETE_MIXER: [190, 130, 255],
    VehicleKind.REFUSE_TRUCK: [240, 214, 72], "unknown": [150, 160, 170],
}
STATUS_COLORS: dict[str, list[int]] = {"alarm": [255, 59, 59], "offline": [100, 110, 122]}
FENCE_COLORS: dict[str, list[int]] = {
    FenceKind.CONSTRUCTION_SITE: [255, 159, 67], FenceKind.DISPOSAL_SITE: [56, 201, 132],
    FenceKind.BATCHING_PLANT: [190, 130, 255], FenceKind.TRANSFER_STATION: [240, 214, 72],
    FenceKind.LANDFILL: [150, 200, 100], FenceKind.DEPOT: [130, 150, 175],
    FenceKind.RESTRICTED_ZONE: [255, 70, 70], FenceKind.COLLECTION_POINT: [240, 214, 72],
    FenceKind.WORK_AREA: [64, 156, 255], FenceKind.ROUTE: [70, 215, 255],
}


def colors() -> dict[str, dict[str, list[int]]]:
    return {"kinds": {str(k): v for k, v in KIND_COLORS.items()},
            "status": dict(STATUS_COLORS), "fences": {str(k): v for k, v in FENCE_COLORS.items()}}
