// Sensor timeline drawn on a canvas (no chart library): speed as a line, then one band per sensor —
// cover, lift, load, device, drum — with "not reported" hatched, alerts as red spans, and the play cursor.
(function () {
  const LANES = [
    { key: "cover_closed", label: "cover", color: (v) => (v ? [56, 201, 132] : [255, 77, 77]), text: (v) => (v ? "closed_" : "open_") },
    { key: "lifting", label: "lift", color: (v) => (v ? [255, 159, 67] : [60, 80, 100]), text: (v) => (v ? "up" : "down") },
    { key: "load", label: "load", color: (v) => [[70, 90, 110], [200, 160, 60], null, [255, 159, 67]][v] || [90, 90, 90], text: (v) => ({ 0: "empty", 1: "half", 3: "full" }[v]) },
    { key: "device_on", label: "device", color: (v) => (v ? [64, 156, 255] : [60, 80, 100]), text: (v) => (v ? "on" : "off") },
    { key: "drum", label: "drum", color: (v) => [[60, 80, 100], [190, 130, 255], [255, 77, 77]][v], text: (v) => ["drum_stopped", "drum_forward", "drum_reverse"][v] },
  ];
  window.FWChart = {
    // track: columnar /api/replay track; t0,t1: ms range; cursor: ms; alerts: [{start_ts_ms,end_ts_ms,kind}]
    draw(canvas, track, t0, t1, cursor, alerts) {
      const dpr = window.devicePixelRatio || 1;
      const W = canvas.clientWidth, H = canvas.clientHeight;
      if (canvas.width !== W * dpr || canvas.height !== H * dpr) { canvas.width = W * dpr; canvas.height = H * dpr; }
      const g = canvas.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, W, H);
      const left = 92, right = 12, top = 8, speedH = 62, laneH = 17, gap = 5;
      const x = (ms) => left + ((ms - t0) / Math.max(1, t1 - t0)) * (W - left - right);
      g.font = "11px 'Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif";
      g.textBaseline = "middle";
      // time axis grid
      g.strokeStyle = "#1d2a38"; g.fillStyle = "#6f8396"; g.lineWidth = 1;
      const ticks = 8;
      for (let k = 0; k <= ticks; k++) {
        const ms = t0 + ((t1 - t0) * k) / ticks, px = Math.round(x(ms)) + 0.5;
        g.beginPath(); g.moveTo(px, top); g.lineTo(px, H - 14); g.stroke();
        g.textAlign = k === 0 ? "left" : k === ticks ? "right" : "center";
        g.fillText(FW.time(ms, "time"), px, H - 6);
      }
      g.textAlign = "right";
      // alerts as spans behind everything
      for (const a of alerts || []) {
        const a0 = x(a.start_ts_ms), a1 = x(a.end_ts_ms || t1);
        g.fillStyle = "rgba(255,59,59,0.16)"; g.fillRect(a0, top, Math.max(2, a1 - a0), H - 22 - top);
        g.fillStyle = "#ff3b3b"; g.beginPath(); g.moveTo(a0, top); g.lineTo(a0 + 6, top); g.lineTo(a0, top + 8); g.fill();
      }
      if (!track || !track.ts_ms.length) { g.fillStyle = "#6f8396"; g.textAlign = "center"; g.fillText(t("no_tracks"), W / 2, H / 2); return; }
      const ts = track.ts_ms;
      // speed
      const vmax = Math.max(20, ...track.speed_kmh);
      g.fillStyle = "#9fb0c2"; g.fillText(`${t("speed")} km/h`, left - 8, top + 8);
      g.fillText(String(Math.round(vmax)), left - 8, top + 22);
      g.beginPath();
      ts.forEach((ms, i) => { const px = x(ms), py = top + speedH - (track.speed_kmh[i] / vmax) * speedH; i ? g.lineTo(px, py) : g.moveTo(px, py); });
      g.strokeStyle = "#3aa0ff"; g.lineWidth = 1.5; g.stroke();
      g.lineTo(x(ts[ts.length - 1]), top + speedH); g.lineTo(x(ts[0]), top + speedH); g.closePath();
      g.fillStyle = "rgba(58,160,255,0.12)"; g.fill();
      // sensor bands
      LANES.forEach((lane, li) => {
        const y = top + speedH + gap + li * (laneH + 3);
        g.fillStyle = "#9fb0c2"; g.textAlign = "right"; g.fillText(t(lane.label), left - 8, y + laneH / 2);
        const vals = track[lane.key];
        for (let i = 0; i < ts.length; i++) {
          const x0 = x(ts[i]), x1 = i + 1 < ts.length ? x(ts[i + 1]) : x0 + 2;
          const v = vals[i];
          if (v === null || v === undefined) {
            g.fillStyle = "#16202b"; g.fillRect(x0, y, x1 - x0 + 0.5, laneH);
          } else {
            const c = lane.color(v); g.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`; g.fillRect(x0, y, x1 - x0 + 0.5, laneH);
          }
        }
        if (vals.every((v) => v === null || v === undefined)) {
          g.fillStyle = "#5d6f82"; g.textAlign = "left"; g.fillText(t("not_reported"), left + 6, y + laneH / 2);
        }
      });
      // cursor
      if (cursor !== null && cursor !== undefined) {
        const px = Math.round(x(cursor)) + 0.5;
        g.strokeStyle = "#ffffff"; g.lineWidth = 1.5; g.beginPath(); g.moveTo(px, top); g.lineTo(px, H - 16); g.stroke();
      }
    },
    timeAt(canvas, t0, t1, clientX) {
      const r = canvas.getBoundingClientRect(), left = 92, right = 12;
      return t0 + ((clientX - r.left - left) / (r.width - left - right)) * (t1 - t0);
    },
  };
})();
