"""Gateway options: the `[jt808]` table of the FleetWatch configuration (`settings.jt808`).

Every key is optional; the defaults suit a city platform. Keys read here (besides `[jt808.profiles.*]`, the
vendor sensor profiles read by `ingest.jt808.profiles.load_profiles`)::

    [jt808]
    host = "127.0.0.1"          # bind address (0.0.0.0 to face terminals on a real network)
    port = 8808                 # TCP port; 0 = any free port (tests)
    max_frame_size = 4096       # escaped bytes between 0x7e delimiters; larger candidates are dropped
    idle_timeout_s = 180        # no byte for this long → close (3 × the usual 60 s heartbeat)
    auth_timeout_s = 60         # a connection that has not authenticated by then is closed
    rate_limit_per_s = 50       # frames per second per connection (token bucket) ...
    rate_burst = 500            # ... with this burst; beyond it the gateway stops reading (TCP backpressure)
    flush_ms = 5                # positions from all connections are published together every few ms ...
    flush_max_fixes = 20000     # ... or as soon as this many are waiting
    max_pending_fixes = 200000  # fixes received but not yet in Redis; above it every connection is paused
    max_faults = 64             # bad frames tolerated per connection before it is closed (when they are
                                # also more than its good frames)
    max_auth_failures = 3       # wrong auth codes before the connection is closed
    reassembly_timeout_s = 60   # an incomplete subpackage set is dropped after this much silence
    retransmit_after_s = 5      # ... but first, after this much silence, 0x8003 asks for the missing ones
    registry_refresh_s = 30     # how often the terminal registry (vehicles table) is re-read
    check_plate = true          # refuse a registration whose plate contradicts the registry (0x8100 result 2)
    reissue_auth_code = false   # a new auth code on every registration (else the stored one is re-sent)
    max_future_s = 86400        # a fix time further ahead than this is a broken clock: answered "bad message"

Why these are configuration and not constants: terminal fleets differ (some vendors heartbeat every 5 min,
some upload 0x0704 back-fills of hundreds of fixes at once), and a bench or test needs other limits than a
city does.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

__all__ = ["GatewayOptions"]


class GatewayOptions(BaseModel):
    """Validated gateway options (see the module docstring for the meaning of each key)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8808, ge=0, le=65535)
    max_frame_size: int = Field(4096, ge=64, le=1 << 20)
    idle_timeout_s: float = Field(180.0, gt=0)
    auth_timeout_s: float = Field(60.0, gt=0)
    rate_limit_per_s: float = Field(50.0, gt=0)
    rate_burst: int = Field(500, ge=1)
    flush_ms: float = Field(5.0, ge=0)
    flush_max_fixes: int = Field(20_000, ge=1)
    max_pending_fixes: int = Field(200_000, ge=1)
    max_faults: int = Field(64, ge=0)
    max_auth_failures: int = Field(3, ge=1)
    reassembly_timeout_s: float = Field(60.0, gt=0)
    retransmit_after_s: float = Field(5.0, gt=0)
    registry_refresh_s: float = Field(30.0, gt=0)
    check_plate: bool = True
    reissue_auth_code: bool = False
    max_future_s: float = Field(86400.0, gt=0)

    @classmethod
    def from_jt808(cls, table: dict[str, Any] | None, **overrides: Any) -> GatewayOptions:
        """From `settings.jt808` (the `profiles` sub-table is not ours and is skipped); unknown keys are
        logged, not fatal, so a typo is visible without stopping a city's gateway."""
        table = dict(table or {})
        table.pop("profiles", None)
        unknown = sorted(set(table) - set(cls.model_fields))
        if unknown:
            log.warning("jt808: ignoring unknown gateway option(s): %s", ", ".join(unknown))
        return cls.model_validate({**table, **{k: v for k, v in overrides.items() if v is not None}})
