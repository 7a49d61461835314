// Cases (案件处置): the filtered case list (REST, kept live by /ws/cases through FW.caseHandlers), one case's
// detail — its history, the actions the signed-in user's role may take now (the server's `allowed_actions`),
// the evidence package and its map — and the statistics: rates and mean times by a dimension
// (/api/cases/stats) and the monthly company scores with grades and red/black lists (/api/cases/scores),
// both downloadable as CSV. Page state for tests and the console: window.fleetwatch.cases.
(async function () {
  await FW.ready;
  const state = window.fleetwatch;
  const S = (state.cases = { loads: 0, ids: [], selected: null, detail: null, acted: 0, errors: [], detailLoads: 0,
                             statsRendered: 0, scoresRendered: 0, mapLoaded: 0, pushes: 0 });
  const form = document.getElementById("filters");
  const STAGES = ["collected", "accepted", "dispatched", "handling", "feedback", "verified", "closed", "assessed"];
  const DIMENSIONS = ["all", "team", "district", "company", "kind", "category", "month"];
  const facets = await FW.json("/api/facets").catch(() => ({ companies: [], districts: [] }));
  let cases = [];
  let detail = null;
  let mapUrl = null;

  // -- labels -----------------------------------------------------------------------------------------------
  const stageLabel = (s) => t(`cs_stage_${s}`);
  const actionLabel = (a) => t(`cs_act_${a}`);
  const kindLabel = (k) => (k === "other" ? t("cs_other") : FW.label(k));
  const ms = (iso) => (iso ? Date.parse(iso) : null);
  const isOpen = (c) => c.stage !== "closed" && c.stage !== "assessed";
  const overdueMin = (c) => (isOpen(c) && c.stage_due_at ? (Date.now() - ms(c.stage_due_at)) / 60000 : -1);
  function dueCell(c) {
    if (!isOpen(c) || !c.stage_due_at) return `<span class="muted">—</span>`;
    const late = overdueMin(c);
    if (late >= 0) return `<span class="overdue">${FW.esc(t("cs_overdue"))} ${FW.duration(late * 60)}</span>`;
    return FW.time(ms(c.stage_due_at), "short");
  }
  const pct = (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`);
  const num = (v, d = 1) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));

  function options() {
    const opt = (name, values, label, head) => {
      const sel = form.elements[name], cur = sel.value;
      sel.innerHTML = `<option value="">${FW.esc(head)}: ${FW.esc(t("all"))}</option>` +
        values.map((v) => `<option value="${FW.esc(v)}">${FW.esc(label(v))}</option>`).join("");
      sel.value = cur;
    };
    opt("stage", STAGES, stageLabel, t("cs_stage"));
    opt("kind", [...Object.keys(FW.vocab.violation_kinds), "other"], kindLabel, t("kind"));
    opt("district", facets.districts, (v) => v, t("district"));
    opt("company", facets.companies, (v) => v, t("company"));
    const by = document.getElementById("stats-by"), cur = by.value || "team";
    by.innerHTML = DIMENSIONS.map((d) => `<option value="${d}">${FW.esc(t("cs_by"))}: ${FW.esc(t(`cs_by_${d}`))}</option>`).join("");
    by.value = cur;
  }

  // -- the list ---------------------------------------------------------------------------------------------
  function params() {
    const q = new URLSearchParams({ limit: "500" });
    for (const name of ["stage", "kind", "district", "company"]) {
      if (form.elements[name].value) q.set(name, form.elements[name].value);
    }
    if (form.elements.open.checked) q.set("open", "true");
    if (form.elements.overdue.checked) q.set("overdue", "true");
    return q;
  }
  async function load() {
    cases = await FW.json(`/api/cases?${params()}`);
    S.ids = cases.map((c) => c.id);
    S.loads += 1;
    render();
  }
  let fresh = new Set();
  function render() {
    document.getElementById("rows").innerHTML = cases.map((c) => `
      <tr data-id="${c.id}" class="${c.id === S.selected ? "sel" : ""} ${fresh.has(c.id) ? "fresh" : ""}">
        <td><b>#${c.id}</b></td><td>${FW.time(ms(c.created_at), "short")}</td>
        <td><span class="kind-badge">${FW.esc(kindLabel(c.kind))}</span></td>
        <td><span class="stage ${FW.esc(c.stage)}">${FW.esc(stageLabel(c.stage))}</span></td>
        <td>${c.priority === "urgent" ? `<span class="red">${FW.esc(t("cs_prio_urgent"))}</span>` : FW.esc(t("cs_prio_normal"))}</td>
        <td>${FW.esc(c.vehicle_id || "—")}</td><td class="co" title="${FW.esc(c.company || "")}">${FW.esc(c.company || "—")}</td><td>${FW.esc(c.district || "—")}</td>
        <td>${FW.esc(c.team || "—")}</td><td>${dueCell(c)}</td></tr>`).join("");
    const late = cases.filter((c) => overdueMin(c) >= 0).length;
    document.getElementById("count").textContent = `${cases.length} ${t("cs_found")}` +
      (late ? ` · ${late} ${t("cs_overdue")}` : "");
    fresh = new Set();
  }
  document.getElementById("rows").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-id]");
    if (tr) select(Number(tr.dataset.id));
  });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  form.addEventListener("change", () => load());
  document.getElementById("reset-filters").addEventListener("click", () => { form.reset(); load(); });

  // -- one case ---------------------------------------------------------------------------------------------
  async function select(id) {
    S.selected = id;
    history.replaceState(null, "", `#case=${id}`);
    tab("detail");
    render();
    const r = await FW.fetch(`/api/cases/${id}`);
    if (!r.ok) { detail = null; S.detail = null; renderDetail(`${r.status}`); return; }
    detail = await r.json();
    S.detail = { id: detail.id, stage: detail.stage, version: detail.version, allowed: detail.allowed_actions,
                 history: detail.history.map((e) => e.action) };
    S.detailLoads += 1;
    renderDetail();
    loadMap(id);
  }
  let mapFor = null; // the case the current map image belongs to (an action does not change the evidence)
  async function loadMap(id) {
    const img = document.getElementById("case-map");
    if (!img) return;
    img.onload = () => { S.mapLoaded += 1; };
    if (mapFor === id && mapUrl) { img.src = mapUrl; return; }
    try {
      const r = await FW.fetch(`/api/cases/${id}/map.png`);
      if (!r.ok || id !== S.selected) return;
      if (mapUrl) URL.revokeObjectURL(mapUrl);
      mapUrl = URL.createObjectURL(await r.blob());
      mapFor = id;
      const now = document.getElementById("case-map");
      if (now) { now.onload = () => { S.mapLoaded += 1; }; now.src = mapUrl; }
    } catch (e) { /* the map is an extra; the case is still shown */ }
  }
  const kv = (label, value) => `<div class="kv"><span>${FW.esc(label)}</span><b>${value}</b></div>`;
  function historyDetails(e) {
    const d = { ...(e.details || {}) };
    const parts = [];
    if (d.note) { parts.push(FW.esc(d.note)); delete d.note; }
    if (e.action === "escalate") {
      parts.push(`${FW.esc(t(`cs_clock_${d.clock}`))} · L${d.level} · ${FW.esc(t("cs_overdue"))} ${num(d.overdue_min)} ${FW.esc(t("cs_min"))}`);
      return parts.join("<br>");
    }
    if (d.passed !== undefined) { parts.push(FW.esc(t(d.passed ? "cs_passed" : "cs_failed"))); delete d.passed; }
    const rest = Object.entries(d).filter(([k]) => !["source", "alert_id"].includes(k))
      .map(([k, v]) => `${FW.esc(k)}=${FW.esc(typeof v === "object" ? JSON.stringify(v) : v)}`);
    return [...parts, ...rest].join("<br>");
  }
  function actionsBox(c) {
    const allowed = c.allowed_actions || [];
    if (!allowed.length) return `<div class="cs-actions muted" id="case-actions">${FW.esc(t("cs_no_actions"))}</div>`;
    const has = (...a) => a.some((x) => allowed.includes(x));
    const buttons = allowed.flatMap((a) => (a === "verify"
      ? [`<button type="button" data-action="verify" data-passed="true">${FW.esc(actionLabel("verify_pass"))}</button>`,
         `<button type="button" data-action="verify" data-passed="false">${FW.esc(actionLabel("verify_fail"))}</button>`]
      : [`<button type="button" data-action="${a}">${FW.esc(actionLabel(a))}</button>`]));
    return `<div class="cs-actions" id="case-actions">
      <textarea name="note" placeholder="${FW.esc(t("cs_note_ph"))}"></textarea>
      <div class="row">
        ${has("dispatch", "verify", "accept") ? `<input name="team" placeholder="${FW.esc(t("cs_team"))}" value="${FW.esc(c.team || "")}" />` : ""}
        ${has("request_extension", "extend") ? `<input name="minutes" type="number" min="1" step="1" value="60" /> ${FW.esc(t("cs_min"))}` : ""}
        ${has("assess") ? `<select name="rating">${[5, 4, 3, 2, 1].map((n) => `<option value="${n}">${FW.esc(t("cs_rating"))} ${n}</option>`).join("")}</select>` : ""}
      </div>
      <div class="row">${buttons.join("")}</div>
      <div id="case-msg" class="cs-msg"></div></div>`;
  }
  function renderDetail(error) {
    const el = document.getElementById("detail");
    document.getElementById("empty").hidden = !!detail || !!error;
    el.hidden = !detail && !error;
    if (!detail) { el.innerHTML = error ? `<div class="red">${FW.esc(error)}</div>` : ""; return; }
    const c = detail;
    const late = overdueMin(c);
    el.innerHTML = `
      <div class="cs-title">#${c.id} · ${FW.esc(kindLabel(c.kind))}
        <span class="stage ${FW.esc(c.stage)}" id="case-stage" data-stage="${FW.esc(c.stage)}">${FW.esc(stageLabel(c.stage))}</span>
        <span class="pill ${c.priority === "urgent" ? "bad" : ""}">${FW.esc(t(`cs_prio_${c.priority}`))}</span>
        ${late >= 0 ? `<span class="overdue">${FW.esc(t("cs_overdue"))} ${FW.duration(late * 60)}</span>` : ""}
        ${c.resolution ? `<span class="pill">${FW.esc(t(`cs_res_${c.resolution}`))}</span>` : ""}</div>
      ${c.description ? `<div class="muted">${FW.esc(c.description)}</div>` : ""}
      <div class="cs-cols">
        <div>
          ${kv(t("cs_source"), FW.esc(t(`cs_src_${c.source}`)))}
          ${kv(t("cs_category"), FW.esc(t(`cs_cat_${c.category}`)))}
          ${kv(t("vehicle"), FW.esc(c.vehicle_id ? `${c.vehicle_id} · ${FW.label(c.vehicle_kind)}` : "—"))}
          ${kv(t("company"), FW.esc(c.company || "—"))}
          ${kv(t("district"), FW.esc(c.district || "—"))}
          ${kv(t("cs_team"), FW.esc(c.team || "—"))}
          ${kv(t("place"), c.lon !== null && c.lon !== undefined ? `${c.lon.toFixed(5)}, ${c.lat.toFixed(5)}` : "—")}
        </div>
        <div>
          ${kv(t("cs_created"), FW.time(ms(c.created_at)))}
          ${kv(t("cs_occurred"), FW.time(ms(c.occurred_at)))}
          ${kv(t("cs_stage_due"), dueCell(c))}
          ${kv(t("cs_due"), FW.time(ms(c.due_at)))}
          ${kv(t("cs_counts"), `${c.dispatch_count} / ${c.return_count} / ${c.rework_count} / ${c.verify_fail_count} / ${c.extension_count}`)}
          ${c.closed_at ? kv(t("cs_closed_at"), `${FW.time(ms(c.closed_at))}${c.on_time === false ? ` <span class="red">${FW.esc(t("cs_late"))}</span>` : ""}`) : ""}
          ${c.rating ? kv(t("cs_rating"), c.rating) : ""}
        </div>
      </div>
      ${actionsBox(c)}
      <h4>${FW.esc(t("evidence"))}</h4>
      <a href="#" id="evidence-zip" class="button">${FW.esc(t("cs_evidence_zip"))}</a>
      <img id="case-map" class="cs-map" alt="${FW.esc(t("cs_evidence_map"))}" />
      <h4>${FW.esc(t("cs_history"))}</h4>
      <table class="hist" id="case-history"><thead><tr><th>${FW.esc(t("time"))}</th><th>${FW.esc(t("cs_action"))}</th>
        <th>${FW.esc(t("cs_actor"))}</th><th>${FW.esc(t("cs_stage"))}</th><th>${FW.esc(t("cs_details"))}</th></tr></thead>
        <tbody>${c.history.map((e) => `<tr data-action="${FW.esc(e.action)}"><td>${FW.time(ms(e.at))}</td>
          <td>${FW.esc(actionLabel(e.action))}</td>
          <td>${FW.esc(e.actor)} <span class="muted">${FW.esc(e.role === "system" ? "" : t(`role_${e.role}`))}</span></td>
          <td>${e.from_stage && e.from_stage !== e.to_stage ? `${FW.esc(stageLabel(e.from_stage))} → ` : ""}${FW.esc(stageLabel(e.to_stage))}</td>
          <td>${historyDetails(e)}</td></tr>`).join("")}</tbody></table>`;
    document.getElementById("evidence-zip").addEventListener("click", (ev) => {
      ev.preventDefault();
      FW.exportLink(`/api/cases/${c.id}/evidence.zip`, {}).catch((e) => S.errors.push(String(e)));
    });
    el.querySelectorAll("#case-actions button[data-action]").forEach((b) => b.addEventListener("click", () => act(b)));
  }
  async function act(button) {
    const box = document.getElementById("case-actions");
    const msg = document.getElementById("case-msg");
    const field = (name) => box.querySelector(`[name=${name}]`);
    const body = { action: button.dataset.action, note: field("note").value, expected_version: detail.version };
    if (button.dataset.passed) body.passed = button.dataset.passed === "true";
    const team = field("team");
    if (team && team.value.trim() && ["accept", "dispatch", "verify"].includes(body.action) && team.value.trim() !== (detail.team || "")) body.team = team.value.trim();
    const minutes = field("minutes");
    if (minutes && ["request_extension", "extend"].includes(body.action)) body.minutes = Number(minutes.value);
    const rating = field("rating");
    if (rating && body.action === "assess") body.rating = Number(rating.value);
    box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    const r = await FW.fetch(`/api/cases/${detail.id}/actions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) {
      let why = `${r.status}`;
      try { why = (await r.json()).detail || why; } catch (e) { /* not JSON */ }
      S.errors.push(`${body.action}: ${r.status} ${why}`);
      box.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      msg.className = "cs-msg bad";
      msg.textContent = `${t("cs_action_failed")}: ${typeof why === "string" ? why : JSON.stringify(why)}`;
      return;
    }
    S.acted += 1;
    await select(detail.id);
    const after = document.getElementById("case-msg");
    if (after) { after.className = "cs-msg ok"; after.textContent = `${actionLabel(body.action === "verify" ? (body.passed ? "verify_pass" : "verify_fail") : body.action)} ✓`; }
    load();
    scheduleStats();
  }

  // -- statistics -------------------------------------------------------------------------------------------
  let stats = null, totals = null, scores = null;
  const byEl = document.getElementById("stats-by"), monthEl = document.getElementById("scores-month");
  function table(head, rows) {
    return `<table class="alerts"><thead><tr>${head.map((h) => `<th>${FW.esc(h)}</th>`).join("")}</tr></thead>
      <tbody>${rows.map((r) => `<tr>${r.map((x) => `<td>${x}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }
  async function loadStats() {
    const by = byEl.value || "team";
    [totals, stats] = await Promise.all([FW.json("/api/cases/stats?by=all"), FW.json(`/api/cases/stats?by=${by}`)]);
    renderStats();
  }
  function keyLabel(by, key) {
    if (by === "kind") return FW.esc(kindLabel(key));
    if (by === "category") return FW.esc(t(`cs_cat_${key}`));
    if (by === "all") return FW.esc(t("total"));
    return FW.esc(key);
  }
  function renderStats() {
    if (!stats || !totals) return;
    const all = totals.rows[0] || {};
    document.getElementById("kpis").innerHTML = [
      [t("cs_dispatch_rate"), pct(all.dispatch_rate)], [t("cs_closure_rate"), pct(all.closure_rate)],
      [t("cs_on_time_rate"), pct(all.on_time_closure_rate)], [t("cs_rework_rate"), pct(all.rework_rate)],
      [t("cs_mean_handling"), all.mean_handling_min === null || all.mean_handling_min === undefined ? "—" : FW.duration(all.mean_handling_min * 60)],
    ].map(([l, v]) => `<div class="kpi"><div class="v">${v}</div><div class="l">${FW.esc(l)}</div></div>`).join("");
    document.getElementById("stats-table").innerHTML = stats.rows.length ? table(
      [t(`cs_by_${stats.by}`), t("cs_collected"), t("cs_accepted"), t("cs_dispatched"), t("cs_should_close"), t("cs_closed"),
       t("cs_closed_on_time"), t("cs_overdue_open"), t("cs_dispatch_rate"), t("cs_closure_rate"), t("cs_on_time_rate"),
       t("cs_rework_rate"), t("cs_mean_handling_min"), t("cs_mean_closure_min")],
      stats.rows.map((r) => [keyLabel(stats.by, r.key), r.collected, r.accepted, r.dispatched, r.should_close, r.closed,
        r.closed_on_time, r.overdue_open ? `<span class="red">${r.overdue_open}</span>` : 0, pct(r.dispatch_rate),
        pct(r.closure_rate), pct(r.on_time_closure_rate), pct(r.rework_rate), num(r.mean_handling_min),
        num(r.mean_closure_min)])) : `<span class="muted">${FW.esc(t("cs_no_cases"))}</span>`;
    S.statsRendered += 1;
    S.stats = { by: stats.by, keys: stats.rows.map((r) => r.key), all };
  }
  async function loadScores() {
    scores = await FW.json(`/api/cases/scores?month=${monthEl.value}`);
    renderScores();
  }
  function renderScores() {
    if (!scores) return;
    const list = (l) => (l ? `<span class="pill list-${l}">${FW.esc(t(`cs_list_${l}`))}</span>` : "—");
    document.getElementById("scores-table").innerHTML = scores.rows.length ? table(
      [t("cs_rank"), t("company"), t("cs_cases"), t("cs_deduction"), t("cs_score"), t("cs_grade"), t("cs_list"), t("cs_violations")],
      scores.rows.map((r) => [r.rank, FW.esc(r.company), r.cases, num(r.deduction), num(r.score), `<b>${FW.esc(r.grade)}</b>`,
        list(r.list), Object.entries(r.violations).map(([k, n]) => `${FW.esc(kindLabel(k))} ×${n}`).join(", ") || "—"]))
      : `<span class="muted">${FW.esc(t("cs_no_cases"))}</span>`;
    S.scoresRendered += 1;
    S.scores = scores.rows.map((r) => ({ company: r.company, grade: r.grade, list: r.list, score: r.score }));
  }
  let statsTimer = null;
  function scheduleStats() {
    clearTimeout(statsTimer);
    statsTimer = setTimeout(() => { loadStats().catch(() => {}); loadScores().catch(() => {}); }, 1500);
  }
  byEl.addEventListener("change", loadStats);
  monthEl.addEventListener("change", loadScores);
  document.getElementById("stats-csv").addEventListener("click", (ev) => {
    ev.preventDefault();
    FW.exportLink("/api/cases/stats", { by: byEl.value || "team", format: "csv" }).catch((e) => S.errors.push(String(e)));
  });
  document.getElementById("scores-csv").addEventListener("click", (ev) => {
    ev.preventDefault();
    FW.exportLink("/api/cases/scores", { month: monthEl.value, format: "csv" }).catch((e) => S.errors.push(String(e)));
  });

  // -- tabs, live updates, language -------------------------------------------------------------------------
  function tab(name) {
    document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
    document.getElementById("tab-detail").hidden = name !== "detail";
    document.getElementById("tab-stats").hidden = name !== "stats";
    S.tab = name;
  }
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => tab(b.dataset.tab)));
  let listTimer = null;
  FW.caseHandlers.push((msg) => {
    S.pushes += 1;
    if (!S.ids.includes(msg.case_id)) fresh.add(msg.case_id);
    clearTimeout(listTimer);
    listTimer = setTimeout(load, 300);
    if (msg.case_id === S.selected && (!detail || msg.version !== detail.version)) select(msg.case_id);
    scheduleStats();
  });
  FW.onLang(() => { options(); render(); renderDetail(); renderStats(); renderScores(); if (S.selected) loadMap(S.selected); });

  options();
  monthEl.value = FW.localInput(Date.now()).slice(0, 7);
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.has("overdue")) form.elements.overdue.checked = true;
  if (hash.has("stats")) tab("stats");
  await load();
  loadStats().catch((e) => S.errors.push(String(e)));
  loadScores().catch((e) => S.errors.push(String(e)));
  if (hash.get("case")) select(Number(hash.get("case")));
  setInterval(render, 30000); // overdue clocks
})();
