"""Sanitation coverage (作业覆盖) and refuse collection (收运): pure core, no IO.

Did every planned road get swept or sprinkled, every collection point visited, every round end at its
transfer station? Plans (`plans`) are compiled to arrays (`compiled`); fixes are matched to segment corridors
and turned into passes (`work`, numba loops in `kernels`); collection stops become visits (`collection`);
`report` aggregates a day, `render` writes it, `live` keeps what the tracker rules need between batches.

Discretisation — why along-segment measures, not H3 cells. Coverage is defined on *length* ("covered length
/ planned length", passes per segment), so each segment is a polyline with a measure s ∈ [0, L] cut into
`bin_m` bins (5 m). A fix inside the corridor (centreline ± half-width) projects to one s; a pass covers
[s_a, s_b] between consecutive working fixes, so the passes per bin and the covered metres are exact up to
GPS noise, independent of sampling rate (sweepers at 5 km/h report every 14 m, sprinklers every 35 m: a
cell cover would need interpolation along the road anyway), directional (a reversal starts the next pass:
two passes on a two-way road are two), and cheap: one projection per fix against a handful of candidate
pieces found in a dense spatial hash. Fine H3 cells (res 12–13, 9–3.5 m) would tile the corridor's *area*:
a pass along one side of a 50 m corridor would leave the far side's cells "unswept", the count of passes
would depend on how many cells a fix trail touches, and the cells say nothing about order or direction. H3
is used where it fits: the map shows coverage aggregated to hexagons (`display_h3_res`), and
`geofences` uses it for the point-in-fence tests the collection side relies on.
"""
