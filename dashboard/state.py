"""Process-wide state of the web application: settings, clients, caches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import redis

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
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.redis_url)
        self.names = StreamNames(self.settings.bus.prefix, self.settings.bus.shards)

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)

    def close(self) -> None:
        self.redis.close()
