// Statistics: alerts per kind per local day (stacked bars), company ranking, completed trips per site and
// per disposal site (/api/stats reads the trips table the worker fills) — plain SVG.
(async function () {
  await FW.ready;
  const state = window.fleetwatch;
  const PALETTE = [[255, 77, 77], [255, 159, 67], [240, 214, 72], [56, 201, 132], [64, 156, 255], [190, 130, 255],
                   [255, 120, 190], [120, 220, 230], [170, 180, 90], [200, 140, 100], [140, 150, 255], [230, 230, 230]];
  const svg = (w, h, body) => `<svg viewBox="0 0 ${w} ${h}" width="100%" height="${h}" preserveAspectRatio="xMinYMin meet">${body}</svg>`;
  let stats = null;

  async function load() {
    stats = await FW.json(`/api/stats?days=${document.getElementById("days").value}`);
    state.stats = stats;
    render();
  }
  function render() {
    if (!stats) return;
    const perDay = stats.alerts_per_day, companies = stats.companies;
    const total = perDay.reduce((a, x) => a + x.count, 0);
    const confirmed = companies.reduce((a, c) => a + c.confirmed, 0);
    const involved = companies.reduce((a, c) => a + c.vehicles_alerted, 0);
    document.getElementById("kpis").innerHTML = [
      [t("alerts_total"), total], [t("confirmed_share"), total ? `${Math.round((100 * confirmed) / total)}%` : "—"],
      [t("vehicles_alerted"), involved], [t("company"), companies.length],
    ].map(([l, v]) => `<div class="kpi"><div class="v">${v}</div><div class="l">${FW.esc(l)}</div></div>`).join("");

    // stacked bars per day
    const days = [];
    const lastDay = FW.localInput(stats.until_ms - 1).slice(0, 10);
    for (let d = stats.since_ms; ; d += 86400000) {
      const day = FW.localInput(d).slice(0, 10);
      if (day > lastDay) break;
      days.push(day);
    }
    const kinds = [...new Set(perDay.map((x) => x.kind))];
    const color = (k) => PALETTE[kinds.indexOf(k) % PALETTE.length];
    const byDay = {};
    for (const x of perDay) (byDay[x.day] = byDay[x.day] || {})[x.kind] = x.count;
    const max = Math.max(1, ...days.map((d) => Object.values(byDay[d] || {}).reduce((a, b) => a + b, 0)));
    const W = 760, H = 260, left = 34, bottom = 22, bw = (W - left) / Math.max(1, days.length);
    let body = "";
    const step = Math.max(1, Math.ceil(max / 4));
    for (let v = 0; v <= max; v += step) {
      const y = H - bottom - ((H - bottom - 10) * v) / max;
      body += `<line x1="${left}" x2="${W}" y1="${y}" y2="${y}" stroke="#1d2a38"/><text x="${left - 6}" y="${y + 4}" text-anchor="end">${v}</text>`;
    }
    days.forEach((d, i) => {
      let y = H - bottom;
      for (const k of kinds) {
        const n = (byDay[d] || {})[k] || 0;
        if (!n) continue;
        const h = ((H - bottom - 10) * n) / max;
        y -= h;
        body += `<rect x="${left + i * bw + 2}" y="${y}" width="${Math.max(1, bw - 4)}" height="${h}" fill="${FW.rgb(color(k))}"><title>${d} ${FW.esc(FW.label(k))}: ${n}</title></rect>`;
      }
      if (days.length <= 31 || i % Math.ceil(days.length / 15) === 0) body += `<text x="${left + i * bw + bw / 2}" y="${H - 6}" text-anchor="middle">${d.slice(5)}</text>`;
    });
    document.getElementById("per-day").innerHTML = svg(W, H, body);
    document.getElementById("per-day-legend").innerHTML = kinds.map((k) => `<span style="margin-right:14px;white-space:nowrap">
      <i class="sw" style="border-radius:2px;background:${FW.rgb(color(k))}"></i>${FW.esc(FW.label(k))}</span>`).join("") ||
      `<span class="muted">${t("no_alerts")}</span>`;

    // company ranking: alerts per vehicle, worst first
    const top = companies.slice(0, 12), rmax = Math.max(0.001, ...top.map((c) => c.alerts_per_vehicle));
    const RW = 560, rh = 26;
    let rb = "";
    top.forEach((c, i) => {
      const y = i * rh + 4, w = ((RW - 330) * c.alerts_per_vehicle) / rmax;
      rb += `<text x="0" y="${y + 14}">${i + 1}. ${FW.esc((c.company || "—").slice(0, 16))}</text>
        <rect x="190" y="${y + 3}" width="${Math.max(1, w)}" height="16" rx="2" fill="${i < 3 && c.alerts ? "#ff6b5a" : "#3aa0ff"}"/>
        <text x="${196 + w}" y="${y + 14}">${c.alerts_per_vehicle.toFixed(2)} ${t("per_vehicle")} · ${c.alerts}/${c.vehicles}</text>`;
    });
    document.getElementById("ranking").innerHTML = top.length ? svg(RW, top.length * rh + 8, rb) : `<span class="muted">—</span>`;

    // trips (趟次): completed trips per origin site and per disposal site, from the worker's trips table
    const tripsEl = document.getElementById("trips");
    if (!stats.trips_available) {
      tripsEl.innerHTML = `<div class="muted">${t("trips_na")}</div>`;
    } else {
      // origins are construction sites (muck) and batching plants (concrete); destinations disposal sites and,
      // for concrete, construction sites
      const groups = [["origin", `${FW.label("construction_site")} / ${FW.label("batching_plant")} →`, "#ff9f43", stats.trips_by_origin],
                      ["disposal", `→ ${FW.label("disposal_site")} / ${FW.label("construction_site")}`, "#38c984", stats.trips_by_disposal]];
      const all = groups.flatMap((g) => g[3]);
      const m = Math.max(1, ...all.map((x) => x.trips));
      let y = 0, body = "";
      for (const [side, label, color, rows] of groups) {
        body += `<text x="0" y="${y + 16}" font-weight="bold" data-side="${side}"><tspan fill="${color}">■</tspan> ${FW.esc(label)} · ${rows.reduce((a, x) => a + x.trips, 0)}</text>`;
        y += 24;
        for (const x of rows.slice(0, 15)) {
          const w = (480 * x.trips) / m;
          body += `<g data-side="${side}" data-place="${FW.esc(x.place_id)}"><title>${FW.esc(x.place_id)}</title>
            <text x="12" y="${y + 16}">${FW.esc((x.name || x.place_id).slice(0, 22))}</text>
            <rect x="240" y="${y + 5}" width="${Math.max(1, w)}" height="15" fill="${color}"/>
            <text x="${246 + w}" y="${y + 16}">${x.trips}</text></g>`;
          y += 24;
        }
      }
      tripsEl.innerHTML = all.length ? svg(760, y + 8, body) : `<div class="muted">${t("none")}</div>`;
      state.tripsShown = all.reduce((a, x) => a + x.trips, 0);
    }
    state.statsRendered = (state.statsRendered || 0) + 1;
  }
  document.getElementById("days").addEventListener("change", load);
  FW.onLang(render);
  FW.alertHandlers.push(() => { clearTimeout(state._reload); state._reload = setTimeout(load, 2000); });
  load();
})();
