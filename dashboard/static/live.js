// Live map: road network from GeoJSON (no basemap), vehicles coloured by kind, deltas over /ws/live.
const KIND_COLORS = {
  sweeper: [46, 204, 113], sprinkler: [52, 152, 219], muck_truck: [230, 126, 34],
  concrete_mixer: [155, 89, 182], refuse_truck: [241, 196, 15], unknown: [149, 165, 166],
};
const state = { vehicles: new Map(), kinds: [], roads: null, lastUpdate: 0, messages: 0 };
window.fleetwatch = state; // read by tests and by people in the console

const deckInstance = createDeck({
  container: document.getElementById("map"),
  jsonInput: {
    initialViewState: { longitude: 114.055, latitude: 22.54, zoom: 13, pitch: 0, bearing: 0 },
    controller: true,
    layers: [],
  },
  tooltip: { text: "{tip}" },
});
window.fwDeck = deckInstance;

function kindName(idx) { return state.kinds[idx] || "unknown"; }

function render() {
  const vehicles = Array.from(state.vehicles.values()).map((v) => {
    const kind = kindName(v[1]);
    const alarm = v[7] && v[7].length > 0;
    return { id: v[0], kind, position: [v[2], v[3]], speed: v[4], heading: v[5], alarm,
             color: alarm ? [231, 76, 60] : KIND_COLORS[kind] || KIND_COLORS.unknown,
             tip: `${v[0]} · ${t(kind)} · ${v[4]} km/h${alarm ? " · " + t("alarm") + ": " + v[7].join(", ") : ""}` };
  });
  const layers = [];
  if (state.roads) {
    layers.push({ "@@type": "GeoJsonLayer", id: "roads", data: state.roads, stroked: true, filled: false,
                  getLineColor: [90, 110, 135, 200], lineWidthMinPixels: 1, getLineWidth: 4, pickable: false });
  }
  layers.push({ "@@type": "ScatterplotLayer", id: "vehicles", data: vehicles, getPosition: "@@=position",
                getFillColor: "@@=color", getLineColor: [15, 20, 25], stroked: true, lineWidthMinPixels: 1,
                radiusMinPixels: 5, radiusMaxPixels: 14, getRadius: 30, pickable: true });
  updateDeck({ layers }, deckInstance);
  const counts = {};
  vehicles.forEach((v) => { counts[v.kind] = (counts[v.kind] || 0) + 1; });
  document.getElementById("legend").innerHTML = Object.keys(KIND_COLORS)
    .filter((k) => k !== "unknown" || counts.unknown)
    .map((k) => `<div><i style="background:rgb(${KIND_COLORS[k].join(",")})"></i>${t(k)}<span class="n">${counts[k] || 0}</span></div>`)
    .join("");
  const when = state.lastUpdate ? new Date(state.lastUpdate).toLocaleTimeString() : "–";
  document.getElementById("status").textContent = `${t("vehicles")}: ${vehicles.length} · ${t("updated")}: ${when}`;
  state.rendered = vehicles.length;
}
window.fwRender = render;

fetch("/api/roads").then((r) => r.json()).then((gj) => { state.roads = gj; render(); });

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/ws/live`);
  ws.binaryType = "arraybuffer";
  document.getElementById("status").textContent = t("connecting");
  ws.onmessage = (ev) => {
    const text = typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data);
    const msg = JSON.parse(text);
    state.kinds = msg.kinds || state.kinds;
    for (const v of msg.v) state.vehicles.set(v[0], v);
    state.lastUpdate = msg.t;
    state.messages += 1;
    render();
  };
  ws.onclose = () => setTimeout(connect, 2000);
}
connect();
