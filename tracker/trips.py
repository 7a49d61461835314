"""Trips (趟次) and electronic manifests (电子联单) — placeholder until the trip state machine lands."""

from __future__ import annotations

import numpy as np

from tracker.config import Settings
from tracker.state import StateTable


class Trips:
    def __init__(self, world, settings: Settings, n: int = 0):
        self.world = world
        self.settings = settings
        self.table = StateTable("trips", ("dummy",), (0.0,), n)

    def tables(self) -> list[StateTable]:
        return [self.table]

    def fresh(self, m: int) -> Trips:
        t = Trips.__new__(Trips)
        t.world, t.settings, t.table = self.world, self.settings, self.table.fresh(m)
        return t

    def step(self, batch) -> None:
        return None

    def nbytes(self) -> int:
        return self.table.nbytes()

    def current_trip_ids(self, vidx: np.ndarray) -> list[str | None]:
        return [None] * int(vidx.shape[0])
