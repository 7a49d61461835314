from __future__ import annotations

import pytest

from scenarios.sim import SimResult, generate, load_scenario


@pytest.fixture(scope="session")
def standard_sim() -> SimResult:
    return generate(load_scenario("standard", vehicles=200, seed=7))


@pytest.fixture(scope="session")
def sanitation_sim() -> SimResult:
    return generate(load_scenario("sanitation", vehicles=80, seed=3))
