// Chinese and English UI strings. Vocabulary labels (vehicle/violation/fence kinds) come from /api/vocab.
// The choice is remembered in localStorage; every page re-renders its text on switch.
window.FW_I18N = {
  zh: {
    title: "五车智能监管平台", nav_live: "实时地图", nav_alerts: "报警中心", nav_replay: "轨迹回放", nav_stats: "统计分析",
    vehicles: "车辆", updated: "更新", connecting: "连接中…", disconnected: "连接已断开，重连中…", live: "实时",
    unknown: "未登记", moving: "行驶", stopped: "停车", offline: "离线", alarm: "报警", total: "合计",
    layers: "图层", roads: "路网", fences: "电子围栏", routes: "核准路线", density: "热力蜂窝 (H3)", kinds: "车辆类型",
    fleet: "车队状态", search_plate: "搜索车牌 / 编号", export: "导出离线地图", close: "关闭",
    speed: "速度", heading: "方向", last_fix: "最后定位", company: "所属企业", district: "辖区", plate: "车牌",
    sensors: "传感器", cover: "密闭盖", lift: "举升", load: "载重", device: "作业装置", drum: "搅拌罐",
    not_reported: "未上报", open_: "打开", closed_: "关闭", up: "举升", down: "落下", on: "开", off: "关",
    empty: "空载", half: "半载", full: "满载", drum_stopped: "停转", drum_forward: "正转", drum_reverse: "反转(卸料)",
    current_trip: "当前趟次", none: "无", permits: "准运证 / 运单", valid: "有效", expired: "不在有效期",
    recent_alerts: "近期报警", replay_hour: "回放最近1小时", no_alerts: "无报警",
    alert_new: "新报警", alert_closed: "报警结束", alert_updated: "报警更新",
    kind: "类型", vehicle_kind: "车辆类型", status: "状态", severity: "级别", from: "开始", to: "结束",
    apply: "查询", reset: "重置", all: "全部", open: "进行中", closed: "已结束", suspected: "疑似", confirmed: "确认",
    time: "时间", vehicle: "车辆", place: "地点", duration: "持续", evidence: "证据", rule: "规则参数",
    select_alert: "选择左侧报警查看证据轨迹", alerts_found: "条报警", export_evidence: "导出证据(离线HTML)",
    replay: "回放", pick_vehicles: "选择车辆", time_range: "时间范围", load_tracks: "加载轨迹", play: "播放",
    pause: "暂停", playback_speed: "倍速", sensor_chart: "传感器时间线", no_tracks: "所选时段无轨迹",
    focus: "图表车辆", fixes: "定位点",
    stats_title: "统计分析", alerts_per_day: "每日报警(按类型)", company_ranking: "企业排名(每车报警数)",
    trips_by_site: "工地 / 消纳场趟次", trips_na: "趟次数据尚未接入", days: "天", alerts_total: "报警总数",
    open_alerts: "进行中", confirmed_share: "确认比例", vehicles_alerted: "涉事车辆", per_vehicle: "每车",
    ongoing: "进行中", backfilled: "补传数据",
  },
  en: {
    title: "Five-Vehicle Supervision", nav_live: "Live map", nav_alerts: "Alert centre", nav_replay: "Replay",
    nav_stats: "Statistics", vehicles: "vehicles", updated: "updated", connecting: "connecting…",
    disconnected: "disconnected, reconnecting…", live: "Live", unknown: "Unregistered", moving: "Moving",
    stopped: "Stopped", offline: "Offline", alarm: "Alarm", total: "Total", layers: "Layers", roads: "Roads",
    fences: "Geofences", routes: "Permitted routes", density: "Density (H3)", kinds: "Vehicle kinds",
    fleet: "Fleet status", search_plate: "Search plate / id", export: "Export offline map", close: "Close",
    speed: "Speed", heading: "Heading", last_fix: "Last fix", company: "Company", district: "District",
    plate: "Plate", sensors: "Sensors", cover: "Cover", lift: "Body lift", load: "Load", device: "Brush/pump",
    drum: "Drum", not_reported: "not reported", open_: "open", closed_: "closed", up: "up", down: "down",
    on: "on", off: "off", empty: "empty", half: "half", full: "full", drum_stopped: "stopped",
    drum_forward: "forward", drum_reverse: "reverse (discharging)", current_trip: "Current trip", none: "none",
    permits: "Permits / orders", valid: "valid", expired: "not valid today", recent_alerts: "Recent alerts",
    replay_hour: "Replay last hour", no_alerts: "No alerts", alert_new: "New alert", alert_closed: "Alert closed",
    alert_updated: "Alert updated", kind: "Kind", vehicle_kind: "Vehicle kind", status: "Status",
    severity: "Severity", from: "From", to: "To", apply: "Search", reset: "Reset", all: "All", open: "Open",
    closed: "Closed", suspected: "Suspected", confirmed: "Confirmed", time: "Time", vehicle: "Vehicle",
    place: "Place", duration: "Duration", evidence: "Evidence", rule: "Rule parameters",
    select_alert: "Select an alert to see its evidence track", alerts_found: "alerts",
    export_evidence: "Export evidence (offline HTML)", replay: "Replay", pick_vehicles: "Vehicles",
    time_range: "Time range", load_tracks: "Load tracks", play: "Play", pause: "Pause", playback_speed: "Speed",
    sensor_chart: "Sensor timeline", no_tracks: "No fixes in this period", focus: "Chart vehicle", fixes: "fixes",
    stats_title: "Statistics", alerts_per_day: "Alerts per day (by kind)",
    company_ranking: "Company ranking (alerts per vehicle)", trips_by_site: "Trips per site / disposal site",
    trips_na: "Trip data not connected yet", days: "days", alerts_total: "Alerts", open_alerts: "Open",
    confirmed_share: "Confirmed", vehicles_alerted: "Vehicles involved", per_vehicle: "per vehicle",
    ongoing: "ongoing", backfilled: "back-filled data",
  },
};
window.fwLang = localStorage.getItem("fw-lang") || "zh";
window.t = (key) => (window.FW_I18N[window.fwLang] || {})[key] || (window.FW_I18N.en[key] || key);
window.applyI18n = () => {
  document.documentElement.lang = window.fwLang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = window.t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-ph]").forEach((el) => { el.placeholder = window.t(el.dataset.i18nPh); });
};
