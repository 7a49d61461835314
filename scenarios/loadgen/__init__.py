"""Simulated JT/T 808 terminals for tests and the ingest bench.

`terminal.SimTerminal` is one terminal on a real TCP socket (register, authenticate, report, back-fill,
answer 0x8003); `sim.run_load` drives thousands of them from separate processes so the load generator does
not share the gateway's core. Everything speaks to 127.0.0.1 only.
"""

from scenarios.loadgen.sim import LoadResult, LoadSpec, run_load, run_terminals
from scenarios.loadgen.terminal import SimTerminal, location_body

__all__ = ["LoadResult", "LoadSpec", "SimTerminal", "location_body", "run_load", "run_terminals"]
