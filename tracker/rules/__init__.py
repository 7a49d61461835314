"""Compliance rules: one module per violation kind, all with the same shape.

A rule module defines

* `NAME` — the `[rules.<NAME>]` table and the episode kind (a `tracker.vocab.ViolationKind` value);
* `Params` — a pydantic model (subclass of `RuleParams`) with documented defaults from `domain.md`;
* `PLACE` — what its place codes point at (`PLACE_FENCE`, `PLACE_DOC` or `PLACE_NONE`);
* `new_state(n) -> StateTable` — its per-vehicle state;
* `evaluate(batch, state, world, params) -> Events` — vectorised over the batch, numba for the scan;
* a docstring saying what it does when a sensor is missing.

Adding a rule is one file here, one test file and one `[rules.<NAME>]` entry in `tracker/defaults.toml`:
`discover()` imports every non-underscore module of this package that defines `NAME` and `evaluate`.
Parameters are `tracker/defaults.toml` deep-merged with the user's `[rules.<NAME>]` (`load_params`).
"""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from tracker.config import Settings

DEFAULTS_PATH = Path(__file__).resolve().parent.parent / "defaults.toml"


@lru_cache(maxsize=1)
def discover() -> tuple[ModuleType, ...]:
    """Every rule module, in a stable order (by name)."""
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "evaluate"):
            mods.append(mod)
    return tuple(mods)


@lru_cache(maxsize=1)
def defaults() -> dict[str, Any]:
    """`tracker/defaults.toml` (the `[rules.*]` tables)."""
    with open(DEFAULTS_PATH, "rb") as fh:
        return tomllib.load(fh)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_params(name: str, params_cls: type, settings: Settings) -> Any:
    """Validated parameters of rule `name`: shipped defaults overlaid by the city's configuration."""
    raw = deep_merge(defaults().get("rules", {}).get(name, {}), settings.rule(name))
    return params_cls.model_validate(raw)
