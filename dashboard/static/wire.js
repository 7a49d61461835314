// Decoder of the /ws/live binary protocol fw-live/1 (layout documented in dashboard/wire.py).
// Keeps the fleet as typed arrays indexed by the connection's vehicle index, ready for deck.gl binary attributes.
(function () {
  const HEADER = 16, RECORD = 20;
  const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  class LiveStore {
    constructor() { this.reset(); }

    reset() {
      this.ids = [];
      this.index = new Map(); // id -> index
      this.n = 0;
      this.cap = 0;
      this.t = 0;
      this.kinds = [];
      this.motion = ["moving", "stopped", "offline"];
      this.grow(1024);
    }

    grow(cap) {
      if (cap <= this.cap) return;
      const next = Math.max(cap, this.cap * 2);
      const g = (old, Type, size = 1) => { const a = new Type(next * size); if (old) a.set(old); return a; };
      this.lon = g(this.lon, Float64Array);
      this.lat = g(this.lat, Float64Array);
      this.speed = g(this.speed, Uint8Array);
      this.heading = g(this.heading, Uint16Array);
      this.flags = g(this.flags, Uint8Array);
      this.alarms = g(this.alarms, Uint8Array);
      this.sensors = g(this.sensors, Uint16Array);
      this.ts = g(this.ts, Float64Array);
      this.cap = next;
    }

    // Text messages: hello / index / summary. Returns the parsed message.
    text(data) {
      const msg = JSON.parse(data);
      if (msg.type === "hello") { this.kinds = msg.kinds; this.motion = msg.motion; }
      if (msg.type === "index") {
        if (msg.first !== this.ids.length) throw new Error(`index gap: ${msg.first} != ${this.ids.length}`);
        for (const id of msg.ids) { this.index.set(id, this.ids.length); this.ids.push(id); }
        this.grow(this.ids.length);
      }
      return msg;
    }

    // Binary position frame → the indexes it updated (Uint32Array). Decoded in place through typed-array views
    // of the frame (records are 4-byte aligned, little-endian), straight into the store's arrays and, when
    // given, into `xy` (interleaved lon/lat, what the vehicle layer uploads).
    frame(buf, xy = null) {
      const dv = new DataView(buf);
      if (dv.getUint8(0) !== 1 || dv.getUint8(1) !== 1) throw new Error("not an fw-live/1 position frame");
      const count = dv.getUint32(4, true);
      this.t = dv.getFloat64(8, true);
      if (buf.byteLength < HEADER + count * RECORD) throw new Error("truncated fw-live/1 frame");
      const touched = new Uint32Array(count);
      const { lon, lat, speed, heading, flags, alarms, sensors, ts } = this, t = this.t;
      if (LITTLE) {
        const w = new Int32Array(buf, HEADER, count * 5), b = new Uint8Array(buf, HEADER, count * RECORD);
        const h = new Uint16Array(buf, HEADER, count * 10);
        for (let k = 0, o = 0; k < count; k++, o += 5) {
          const i = w[o] >>> 0, x = w[o + 1] / 1e6, y = w[o + 2] / 1e6, bo = o * 4, ho = o * 2;
          touched[k] = i;
          lon[i] = x; lat[i] = y;
          if (xy) { xy[2 * i] = x; xy[2 * i + 1] = y; }
          speed[i] = b[bo + 12]; heading[i] = b[bo + 13] * 2; flags[i] = b[bo + 14]; alarms[i] = b[bo + 15];
          sensors[i] = h[ho + 8]; ts[i] = t - h[ho + 9] * 1000;
        }
      } else {
        for (let k = 0, o = HEADER; k < count; k++, o += RECORD) {
          const i = dv.getUint32(o, true), x = dv.getInt32(o + 4, true) / 1e6, y = dv.getInt32(o + 8, true) / 1e6;
          touched[k] = i;
          lon[i] = x; lat[i] = y;
          if (xy) { xy[2 * i] = x; xy[2 * i + 1] = y; }
          speed[i] = dv.getUint8(o + 12); heading[i] = dv.getUint8(o + 13) * 2; flags[i] = dv.getUint8(o + 14);
          alarms[i] = dv.getUint8(o + 15); sensors[i] = dv.getUint16(o + 16, true);
          ts[i] = t - dv.getUint16(o + 18, true) * 1000;
        }
      }
      this.n = this.ids.length;
      return touched;
    }

    kindOf(i) { const k = this.flags[i] & 7; return k < this.kinds.length ? this.kinds[k] : "unknown"; }
    motionOf(i) { return this.motion[(this.flags[i] >> 3) & 3] || "moving"; }
    inAlarm(i) { return (this.flags[i] & 32) !== 0; }
    // Sensors: null = not reported (see dashboard/wire.py for the bit layout).
    sensorsOf(i) {
      const w = this.sensors[i];
      const tri = (b) => (b === 0 ? null : b === 2);
      const load = (w >> 6) & 3, drum = (w >> 8) & 3;
      return { cover_closed: tri(w & 3), lifting: tri((w >> 2) & 3), device_on: tri((w >> 4) & 3),
               load: [null, 0, 1, 3][load], drum: drum === 0 ? null : drum - 1 };
    }
  }
  window.FWLiveStore = LiveStore;
})();
