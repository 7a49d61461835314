"""`CellMap`: a read-only hash table from H3 cells (uint64) to int32, laid out for `_kernels.cell_values`.

Why not `np.searchsorted`: a million random lookups into even a small sorted array cost ~70 ns each
(a dozen dependent, unpredictable comparisons). Open addressing with a multiplicative (Fibonacci) hash at
load factor ≤ 1/4 resolves almost every key with one load; a lookup probes slots h, h+1, … up to
`max_probe` and stops at the key or an empty slot (key 0: never a valid H3 cell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class CellMap:
    keys: npt.NDArray[np.uint64]  # 0 = empty slot (0 is never a valid H3 cell)
    values: npt.NDArray[np.int32]
    shift: np.uint64  # 64 − log2(table size)
    max_probe: int

    @classmethod
    def build(cls, keys: npt.ArrayLike, values: npt.ArrayLike) -> CellMap:
        keys = np.asarray(keys, np.uint64)
        values = np.asarray(values, np.int32)
        if np.any(keys == 0):
            raise ValueError("0 cannot be a key")
        bits = max(4, int(np.ceil(np.log2(max(1, 4 * keys.size)))))
        size = 1 << bits
        shift = np.uint64(64 - bits)
        table_k = np.zeros(size, np.uint64)
        table_v = np.zeros(size, np.int32)
        slot = ((keys * _GOLDEN) >> shift).astype(np.int64)
        max_probe = 0
        for k, v, s in zip(keys.tolist(), values.tolist(), slot.tolist()):
            probe = 0
            while table_k[(s + probe) & (size - 1)] != 0:
                probe += 1
            table_k[(s + probe) & (size - 1)] = k
            table_v[(s + probe) & (size - 1)] = v
            max_probe = max(max_probe, probe)
        return cls(table_k, table_v, shift, max_probe)
