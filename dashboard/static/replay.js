// Replay: pick vehicles and a time range → animated tracks (TripsLayer) with a timeline, play/pause/speed,
// the focused vehicle's sensor timeline, and alerts on the track.
(async function () {
  await FW.ready;
  const state = window.fleetwatch;
  state.replay = { t: 0, playing: false, speed: 30, tracks: 0, heads: [], frames: 0 };
  const R = state.replay;
  const container = document.getElementById("map");
  const { deck, L } = FW.makeDeck(container, FW.fitBounds(container, FW.config.bounds, 10), ["TileLayer", "BitmapLayer"]);
  window.fwDeck = deck;
  let roads = null, fences = null, data = null, trips = [], t0 = 0, t1 = 1;
  const registry = new Map((await FW.json("/api/vehicles")).map((v) => [v.id, v]));
  const chosen = new Set();
  const slider = document.getElementById("slider"), canvas = document.getElementById("chart");

  // -- vehicle picker and time range --------------------------------------------------------------------------
  function renderList() {
    const q = document.getElementById("vsearch").value.trim().toLowerCase();
    const vs = [...registry.values()].filter((v) => !q || v.id.toLowerCase().includes(q) || (v.plate || "").toLowerCase().includes(q)
      || (v.company || "").toLowerCase().includes(q));
    vs.sort((a, b) => (chosen.has(b.id) - chosen.has(a.id)) || a.id.localeCompare(b.id));
    document.getElementById("vlist").innerHTML = vs.slice(0, 300).map((v) => `<label>
      <input type="checkbox" value="${FW.esc(v.id)}" ${chosen.has(v.id) ? "checked" : ""}/>
      <i class="sw" style="background:${FW.rgb(FW.color(v.kind))}"></i><b>${FW.esc(v.plate || v.id)}</b>
      <span class="muted">${FW.esc(FW.label(v.kind))}</span></label>`).join("");
  }
  document.getElementById("vlist").addEventListener("change", (ev) => {
    if (ev.target.checked) chosen.add(ev.target.value); else chosen.delete(ev.target.value);
  });
  document.getElementById("vsearch").addEventListener("input", renderList);
  const live = await FW.json("/api/live");
  const hash = new URLSearchParams(location.hash.slice(1));
  const end = hash.get("t") ? Number(hash.get("t")) + 3600000 : live.t;
  document.getElementById("since").value = FW.localInput(end - 3600000);
  document.getElementById("until").value = FW.localInput(end);
  if (hash.get("v")) hash.get("v").split(",").forEach((id) => chosen.add(id));
  renderList();

  // -- loading ------------------------------------------------------------------------------------------------
  async function load() {
    if (!chosen.size) return;
    const since = FW.fromLocalInput(document.getElementById("since").value);
    const until = FW.fromLocalInput(document.getElementById("until").value);
    const q = new URLSearchParams({ since: new Date(since).toISOString(), until: new Date(until).toISOString() });
    for (const id of chosen) q.append("vehicle", id);
    data = await FW.json(`/api/replay?${q}`);
    t0 = data.since_ms; t1 = data.until_ms;
    trips = data.tracks.map((tr) => {
      const v = registry.get(tr.vehicle_id) || {};
      return { id: tr.vehicle_id, kind: v.kind, plate: v.plate || tr.vehicle_id, color: FW.color(v.kind), track: tr,
               path: tr.lon.map((x, i) => [x, tr.lat[i]]), timestamps: tr.ts_ms.map((ms) => (ms - t0) / 1000) };
    });
    R.tracks = trips.length;
    R.fixes = trips.reduce((a, x) => a + x.path.length, 0);
    slider.max = String(Math.round((t1 - t0) / 1000));
    const first = trips.length ? Math.min(...trips.map((x) => x.timestamps[0])) : 0;
    seek(first);
    document.getElementById("focus").innerHTML = trips.map((x) => `<option value="${FW.esc(x.id)}">${FW.esc(x.plate)}</option>`).join("");
    document.getElementById("info").textContent = trips.length ? `${trips.length} ${t("vehicles")} · ${R.fixes} ${t("fixes")} · ${data.alerts.length} ${t("alarm")}` : t("no_tracks");
    const xs = trips.flatMap((x) => x.path.map((p) => p[0])), ys = trips.flatMap((x) => x.path.map((p) => p[1]));
    if (xs.length) deck.setProps({ initialViewState: { ...FW.fitBounds(container, [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)], 60), transitionDuration: FW.quiet ? 0 : 500 } });
    if (!fences) {
      const r = await FW.fetch(`/api/fences?at=${new Date(since).toISOString()}`);
      fences = r.ok ? await r.json() : { type: "FeatureCollection", features: [] };
    }
    draw();
  }
  document.getElementById("load").addEventListener("click", load);

  // -- playback -----------------------------------------------------------------------------------------------
  function headAt(x, s) {
    const ts = x.timestamps;
    if (!ts.length || s < ts[0] || s > ts[ts.length - 1] + 60) return null;
    let lo = 0, hi = ts.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (ts[mid] <= s) lo = mid; else hi = mid - 1; }
    const j = Math.min(lo + 1, ts.length - 1), f = ts[j] > ts[lo] ? (s - ts[lo]) / (ts[j] - ts[lo]) : 0;
    const k = Math.max(0, Math.min(1, f));
    return { x, i: lo, position: [x.path[lo][0] + (x.path[j][0] - x.path[lo][0]) * k, x.path[lo][1] + (x.path[j][1] - x.path[lo][1]) * k] };
  }
  function draw() {
    const layers = [];
    const tiles = FW.tileLayer(L);
    if (tiles) layers.push(tiles);
    if (roads) layers.push(FW.roadsLayer(L, roads));
    if (fences) layers.push(FW.fencesLayer(L, fences));
    layers.push(new L.PathLayer({ id: "paths", data: trips, getPath: (x) => x.path, getColor: [90, 110, 140, 110],
      widthUnits: "pixels", getWidth: 2 }));
    layers.push(new L.TripsLayer({ id: "trips", data: trips, getPath: (x) => x.path, getTimestamps: (x) => x.timestamps,
      getColor: (x) => x.color, widthUnits: "pixels", getWidth: 4, trailLength: 900, currentTime: R.t,
      capRounded: true, jointRounded: true, fadeTrail: true }));
    if (data) layers.push(new L.ScatterplotLayer({ id: "alerts", data: data.alerts.filter((a) => a.lon !== null),
      getPosition: (a) => [a.lon, a.lat], radiusUnits: "pixels", getRadius: 8, stroked: true, pickable: true,
      getFillColor: (a) => (a.start_ts_ms <= t0 + R.t * 1000 ? [255, 59, 59, 230] : [255, 59, 59, 70]),
      getLineColor: [255, 255, 255, 220], lineWidthMinPixels: 1.5, updateTriggers: { getFillColor: R.t } }));
    const heads = trips.map((x) => headAt(x, R.t)).filter(Boolean);
    R.heads = heads.map((h) => h.position);
    layers.push(new L.ScatterplotLayer({ id: "heads", data: heads, getPosition: (h) => h.position, pickable: true,
      getFillColor: (h) => h.x.color, getLineColor: [255, 255, 255], stroked: true, radiusUnits: "pixels", getRadius: 7,
      lineWidthMinPixels: 2 }));
    deck.setProps({ layers });
    R.frames += 1;
    const focus = trips.find((x) => x.id === document.getElementById("focus").value) || trips[0];
    FWChart.draw(canvas, focus && focus.track, t0, t1, t0 + R.t * 1000,
                 data ? data.alerts.filter((a) => !focus || a.vehicle_id === focus.id) : []);
    document.getElementById("clock-t").textContent = data ? FW.time(t0 + R.t * 1000) : "—";
    slider.value = String(Math.round(R.t));
  }
  deck.setProps({ getTooltip: (info) => {
    if (!info.object) return null;
    if (info.layer.id === "heads") {
      const h = info.object, tr = h.x.track;
      return { html: `<b>${FW.esc(h.x.plate)}</b> · ${FW.esc(FW.label(h.x.kind))}<br>${FW.time(tr.ts_ms[h.i])} · ${tr.speed_kmh[h.i].toFixed(0)} km/h`, style: FW.tooltipStyle };
    }
    if (info.layer.id === "alerts") return { text: `${FW.label(info.object.kind)} · ${FW.time(info.object.start_ts_ms)}`, style: FW.tooltipStyle };
    return null;
  } });
  function seek(s) { R.t = Math.max(0, Math.min((t1 - t0) / 1000, s)); draw(); }
  let last = null;
  function tick(now) {
    if (R.playing && data) {
      if (last !== null) {
        R.t += ((now - last) / 1000) * R.speed;
        if (R.t >= (t1 - t0) / 1000) { R.t = (t1 - t0) / 1000; setPlaying(false); }
        draw();
      }
      last = now;
    } else last = null;
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
  function setPlaying(on) {
    R.playing = on;
    document.getElementById("play").textContent = on ? `❚❚ ${t("pause")}` : `▶ ${t("play")}`;
  }
  document.getElementById("play").addEventListener("click", () => {
    if (!data) return;
    if (!R.playing && R.t >= (t1 - t0) / 1000) R.t = 0;
    setPlaying(!R.playing);
  });
  document.getElementById("speed").addEventListener("change", (ev) => { R.speed = Number(ev.target.value); });
  slider.addEventListener("input", () => seek(Number(slider.value)));
  canvas.addEventListener("click", (ev) => { if (data) seek((FWChart.timeAt(canvas, t0, t1, ev.clientX) - t0) / 1000); });
  document.getElementById("focus").addEventListener("change", draw);
  document.getElementById("export").addEventListener("click", () => {
    if (!data) return;
    const vp = deck.getViewports()[0];
    FW.exportLink("/api/export/replay.html", { since: new Date(t0).toISOString(), until: new Date(t1).toISOString(),
                                               lon: vp.longitude, lat: vp.latitude, zoom: vp.zoom,
                                               vehicle: trips.map((x) => x.id).join(",") });
  });
  window.addEventListener("resize", draw);
  FW.onLang(() => { setPlaying(R.playing); renderList(); draw(); });

  setPlaying(false);
  FW.json("/api/roads").then((gj) => { roads = gj; state.roads = true; draw(); });
  if (chosen.size) load();
})();
