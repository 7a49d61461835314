"""`[cases]` settings: SLA limits, dispatch routing, scoring, evidence and push options.

The shared `tracker.config.Settings` does not know this section (it ignores unknown tables), so the
edge loader `tracker.edges.cases_store.cases_settings(settings)` finds it (a `cases` attribute or extra
field on the settings object, else the `[cases]` table of the TOML file). This module only validates.
Every field has a documented default, so an empty section is a working configuration.

    [cases]
    evidence_minutes = 5          # track ± minutes around the alert in the evidence package
    intake_kinds = []             # alert kinds opened as cases automatically (empty = all)
    intake_severities = ["confirmed", "suspected"]
    scan_interval_s = 30          # web app: intake + escalation scan period (0 = off)
    session_hours = 12            # UI login token lifetime
    api_token_days = 365          # default machine token lifetime (0 = never expires)
    [cases.sla.normal]            # minutes: accept, dispatch, handle, verify, close
    dispatch = 30
    [cases.sla.urgent]
    dispatch = 10
    [cases.routing.districts.futian]
    name = "福田区"
    polygon = [[114.0, 22.5], [114.1, 22.5], [114.1, 22.6], [114.0, 22.6], [114.0, 22.5]]
    [[cases.routing.rules]]
    district = "futian"
    team = "futian-joint-1"
    [cases.scoring.deductions]
    illegal_dumping = 10
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tracker.cases.dispatch import RoutingSettings
from tracker.cases.scoring import ScoringPolicy
from tracker.cases.sla import SlaPolicy

__all__ = ["CasesSettings"]


class CasesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sla: SlaPolicy = Field(default_factory=SlaPolicy)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    scoring: ScoringPolicy = Field(default_factory=ScoringPolicy)
    evidence_minutes: float = Field(5.0, gt=0, le=240)
    intake_kinds: list[str] = Field(default_factory=list, description="empty = every alert kind")
    intake_severities: list[str] = Field(default_factory=lambda: ["confirmed", "suspected"])
    scan_interval_s: float = Field(30.0, ge=0)
    session_hours: float = Field(12.0, gt=0)
    api_token_days: float = Field(365.0, ge=0)
    login_max_failures: int = Field(10, ge=1, description="failed logins before the account is locked")
    login_lock_minutes: float = Field(15.0, ge=0)
    stream_maxlen: int = Field(100_000, ge=100, description="approximate entries kept in {prefix}:cases")
