"""Static assets served locally — no CDN, ever (city networks are often air-gapped).

The deck.gl bundle is the one shipped inside the pydeck wheel (`pydeck/nbextension/static/index.js`, the
@deck.gl/jupyter-widget build, which exports `createDeck` and `updateDeck` and registers every deck.gl
layer with its JSON converter). It is served straight from the installed wheel, never copied.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from tracker.config import Settings

STATIC_DIR = Path(__file__).parent / "static"


@lru_cache(maxsize=1)
def deckgl_bundle_dir() -> Path:
    spec = importlib.util.find_spec("pydeck")
    if spec is None or spec.origin is None:
        raise RuntimeError("pydeck is not installed; it ships the deck.gl bundle the dashboard serves")
    path = Path(spec.origin).parent / "nbextension" / "static"
    if not (path / "index.js").is_file():
        raise RuntimeError(f"deck.gl bundle not found in the pydeck wheel at {path}")
    return path


@lru_cache(maxsize=1)
def swagger_ui_dir() -> Path:
    """Swagger UI shipped in the swagger-ui-bundle wheel (API docs without a CDN)."""
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def roads_path(settings: Settings) -> Path:
    """The city's road network GeoJSON (the base layer: no hosted basemap)."""
    spec = settings.city.roads
    if spec == "builtin:futian":
        found = importlib.util.find_spec("scenarios")  # locates the package directory without importing it
        assert found is not None and found.submodule_search_locations
        return Path(next(iter(found.submodule_search_locations))) / "data" / "futian_roads.geojson"
    return Path(spec)
