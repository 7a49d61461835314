// FWPointLayer: the vehicles of the live map — filled circles with an outline, radius in metres clamped to
// a pixel range, pickable — drawn as ONE non-instanced point list (GL_POINTS) instead of deck.gl's
// ScatterplotLayer, which draws one instance per vehicle. Same picture and picking. On a GPU either is fast;
// software WebGL (SwiftShader: headless Chromium, GPU-less desktops) pays per instance, per vertex and above
// all per fragment (20,000 vehicles are ~2 M fragments a frame), so the shader that draws a frame is lean:
// * every varying is `flat` (a point has one vertex: nothing to interpolate, and SwiftShader interpolates
//   every non-flat input of every fragment);
// * no `discard` (outside the disc the fragment is transparent, which blending leaves unchanged — the same
//   picture, and SwiftShader runs a masked, slower path for shaders that can discard);
// * the point is only as large as the disc and its 1-px antialiased rim;
// * no picking code: a second model, with deck.gl's picking module, draws only the picking passes.
// Motion runs on the GPU: `positions` are where each vehicle is going, `deltas` (float32, degrees) the offset
// of where it is coming from, and the `animT` uniform how far along it is — so an animation frame uploads
// nothing. Built on the deck.gl 9 / luma.gl 9 globals the pydeck bundle exposes (deck.Layer,
// deck.project32, deck.picking, luma.Model); live.js falls back to the ScatterplotLayer if it fails to build.
(function () {
  const { Layer, project32, picking } = window.deck;
  const BLOCK = `layout(std140) uniform fwpointUniforms {
  float radiusMinPixels;
  float radiusMaxPixels;
  float lineWidthPixels;
  float animT;
} fwpoint;
`;
  const uniforms = {
    name: "fwpoint",
    vs: BLOCK,
    fs: BLOCK,
    uniformTypes: { radiusMinPixels: "f32", radiusMaxPixels: "f32", lineWidthPixels: "f32", animT: "f32" },
  };
  // FW_PICKING: the picking model's variant (deck.gl's picking module, discards outside the disc)
  const vs = `#version 300 es
#define SHADER_NAME fw-point-layer-vertex-shader
in vec3 positions;
in vec3 positions64Low;
in vec2 deltas;
in vec4 fillColors;
in vec4 lineColors;
in float radii;
#ifdef FW_PICKING
in vec3 pickingColors;
#endif
flat out vec4 vFill;
flat out vec4 vLine;
flat out vec3 vRadii; // outer edge, inner edge (fill → outline), half the point size: pixels
void main(void) {
  // where the vehicle is drawn: on its way to \`positions\` from there + delta, animT of the way along
  vec3 p = positions + vec3(deltas * (1.0 - fwpoint.animT), 0.0);
  geometry.worldPosition = p;
#ifdef FW_PICKING
  geometry.pickingColor = pickingColors;
#endif
  gl_Position = project_position_to_clipspace(p, positions64Low, vec3(0.0), geometry.position);
  DECKGL_FILTER_GL_POSITION(gl_Position, geometry);
  float r = radii > 0.0 ? clamp(project_size_to_pixel(radii), fwpoint.radiusMinPixels, fwpoint.radiusMaxPixels) : 0.0;
  float outer = r > 0.0 ? r + fwpoint.lineWidthPixels * 0.5 : 0.0;
  vRadii = vec3(outer, max(0.0, outer - fwpoint.lineWidthPixels), outer + 0.5);
  gl_PointSize = outer > 0.0 ? vRadii.z * 2.0 * project.devicePixelRatio : 0.0;
  vFill = fillColors;
  vLine = lineColors;
  DECKGL_FILTER_COLOR(vFill, geometry);
}
`;
  const fs = `#version 300 es
#define SHADER_NAME fw-point-layer-fragment-shader
precision highp float;
flat in vec4 vFill;
flat in vec4 vLine;
flat in vec3 vRadii;
out vec4 fragColor;
void main(void) {
  vec2 uv = gl_PointCoord * 2.0 - 1.0;
  float d = length(uv) * vRadii.z; // pixels from the centre
#ifdef FW_PICKING
  if (d > vRadii.x + 0.5) discard;
  geometry.uv = uv;
#endif
  fragColor = mix(vFill, vLine, smoothstep(vRadii.y - 0.5, vRadii.y + 0.5, d));
  fragColor.a *= clamp(vRadii.x + 0.5 - d, 0.0, 1.0) * layer.opacity;
#ifdef FW_PICKING
  DECKGL_FILTER_COLOR(fragColor, geometry);
#endif
}
`;
  const PICKING = "#define FW_PICKING 1\n#define SHADER_NAME";
  class FWPointLayer extends Layer {
    getShaders(pickingPass = false) {
      if (!pickingPass) return super.getShaders({ vs, fs, modules: [project32, uniforms] });
      return super.getShaders({ vs: vs.replace("#define SHADER_NAME", PICKING), fs: fs.replace("#define SHADER_NAME", PICKING),
                                modules: [project32, picking, uniforms] });
    }
    initializeState() {
      this.getAttributeManager().add({
        positions: { size: 3, type: "float64", fp64: this.use64bitPositions(), accessor: "getPosition" },
        deltas: { size: 2, accessor: "getDelta", defaultValue: [0, 0] },
        fillColors: { size: 4, type: "unorm8", accessor: "getFillColor", defaultValue: [0, 0, 0, 255] },
        lineColors: { size: 4, type: "unorm8", accessor: "getLineColor", defaultValue: [0, 0, 0, 255] },
        radii: { size: 1, accessor: "getRadius", defaultValue: 1 },
        pickingColors: { type: "uint8", size: 4, noAlloc: true, update: this.calculateInstancePickingColors },
      });
    }
    updateState(params) {
      super.updateState(params);
      if (params.changeFlags.extensionsChanged || !this.state.models) {
        for (const m of this.state.models || []) m.destroy();
        const make = (pickingPass) => new window.luma.Model(this.context.device, {
          ...this.getShaders(pickingPass), id: `${this.props.id}${pickingPass ? "-picking" : ""}`,
          bufferLayout: this.getAttributeManager().getBufferLayouts(), topology: "point-list", isInstanced: false,
          disableWarnings: !pickingPass, // the drawing model has no pickingColors input
        });
        this.setState({ models: [make(false), make(true)] });
        this.getAttributeManager().invalidateAll();
      }
    }
    // deck.gl sets module props (project, layer, picking) on every model; the drawing model has no picking
    setShaderModuleProps(props) {
      const [draw, pick] = this.state.models || [];
      if (!draw) return;
      const { picking: _, ...rest } = props;
      draw.shaderInputs.setProps(rest);
      pick.shaderInputs.setProps(props);
    }
    draw({ shaderModuleProps }) {
      const { radiusMinPixels, radiusMaxPixels, lineWidthPixels, animT } = this.props;
      const pickingPass = Boolean(shaderModuleProps && shaderModuleProps.picking && shaderModuleProps.picking.isActive);
      const model = this.state.models[pickingPass ? 1 : 0];
      model.shaderInputs.setProps({ fwpoint: { radiusMinPixels, radiusMaxPixels, lineWidthPixels, animT } });
      model.setVertexCount(this.getNumInstances());
      model.draw(this.context.renderPass);
    }
  }
  FWPointLayer.layerName = "FWPointLayer";
  FWPointLayer.defaultProps = {
    getPosition: { type: "accessor", value: (x) => x.position },
    getDelta: { type: "accessor", value: [0, 0] },
    getFillColor: { type: "accessor", value: [0, 0, 0, 255] },
    getLineColor: { type: "accessor", value: [0, 0, 0, 255] },
    getRadius: { type: "accessor", value: 1 },
    radiusMinPixels: 0, radiusMaxPixels: 100, lineWidthPixels: 1, animT: 1,
  };
  window.FWPointLayer = FWPointLayer;
})();
