// Sanitation coverage: a day's map (segments coloured covered / partial / missed / unverified / late, H3 hexagons
// of coverage, collection points visited / missed) beside the per-company table, shifts and collection rounds,
// and the report downloads. Page-local labels (zh/en) in C; everything else from common.js.
(async function () {
  const C = {
    zh: { nav: "作业覆盖", show: "查询", recompute: "重新计算", per_company: "企业作业覆盖与收运", per_shift: "班次覆盖",
          rounds: "收运趟次", download: "下载报表", segments: "路段", hexes: "覆盖蜂窝 (H3)", points: "收集点", roads: "路网",
          all_companies: "全部企业", company: "企业", coverage: "覆盖率", planned_km: "计划里程(km)", covered_km: "有效作业(km)",
          missed: "漏扫", partial: "部分", late: "延迟完成", unverified: "数据缺失", covered: "已覆盖", pending: "进行中",
          points_rate: "到点率", points_missed: "漏收", no_facility: "未到中转站", vehicles: "车辆", window: "班次",
          vehicle: "车辆", collected: "已收", facility: "中转站", reached: "已到达", not_reached: "未到达",
          no_data: "该日无作业计划或无数据", computing: "计算中…", segment_windows: "路段·班次", road: "道路", passes: "遍数",
          table_segments: "路段明细", table_points: "收集点明细", table_rounds: "收运趟次", table_vehicles: "车辆作业里程",
          table_companies: "企业汇总", table_road: "按道路", table_vehicle: "按车辆", table_company: "按企业",
          table_district: "按辖区", table_shift: "按班次", visited: "已到点", not_visited: "未到点" },
    en: { nav: "Coverage", show: "Show", recompute: "Recompute", per_company: "Coverage and collection per company",
          per_shift: "Coverage per shift", rounds: "Collection rounds", download: "Download the report", segments: "Segments",
          hexes: "Coverage hexagons (H3)", points: "Collection points", roads: "Roads", all_companies: "All companies",
          company: "Company", coverage: "Coverage", planned_km: "Planned km", covered_km: "Worked km", missed: "Missed",
          partial: "Partial", late: "Late", unverified: "Data gap", covered: "Covered", pending: "In progress",
          points_rate: "Points visited", points_missed: "Points missed", no_facility: "No transfer arrival",
          vehicles: "Vehicles", window: "Shift", vehicle: "Vehicle", collected: "Collected", facility: "Facility",
          reached: "reached", not_reached: "not reached", no_data: "No plans or no data for this day",
          computing: "Computing…", segment_windows: "Segment·windows", road: "Road", passes: "Passes",
          table_segments: "Segments", table_points: "Collection points", table_rounds: "Rounds",
          table_vehicles: "Vehicle km", table_companies: "Companies", table_road: "Per road", table_vehicle: "Per vehicle",
          table_company: "Per company", table_district: "Per district", table_shift: "Per shift", visited: "visited",
          not_visited: "not visited" },
  };
  const c = (k) => (C[window.fwLang] || C.zh)[k] || C.en[k] || k;
  const STATUS = { covered: [46, 158, 91], partial: [240, 160, 32], missed: [215, 38, 61], unverified: [138, 143, 152],
                   late: [58, 123, 213], pending: [108, 92, 231] };
  const TABLES = ["segments", "points", "rounds", "vehicles", "companies", "road", "vehicle", "company", "district", "shift"];

  // the navigation link (common.js owns the header; this page adds itself)
  const nav = document.querySelector("header nav");
  if (nav && !nav.querySelector('[data-p="coverage"]')) {
    const a = document.createElement("a");
    a.href = "/coverage"; a.dataset.p = "coverage"; a.className = "active";
    nav.appendChild(a);
  }
  await FW.ready;
  const state = window.fleetwatch;
  state.coverage = { loads: 0, segments: 0, hexes: 0, points: 0, rendered: 0 };
  const S = state.coverage;
  const form = document.getElementById("filters");
  const container = document.getElementById("map");
  const { deck, L } = FW.makeDeck(container, FW.fitBounds(container, FW.config.bounds, 10), ["TileLayer", "BitmapLayer"]);
  window.fwDeck = deck;
  let data = null, report = null, roads = null;
  const ui = { segments: true, hexes: false, points: true, roads: true };

  function labels() {
    document.querySelectorAll("[data-c]").forEach((el) => { el.textContent = c(el.dataset.c); });
    const a = document.querySelector('header nav a[data-p="coverage"]');
    if (a) a.textContent = c("nav");
    document.getElementById("table").innerHTML = TABLES.map((t) => `<option value="${t}">${FW.esc(c(`table_${t}`))}</option>`).join("");
    document.getElementById("status-legend").innerHTML = Object.entries(STATUS).map(([k, col]) =>
      `<div><i class="sw" style="border-radius:2px;background:${FW.rgb(col)}"></i>${FW.esc(c(k))}</div>`).join("");
  }

  // -- loading ----------------------------------------------------------------------------------------------
  const q = () => {
    const p = new URLSearchParams({ date: form.date.value });
    if (form.company.value) p.set("company", form.company.value);
    return p;
  };
  async function load(refresh = false) {
    document.getElementById("count").textContent = c("computing");
    const p = q();
    if (refresh) p.set("refresh", "1");
    [report, data] = await Promise.all([FW.json(`/api/coverage/report?${p}`), FW.json(`/api/coverage/map?${p}`)]);
    S.loads += 1;
    S.segments = data.segments.features.length; S.hexes = data.hexes.length; S.points = data.points.length;
    if (!form.company.options.length || form.company.options.length === 1) {
      const names = report.companies.map((x) => x.company).filter(Boolean);
      form.company.innerHTML = `<option value="">${FW.esc(c("all_companies"))}</option>` +
        names.map((n) => `<option>${FW.esc(n)}</option>`).join("");
    }
    if (data.bounds) deck.setProps({ initialViewState: FW.fitBounds(container, data.bounds, 30) });
    render();
  }

  // -- tables -----------------------------------------------------------------------------------------------
  const pct = (v) => (v === null || v === undefined ? "—" : `${Number(v).toFixed(1)}%`);
  const num = (v, d = 1) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));
  function table(head, rows) {
    return `<table class="alerts"><thead><tr>${head.map((h) => `<th>${FW.esc(h)}</th>`).join("")}</tr></thead>
      <tbody>${rows.map((r) => `<tr>${r.map((x) => `<td>${x}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }
  function render() {
    if (!report) return;
    const s = report.summary;
    const empty = !s || !s.segment_windows && !s.points_planned;
    document.getElementById("count").textContent = empty ? c("no_data") :
      `${form.date.value} · ${s.segment_windows || 0} ${c("segment_windows")} · ${num(s.planned_km)} ${c("planned_km")}`;
    document.getElementById("kpis").innerHTML = [
      [c("coverage"), pct(s.coverage_pct)], [c("missed"), s.missed ?? 0], [c("points_rate"), pct(s.visit_rate_pct)],
      [c("points_missed"), s.points_missed ?? 0],
    ].map(([l, v]) => `<div class="kpi"><div class="v">${v}</div><div class="l">${FW.esc(l)}</div></div>`).join("");
    document.getElementById("companies").innerHTML = table(
      [c("company"), c("coverage"), c("planned_km"), c("covered_km"), c("missed"), c("partial"), c("late"),
       c("unverified"), c("points_rate"), c("points_missed"), c("no_facility"), c("vehicles")],
      report.companies.map((x) => [FW.esc(x.company || "—"), pct(x.coverage_pct), num(x.planned_km), num(x.covered_km),
        `<span class="${x.missed ? "red" : ""}">${x.missed ?? "—"}</span>`, x.partial ?? "—", x.late ?? "—",
        x.unverified ?? "—", pct(x.visit_rate_pct), x.points_missed ?? "—", x.rounds_without_facility ?? "—",
        x.vehicles ?? "—"]));
    document.getElementById("shifts").innerHTML = table(
      [c("window"), c("coverage"), c("planned_km"), c("missed"), c("partial"), c("late")],
      report.shifts.map((x) => [FW.esc(x.window), pct(x.coverage_pct), num(x.planned_km), x.missed, x.partial, x.late]));
    document.getElementById("rounds").innerHTML = table(
      [c("vehicle"), c("company"), c("window"), c("collected"), c("facility")],
      report.rounds.map((x) => [FW.esc(x.vehicle_id), FW.esc(x.company), FW.esc(x.window),
        `${x.points_visited}/${x.points_planned}`,
        x.collected ? (x.reached_facility ? c("reached") : `<span class="red">${FW.esc(c("not_reached"))}</span>`) : "—"]));
    drawMap();
    S.rendered += 1;
  }

  // -- map --------------------------------------------------------------------------------------------------
  function ramp(p) { // red (0%) → amber → green (100%)
    const t = Math.max(0, Math.min(1, (p ?? 0) / 100));
    return t < 0.5 ? [215, 38 + 244 * t, 61] : [215 - 338 * (t - 0.5), 160, 61 + 60 * (t - 0.5)];
  }
  function drawMap() {
    const layers = [];
    const tiles = FW.tileLayer(L);
    if (tiles) layers.push(tiles);
    if (roads && ui.roads) layers.push(FW.roadsLayer(L, roads, true));
    if (data && ui.hexes) {
      layers.push(new L.H3HexagonLayer({ id: "cov-hexes", data: data.hexes, getHexagon: (d) => d.h3, extruded: false,
        stroked: false, opacity: 0.45, getFillColor: (d) => ramp(d.coverage_pct), pickable: true }));
    }
    if (data && ui.segments) {
      layers.push(new L.GeoJsonLayer({ id: "cov-segments", data: data.segments, stroked: true, filled: false, pickable: true,
        getLineColor: (f) => [...(STATUS[f.properties.status] || [200, 200, 200]), 240], getLineWidth: 4,
        lineWidthUnits: "pixels", updateTriggers: { getLineColor: S.loads } }));
    }
    if (data && ui.points) {
      layers.push(new L.ScatterplotLayer({ id: "cov-points", data: data.points, getPosition: (d) => [d.lon, d.lat],
        getRadius: (d) => (d.missed ? 7 : 4), radiusUnits: "pixels", stroked: true, lineWidthMinPixels: 1,
        getFillColor: (d) => (d.missed ? STATUS.missed : STATUS.covered), getLineColor: [10, 14, 20], pickable: true }));
    }
    deck.setProps({ layers, getTooltip: tooltip });
  }
  function tooltip({ object, layer }) {
    if (!object) return null;
    let html = "";
    if (layer.id === "cov-segments") {
      const p = object.properties;
      html = `<b>${FW.esc(p.road_name || p.segment_id)}</b> · ${FW.esc(p.segment_id)}<br>${FW.esc(p.company)} · ${FW.esc(p.vehicle_id)}
        <br>${p.windows.map((w) => `${FW.esc(w.window)}: ${w.gap_may_hide ? "≥ " : ""}${pct(w.coverage_pct)} · ${w.passes_done}/${w.required} ${c("passes")} · ${FW.esc(c(w.verdict === "missed" ? "missed" : w.status))}`).join("<br>")}`;
    } else if (layer.id === "cov-points") {
      html = `<b>${FW.esc(object.point_id)}</b> · ${FW.esc(object.vehicle_id)}<br>${FW.esc(object.missed ? c("points_missed") : c("visited"))}`;
    } else if (layer.id === "cov-hexes") {
      html = `${pct(object.coverage_pct)} · ${num(object.covered_m / 1000, 2)} / ${num(object.planned_m / 1000, 2)} km`;
    }
    return { html, style: FW.tooltipStyle };
  }

  // -- controls ---------------------------------------------------------------------------------------------
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  document.getElementById("refresh").addEventListener("click", () => load(true));
  document.getElementById("layers").addEventListener("change", (ev) => { ui[ev.target.name] = ev.target.checked; drawMap(); });
  document.querySelectorAll("[data-fmt]").forEach((b) => b.addEventListener("click", () => {
    const p = Object.fromEntries(q());
    p.table = document.getElementById("table").value;
    FW.exportLink(`/api/coverage/report.${b.dataset.fmt}`, p);
  }));
  FW.onLang(() => { labels(); render(); });
  labels();
  const days = await FW.json("/api/coverage/days").catch(() => []);
  const hash = new URLSearchParams(location.hash.slice(1));
  form.date.value = hash.get("date") || (days.length ? days[0].day : FW.localInput(Date.now()).slice(0, 10));
  FW.json("/api/roads").then((gj) => { roads = gj; drawMap(); }).catch(() => {});
  load();
})();
