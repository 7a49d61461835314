// Live map: road network from GeoJSON (no basemap), fences and permitted routes, vehicles from /ws/live
// (binary, viewport-limited) drawn with binary attributes and moved smoothly between 1 Hz updates.
//
// Two stacked deck.gl canvases: the base (tiles, density, roads, fences) redraws only when the view or a
// layer toggle changes; the top one (vehicles, alarm halos, selection) redraws on every update and animation
// frame. Every draw of a deck.gl canvas re-renders all its layers, and the road network is as costly to
// draw as ~20,000 vehicles, so keeping it off the per-frame path halves the work of every frame.
//
// What an animation frame costs, and why it is cheap (software WebGL — SwiftShader — is what headless
// Chromium and GPU-less desktops get, and it pays for every byte uploaded and every sample shaded):
// * motion is interpolated on the GPU: each update uploads the new positions (float64, split by deck.gl)
//   and, per vehicle, the offset from where it is drawn now (float32); a frame then only changes one
//   uniform (`animT`, static/points.js) — no per-frame JavaScript over the fleet, no per-frame upload;
// * the layer's binary attributes keep their identity between updates (deck.gl re-uploads an attribute
//   when its `{value}` object changes), and colours/radii are re-uploaded only when one actually changed;
// * the vehicle canvas has no multisampling, no preserved drawing buffer and no depth buffer (the points are
//   antialiased in their fragment shader; MSAA would shade and resolve every sample of the 1.1 M-pixel canvas
//   each frame, and a depth buffer would be cleared and tested each frame for a flat map);
// * the dots are only a few pixels across at the city-wide view (RADIUS_M below): the pixels they cover are
//   shaded one by one, and at 20,000 vehicles they were most of a frame's cost.
// With software WebGL the vehicles are not drawn by WebGL at all but by the page into a 2D canvas over the
// top one (static/raster.js: per point, a software rasteriser costs far more than the few pixels it fills);
// the top deck.gl canvas then only takes the pointer and redraws when the view moves. `?render=gl|raster`
// forces one or the other.
// The page still measures how long its frames really take (requestAnimationFrame intervals, not the
// JavaScript time of a render) and stops animating when they are slow, and never animates in quiet mode
// (`?static=1` / prefers-reduced-motion); then it redraws once per update. `?animate=1` animates always.
(async function () {
  await FW.ready;
  const state = window.fleetwatch;
  Object.assign(state, { rendered: 0, messages: 0, frames: 0, roads: null, lastUpdate: 0, selected: null,
                         drawn: 0, summary: null, fenceCount: 0, deckRenders: 0, baseRenders: 0, baseShifts: 0,
                         vehicleRenders: 0, uploads: 0, styleUploads: 0, animFrames: 0, animating: false });
  const store = new FWLiveStore();
  state.store = store;
  const ANIM_MS = 900, SLOW_MS = 60, FAST_MS = 30;
  const params = new URLSearchParams(location.search);
  const container = document.getElementById("map");
  const baseBox = document.createElement("div");
  baseBox.className = "map map-base";
  container.parentNode.insertBefore(baseBox, container);
  let view = FW.fitBounds(container, FW.config.bounds, 10);
  const { deck: base, L } = FW.makeDeck(baseBox, view, ["TileLayer", "BitmapLayer"]);
  base.setProps({ controller: false, viewState: view, initialViewState: undefined,
                  onAfterRender: () => { state.baseRenders += 1; if (raster) shiftBase(); } });
  // the vehicle canvas: created like FW.makeDeck's, with the WebGL context it needs (no MSAA, not preserved,
  // no depth buffer — a flat map needs no depth test, and without the buffer there is none to clear and test
  // every frame; `?msaa=1` restores the defaults, for comparison)
  const glProps = params.get("msaa") === "1" ? {}
    : { webgl: { antialias: false, preserveDrawingBuffer: false, depth: false, stencil: false } };
  const deck = createDeck({ container, tooltip: false,
                            jsonInput: { initialViewState: view, controller: true, layers: [], deviceProps: glProps } });
  window.fwDeck = deck;
  window.fwBaseDeck = base;
  const ui = { roads: true, fences: true, routes: true, density: false, hidden: new Set() };
  // The base follows the top canvas's view. With software GL (when the raster draws the vehicles) a redraw of
  // the base — the road network above all — takes far longer than a frame, so while the view moves the base
  // canvas is moved as a picture: a CSS translate/scale from the view it was drawn at to the current one,
  // exact for pans and zooms at one bearing without pitch (anything else redraws). It is redrawn when the
  // view has been still for SETTLE_MS, and every REDRAW_MS during a long drag so that uncovered edges fill.
  const SETTLE_MS = 150, REDRAW_MS = 700;
  let settleTimer = null, movingSince = 0, baseAt = 0;
  function mirror(v) {
    view = v;
    if (!raster) { redrawBase(); return; }
    const now = performance.now();
    if (!movingSince) movingSince = baseAt = now;
    if (now - baseAt > REDRAW_MS) redrawBase();
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => { movingSince = 0; redrawBase(); }, SETTLE_MS);
  }
  function redrawBase() {
    baseAt = performance.now();
    base.setProps({ viewState: { ...view, transitionDuration: 0 } });
  }
  function shiftBase() { // place the base's last picture where the top canvas's view puts it
    const b = base.isInitialized ? base.getViewports()[0] : null, t = deck.isInitialized ? deck.getViewports()[0] : null;
    const canvas = baseBox.querySelector("canvas");
    if (!b || !t || !canvas) return;
    if (b.pitch || t.pitch || b.bearing !== t.bearing) { canvas.style.transform = ""; redrawBase(); return; }
    const [ax, ay] = t.project(b.unproject([0, 0])), [bx] = t.project(b.unproject([b.width, b.height]));
    const k = (bx - ax) / b.width;
    const same = Math.abs(ax) < 0.05 && Math.abs(ay) < 0.05 && Math.abs(k - 1) < 1e-6;
    canvas.style.transformOrigin = "0 0";
    canvas.style.transform = same ? "" : `translate(${ax}px, ${ay}px) scale(${k})`;
    if (!same) state.baseShifts += 1;
  }
  window.fwJumpTo = (v) => jumpTo(v); // for the benchmark: move the map as the page does
  function jumpTo(v) { // move both canvases (a transition animates on the top one, the base follows)
    deck.setProps({ initialViewState: v });
    if (!v.transitionDuration) mirror(v);
  }

  // -- what the vehicle layer reads: `to` (where each vehicle is going, lon/lat float64) and `delta` (where it
  // is drawn from, as an offset from `to`, float32), replaced at each update; styles, copied when changed. ----
  let n = 0, to = new Float64Array(2), delta = new Float32Array(2), animStart = 0, animK = 1, animating = false;
  let cap = 0, fill, line, radius, styleDirty = true, styleVersion = 0, drewAt = 0, rafPending = false;
  function ensure(m) {
    if (m <= cap) return;
    const next = Math.max(m, cap * 2, 1024);
    const g = (old, Type, size) => { const a = new Type(next * size); if (old) a.set(old); return a; };
    fill = g(fill, Uint8Array, 4); line = g(line, Uint8Array, 4); radius = g(radius, Float32Array, 1);
    cap = next;
    styleDirty = true;
    styleVersion += 1;
  }
  ensure(1024);
  // where vehicle i is drawn now (k: the animation's progress), e.g. for halos and the selection ring
  const drawnAt = (i, k = animK) => [to[2 * i] + delta[2 * i] * (1 - k), to[2 * i + 1] + delta[2 * i + 1] * (1 - k)];
  const OFFLINE = FW.vocab.colors.status.offline, ALARM = FW.vocab.colors.status.alarm;
  const MOVING_LINE = [235, 242, 250, 200], STILL_LINE = [10, 14, 20, 220];
  // Dot size: a radius in metres clamped to a pixel range. 12 m (16 in alarm) keeps a dot at its 3 px minimum
  // at the city-wide view (~4.5 m/px at zoom 14; before: 26 m, ~6 px), where vehicles can be a few pixels
  // apart and bigger dots only cover each other — and every covered pixel is shaded, the bulk of a frame's
  // cost with software WebGL; zoomed in it grows up to 11 px, as before.
  const RADIUS_M = 12, ALARM_RADIUS_M = 16, DOT = { radiusMinPixels: 3, radiusMaxPixels: 11, lineWidth: 1 };
  function put(arr, o, r, g, b, a) { // write one RGBA; true when it changed
    if (arr[o] === r && arr[o + 1] === g && arr[o + 2] === b && arr[o + 3] === a) return false;
    arr[o] = r; arr[o + 1] = g; arr[o + 2] = b; arr[o + 3] = a;
    return true;
  }
  function styleOf(i) {
    const kind = store.kindOf(i), motion = store.motionOf(i), alarm = store.inAlarm(i);
    const c = motion === "offline" ? OFFLINE : FW.color(kind);
    let changed = put(fill, i * 4, c[0], c[1], c[2], motion === "stopped" ? 150 : motion === "offline" ? 190 : 255);
    const l = alarm ? ALARM : motion === "moving" ? MOVING_LINE : STILL_LINE;
    changed = put(line, i * 4, l[0], l[1], l[2], alarm ? 255 : l[3]) || changed;
    const r = ui.hidden.has(kind) ? 0 : alarm ? ALARM_RADIUS_M : RADIUS_M;
    if (radius[i] !== r) { radius[i] = r; changed = true; }
    if (changed) { styleDirty = true; styleVersion += 1; }
  }
  state.fillOf = (i) => Array.from(fill.subarray(4 * i, 4 * i + 4)); // for tests: a vehicle's fill, RGBA
  function restyleAll() { for (let i = 0; i < store.n; i++) styleOf(i); draw(); }

  // -- base layers: rebuilt only when their data or a toggle changes -------------------------------------
  let roadsLayer = null, fencesData = null, fencesLayer = null, densityData = null, densityLayer = null, pulse = 0;
  function drawBase() {
    if (fencesData && !fencesLayer) {
      fencesLayer = FW.fencesLayer(L, { type: "FeatureCollection", features: fencesData.features.filter((f) =>
        f.properties.kind === "route" ? ui.routes : ui.fences) }, { trigger: `${ui.fences}${ui.routes}` });
    }
    if (densityData && ui.density && !densityLayer) {
      densityLayer = new L.H3HexagonLayer({
        id: "density", data: densityData, getHexagon: (d) => d.h3, extruded: false, stroked: false, opacity: 0.38,
        getFillColor: (d) => ramp(d.fixes / densityData.max), pickable: true,
      });
    }
    const layers = [];
    const tiles = FW.tileLayer(L);
    if (tiles) layers.push(tiles);
    if (densityLayer && ui.density) layers.push(densityLayer);
    if (roadsLayer) layers.push(roadsLayer);
    if (fencesLayer) layers.push(fencesLayer);
    base.setProps({ layers });
  }

  // -- vehicle layers: one stable binary data object; its attribute objects change only with their arrays ----
  // Vehicles are a point list (static/points.js: one draw, not one instance per vehicle, motion on the GPU);
  // should that layer fail to build with this deck.gl bundle, the page falls back to deck.gl's
  // ScatterplotLayer for good (motion then interpolated in JavaScript, positions uploaded per frame).
  const render = params.get("render");
  const raster = window.FWRaster && (render === "raster" || (render !== "gl" && FWRaster.softwareGL()))
    ? new FWRaster(container) : null;
  let usePoints = Boolean(window.FWPointLayer) && params.get("points") !== "0";
  state.vehicleLayer = raster ? "raster" : usePoints ? "points" : "scatterplot";
  deck.setProps({ onError: (error, layer) => {
    if (usePoints && layer && layer.id === "vehicles") {
      console.warn("point layer failed, using ScatterplotLayer:", error);
      usePoints = false;
      state.vehicleLayer = "scatterplot";
      vehicleData = null;
      draw();
    } else console.error(error);
  } });
  let vehicleData = null, attrs = null, shownTo = null, shownDelta = null;
  function vehicleAttributes() {
    if (!vehicleData || vehicleData.length !== n) { vehicleData = { length: n, attributes: {} }; attrs = null; }
    if (!attrs || styleDirty) {
      const m = Math.max(n, 1);
      attrs = { ...attrs, getFillColor: { value: fill.slice(0, m * 4), size: 4, normalized: true },
                getLineColor: { value: line.slice(0, m * 4), size: 4, normalized: true },
                getRadius: { value: radius.slice(0, m), size: 1 } };
      styleDirty = false;
      state.styleUploads += 1;
    }
    if (usePoints) {
      if (shownTo !== to || !attrs.getDelta) {
        attrs = { ...attrs, getPosition: { value: to, size: 2 }, getDelta: { value: delta, size: 2 } };
        shownTo = to;
        state.uploads += 1;
      }
    } else { // fallback: positions interpolated here, a new array (an upload) per animation frame
      const p = new Float64Array(Math.max(n, 1) * 2);
      for (let j = 0; j < 2 * n; j++) p[j] = to[j] + delta[j] * (1 - animK);
      attrs = { ...attrs, getPosition: { value: p, size: 2 } };
      delete attrs.getDelta;
      shownTo = null;
    }
    if (vehicleData.attributes !== attrs) vehicleData.attributes = attrs;
    return vehicleData;
  }
  function vehicleLayers() {
    const data = vehicleAttributes();
    const layers = [usePoints
      ? new window.FWPointLayer({ id: "vehicles", data, pickable: true, radiusMinPixels: DOT.radiusMinPixels,
                                  radiusMaxPixels: DOT.radiusMaxPixels, lineWidthPixels: DOT.lineWidth, animT: animK })
      : new L.ScatterplotLayer({
        id: "vehicles", data, pickable: true, stroked: true, filled: true, radiusUnits: "meters",
        radiusMinPixels: DOT.radiusMinPixels, radiusMaxPixels: DOT.radiusMaxPixels, lineWidthUnits: "pixels",
        getLineWidth: DOT.lineWidth,
      })];
    const halos = alarmedNow();
    if (halos.length) {
      layers.push(new L.ScatterplotLayer({
        id: "alarm-halo", data: halos, pickable: false, stroked: true, filled: false, radiusUnits: "pixels",
        getPosition: (i) => drawnAt(i), getRadius: 10 + 8 * pulse, getLineColor: [...ALARM, 230 * (1 - pulse)],
        lineWidthMinPixels: 2, updateTriggers: { getPosition: state.drawn, getRadius: pulse, getLineColor: pulse },
      }));
    }
    if (state.selected !== null) {
      const i = store.index.get(state.selected);
      if (i !== undefined && i < n) layers.push(new L.ScatterplotLayer({
        id: "selected", data: [i], stroked: true, filled: false, radiusUnits: "pixels", getRadius: 16,
        getPosition: (j) => drawnAt(j), getLineColor: [255, 255, 255, 255], lineWidthMinPixels: 2,
        updateTriggers: { getPosition: state.drawn },
      }));
    }
    return layers;
  }
  let alarmed = [], alarmedFor = "";
  function alarmedNow() { // vehicles in alarm (and shown): re-listed only when a style or the fleet changed
    if (alarmedFor === `${styleVersion}/${n}`) return alarmed;
    alarmed = [];
    for (let i = 0; i < n; i++) if (store.inAlarm(i) && radius[i] > 0) alarmed.push(i);
    alarmedFor = `${styleVersion}/${n}`;
    state.alarmed = alarmed.length;
    return alarmed;
  }
  // the same picture through static/raster.js: halos and the selection ring as rings over the dots
  const HALO_ALPHA_STEP = 10; // halo transparency in steps (each distinct ring is a sprite the raster keeps)
  function drawRaster() {
    const vp = deck.isInitialized ? deck.getViewports()[0] : null; // none before deck.gl's first frame
    if (!vp) return;
    const a = Math.round((230 * (1 - pulse)) / HALO_ALPHA_STEP) * HALO_ALPHA_STEP;
    const rings = alarmedNow().map((i) => ({ i, radiusPx: Math.round(2 * (10 + 8 * pulse)) / 2, widthPx: 2,
                                           color: [...ALARM, a] }));
    const sel = state.selected === null ? undefined : store.index.get(state.selected);
    if (sel !== undefined && sel < n) rings.push({ i: sel, radiusPx: 16, widthPx: 2, color: [255, 255, 255, 255] });
    raster.draw(vp, animK, { fill, line, radius, dot: DOT, version: styleVersion }, rings);
    vehicleDrawn();
  }
  function draw() {
    drewAt = performance.now();
    if (raster) drawRaster();
    else deck.setProps({ layers: vehicleLayers() });
    state.rendered = n;
    state.drawn += 1;
  }
  function ramp(x) { // dark blue → cyan → yellow → red
    const stops = [[30, 60, 140], [40, 180, 220], [250, 220, 70], [240, 60, 50]];
    const f = Math.min(0.999, Math.max(0, Math.sqrt(x))) * (stops.length - 1), k = Math.floor(f), r = f - k;
    return stops[k].map((c, j) => Math.round(c + (stops[k + 1][j] - c) * r)).concat([200]);
  }

  // -- animation: advance `animT` between updates and pulse alarm halos, while frames are fast -------------
  // frameMs: time from a draw to the first animation frame after deck.gl rendered it, i.e. what one redraw of
  // the top canvas really costs (with software WebGL the GL work runs after the JavaScript returns, and the
  // browser holds back the next frame until it is done). `?animate=1` animates whatever it costs.
  const FORCE = params.get("animate") === "1";
  state.smooth = !FW.quiet;
  state.frameMs = 0;
  let measuring = false;
  deck.setProps({ onAfterRender: () => {
    state.deckRenders += 1;
    if (raster) { drawRaster(); shiftBase(); } // the view moved (the raster has no layer of its own in deck.gl)
    else vehicleDrawn();
  } });
  function vehicleDrawn() { // the vehicles were drawn, by either renderer
    state.vehicleRenders += 1;
    if (!drewAt || measuring) return;
    const t = drewAt;
    drewAt = 0;
    measuring = true;
    requestAnimationFrame((now) => { measuring = false; measure(now - t); });
  }
  function measure(dt) {
    state.frameMs = state.frameMs ? state.frameMs * 0.7 + dt * 0.3 : dt;
    state.frameSamples = [...(state.frameSamples || []).slice(-119), dt]; // read by the benchmark
    if (FW.quiet || FORCE) return;
    if (state.smooth && state.frameMs > SLOW_MS) state.smooth = false;
    else if (!state.smooth && state.frameMs < FAST_MS) state.smooth = true;
  }
  function schedule() {
    if (!rafPending) { rafPending = true; requestAnimationFrame(step); }
  }
  function step(now) {
    rafPending = false;
    const moved = animating;
    if (animating) {
      animK = state.smooth ? Math.min(1, Math.max(0, (now - animStart) / ANIM_MS)) : 1;
      if (animK >= 1) animating = false;
      state.animating = animating;
      state.animFrames += 1;
    }
    const pulsing = state.alarmed && state.smooth;
    pulse = pulsing ? (now % 1600) / 1600 : 0.35;
    if (moved || pulsing) draw();
    if (animating || pulsing) schedule();
  }

  function onFrame(buf) {
    const before = n, m = store.ids.length; // the index table arrives before the frames that use it
    ensure(m);
    // new arrays (deck.gl uploads them once): targets, decoded straight into place, and each vehicle's
    // offset from where it is drawn now
    const k = animK, nextTo = new Float64Array(Math.max(m, 1) * 2), nextDelta = new Float32Array(Math.max(m, 1) * 2);
    nextTo.set(to.subarray(0, 2 * before));
    const touched = store.frame(buf, nextTo);
    // from where each vehicle is drawn now (still on its way if the last animation has not finished); a
    // vehicle never positioned before (0, 0) appears where it is (delta 0)
    const back = state.smooth ? 1 - k : 0;
    for (let i = 0, j = 0; i < before; i++, j += 2) {
      if (to[j] === 0 && to[j + 1] === 0) continue;
      nextDelta[j] = to[j] + delta[j] * back - nextTo[j];
      nextDelta[j + 1] = to[j + 1] + delta[j + 1] * back - nextTo[j + 1];
    }
    to = nextTo; delta = nextDelta; n = m;
    if (raster) raster.positions(n, to, delta);
    for (const i of touched) styleOf(i);
    animStart = performance.now();
    animK = state.smooth ? 0 : 1;
    animating = true;
    state.animating = true;
    state.frames += 1;
    state.lastUpdate = store.t;
    if (touched.length && state.selected !== null && touched.includes(store.index.get(state.selected))) panelLive();
    step(animStart);
  }

  // -- websocket ------------------------------------------------------------------------------------------
  let ws = null;
  function connect() {
    store.reset();
    n = 0; to = new Float64Array(2); delta = new Float32Array(2); animK = 1; animating = false;
    if (raster) raster.positions(0, to, delta);
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
    onViewStateChange: ({ viewState }) => {
      mirror(viewState);
      clearTimeout(vpTimer); vpTimer = setTimeout(sendViewport, 250); state.view = viewState;
    },
    onClick: (info) => {
      const i = vehicleAt(info);
      if (i >= 0) select(store.ids[i]);
    },
    getTooltip: (info) => tooltip(info),
  });
  // the vehicle under the pointer (deck.gl's picking info), whichever renderer drew it; -1 if none
  function vehicleAt(info) {
    if (raster) return info.x >= 0 ? raster.pick(info.x, info.y) : -1;
    return info.layer && info.layer.id === "vehicles" && info.index >= 0 ? info.index : -1;
  }
  window.fwVehicleAt = (x, y) => { // for tests and tools: the id of the vehicle drawn at CSS pixel (x, y)
    const i = raster ? raster.pick(x, y) : vehicleAt(deck.pickObject({ x, y, radius: 2, layerIds: ["vehicles"] }) || {});
    return i >= 0 ? store.ids[i] : null;
  };
  function tooltip(info) {
    const i = vehicleAt(info);
    if (i >= 0) {
      const id = store.ids[i], v = registry.get(id) || {};
      const alarm = store.inAlarm(i) ? ` · <b style="color:#ff5a5a">${t("alarm")}</b>` : "";
      return { html: `<b>${FW.esc(v.plate || id)}</b> · ${FW.esc(FW.label(store.kindOf(i)))}<br>${FW.esc(v.company || "")}<br>
        ${store.speed[i]} km/h · ${t(store.motionOf(i))}${alarm}`, style: FW.tooltipStyle };
    }
    if (!info.layer && info.x >= 0) info = base.pickObject({ x: info.x, y: info.y, radius: 2 }) || info; // fences, density
    if (!info.layer) return null;
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
      if (inp.name === "fences" || inp.name === "routes") fencesLayer = null;
      if (inp.name === "density" && inp.checked) loadDensity();
      drawBase();
    }));
  }
  async function loadDensity() {
    const d = await FW.json(`/api/density`);
    densityData = d.cells;
    densityData.max = Math.max(1, ...d.cells.map((c) => c.fixes));
    densityLayer = null;
    state.densityCells = d.cells.length;
    drawBase();
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
    if (i !== undefined) jumpTo({ longitude: store.lon[i], latitude: store.lat[i], zoom: 16, pitch: 0, bearing: 0,
                                  transitionDuration: FW.quiet ? 0 : 600 });
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
    state.roads = gj; roadsLayer = FW.roadsLayer(L, gj, ui.roads); drawBase();
  });
  FW.fetch("/api/fences").then((r) => (r.ok ? r.json() : null)).then((gj) => {
    if (gj) { fencesData = gj; fencesLayer = null; state.fenceCount = gj.features.length; drawBase(); }
  });
  connect();
  drawBase();
  draw();
})();
