// Alert centre: filtered list (REST) kept live by /ws/alerts; a click zooms the map to the evidence track,
// with the fence / permitted route the rule judged it against.
(async function () {
  await FW.ready;
  const state = window.fleetwatch;
  Object.assign(state, { alerts: [], selectedAlert: null, evidence: null });
  const container = document.getElementById("map");
  const { deck, L } = FW.makeDeck(container, FW.fitBounds(container, FW.config.bounds, 10), ["TileLayer", "BitmapLayer"]);
  window.fwDeck = deck;
  let roads = null;
  const form = document.getElementById("filters");
  const facets = await FW.json("/api/facets");

  function options() {
    const opt = (name, values, label) => {
      const sel = form.elements[name], cur = sel.value;
      sel.innerHTML = `<option value="">${FW.esc(t(name === "kind" ? "kind" : name))}: ${t("all")}</option>` +
        values.map((v) => `<option value="${FW.esc(v)}">${FW.esc(label ? label(v) : v)}</option>`).join("");
      sel.value = cur;
    };
    opt("kind", Object.keys(FW.vocab.violation_kinds), FW.label);
    opt("vehicle_kind", FW.config.kinds, FW.label);
    opt("company", facets.companies);
    opt("district", facets.districts);
    opt("status", ["open", "closed"], t);
  }
  function params() {
    const q = new URLSearchParams();
    for (const name of ["kind", "vehicle_kind", "company", "district", "status"]) {
      if (form.elements[name].value) q.set(name, form.elements[name].value);
    }
    for (const name of ["since", "until"]) {
      const v = form.elements[name].value;
      if (v) q.set(name, new Date(FW.fromLocalInput(v)).toISOString());
    }
    return q;
  }
  function matches(a) {
    const f = (name) => form.elements[name].value;
    if (f("kind") && a.kind !== f("kind")) return false;
    if (f("vehicle_kind") && a.vehicle.kind !== f("vehicle_kind")) return false;
    if (f("company") && a.vehicle.company !== f("company")) return false;
    if (f("district") && a.vehicle.district !== f("district")) return false;
    if (f("status") && a.status !== f("status")) return false;
    return true;
  }
  let total = 0;
  async function load() {
    const q = params();
    q.set("limit", "500");
    const page = await FW.json(`/api/alerts?${q}`);
    state.alerts = page.alerts;
    total = page.total;
    render();
    state.alertLoads = (state.alertLoads || 0) + 1;
  }
  function row(a, fresh) {
    const dur = ((a.end_ts_ms || state.now || Date.now()) - a.start_ts_ms) / 1000;
    return `<tr data-id="${a.id}" class="${a.id === state.selectedAlert ? "sel" : ""} ${fresh ? "fresh" : ""}">
      <td>${FW.time(a.start_ts_ms)}</td><td><span class="kind-badge">${FW.esc(FW.label(a.kind))}</span></td>
      <td>${t(a.severity)}</td><td><b>${FW.esc(a.vehicle.plate || a.vehicle_id)}</b> <span class="muted">${FW.esc(FW.label(a.vehicle.kind))}</span></td>
      <td>${FW.esc(a.vehicle.company || "")}</td><td>${FW.esc(a.vehicle.district || "")}</td>
      <td>${a.end_ts_ms ? FW.duration(dur) : `<span class="muted">${t("ongoing")}</span>`}</td>
      <td class="st-${a.status}">${t(a.status)}</td></tr>`;
  }
  let freshIds = new Set();
  function render() {
    document.getElementById("rows").innerHTML = state.alerts.map((a) => row(a, freshIds.has(a.id))).join("");
    document.getElementById("count").textContent = `${total} ${t("alerts_found")}`;
    freshIds = new Set();
  }
  document.getElementById("rows").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-id]");
    if (tr) select(tr.dataset.id);
  });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  // (a control named "reset" inside the form would shadow form.reset(): hence the id and the prototype call)
  document.getElementById("reset-filters").addEventListener("click", () => { HTMLFormElement.prototype.reset.call(form); load(); });

  // live: insert / update rows as alerts open, update and close
  FW.alertHandlers.push((msg) => {
    const a = msg.alert;
    const at = state.alerts.findIndex((x) => x.id === a.id);
    if (at >= 0) state.alerts[at] = { ...state.alerts[at], ...a };
    else if (matches(a)) { state.alerts.unshift(a); total += 1; freshIds.add(a.id); }
    render();
    if (a.id === state.selectedAlert) select(a.id, false);
  });

  // -- evidence on the map ----------------------------------------------------------------------------------
  function drawEvidence(d) {
    const layers = [];
    const tiles = FW.tileLayer(L);
    if (tiles) layers.push(tiles);
    if (roads) layers.push(FW.roadsLayer(L, roads));
    if (d) {
      layers.push(FW.fencesLayer(L, d.fences, { id: "evidence-fences" }));
      const tr = d.track;
      if (tr && tr.lon.length) {
        const pts = tr.lon.map((x, i) => ({ p: [x, tr.lat[i]], ts: tr.ts_ms[i], s: tr.speed_kmh[i],
          ep: tr.ts_ms[i] >= d.start_ts_ms && (d.end_ts_ms === null || tr.ts_ms[i] <= d.end_ts_ms) }));
        layers.push(new L.PathLayer({ id: "track", data: [{ path: pts.map((q) => q.p) }], getPath: (x) => x.path,
          getColor: [120, 200, 255, 220], widthUnits: "pixels", getWidth: 3, jointRounded: true, capRounded: true }));
        const ep = pts.filter((q) => q.ep);
        if (ep.length > 1) layers.push(new L.PathLayer({ id: "episode", data: [{ path: ep.map((q) => q.p) }],
          getPath: (x) => x.path, getColor: [255, 70, 70, 255], widthUnits: "pixels", getWidth: 5, capRounded: true }));
        layers.push(new L.ScatterplotLayer({ id: "fixes", data: pts, getPosition: (q) => q.p, pickable: true,
          getFillColor: (q) => (q.ep ? [255, 90, 90] : [170, 215, 255]), radiusUnits: "pixels", getRadius: 3 }));
        layers.push(new L.ScatterplotLayer({ id: "ends", data: [pts[0], pts[pts.length - 1]], getPosition: (q) => q.p,
          getFillColor: (q, { index }) => (index ? [240, 240, 240] : [56, 201, 132]), radiusUnits: "pixels", getRadius: 6,
          stroked: true, getLineColor: [10, 14, 20], lineWidthMinPixels: 1.5 }));
      }
      if (d.lon !== null && d.lon !== undefined) layers.push(new L.ScatterplotLayer({ id: "alert-point",
        data: [d], getPosition: (x) => [x.lon, x.lat], radiusUnits: "pixels", getRadius: 16, stroked: true,
        filled: true, getFillColor: [255, 59, 59, 50], getLineColor: [255, 59, 59, 255], lineWidthMinPixels: 2.5 }));
    }
    deck.setProps({ layers });
    state.evidenceLayers = layers.map((l) => l.id);
  }
  deck.setProps({ getTooltip: (info) => {
    if (!info.object) return null;
    if (info.layer.id === "fixes") return { text: `${FW.time(info.object.ts)} · ${info.object.s.toFixed(0)} km/h`, style: FW.tooltipStyle };
    if (info.object.properties) return { text: `${info.object.properties.name || info.object.properties.id} · ${FW.label(info.object.properties.kind)} · v${info.object.properties.version}`, style: FW.tooltipStyle };
    return null;
  } });

  async function select(id, zoom = true) {
    state.selectedAlert = id;
    history.replaceState(null, "", `#${id}`);
    render();
    const d = await FW.json(`/api/alerts/${encodeURIComponent(id)}`);
    state.evidence = d;
    document.getElementById("empty").hidden = true;
    drawEvidence(d);
    if (zoom) {
      const xs = [], ys = [];
      if (d.track) { xs.push(...d.track.lon); ys.push(...d.track.lat); }
      if (d.lon !== null && d.lon !== undefined) { xs.push(d.lon); ys.push(d.lat); }
      if (xs.length) {
        const v = FW.fitBounds(container, [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)], 70, 360);
        v.zoom = Math.min(v.zoom, 17);
        deck.setProps({ initialViewState: { ...v, transitionDuration: FW.quiet ? 0 : 700 } });
        state.zoomedTo = v;
      }
    }
    const ev = Object.entries(d.evidence || {}).filter(([, v]) => typeof v !== "object" || v === null)
      .map(([k, v]) => `<div class="kv"><span>${FW.esc(k)}</span><b>${FW.esc(v)}</b></div>`).join("");
    const fences = d.fences.features.filter((f) => f.properties.role !== "line")
      .map((f) => `<div class="kv"><span>${FW.esc(FW.label(f.properties.kind))}</span><b>${FW.esc(f.properties.name || f.properties.id)} v${f.properties.version}</b></div>`).join("");
    const el = document.getElementById("detail");
    el.hidden = false;
    el.innerHTML = `<div class="title">${FW.esc(FW.label(d.kind))} <span class="pill ${d.status === "open" ? "bad" : ""}">${t(d.status)}</span>
        <span class="pill">${t(d.severity)}</span>${d.backfilled ? ` <span class="pill">${t("backfilled")}</span>` : ""}</div>
      <div class="kv"><span>${t("vehicle")}</span><b>${FW.esc(d.vehicle.plate || d.vehicle_id)} · ${FW.esc(FW.label(d.vehicle.kind))}</b></div>
      <div class="kv"><span>${t("company")}</span><b>${FW.esc(d.vehicle.company || "—")}</b></div>
      <div class="kv"><span>${t("district")}</span><b>${FW.esc(d.vehicle.district || "—")}</b></div>
      <div class="kv"><span>${t("from")}</span><b>${FW.time(d.start_ts_ms)}</b></div>
      <div class="kv"><span>${t("to")}</span><b>${d.end_ts_ms ? FW.time(d.end_ts_ms) : t("ongoing")}</b></div>
      <div class="kv"><span>${t("place")}</span><b>${d.lon !== null ? `${d.lon.toFixed(5)}, ${d.lat.toFixed(5)}` : "—"}</b></div>
      ${d.permit ? `<div class="kv"><span>${t("permits")}</span><b>${FW.esc(d.permit.id)} v${d.permit.version}</b></div>` : ""}
      ${fences}
      <h4>${t("rule")}</h4>${ev || `<span class="muted">—</span>`}
      <div class="kv"><span>${t("fixes")}</span><b>${d.track ? d.track.ts_ms.length : 0}</b></div>
      <button id="export-evidence" type="button" class="wide">${t("export_evidence")}</button>
      <a class="button wide" style="text-align:center" href="/replay#v=${encodeURIComponent(d.vehicle_id)}&t=${d.start_ts_ms - 600000}">${t("replay")}</a>`;
    document.getElementById("export-evidence").addEventListener("click", () => FW.exportLink(`/api/export/alert/${d.id}.html`, {}));
  }

  FW.onLang(() => { options(); render(); if (state.selectedAlert) select(state.selectedAlert, false); });
  options();
  FW.json("/api/roads").then((gj) => { roads = gj; state.roads = true; drawEvidence(state.evidence); });
  await load();
  const hash = location.hash.slice(1);
  if (hash) select(hash);
  setInterval(() => render(), 30000); // durations of open alerts
})();
