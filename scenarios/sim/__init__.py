"""The simulator: `generate(ScenarioConfig) -> SimResult` (see `generate.py`), scenario files in
`scenarios/catalog/` read by `load_scenario`."""

from scenarios.sim.config import ScenarioConfig, load_scenario
from scenarios.sim.generate import SimResult, generate

__all__ = ["ScenarioConfig", "SimResult", "generate", "load_scenario"]
