// Shared by every page: login (token), header and navigation, labels, local time, alert toasts, deck.gl helpers.
// Plain script (no build step): everything hangs off window.FW.
//
// Login: the session token lives in sessionStorage (this tab only; gone when the tab closes) and goes out as
// `Authorization: Bearer …` on every fetch (FW.fetch / FW.json) and as the first message on every websocket
// (FW.socket) — never in a URL. No token, or a 401 / websocket close 4401 → the login page, which comes back
// here. A one-time sign-in link (`/#login=<code>`, printed by `fleetwatch demo`) is exchanged for a token and
// removed from the address bar before anything else runs.
//
// Quiet mode (`?static=1`, or the OS/browser asking for reduced motion): no interpolated movement, no pulsing
// halos, no blinking — the map redraws once per update. For slow PCs, software WebGL and the browser tests.
(function () {
  const FW = (window.FW = { config: null, vocab: null, page: document.body.dataset.page, listeners: [], user: null });
  window.fleetwatch = window.fleetwatch || {}; // page state read by tests and by people in the console
  const state = window.fleetwatch;
  state.toasts = 0;
  state.alertsReceived = [];
  state.sockets = []; // every websocket close: {path, code, at} (a page that keeps reconnecting shows here)
  const params = new URLSearchParams(location.search);
  FW.quiet = params.get("static") === "1" ||
    (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  state.quiet = FW.quiet;
  if (FW.quiet) document.documentElement.classList.add("quiet");

  // -- login --------------------------------------------------------------------------------------------
  const TOKEN = "fw-token";
  FW.token = () => sessionStorage.getItem(TOKEN);
  FW.toLogin = () => {
    sessionStorage.removeItem(TOKEN);
    const next = location.pathname + location.search + location.hash;
    location.replace(`/login?next=${encodeURIComponent(next)}`);
    return new Promise(() => {}); // nothing on this page continues
  };
  FW.fetch = async (url, opts = {}) => {
    const headers = new Headers(opts.headers || {});
    headers.set("Authorization", `Bearer ${FW.token()}`);
    const r = await fetch(url, { ...opts, headers });
    if (r.status === 401) await FW.toLogin();
    return r;
  };
  FW.socket = (path) => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}${path}`);
    ws.addEventListener("open", () => ws.send(JSON.stringify({ token: FW.token() }))); // before the page's onopen
    ws.addEventListener("close", (ev) => {
      state.sockets.push({ path: path.split("?")[0], code: ev.code, at: Date.now() });
      if (ev.code === 4401) FW.toLogin();
    });
    return ws;
  };
  async function signIn() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const code = hash.get("login");
    if (code) {
      hash.delete("login");
      const rest = hash.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
      const r = await fetch("/api/auth/link", { method: "POST", headers: { "Content-Type": "application/json" },
                                                body: JSON.stringify({ code }) });
      if (r.ok) sessionStorage.setItem(TOKEN, (await r.json()).token);
    }
    if (!FW.token()) await FW.toLogin();
    const me = await FW.fetch("/api/auth/me");
    if (!me.ok) throw new Error(`/api/auth/me: ${me.status}`);
    FW.user = await me.json();
    state.user = FW.user.username;
    renderUser();
  }

  // -- header -------------------------------------------------------------------------------------------
  const header = document.createElement("header");
  header.innerHTML = `
    <span class="brand"><b>FleetWatch</b> <span data-i18n="title"></span></span>
    <nav>
      <a href="/" data-p="live" data-i18n="nav_live"></a>
      <a href="/alerts" data-p="alerts" data-i18n="nav_alerts"></a>
      <a href="/replay" data-p="replay" data-i18n="nav_replay"></a>
      <a href="/stats" data-p="stats" data-i18n="nav_stats"></a>
      <a href="/coverage" data-p="coverage" data-i18n="nav_coverage"></a>
      <a href="/cases" data-p="cases" data-i18n="nav_cases"></a>
    </nav>
    <span id="status" class="status"></span>
    <span id="clock" class="clock"></span>
    <span id="alarm-badge" class="badge" title=""></span>
    <span id="case-badge" class="badge" title="" style="background:#c77800;cursor:pointer"></span>
    <span id="user" class="user"></span>
    <button id="logout" type="button" data-i18n="logout"></button>
    <button id="lang" type="button">EN / 中文</button>`;
  document.body.prepend(header);
  header.querySelector(`nav a[data-p="${FW.page}"]`)?.classList.add("active");
  const toastBox = document.createElement("div");
  toastBox.id = "toasts";
  document.body.appendChild(toastBox);

  FW.onLang = (fn) => FW.listeners.push(fn);
  document.getElementById("lang").addEventListener("click", () => {
    window.fwLang = window.fwLang === "zh" ? "en" : "zh";
    localStorage.setItem("fw-lang", window.fwLang);
    window.applyI18n();
    renderUser();
    FW.listeners.forEach((fn) => fn());
  });
  function renderUser() {
    const u = FW.user;
    if (!u) return;
    const scope = [...u.companies, ...u.districts].join(" · ");
    document.getElementById("user").innerHTML = `${FW.esc(u.display_name || u.username)}
      <span class="pill">${FW.esc(t(`role_${u.role}`))}</span>${scope ? ` <span class="muted">${FW.esc(scope)}</span>` : ""}`;
  }
  document.getElementById("logout").addEventListener("click", async () => {
    try { await FW.fetch("/api/auth/logout", { method: "POST" }); } catch (e) { /* signing out anyway */ }
    sessionStorage.removeItem(TOKEN);
    location.replace("/login");
  });

  // -- labels and time ----------------------------------------------------------------------------------
  FW.label = (value) => {
    if (value === null || value === undefined || value === "") return "—";
    const v = FW.vocab;
    if (v) {
      for (const table of ["vehicle_kinds", "violation_kinds", "fence_kinds", "statuses"]) {
        const hit = v[table][value];
        if (hit) return hit[window.fwLang] || hit.en;
      }
    }
    return window.t(value);
  };
  FW.tz = () => (FW.config && FW.config.timezone) || "Asia/Shanghai";
  const fmtCache = {};
  function fmt(kind) {
    const key = kind + FW.tz();
    if (!fmtCache[key]) {
      const opts = { timeZone: FW.tz(), hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" };
      if (kind === "full") Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
      if (kind === "short") Object.assign(opts, { month: "2-digit", day: "2-digit" });
      fmtCache[key] = new Intl.DateTimeFormat("zh-CN", opts);
    }
    return fmtCache[key];
  }
  FW.time = (ms, kind = "full") => (ms === null || ms === undefined ? "—" : fmt(kind).format(new Date(ms)));
  FW.duration = (s) => {
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  };
  // datetime-local inputs hold city-local wall time; the API wants UTC instants.
  FW.localInput = (ms) => {
    const offset = (FW.config ? FW.config.utc_offset_min : 480) * 60000;
    return new Date(ms + offset).toISOString().slice(0, 16);
  };
  FW.fromLocalInput = (text) => {
    const offset = (FW.config ? FW.config.utc_offset_min : 480) * 60000;
    return Date.parse(text + ":00Z") - offset;
  };
  FW.esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  FW.color = (kind) => (FW.vocab && FW.vocab.colors.kinds[kind]) || [150, 160, 170];
  FW.rgb = (c, a = 1) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;
  FW.json = async (url) => {
    const r = await FW.fetch(url);
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r.json();
  };

  // -- alerts: toast on every page ----------------------------------------------------------------------
  let lastSid = null;
  FW.alertHandlers = [];
  function toast(msg) {
    const a = msg.alert;
    const el = document.createElement("div");
    el.className = `toast ${msg.event}`;
    const title = msg.event === "opened" ? t("alert_new") : msg.event === "closed" ? t("alert_closed") : t("alert_updated");
    el.innerHTML = `<div class="toast-head"><span class="dot"></span>${FW.esc(title)} · ${FW.esc(FW.label(a.kind))}
        <span class="sev ${a.severity}">${FW.esc(t(a.severity))}</span></div>
      <div class="toast-body">${FW.esc(a.vehicle.plate || a.vehicle_id)} · ${FW.esc(FW.label(a.vehicle.kind))}
        · ${FW.esc(a.vehicle.company || "")}<br>${FW.esc(FW.time(a.start_ts_ms))}</div>`;
    el.addEventListener("click", () => { location.href = `/alerts#${a.id}`; });
    toastBox.prepend(el);
    state.toasts += 1;
    state.toastTexts = [...(state.toastTexts || []), el.textContent.replace(/\s+/g, " ").trim()].slice(-20);
    while (toastBox.children.length > 5) toastBox.lastChild.remove();
    setTimeout(() => { el.classList.add("fade"); setTimeout(() => el.remove(), 600); }, msg.event === "opened" ? 12000 : 6000);
  }
  let openCount = 0;
  function badge() {
    const el = document.getElementById("alarm-badge");
    el.textContent = openCount ? `${t("alarm")} ${openCount}` : "";
    el.classList.toggle("on", openCount > 0);
  }
  FW.refreshOpenCount = async () => {
    try { openCount = (await FW.json("/api/alerts?status=open&limit=1")).total; badge(); } catch (e) { /* offline */ }
  };
  function connectAlerts() {
    const ws = FW.socket(`/ws/alerts${lastSid ? `?since=${lastSid}` : ""}`);
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "ready") { state.alertsReady = true; return; }
      if (msg.type !== "alert") return;
      lastSid = msg.sid;
      state.alertsReceived.push(msg.alert.id);
      if (msg.event !== "updated") toast(msg);
      if (msg.event === "opened") openCount += 1;
      if (msg.event === "closed") openCount = Math.max(0, openCount - 1);
      badge();
      FW.alertHandlers.forEach((fn) => fn(msg));
    };
    ws.onclose = (ev) => { state.alertsReady = false; if (ev.code !== 4401) setTimeout(connectAlerts, 2000); };
  }

  // -- cases: overdue escalations as toasts + a badge on every page -------------------------------------------
  // /ws/cases pushes case changes and SLA escalations in the user's scope (every role may subscribe); pages that
  // show cases listen through FW.caseHandlers. The badge counts open cases past their stage deadline.
  FW.caseHandlers = [];
  state.caseToasts = 0;
  state.casesReceived = [];
  let overdueCases = 0, overdueTimer = null;
  function caseBadge() {
    const el = document.getElementById("case-badge");
    el.textContent = overdueCases ? `${t("cs_overdue_badge")} ${overdueCases >= 1000 ? "999+" : overdueCases}` : "";
    el.classList.toggle("on", overdueCases > 0);
    el.title = t("cs_overdue_only");
  }
  FW.refreshOverdue = async () => {
    try { overdueCases = (await FW.json("/api/cases/counts")).overdue; caseBadge(); } catch (e) { /* offline */ }
  };
  // a scan can escalate many cases at once: up to three toasts, else one that sums them up
  let escalations = [], escTimer = null;
  function queueEscalation(msg) {
    escalations.push(msg);
    if (!escTimer) escTimer = setTimeout(() => {
      const batch = escalations;
      escalations = []; escTimer = null;
      if (batch.length <= 3) { batch.forEach(caseToast); return; }
      caseToast({ summary: batch.length, case_id: batch[0].case_id, ids: batch.map((m) => m.case_id) });
    }, 500);
  }
  function caseToast(msg) {
    const el = document.createElement("div");
    el.className = "toast case-escalation";
    el.style.borderLeftColor = "#ff9f1a";
    if (msg.summary) {
      el.innerHTML = `<div class="toast-head"><span class="dot"></span>${FW.esc(t("cs_escalation"))} · ${msg.summary}
          ${FW.esc(t("cs_found"))}</div><div class="toast-body">${msg.ids.slice(0, 12).map((id) => `#${id}`).join(" ")}${msg.ids.length > 12 ? " …" : ""}</div>`;
    } else el.innerHTML = `<div class="toast-head"><span class="dot"></span>${FW.esc(t("cs_escalation"))} · #${msg.case_id}
        · ${FW.esc(msg.kind === "other" ? t("cs_other") : FW.label(msg.kind))}<span class="sev">L${FW.esc(msg.level)}</span></div>
      <div class="toast-body">${FW.esc(t(`cs_stage_${msg.stage}`))} · ${FW.esc(t(`cs_clock_${msg.clock}`))}
        ${FW.esc(t("cs_overdue"))} ${FW.esc(msg.overdue_min)} ${FW.esc(t("cs_min"))}
        <br>${FW.esc([msg.company, msg.district, msg.team].filter(Boolean).join(" · "))}</div>`;
    el.addEventListener("click", () => { location.href = msg.summary ? "/cases#overdue=1" : `/cases#case=${msg.case_id}`; });
    toastBox.prepend(el);
    state.caseToasts += 1;
    state.toastTexts = [...(state.toastTexts || []), el.textContent.replace(/\s+/g, " ").trim()].slice(-20);
    while (toastBox.children.length > 5) toastBox.lastChild.remove();
    setTimeout(() => { el.classList.add("fade"); setTimeout(() => el.remove(), 600); }, 15000);
  }
  function connectCases() {
    const ws = FW.socket("/ws/cases");
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "hello") { state.casesReady = true; FW.refreshOverdue(); return; }
      state.casesReceived.push(msg.case_id);
      if (msg.type === "escalation") queueEscalation(msg);
      if (!overdueTimer) overdueTimer = setTimeout(() => { overdueTimer = null; FW.refreshOverdue(); }, 1000);
      FW.caseHandlers.forEach((fn) => fn(msg));
    };
    ws.onclose = (ev) => { state.casesReady = false; if (ev.code !== 4401 && ev.code !== 4403) setTimeout(connectCases, 2000); };
  }
  document.getElementById("case-badge").addEventListener("click", () => { location.href = "/cases#overdue=1"; });

  // -- deck.gl ------------------------------------------------------------------------------------------
  // The pydeck bundle exposes createDeck (JSON in). We render one JSON description holding one layer of each
  // type we use, then take their constructors from deck.props.layers: from there on layers are built directly,
  // with functions as accessors and binary attributes for the 20,000-vehicle layer.
  FW.makeDeck = (container, view, extraTypes = []) => {
    const types = ["GeoJsonLayer", "ScatterplotLayer", "PathLayer", "TripsLayer", "H3HexagonLayer", "TextLayer",
                   "IconLayer", ...extraTypes];
    const deck = createDeck({
      container,
      jsonInput: {
        initialViewState: view, controller: true,
        layers: types.map((type) => ({ "@@type": type, id: `_boot_${type}`, data: [] })),
      },
      tooltip: false,
    });
    const L = {};
    for (const layer of deck.props.layers) L[layer.constructor.layerName || layer.id.replace("_boot_", "")] = layer.constructor;
    for (const type of types) if (!L[type]) {
      const hit = deck.props.layers.find((l) => l.id === `_boot_${type}`);
      if (hit) L[type] = hit.constructor;
    }
    deck.setProps({ layers: [] });
    return { deck, L };
  };
  FW.roadsLayer = (L, data, visible = true) => new L.GeoJsonLayer({
    id: "roads", data, visible, stroked: true, filled: false, pickable: false,
    getLineColor: (f) => f.properties.c, getLineWidth: (f) => f.properties.w, lineWidthUnits: "meters",
    lineWidthMinPixels: 0.6, lineWidthMaxPixels: 9,
  });
  FW.fenceColor = (kind) => (FW.vocab && FW.vocab.colors.fences[kind]) || [200, 200, 200];
  FW.fencesLayer = (L, data, opts = {}) => new L.GeoJsonLayer({
    id: opts.id || "fences", data, visible: opts.visible !== false, stroked: true, filled: true, pickable: true,
    getFillColor: (f) => {
      const c = FW.fenceColor(f.properties.kind);
      return f.properties.role === "line" ? [0, 0, 0, 0] : [...c, f.properties.kind === "route" ? 28 : 42];
    },
    getLineColor: (f) => [...FW.fenceColor(f.properties.kind), f.properties.role === "line" ? 235 : 200],
    getLineWidth: (f) => (f.properties.role === "line" ? 3 : 1.5), lineWidthUnits: "pixels",
    updateTriggers: { getFillColor: opts.trigger, getLineColor: opts.trigger },
  });
  FW.tileLayer = (L) => {
    if (!FW.config || !FW.config.tile_url || !L.TileLayer || !L.BitmapLayer) return null;
    return new L.TileLayer({
      id: "tiles", data: FW.config.tile_url, minZoom: 0, maxZoom: 19, tileSize: 256,
      renderSubLayers: (props) => {
        const { boundingBox } = props.tile;
        return new L.BitmapLayer(props, { data: null, image: props.data,
          bounds: [boundingBox[0][0], boundingBox[0][1], boundingBox[1][0], boundingBox[1][1]] });
      },
    });
  };
  // Zoom so that [w, s, e, n] fills the container (Web Mercator).
  // `right` reserves pixels on the right (a panel over the map): the bounds are centred in what is left.
  FW.fitBounds = (container, b, pad = 60, right = 0) => {
    const w = Math.max(container.clientWidth - 2 * pad - right, 50), h = Math.max(container.clientHeight - 2 * pad, 50);
    const merc = (lat) => Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360));
    const dx = Math.max((b[2] - b[0]) / 360, 1e-7), dy = Math.max((merc(b[3]) - merc(b[1])) / (2 * Math.PI), 1e-7);
    const zoom = Math.min(17, Math.log2(Math.min(w / 512 / dx, h / 512 / dy)));
    const degPerPx = 360 / (512 * 2 ** zoom);
    return { longitude: (b[0] + b[2]) / 2 + (right / 2) * degPerPx, latitude: (b[1] + b[3]) / 2, zoom, pitch: 0, bearing: 0 };
  };
  FW.tooltipStyle = { backgroundColor: "rgba(12,18,26,0.96)", color: "#e6edf3", fontSize: "12px",
                      border: "1px solid #2d3b4d", borderRadius: "4px", padding: "6px 8px" };
  // Downloads carry the token too: fetch the file, then hand the browser a local blob to save.
  FW.exportLink = async (path, params) => {
    const q = new URLSearchParams(params);
    q.set("download", "1");
    const r = await FW.fetch(`${path}?${q}`);
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    const name = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = name ? name[1] : "fleetwatch.html";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  };

  // -- start --------------------------------------------------------------------------------------------
  setInterval(() => {
    const el = document.getElementById("clock");
    if (el) el.textContent = FW.time(Date.now());
  }, 1000);
  FW.ready = signIn().then(() => Promise.all([FW.json("/api/config"), FW.json("/api/vocab")])).then(([config, vocab]) => {
    FW.config = config;
    FW.vocab = vocab;
    window.applyI18n();
    connectAlerts();
    connectCases();
    FW.refreshOpenCount();
    setInterval(FW.refreshOpenCount, 60000);
    return FW;
  });
  window.applyI18n();
})();
