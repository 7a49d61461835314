"""A `DayReport` as bytes: CSV / Parquet (one table), Excel (every table, one sheet each) or a PNG map.

Pure: returns bytes, writes nothing. CSV carries a UTF-8 BOM so Excel on a Chinese desktop opens road and
company names correctly. The map colours each planned segment by its status — covered green, partial amber,
missed red, unverified (a data gap) grey, late blue — and marks collection points visited / missed.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl

from tracker.coverage.report import DIMENSIONS, DayReport

FORMATS = ("csv", "xlsx", "parquet", "png")
TABLES = ("segments", "points", "rounds", "vehicles", "companies", *(d for d in DIMENSIONS if d != "segment"))
STATUS_COLOURS = {"covered": "#2e9e5b", "partial": "#f0a020", "missed": "#d7263d", "unverified": "#8a8f98",
                  "late": "#3a7bd5", "pending": "#6c5ce7"}
SHEET_NAMES = {"companies": "companies 企业", "segments": "segments 路段", "road": "roads 道路",
               "vehicle": "vehicles 车辆", "district": "districts 辖区", "shift": "shifts 班次",
               "points": "points 收集点", "rounds": "rounds 收运趟", "vehicles": "vehicle_km 作业里程"}


def table(rep: DayReport, name: str) -> pl.DataFrame:
    if name == "segments":
        return rep.segments
    if name == "points":
        return rep.points
    if name == "rounds":
        return rep.rounds()
    if name == "vehicles":
        return rep.vehicles
    if name == "companies":
        return rep.companies()
    if name in DIMENSIONS:
        return rep.by(name)
    raise ValueError(f"table must be one of {TABLES}")


def render(rep: DayReport, fmt: str, table_name: str = "segments", title: str | None = None) -> bytes:
    if fmt == "csv":
        return b"\xef\xbb\xbf" + table(rep, table_name).write_csv().encode("utf-8")
    if fmt == "parquet":
        buf = io.BytesIO()
        table(rep, table_name).write_parquet(buf)
        return buf.getvalue()
    if fmt == "xlsx":
        return xlsx(rep)
    if fmt == "png":
        return png(rep, title)
    raise ValueError(f"format must be one of {FORMATS}")


def xlsx(rep: DayReport) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    with xlsxwriter.Workbook(buf, {"in_memory": True, "nan_inf_to_errors": True}) as wb:
        head = wb.add_format({"bold": True, "bg_color": "#dde6f0"})
        summary = wb.add_worksheet("summary 汇总")
        for i, (k, v) in enumerate(rep.summary().items()):
            summary.write(i, 0, k, head)
            summary.write(i, 1, v)
        for name in ("companies", "segments", "road", "vehicle", "district", "shift", "vehicles", "points",
                     "rounds"):
            df = table(rep, name)
            df.write_excel(workbook=wb, worksheet=SHEET_NAMES[name], autofit=True, header_format={"bold": True})
    return buf.getvalue()


def png(rep: DayReport, title: str | None = None, width_px: int = 1400) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    worst = _worst_status(rep.segments)
    fig, ax = plt.subplots(figsize=(width_px / 100, width_px / 100 * 0.75), dpi=100)
    lines, colours = [], []
    for sid, status in worst.items():
        coords = rep.geometry.get(sid)
        if coords:
            lines.append(coords)
            colours.append(STATUS_COLOURS.get(status, "#444444"))
    if lines:
        ax.add_collection(LineCollection(lines, colors=colours, linewidths=2.2))
    if rep.points.height:
        pts = rep.points.group_by("point_id").agg((pl.col("verdict") == "missed").any().alias("missed"))
        for pid, missed in pts.iter_rows():
            ll = rep.point_lonlat.get(pid)
            if ll and ll[0] == ll[0]:
                ax.plot(ll[0], ll[1], marker="o", ms=4 if not missed else 7,
                        color="#d7263d" if missed else "#2e9e5b", mec="white", mew=0.5)
    ax.autoscale()
    ax.set_aspect(1 / max(0.2, __import__("math").cos(__import__("math").radians(_mid_lat(lines)))))
    ax.set_xlabel("lon")
    ax.set_ylabel("lat")
    s = rep.summary()
    ax.set_title(title or f"Sanitation coverage {rep.day.isoformat()} — {s.get('coverage_pct', 0) or 0:.1f}% of "
                 f"{s.get('planned_km', 0) or 0:.1f} planned km; {s.get('missed', 0)} missed segment-windows; "
                 f"points visited {s.get('visit_rate_pct') or 0:.1f}%", fontsize=10)
    handles = [Line2D([0], [0], color=c, lw=3, label=k) for k, c in STATUS_COLOURS.items()]
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.85)
    ax.grid(True, lw=0.3, alpha=0.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _worst_status(segs: pl.DataFrame) -> dict[str, str]:
    """A segment's colour for the day: its worst window (missed > unverified > partial > late > covered)."""
    rank = {"missed": 5, "unverified": 4, "partial": 3, "late": 2, "pending": 2, "covered": 1}
    out: dict[str, tuple[int, str]] = {}
    for sid, status, verdict in segs.select("segment_id", "status", "verdict").iter_rows():
        st = "missed" if verdict == "missed" else ("late" if verdict == "late" else status)
        r = rank.get(st, 0)
        if sid not in out or r > out[sid][0]:
            out[sid] = (r, st)
    return {k: v[1] for k, v in out.items()}


def _mid_lat(lines: list[Any]) -> float:
    if not lines:
        return 22.5
    return float(sum(c[1] for ln in lines for c in ln) / max(1, sum(len(ln) for ln in lines)))


def geojson(rep: DayReport) -> dict[str, Any]:
    """Segments (worst status of the day, per-window details) as GeoJSON, for the dashboard map."""
    worst = _worst_status(rep.segments)
    per = {}
    for r in rep.segments.select("segment_id", "window", "coverage_pct", "status", "verdict", "passes_done",
                                 "required", "vehicle_id", "company", "road_name", "grade", "length_m").iter_rows(
            named=True):
        per.setdefault(r["segment_id"], []).append(r)
    feats = []
    for sid, rows in per.items():
        coords = rep.geometry.get(sid)
        if not coords:
            continue
        first = rows[0]
        feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
                      "properties": {"segment_id": sid, "status": worst.get(sid, "covered"),
                                     "vehicle_id": first["vehicle_id"], "company": first["company"],
                                     "road_name": first["road_name"], "grade": first["grade"],
                                     "length_m": first["length_m"],
                                     "windows": [{k: r.get(k) for k in ("window", "coverage_pct", "status", "verdict",
                                                                        "passes_done", "required", "gap_may_hide")}
                                                 for r in rows]}})
    return {"type": "FeatureCollection", "features": feats}
