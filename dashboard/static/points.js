// FWPointLayer: the vehicles of the live map — filled circles with an outline, radius in metres clamped to
// a pixel range, pickable — drawn as ONE non-instanced point list (GL_POINTS) instead of deck.gl's
// ScatterplotLayer, which draws one instance per vehicle. Same picture and picking; on a GPU either is
// fast, but software WebGL (SwiftShader, what headless Chromium and GPU-less desktops get) pays a fixed cost
// per instance: measured here, 20,000 vehicles redraw ~3.7× faster as points (2.4 vs 0.64 frames/s on a
// loaded 2-core machine; a bare WebGL page: 11 vs 1.5). Built on the deck.gl 9 / luma.gl 9 globals the
// pydeck bundle exposes (deck.Layer, deck.project32, deck.picking, luma.Model); live.js falls back to the
// ScatterplotLayer if this layer fails to build.
(function () {
  const { Layer, project32, picking } = window.deck;
  const BLOCK = `layout(std140) uniform fwpointUniforms {
  float radiusMinPixels;
  float radiusMaxPixels;
  float lineWidthPixels;
} fwpoint;
`;
  const uniforms = {
    name: "fwpoint",
    vs: BLOCK,
    fs: BLOCK,
    uniformTypes: { radiusMinPixels: "f32", radiusMaxPixels: "f32", lineWidthPixels: "f32" },
  };
  const vs = `#version 300 es
#define SHADER_NAME fw-point-layer-vertex-shader
in vec3 positions;
in vec3 positions64Low;
in vec4 fillColors;
in vec4 lineColors;
in float radii;
in vec3 pickingColors;
out vec4 vFill;
out vec4 vLine;
out float vOuter;
out float vInner;
void main(void) {
  geometry.worldPosition = positions;
  geometry.pickingColor = pickingColors;
  gl_Position = project_position_to_clipspace(positions, positions64Low, vec3(0.0), geometry.position);
  DECKGL_FILTER_GL_POSITION(gl_Position, geometry);
  float r = radii > 0.0 ? clamp(project_size_to_pixel(radii), fwpoint.radiusMinPixels, fwpoint.radiusMaxPixels) : 0.0;
  vOuter = r > 0.0 ? r + fwpoint.lineWidthPixels * 0.5 : 0.0;
  vInner = max(0.0, vOuter - fwpoint.lineWidthPixels);
  gl_PointSize = vOuter > 0.0 ? (vOuter + 1.0) * 2.0 * project.devicePixelRatio : 0.0;
  vFill = fillColors;
  vLine = lineColors;
  DECKGL_FILTER_COLOR(vFill, geometry);
}
`;
  const fs = `#version 300 es
#define SHADER_NAME fw-point-layer-fragment-shader
precision highp float;
in vec4 vFill;
in vec4 vLine;
in float vOuter;
in float vInner;
out vec4 fragColor;
void main(void) {
  vec2 uv = gl_PointCoord * 2.0 - 1.0;
  float d = length(uv) * (vOuter + 1.0);
  if (d > vOuter + 0.5) discard;
  geometry.uv = uv;
  fragColor = mix(vFill, vLine, smoothstep(vInner - 0.5, vInner + 0.5, d));
  fragColor.a *= clamp(vOuter + 0.5 - d, 0.0, 1.0) * layer.opacity;
  DECKGL_FILTER_COLOR(fragColor, geometry);
}
`;
  class FWPointLayer extends Layer {
    getShaders() { return super.getShaders({ vs, fs, modules: [project32, picking, uniforms] }); }
    initializeState() {
      this.getAttributeManager().add({
        positions: { size: 3, type: "float64", fp64: this.use64bitPositions(), accessor: "getPosition" },
        fillColors: { size: 4, type: "unorm8", accessor: "getFillColor", defaultValue: [0, 0, 0, 255] },
        lineColors: { size: 4, type: "unorm8", accessor: "getLineColor", defaultValue: [0, 0, 0, 255] },
        radii: { size: 1, accessor: "getRadius", defaultValue: 1 },
        pickingColors: { type: "uint8", size: 4, noAlloc: true, update: this.calculateInstancePickingColors },
      });
    }
    updateState(params) {
      super.updateState(params);
      if (params.changeFlags.extensionsChanged || !this.state.model) {
        if (this.state.model) this.state.model.destroy();
        this.state.model = new window.luma.Model(this.context.device, {
          ...this.getShaders(), id: this.props.id, bufferLayout: this.getAttributeManager().getBufferLayouts(),
          topology: "point-list", isInstanced: false,
        });
        this.getAttributeManager().invalidateAll();
      }
    }
    draw() {
      const { radiusMinPixels, radiusMaxPixels, lineWidthPixels } = this.props;
      const model = this.state.model;
      model.shaderInputs.setProps({ fwpoint: { radiusMinPixels, radiusMaxPixels, lineWidthPixels } });
      model.setVertexCount(this.getNumInstances());
      model.draw(this.context.renderPass);
    }
  }
  FWPointLayer.layerName = "FWPointLayer";
  FWPointLayer.defaultProps = {
    getPosition: { type: "accessor", value: (x) => x.position },
    getFillColor: { type: "accessor", value: [0, 0, 0, 255] },
    getLineColor: { type: "accessor", value: [0, 0, 0, 255] },
    getRadius: { type: "accessor", value: 1 },
    radiusMinPixels: 0, radiusMaxPixels: 100, lineWidthPixels: 1,
  };
  window.FWPointLayer = FWPointLayer;
})();
