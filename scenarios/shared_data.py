"""Where the city's shared data lives (`../shared` next to the checkout: real feeds, JT/T 808 vectors).

A clone made elsewhere (`git clone /path/to/fleetwatch /tmp/x`) has no `../shared` beside it, so the data is
looked for, in order: `FLEETWATCH_SHARED_DIR`; `../shared` next to this checkout; `../shared` next to the
checkout it was cloned from (its `origin`, when that is a local path). One place decides, for the CLI and the
tests alike.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _origin_dir() -> Path | None:
    try:
        url = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    url = url.removeprefix("file://")
    return Path(url) if url and "://" not in url and ":" not in url.split("/")[0] else None


@cache
def shared_dir() -> Path:
    """The shared data folder (it may not exist: callers say so in their own words)."""
    env = os.environ.get("FLEETWATCH_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT / ".." / "shared")
    origin = _origin_dir()
    if origin is not None:
        candidates.append(origin / ".." / "shared")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return candidates[0].resolve()
