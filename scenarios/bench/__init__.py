"""Benchmarks: speed and memory goals are measured here, never in timed tests.

Every module in this package exposes one or more `bench_*(quick: bool = False) -> list[Figure]` functions.
A figure is `{"name": "package.figure", "value": float, "unit": str, "target": float|None,
"baseline": float|None, "ratio": float|None}` where the baseline is a naive implementation measured in the
same run (the machine is small and noisy: report medians, compare ratios).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import statistics
import time
from collections.abc import Callable
from typing import Any, TypedDict


class Figure(TypedDict):
    name: str
    value: float
    unit: str
    target: float | None
    baseline: float | None
    ratio: float | None


def figure(name: str, value: float, unit: str, target: float | None = None, baseline: float | None = None
           ) -> Figure:
    ratio = (value / baseline) if baseline not in (None, 0) else None
    return Figure(name=name, value=float(value), unit=unit, target=target,
                  baseline=None if baseline is None else float(baseline), ratio=ratio)


def median_time(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median wall time of `fn()` over `repeat` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def discover() -> dict[str, Callable[..., list[Figure]]]:
    """module.function name → benchmark function, for every `bench_*` function in this package."""
    found: dict[str, Callable[..., list[Figure]]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fname.startswith("bench_") and fn.__module__ == module.__name__:
                found[f"{info.name}.{fname}"] = fn
    return found
