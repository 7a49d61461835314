// FWRaster: the live map's vehicles drawn by the page itself into a 2D canvas, for browsers whose WebGL is a
// software rasteriser (SwiftShader, Mesa llvmpipe: headless Chromium, GPU-less desktops and the virtual
// desktops many city offices run). There every GL point costs far more than its few pixels: on llvmpipe
// 20,000 dots of ~7 px took ~45 ms of the GPU process per frame (vertex fetch, per-point setup, binning,
// fragments shaded in 4×4 stamps), plus reading the canvas back for the compositor. Here a frame is one pass
// over the fleet in JavaScript — project, stamp a pre-drawn sprite, done — and one putImageData into a
// canvas the compositor takes as it is: ~10 ms for the same picture. With a real GPU the page keeps deck.gl's
// WebGL layer (static/points.js); live.js chooses (`?render=raster|gl` forces one).
//
// The picture is the point layer's: a disc of the vehicle's fill colour inside a 1-px rim of its line colour,
// radius in metres clamped to a pixel range, antialiased at the edge, later vehicles over earlier ones;
// halos (alarm) and the selection ring are rings stamped the same way. Positions are Web Mercator world
// units (deck.gl's, 512 per world), computed once per update for where each vehicle comes from and goes to;
// a frame interpolates them and applies the view's pixel projection matrix (pitch and bearing included).
// Sprites are drawn at half-pixel offsets, so slow motion moves in half-pixel steps, not whole pixels.
// Picking is the same geometry backwards: the topmost drawn dot within a few pixels of the pointer.
(function () {
  const TILE = 512, PI = Math.PI;
  const worldX = (lon) => (TILE * (lon * PI / 180 + PI)) / (2 * PI);
  const worldY = (lat) => (TILE * (PI + Math.log(Math.tan(PI / 4 + lat * PI / 360)))) / (2 * PI);
  // where a sprite's centre sits relative to its centre pixel's centre, to the half pixel
  const phase = (p) => Math.round((p - Math.floor(p) - 0.5) * 2) / 2;
  // ImageData's byte order, as a signed 32-bit integer (V8 keeps those unboxed; unsigned ones above 2^31 are not)
  const rgba = (r, g, b, a) => (a << 24) | (b << 16) | (g << 8) | r;
  // Pixels are drawn premultiplied (colour × alpha): then "source over destination" is one multiply per
  // channel pair and no division, d·(255 − a)/255 taken as /256 with rounding (±1 of 255). Red/blue and
  // alpha/green go two channels at a time in one 32-bit integer; the sum cannot carry (premultiplied
  // channels never exceed their alpha).
  function over(v, d) {
    const ia = 255 - (v >>> 24);
    const rb = (((d & 0xff00ff) * ia + 0x800080) >>> 8) & 0xff00ff;
    const ag = ((((d >>> 8) & 0xff00ff) * ia + 0x800080)) & 0xff00ff00;
    return (v + rb + ag) | 0;
  }
  // premultiplied → straight alpha (what ImageData holds), for the pixels that stayed translucent
  function straight(p) {
    const a = p >>> 24;
    if (a === 255 || a === 0) return p;
    const k = 255 / a;
    return (a << 24) | (Math.min(255, ((p >>> 16) & 255) * k + 0.5 | 0) << 16)
      | (Math.min(255, ((p >>> 8) & 255) * k + 0.5 | 0) << 8) | Math.min(255, (p & 255) * k + 0.5 | 0);
  }

  // one sprite: a disc (fill inside `inner`, line colour out to `outer`) or a ring (fill alpha 0), centred
  // (ox, oy) from the centre of its centre pixel; pixel coverage from the distance to the centre (1-px
  // antialiasing). Kept as its covered pixels only: (dx, dy) from the centre pixel, premultiplied RGBA.
  function sprite(outer, inner, fillRGBA, lineRGBA, ox, oy) {
    const c = Math.ceil(outer + 1), dxs = [], dys = [], vals = [];
    for (let y = -c; y <= c; y++) {
      for (let x = -c; x <= c; x++) {
        const d = Math.hypot(x - ox, y - oy);
        const edge = Math.min(1, Math.max(0, outer + 0.5 - d));
        const t = Math.min(1, Math.max(0, d - inner + 0.5)); // 0 inside the fill, 1 on the rim
        const a = (fillRGBA[3] * (1 - t) + lineRGBA[3] * t) * edge;
        if (a < 1) continue;
        const pm = (j) => Math.round(((fillRGBA[j] * (1 - t) + lineRGBA[j] * t) * a) / 255);
        dxs.push(x); dys.push(y); vals.push(rgba(pm(0), pm(1), pm(2), Math.round(a)));
      }
    }
    return { c, dx: dxs, dy: dys, vals: Int32Array.from(vals), offs: new Int32Array(0), W: 0 };
  }

  class FWRaster {
    constructor(container) {
      this.canvas = document.createElement("canvas");
      this.canvas.className = "map-raster";
      this.canvas.style.cssText = "position:absolute;inset:0;width:100%;height:100%;pointer-events:none";
      container.appendChild(this.canvas);
      // a CPU canvas (no GPU readback), desynchronized: its frames go to the screen without the copy that
      // keeps a canvas in step with the rest of the page's painting (~20 % of a frame here; a whole frame is
      // drawn in one go, so there is nothing half-drawn to show)
      this.ctx = this.canvas.getContext("2d", { willReadFrequently: true, desynchronized: true });
      this.sprites = new Map();
      this.styleIds = new Map(); this.styleList = []; this.sid = new Int32Array(0); this.styleVersion = -1; this.styledN = 0;
      this.n = 0;
      this.wx = new Float64Array(0); this.wy = new Float64Array(0); this.dx = new Float64Array(0); this.dy = new Float64Array(0);
      this.sx = new Float32Array(0); this.sy = new Float32Array(0); this.sr = new Float32Array(0); // last frame, pixels
      this.img = null; this.out = null; this.buf = null; this.W = 0; this.H = 0; this.dirty = null;
    }

    // where each vehicle goes (`to`, lon/lat) and comes from (`to + delta`): world units, once per update
    positions(n, to, delta) {
      if (this.wx.length < n) {
        const m = Math.max(n, 2 * this.wx.length, 1024);
        this.wx = new Float64Array(m); this.wy = new Float64Array(m); this.dx = new Float64Array(m); this.dy = new Float64Array(m);
        this.sx = new Float32Array(m); this.sy = new Float32Array(m); this.sr = new Float32Array(m);
      }
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        const x = worldX(to[j]), y = worldY(to[j + 1]);
        this.wx[i] = x; this.wy[i] = y;
        this.dx[i] = delta[j] || delta[j + 1] ? worldX(to[j] + delta[j]) - x : 0;
        this.dy[i] = delta[j] || delta[j + 1] ? worldY(to[j + 1] + delta[j + 1]) - y : 0;
      }
      this.n = n;
    }

    _size(viewport) {
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(viewport.width * dpr)), h = Math.max(1, Math.round(viewport.height * dpr));
      if (!this.img || this.img.width !== w || this.img.height !== h) {
        this.canvas.width = w; this.canvas.height = h;
        this.img = this.ctx.createImageData(w, h);
        this.out = new Int32Array(this.img.data.buffer); // straight alpha, what the canvas takes
        this.buf = new Int32Array(w * h); // premultiplied, what the sprites are drawn into
        this.W = w; this.H = h;
        this.dirty = null;
      }
      return dpr;
    }

    // the sprite of style `sid` (a fill/line pair) with outer radius `outer` at offset (ox, oy) ∈ {-½, 0, ½}²
    _sprite(sid, outer, inner, ox, oy) {
      const key = ((sid * 1024 + Math.round(outer * 4)) * 3 + (ox * 2 + 1)) * 3 + (oy * 2 + 1);
      let s = this.sprites.get(key);
      if (!s) {
        if (this.sprites.size > 4096) this.sprites.clear(); // styles are few; zooming makes new sizes
        const [f, l] = this.styleList[sid];
        s = sprite(outer, inner, f, l, ox, oy);
        this.sprites.set(key, s);
      }
      return s;
    }

    // a small id per distinct fill/line pair (vehicles share a handful of styles), recomputed when they change
    _styles(n, fill, line, version) {
      if (version === this.styleVersion && this.sid.length >= n && this.styledN === n) return;
      if (this.sid.length < n) this.sid = new Int32Array(Math.max(n, 2 * this.sid.length, 1024));
      const f32 = new Uint32Array(fill.buffer, fill.byteOffset, n), l32 = new Uint32Array(line.buffer, line.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const key = `${f32[i]}:${l32[i]}`;
        let id = this.styleIds.get(key);
        if (id === undefined) {
          id = this.styleList.length;
          const b = (v) => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24];
          this.styleList.push([b(f32[i]), b(l32[i])]);
          this.styleIds.set(key, id);
        }
        this.sid[i] = id;
      }
      this.styleVersion = version; this.styledN = n;
    }

    // a ring's own style id (colour in the rim, transparent inside)
    _ringStyle(c) {
      const key = `ring${c.join(",")}`;
      let id = this.styleIds.get(key);
      if (id === undefined) {
        id = this.styleList.length;
        this.styleList.push([[c[0], c[1], c[2], 0], c]);
        this.styleIds.set(key, id);
      }
      return id;
    }

    // stamp a sprite at pixel coordinates (x, y): wholly inside the canvas through its offsets for this
    // canvas width, near an edge pixel by pixel
    _stamp(s, x, y) {
      const W = this.W, H = this.H, buf = this.buf, vals = s.vals;
      const cx = Math.floor(x), cy = Math.floor(y), c = s.c;
      if (cx - c >= 0 && cy - c >= 0 && cx + c < W && cy + c < H) {
        if (s.W !== W) { s.offs = Int32Array.from(s.dx, (dx, k) => s.dy[k] * W + dx); s.W = W; }
        const offs = s.offs, base = cy * W + cx;
        for (let k = 0; k < vals.length; k++) {
          const o = base + offs[k], d = buf[o], v = vals[k];
          buf[o] = d === 0 || v >>> 24 === 255 ? v : over(v, d);
        }
        return;
      }
      for (let k = 0; k < vals.length; k++) {
        const px = cx + s.dx[k], py = cy + s.dy[k];
        if (px < 0 || py < 0 || px >= W || py >= H) continue;
        const o = py * W + px, d = buf[o], v = vals[k];
        buf[o] = d === 0 || v >>> 24 === 255 ? v : over(v, d);
      }
    }

    /** Draw every vehicle `k` of the way from where it comes from to where it goes, in `viewport` (deck.gl's).
     * style: fill/line (RGBA bytes per vehicle), radius (metres; 0 = hidden), dot ({radiusMinPixels,
     * radiusMaxPixels, lineWidth}); rings: [{ i, radiusPx, widthPx, color: RGBA }] drawn over the vehicles. */
    draw(viewport, k, style, rings = []) {
      const dpr = this._size(viewport), W = this.W, H = this.H, buf = this.buf, out = this.out;
      if (this.dirty) { // clear what the last frame drew
        const [x0, y0, x1, y1] = this.dirty.map((v, j) => Math.min(Math.max(v, 0), j % 2 ? H : W));
        if (x1 - x0 > W * 0.7) buf.fill(0, y0 * W, y1 * W);
        else for (let y = y0; y < y1; y++) buf.fill(0, y * W + x0, y * W + x1);
      }
      let bx0 = W, by0 = H, bx1 = 0, by1 = 0; // what this frame draws
      const stamp = (sp, x, y) => {
        this._stamp(sp, x, y);
        const cx = Math.floor(x), cy = Math.floor(y);
        if (cx - sp.c < bx0) bx0 = cx - sp.c;
        if (cy - sp.c < by0) by0 = cy - sp.c;
        if (cx + sp.c + 1 > bx1) bx1 = cx + sp.c + 1;
        if (cy + sp.c + 1 > by1) by1 = cy + sp.c + 1;
      };
      const M = viewport.pixelProjectionMatrix, back = 1 - k;
      const ppm = dpr / viewport.metersPerPixel; // device pixels per metre
      const { fill, line, radius, dot } = style;
      this._styles(this.n, fill, line, style.version);
      const sid = this.sid;
      const rmin = dot.radiusMinPixels * dpr, rmax = dot.radiusMaxPixels * dpr, lw = dot.lineWidth * dpr;
      const { wx, wy, dx, dy, sx, sy, sr } = this;
      for (let i = 0; i < this.n; i++) {
        sr[i] = 0;
        if (!(radius[i] > 0)) continue;
        const x = wx[i] + dx[i] * back, y = wy[i] + dy[i] * back;
        const w = M[3] * x + M[7] * y + M[15];
        if (!(w > 0)) continue;
        const px = ((M[0] * x + M[4] * y + M[12]) / w) * dpr, py = ((M[1] * x + M[5] * y + M[13]) / w) * dpr;
        const r = Math.min(rmax, Math.max(rmin, radius[i] * ppm));
        sx[i] = px; sy[i] = py; sr[i] = r + lw / 2;
        if (px < -r - 2 || py < -r - 2 || px > W + r + 2 || py > H + r + 2) continue;
        const outer = Math.round(sr[i] * 4) / 4;
        stamp(this._sprite(sid[i], outer, Math.max(0, outer - lw), phase(px), phase(py)), px, py);
      }
      for (const ring of rings) {
        if (ring.i >= this.n || !(sr[ring.i] > 0)) continue;
        const outer = Math.round((ring.radiusPx + ring.widthPx / 2) * dpr * 2) / 2, inner = outer - ring.widthPx * dpr;
        const x = sx[ring.i], y = sy[ring.i];
        stamp(this._sprite(this._ringStyle(ring.color), outer, inner, phase(x), phase(y)), x, y);
      }
      // only the rows and columns drawn now or last frame go to the canvas
      const box = [bx0, by0, bx1, by1];
      const u = this.dirty ? [Math.min(box[0], this.dirty[0]), Math.min(box[1], this.dirty[1]),
                              Math.max(box[2], this.dirty[2]), Math.max(box[3], this.dirty[3])] : box;
      const ux0 = Math.max(0, u[0]), uy0 = Math.max(0, u[1]), ux1 = Math.min(W, u[2]), uy1 = Math.min(H, u[3]);
      if (ux1 > ux0 && uy1 > uy0) {
        for (let y = uy0; y < uy1; y++) {
          for (let o = y * W + ux0, end = y * W + ux1; o < end; o++) out[o] = straight(buf[o]);
        }
        this.ctx.putImageData(this.img, 0, 0, ux0, uy0, ux1 - ux0, uy1 - uy0);
      }
      this.dirty = box[2] > box[0] ? box : null;
    }

    /** Index of the topmost vehicle drawn within `slackPx` (CSS pixels) of (x, y) in the last frame, or -1. */
    pick(x, y, slackPx = 3) {
      const dpr = window.devicePixelRatio || 1, X = x * dpr, Y = y * dpr;
      for (let i = this.n - 1; i >= 0; i--) {
        const r = this.sr[i];
        if (r > 0 && Math.hypot(this.sx[i] - X, this.sy[i] - Y) <= r + slackPx * dpr) return i;
      }
      return -1;
    }

    /** Where vehicle i was drawn last frame, in CSS pixels, or null. */
    drawnAt(i) {
      const dpr = window.devicePixelRatio || 1;
      return i < this.n && this.sr[i] > 0 ? [this.sx[i] / dpr, this.sy[i] / dpr] : null;
    }
  }
  /** True when this browser's WebGL is a software rasteriser (or missing): then the raster is the faster. */
  FWRaster.softwareGL = () => {
    try {
      const gl = document.createElement("canvas").getContext("webgl2");
      if (!gl) return true;
      const ext = gl.getExtension("WEBGL_debug_renderer_info");
      const name = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
      const lose = gl.getExtension("WEBGL_lose_context");
      if (lose) lose.loseContext(); // one context fewer for the map's own
      return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(name);
    } catch (e) {
      return true;
    }
  };
  window.FWRaster = FWRaster;
})();
