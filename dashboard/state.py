"""Process-wide state of the web application: settings, clients, caches, the live and alert followers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import redis

from dashboard.options import DashboardOptions, options_from
from tracker.config import Settings
from tracker.edges.bus import StreamNames

T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    redis_url: str
    database_url: str
    redis: redis.Redis = field(init=False)
    names: StreamNames = field(init=False)
    options: DashboardOptions = field(init=False)
    cache: dict[Hashable, Any] = field(default_factory=dict)
    live_hub: Any = None  # dashboard.live_hub.LiveHub, set by create_app
    alert_hub: Any = None  # dashboard.alert_hub.AlertHub

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.redis_url)
        self.names = StreamNames(self.settings.bus.prefix, self.settings.bus.shards)
        self.options = options_from(self.settings)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)

    def cached(self, key: Hashable, ttl_s: float, make: Callable[[], T]) -> T:
        """A value recomputed at most every `ttl_s` seconds (vehicle registry, facets…)."""
        hit = self.cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl_s:
            return hit[1]
        value = make()
        self.cache[key] = (time.monotonic(), value)
        return value

    def close(self) -> None:
        self.redis.close()
