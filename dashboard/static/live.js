// Live map: road network from GeoJSON (no basemap), fences and permitted routes, vehicles from /ws/live
// (binary, viewport-limited) drawn with binary attributes and moved smoothly between 1 Hz updates.
(async function () {
  await FW.ready;
  const state = window.fleetwatch;
  Object.assign(state, { rendered: 0, messages: 0, frames: 0, roads: null, lastUpdate: 0, selected: null,
                         drawn: 0, summary: null, fenceCount: 0 });
  const store = new FWLiveStore();
  state.store = store;
  const ANIM_MS = 900;
  const container = document.getElementById("map");
  const b = FW.config.bounds;
  const { deck, L } = FW.makeDeck(container, FW.fitBounds(container, b, 10), ["TileLayer", "BitmapLayer"]);
  window.fwDeck = deck;
  const ui = { roads: true, fences: true, routes: true, density: false, hidden: new Set() };

  // -- arrays the vehicle layer reads (double-buffered positions so deck sees a new array each frame) --------
  let cap = 0, pos = [null, null], which = 0, from, to, fill, line, radius, animStart = 0, animating = false;
  function ensure(n) {
    if (n <= cap) return;
    const next = Math.max(n, cap * 2, 1024);
    const g = (old, Type, size) => { const a = new Type(next * size); if (old) a.set(old.subarray(0, Math.min(old.length, next * size))); return a; };
    pos = [g(pos[0], Float64Array, 2), g(pos[1], Float64Array, 2)];
    from = g(from, Float64Array, 2); to = g(to, Float64Array, 2);
    fill = g(fill, Uint8Array, 4); line = g(line, Uint8Array, 4); radius = g(radius, Float32Array, 1);
    cap = next;
  }
  ensure(1024);
  const OFFLINE = FW.vocab.colors.status.offline, ALARM = FW.vocab.colors.status.alarm;
  function styleOf(i) {
    const kind = store.kindOf(i), motion = store.motionOf(i), alarm = store.inAlarm(i);
    const c = motion === "offline" ? OFFLINE : FW.color(kind);
    fill.set([c[0], c[1], c[2], motion === "stopped" ? 150 : motion === "offline" ? 190 : 255], i * 4);
    if (alarm) line.set([ALARM[0], ALARM[1], ALARM[2], 255], i * 4);
    else line.set(motion === "moving" ? [235, 242, 250, 200] : [10, 14, 20, 220], i * 4);
    radius[i] = ui.hidden.has(kind) ? 0 : alarm ? 34 : 26;
  }
  function restyleAll() { for (let i = 0; i < store.n; i++) styleOf(i); draw(); }

  // -- layers ---------------------------------------------------------------------------------------------
  let roadsLayer = null, fencesData = null, densityData = null, pulse = 0;
  function vehicleLayers() {
    const n = store.n;
    const p = pos[which];
    const data = { length: n, attributes: {
      getPosition: { value: p, size: 2 }, getFillColor: { value: fill, size: 4, normalized: true },
      getLineColor: { value: line, size: 4, normalized: true }, getRadius: { value: radius, size: 1 } } };
    const layers = [new L.ScatterplotLayer({
      id: "vehicles", data, pickable: true, stroked: true, filled: true, radiusUnits: "meters",
      radiusMinPixels: 3.5, radiusMaxPixels: 11, lineWidthUnits: "pixels", getLineWidth: 1.2,
      updateTriggers: { getFillColor: state.frames, getLineColor: state.frames, getRadius: state.frames },
    })];
    const alarmed = [];
    for (let i = 0; i < n; i++) if (store.inAlarm(i) && radius[i] > 0) alarmed.push(i);
    state.alarmed = alarmed.length;
    if (alarmed.length) {
      layers.push(new L.ScatterplotLayer({
        id: "alarm-halo", data: alarmed, pickable: false, stroked: true, filled: false, radiusUnits: "pixels",
        getPosition: (i) => [p[2 * i], p[2 * i + 1]], getRadius: 10 + 8 * pulse, getLineColor: [...ALARM, 230 * (1 - pulse)],
        lineWidthMinPixels: 2, updateTriggers: { getPosition: state.drawn, getRadius: pulse, getLineColor: pulse },
      }));
    }
    if (state.selected !== null) {
      const i = store.index.get(state.selected);
      if (i !== undefined) layers.push(new L.ScatterplotLayer({
        id: "selected", data: [i], stroked: true, filled: false, radiusUnits: "pixels", getRadius: 16,
        getPosition: (j) => [p[2 * j], p[2 * j + 1]], getLineColor: [255, 255, 255, 255], lineWidthMinPixels: 2,
        updateTriggers: { getPosition: state.drawn },
      }));
    }
    return layers;
  }
  function draw() {
    const layers = [];
    const tiles = FW.tileLayer(L);
    if (tiles) layers.push(tiles);
    if (densityData && ui.density) layers.push(new L.H3HexagonLayer({
      id: "density", data: densityData, getHexagon: (d) => d.h3, extruded: false, stroked: false, opacity: 0.38,
      getFillColor: (d) => ramp(d.fixes / densityData.max), pickable: true,
    }));
    if (roadsLayer) layers.push(roadsLayer);
    if (fencesData) {
      layers.push(FW.fencesLayer(L, { type: "FeatureCollection", features: fencesData.features.filter((f) =>
        f.properties.kind === "route" ? ui.routes : ui.fences) }, { trigger: `${ui.fences}${ui.routes}` }));
    }
    layers.push(...vehicleLayers());
    deck.setProps({ layers });
    state.rendered = store.n;
    state.drawn += 1;
  }
  function ramp(x) { // dark blue → cyan → yellow → red
    const stops = [[30, 60, 140], [40, 180, 220], [250, 220, 70], [240, 60, 50]];
    const f = Math.min(0.999, Math.max(0, Math.sqrt(x))) * (stops.length - 1), k = Math.floor(f), r = f - k;
    return stops[k].map((c, j) => Math.round(c + (stops[k + 1][j] - c) * r)).concat([200]);
  }

  // -- animation: interpolate positions between updates, pulse alarm halos --------------------------------
  // Smooth motion and pulsing halos cost a redraw per frame; on a machine where one redraw takes longer than
  // a frame (software WebGL, an old control-room PC) the page stops animating and redraws once per update,
  // so it stays responsive.
  state.smooth = true;
  let renderStart = 0, renderMs = 0;
  deck.setProps({
    onBeforeRender: () => { renderStart = performance.now(); },
    onAfterRender: () => {
      state.deckRenders = (state.deckRenders || 0) + 1;
      renderMs = renderMs ? renderMs * 0.8 + (performance.now() - renderStart) * 0.2 : performance.now() - renderStart;
      state.renderMs = renderMs;
      state.smooth = renderMs < 40;
    },
  });
  function step(now) {
    const k = state.smooth ? Math.min(1, (now - animStart) / ANIM_MS) : 1;
    const moved = animating;
    if (animating) {
      which ^= 1;
      const p = pos[which], n2 = store.n * 2;
      for (let j = 0; j < n2; j++) p[j] = from[j] + (to[j] - from[j]) * k;
      if (k >= 1) animating = false;
    }
    const pulsing = state.alarmed && state.smooth;
    pulse = pulsing ? (now % 1600) / 1600 : 0.35;
    if (moved || pulsing) draw();
  }
  (function loop(now) { step(now); requestAnimationFrame(loop); })(performance.now());

  function onFrame(buf) {
    const before = store.n;
    const touched = store.frame(buf);
    ensure(store.n);
    const cur = pos[which];
    for (let j = 0; j < store.n * 2; j++) from[j] = cur[j];
    for (const i of touched) {
      const isNew = i >= before && from[2 * i] === 0;
      to[2 * i] = store.lon[i]; to[2 * i + 1] = store.lat[i];
      if (isNew) { from[2 * i] = to[2 * i]; from[2 * i + 1] = to[2 * i + 1]; }
      styleOf(i);
    }
    // vehicles not in this frame stay where they are
    animStart = performance.now();
    animating = true;
    state.frames += 1;
    state.lastUpdate = store.t;
    if (touched.length && state.selected !== null && touched.includes(store.index.get(state.selected))) panelLive();
    step(animStart);
  }

  // -- websocket ------------------------------------------------------------------------------------------
  let ws = null;
  function connect() {
    store.reset();
    for (const a of [...pos, from, to]) a.fill(0);
    ws = FW.socket("/ws/live");
    ws.binaryType = "arraybuffer";
    status(t("connecting"));
    ws.onopen = () => sendViewport();
    ws.onmessage = (ev) => {
      state.messages += 1;
      if (typeof ev.data === "string") {
        const msg = store.text(ev.data);
        if (msg.type === "summary") { state.summary = msg; renderSummary(); }
      } else {
        state.bytes = (state.bytes || 0) + ev.data.byteLength;
        onFrame(ev.data);
      }
      status();
    };
    ws.onclose = (ev) => { status(t("disconnected")); if (ev.code !== 4401) setTimeout(connect, 2000); };
  }
  function status(text) {
    const el = document.getElementById("status");
    const total = state.summary ? state.summary.total : store.n;
    el.textContent = text || `● ${t("live")} · ${t("vehicles")} ${total} · ${t("updated")} ${FW.time(state.lastUpdate, "time")}`;
    el.classList.toggle("ok", !text);
  }
  let vpTimer = null;
  function sendViewport() {
    if (!ws || ws.readyState !== 1) return;
    const vp = deck.getViewports()[0];
    if (!vp) return;
    const [w, s, e, n] = vp.getBounds();
    const px = (e - w) * 0.25, py = (n - s) * 0.25;
    ws.send(JSON.stringify({ type: "viewport", bbox: [w - px, s - py, e + px, n + py] }));
    state.bbox = [w - px, s - py, e + px, n + py];
  }
  deck.setProps({
    onViewStateChange: ({ viewState }) => { clearTimeout(vpTimer); vpTimer = setTimeout(sendViewport, 250); state.view = viewState; },
    onClick: (info) => {
      if (info.layer && info.layer.id === "vehicles" && info.index >= 0) select(store.ids[info.index]);
    },
    getTooltip: (info) => tooltip(info),
  });
  function tooltip(info) {
    if (!info.layer) return null;
    if (info.layer.id === "vehicles" && info.index >= 0) {
      const i = info.index, id = store.ids[i], v = registry.get(id) || {};
      const alarm = store.inAlarm(i) ? ` · <b style="color:#ff5a5a">${t("alarm")}</b>` : "";
      return { html: `<b>${FW.esc(v.plate || id)}</b> · ${FW.esc(FW.label(store.kindOf(i)))}<br>${FW.esc(v.company || "")}<br>
        ${store.speed[i]} km/h · ${t(store.motionOf(i))}${alarm}`, style: FW.tooltipStyle };
    }
    if (info.object && info.object.properties) {
      const p = info.object.properties;
      return { html: `<b>${FW.esc(p.name || p.id)}</b><br>${FW.esc(FW.label(p.kind))} · v${p.version}`, style: FW.tooltipStyle };
    }
    if (info.object && info.object.h3) return { text: `${info.object.fixes} ${t("fixes")} · ${info.object.vehicles} ${t("vehicles")}`, style: FW.tooltipStyle };
    return null;
  }

  // -- side panels -------------------------------------------------------------------------------------------
  const registry = new Map();
  FW.json("/api/vehicles").then((vs) => { for (const v of vs) registry.set(v.id, v); });
  function renderSummary() {
    const s = state.summary;
    if (!s) return;
    const kinds = [...FW.config.kinds, "unknown"].filter((k) => k !== "unknown" || s.counts.unknown);
    const rows = kinds.map((k) => {
      const c = s.counts[k] || { moving: 0, stopped: 0, offline: 0, alarm: 0 };
      const off = ui.hidden.has(k);
      return `<tr class="${off ? "off" : ""}" data-kind="${k}"><td><i class="sw" style="background:${FW.rgb(FW.color(k))}"></i>${FW.esc(FW.label(k))}</td>
        <td>${c.moving}</td><td>${c.stopped}</td><td>${c.offline}</td><td class="${c.alarm ? "red" : ""}">${c.alarm}</td></tr>`;
    }).join("");
    const sum = (f) => Object.values(s.counts).reduce((a, c) => a + c[f], 0);
    document.getElementById("fleet").innerHTML = `<table class="fleet"><thead><tr><th></th><th>${t("moving")}</th>
      <th>${t("stopped")}</th><th>${t("offline")}</th><th>${t("alarm")}</th></tr></thead><tbody>${rows}</tbody>
      <tfoot><tr><td>${t("total")} ${s.total}</td><td>${sum("moving")}</td><td>${sum("stopped")}</td><td>${sum("offline")}</td>
      <td class="${sum("alarm") ? "red" : ""}">${sum("alarm")}</td></tr></tfoot></table>`;
    document.querySelectorAll("#fleet tr[data-kind]").forEach((tr) => tr.addEventListener("click", () => {
      const k = tr.dataset.kind;
      ui.hidden.has(k) ? ui.hidden.delete(k) : ui.hidden.add(k);
      restyleAll();
      renderSummary();
    }));
  }
  function toggles() {
    document.querySelectorAll("#layers input").forEach((inp) => inp.addEventListener("change", () => {
      ui[inp.name] = inp.checked;
      if (inp.name === "roads") roadsLayer = FW.roadsLayer(L, state.roads, ui.roads);
      if (inp.name === "density" && inp.checked) loadDensity();
      draw();
    }));
  }
  async function loadDensity() {
    const d = await FW.json(`/api/density`);
    densityData = d.cells;
    densityData.max = Math.max(1, ...d.cells.map((c) => c.fixes));
    state.densityCells = d.cells.length;
    draw();
  }
  setInterval(() => { if (ui.density) loadDensity(); }, 30000);

  function sensorRow(name, value) {
    const v = value === null || value === undefined ? `<span class="muted">${t("not_reported")}</span>` : value;
    return `<div class="kv"><span>${t(name)}</span><b>${v}</b></div>`;
  }
  function sensorsHtml(s) {
    const yn = (v, a, b) => (v === null || v === undefined ? null : v ? t(a) : t(b));
    return sensorRow("cover", yn(s.cover_closed, "closed_", "open_")) + sensorRow("lift", yn(s.lifting, "up", "down")) +
      sensorRow("load", s.load === null || s.load === undefined ? null : t({ 0: "empty", 1: "half", 3: "full" }[s.load])) +
      sensorRow("device", yn(s.device_on, "on", "off")) +
      sensorRow("drum", s.drum === null || s.drum === undefined ? null : t(["drum_stopped", "drum_forward", "drum_reverse"][s.drum]));
  }
  function panelLive() {
    const i = store.index.get(state.selected);
    const el = document.getElementById("panel-live");
    if (i === undefined || !el) return;
    const motion = store.motionOf(i);
    el.innerHTML = `<div class="kv"><span>${t("status")}</span><b class="m-${motion}">${t(motion)}${store.inAlarm(i) ? ` · <span class="red">${t("alarm")}</span>` : ""}</b></div>
      <div class="kv"><span>${t("speed")}</span><b>${store.speed[i]} km/h</b></div>
      <div class="kv"><span>${t("heading")}</span><b>${store.heading[i]}°</b></div>
      <div class="kv"><span>${t("last_fix")}</span><b>${FW.time(store.ts[i])}</b></div>
      <div class="kv"><span>WGS-84</span><b>${store.lon[i].toFixed(6)}, ${store.lat[i].toFixed(6)}</b></div>
      <h4>${t("sensors")}</h4>${sensorsHtml(store.sensorsOf(i))}`;
  }
  async function select(id) {
    state.selected = id;
    const panel = document.getElementById("panel");
    panel.classList.add("open");
    panel.innerHTML = `<div class="muted">…</div>`;
    draw();
    const d = await FW.json(`/api/vehicles/${encodeURIComponent(id)}`);
    state.panel = d;
    const v = d.vehicle || { id, kind: "unknown" };
    const permits = d.permits.length ? d.permits.map((p) => `<div class="card-row"><b>${FW.esc(p.id)}</b> v${p.version}
        <span class="pill ${p.valid_today ? "ok" : "bad"}">${t(p.valid_today ? "valid" : "expired")}</span><br>
        <span class="muted">${FW.esc(p.valid_from)} → ${FW.esc(p.valid_to)} · ${FW.esc((p.windows || []).join(", "))}</span></div>`).join("")
      : `<div class="muted">${t("none")}</div>`;
    const alerts = d.recent_alerts.length ? d.recent_alerts.map((a) => `<a class="card-row alert-row" href="/alerts#${a.id}">
        <span class="pill ${a.status === "open" ? "bad" : ""}">${t(a.status)}</span> <b>${FW.esc(FW.label(a.kind))}</b><br>
        <span class="muted">${FW.time(a.start_ts_ms)}</span></a>`).join("") : `<div class="muted">${t("no_alerts")}</div>`;
    panel.innerHTML = `<div class="panel-head"><i class="sw" style="background:${FW.rgb(FW.color(v.kind))}"></i>
        <div><div class="plate">${FW.esc(v.plate || id)}</div><div class="muted">${FW.esc(FW.label(v.kind))} · ${FW.esc(id)}</div></div>
        <button id="panel-close" type="button">✕</button></div>
      <div class="kv"><span>${t("company")}</span><b>${FW.esc(v.company || "—")}</b></div>
      <div class="kv"><span>${t("district")}</span><b>${FW.esc(v.district || "—")}</b></div>
      <div id="panel-live"></div>
      <h4>${t("current_trip")}</h4><div>${d.current_trip ? FW.esc(d.current_trip.id) : `<span class="muted">${t("none")}</span>`}</div>
      <h4>${t("permits")}</h4>${permits}
      <h4>${t("recent_alerts")}</h4>${alerts}
      <a class="button" href="/replay#v=${encodeURIComponent(id)}">${t("replay_hour")}</a>`;
    document.getElementById("panel-close").addEventListener("click", () => {
      state.selected = null; panel.classList.remove("open"); draw();
    });
    panelLive();
    if (!d.live) {
      document.getElementById("panel-live").innerHTML = `<h4>${t("sensors")}</h4>` + sensorsHtml({});
    }
  }
  document.getElementById("search").addEventListener("change", (ev) => {
    const q = ev.target.value.trim().toLowerCase();
    if (!q) return;
    const hit = [...registry.values()].find((v) => (v.plate || "").toLowerCase().includes(q) || v.id.toLowerCase() === q);
    const id = hit ? hit.id : store.ids.find((x) => x.toLowerCase() === q);
    if (!id) return;
    const i = store.index.get(id);
    if (i !== undefined) deck.setProps({ initialViewState: { longitude: store.lon[i], latitude: store.lat[i], zoom: 16,
                                                             pitch: 0, bearing: 0, transitionDuration: 600 } });
    select(id);
  });
  document.getElementById("export").addEventListener("click", () => {
    const vp = deck.getViewports()[0];
    FW.exportLink("/api/export/live.html", { lon: vp.longitude, lat: vp.latitude, zoom: vp.zoom });
  });
  FW.onLang(() => { renderSummary(); status(); if (state.selected) select(state.selected); });
  FW.alertHandlers.push(() => { if (state.selected) select(state.selected); });

  // -- start ------------------------------------------------------------------------------------------------
  toggles();
  FW.json("/api/roads").then((gj) => {
    state.roads = gj; roadsLayer = FW.roadsLayer(L, gj, ui.roads); draw();
  });
  FW.fetch("/api/fences").then((r) => (r.ok ? r.json() : null)).then((gj) => {
    if (gj) { fencesData = gj; state.fenceCount = gj.features.length; draw(); }
  });
  // fps as the page experiences it (read by the benchmark and visible in the console)
  let fpsFrames = 0, fpsStart = performance.now();
  (function count(now) {
    fpsFrames++;
    if (now - fpsStart > 1000) { state.fps = (fpsFrames * 1000) / (now - fpsStart); fpsFrames = 0; fpsStart = now; }
    requestAnimationFrame(count);
  })(performance.now());
  connect();
  draw();
})();
