"""Standalone offline HTML of a map view, built with pydeck, for reports sent to auditors.

pydeck's own template pulls mapbox/maplibre/bootstrap CSS and the deck.gl bundle from CDNs; an auditor's
machine may have no internet and the report must still open in ten years. So pydeck only builds the deck
description (`Deck.to_json()`, no map provider, no map style) and this module writes the page itself: the
deck.gl bundle from the pydeck wheel is inlined (its source-map comment removed), the data is inlined, and
the result contains no URL that a browser would fetch. `external_urls()` is the check the tests and the
endpoint apply. The footer carries the SHA-256 of the embedded deck description, so a recipient can verify
the data they were sent is the data that was exported.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import pydeck as pdk

from dashboard.assets import deckgl_bundle_dir

#: Attributes/CSS that make a browser fetch something. Plain URLs inside the bundle's code (error messages,
#: optional loaders never invoked) are not fetched and are not matched.
_FETCHING = re.compile(
    r"""(?:<(?:script|img|iframe|link|source|video|audio|embed)\b[^>]*?\s(?:src|href)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import\s+["']?(?:https?:)?//)""",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def inline_bundle() -> str:
    code = (deckgl_bundle_dir() / "index.js").read_text(encoding="utf-8")
    code = re.sub(r"^//# sourceMappingURL=.*$", "", code, flags=re.MULTILINE)
    return code.replace("</script", "<\\/script")


def external_urls(page: str) -> list[str]:
    """Markup in `page` that would make a browser fetch from another host (empty = self-contained)."""
    # The inlined bundle is code, not markup: scan only outside <script> bodies.
    outside = re.sub(r"(<script\b[^>]*>).*?(</script>)", r"\1\2", page, flags=re.DOTALL | re.IGNORECASE)
    return [m.group(0) for m in _FETCHING.finditer(outside)]


def deck(layers: list[pdk.Layer], view: dict[str, float], tooltip: Any = True) -> pdk.Deck:
    return pdk.Deck(layers=layers, initial_view_state=pdk.ViewState(**view), map_provider=None,
                    map_style=None, tooltip=tooltip)


def render(d: pdk.Deck, title: str, subtitle: str, legend: list[tuple[str, tuple[int, ...]]],
           timeline: tuple[float, float, int] | None = None, tooltip_html: str | None = None) -> str:
    """The self-contained page. `timeline` = (start s, end s, epoch ms of 0 s) adds a slider driving every
    TripsLayer's `currentTime` (seconds on the layer's own time axis)."""
    spec = orjson.loads(d.to_json())
    if tooltip_html:
        tooltip: Any = {"html": tooltip_html, "style": {"backgroundColor": "#111a24", "color": "#e6edf3",
                                                          "fontSize": "12px", "border": "1px solid #2d3b4d"}}
    else:
        tooltip = True
    spec_json = orjson.dumps(spec).decode()
    digest = hashlib.sha256(spec_json.encode()).hexdigest()
    legend_html = "".join(
        f'<div class="row"><i style="background:rgba({c[0]},{c[1]},{c[2]},{(c[3] if len(c) > 3 else 255) / 255:.2f})">'
        f"</i>{html.escape(label)}</div>" for label, c in legend)
    slider = ""
    if timeline is not None:
        slider = (f'<div id="timebar"><input id="time" type="range" min="{timeline[0]}" max="{timeline[1]}" '
                  f'step="1" value="{timeline[1]}"><span id="clock"></span></div>')
    generated = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    safe_spec = spec_json.replace("</", "<\\/")
    return _TEMPLATE.format(
        title=html.escape(title), subtitle=html.escape(subtitle), legend=legend_html, slider=slider,
        bundle=inline_bundle(), spec=safe_spec, tooltip=orjson.dumps(tooltip).decode().replace("</", "<\\/"),
        digest=digest, generated=generated,
        timeline=orjson.dumps(None if timeline is None else
                              {"start": timeline[0], "end": timeline[1], "epoch_ms": timeline[2]}).decode())


_TEMPLATE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="FleetWatch (pydeck, offline export)">
<title>{title}</title>
<style>
html, body {{ margin: 0; height: 100%; background: #0b1016; color: #dfe7ef;
  font: 13px/1.45 "Noto Sans CJK SC", "Microsoft YaHei", "WenQuanYi Micro Hei", system-ui, sans-serif; }}
#deck {{ position: absolute; inset: 0; }}
#card {{ position: absolute; top: 12px; left: 12px; z-index: 2; background: rgba(13,19,27,.94);
  border: 1px solid #253244; border-radius: 6px; padding: 10px 14px; max-width: 420px; }}
#card h1 {{ font-size: 15px; margin: 0 0 2px; }} #card .sub {{ color: #8fa3b8; }}
#card .row {{ display: flex; align-items: center; gap: 8px; margin-top: 4px; }}
#card i {{ width: 12px; height: 12px; border-radius: 3px; display: inline-block; }}
#foot {{ position: absolute; bottom: 8px; left: 12px; z-index: 2; color: #6f8396; font-size: 11px; }}
#timebar {{ position: absolute; bottom: 28px; left: 12px; right: 12px; z-index: 2; display: flex; gap: 10px;
  align-items: center; background: rgba(13,19,27,.9); padding: 6px 10px; border-radius: 6px; }}
#timebar input {{ flex: 1; }}
</style>
</head>
<body>
<div id="deck"></div>
<div id="card"><h1>{title}</h1><div class="sub">{subtitle}</div>{legend}</div>
{slider}
<div id="foot">FleetWatch · exported {generated} · data SHA-256 {digest}</div>
<script>{bundle}</script>
<script>
(function () {{
  var spec = {spec};
  var timeline = {timeline};
  var deckInstance = createDeck({{ container: document.getElementById("deck"), jsonInput: spec,
                                   tooltip: {tooltip} }});
  window.fwExport = {{ deck: deckInstance, spec: spec, rendered: 0 }};
  deckInstance.setProps({{ onAfterRender: function () {{ window.fwExport.rendered += 1; }} }});
  if (timeline) {{
    var input = document.getElementById("time");
    var clock = document.getElementById("clock");
    var t0 = timeline.epoch_ms || 0;
    var show = function (v) {{
      clock.textContent = t0 ? new Date(t0 + v * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : v;
    }};
    input.addEventListener("input", function () {{
      var v = Number(input.value);
      spec.layers.forEach(function (l) {{ if (l["@@type"] === "TripsLayer") l.currentTime = v; }});
      updateDeck({{ layers: spec.layers }}, deckInstance);
      show(v);
    }});
    show(Number(input.value));
  }}
}})();
</script>
</body>
</html>
"""
