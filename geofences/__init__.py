"""geofences: a geometry library for sites, routes and zones.

Knows nothing about vehicles, sockets or SQL (save `geofences.store`). Coordinates inside are always WGS-84
longitude/latitude degrees; conversion from GCJ-02 / BD-09 happens on import (`geofences.crs`).

Modules (import what you need; the heavy ones load numba on first import):

* `kinds` — FenceKind, ShapeKind, Crs.
* `local` — the one lon/lat ⇄ metres conversion (`to_xy_m`, `to_lonlat`, `dist_m`).
* `crs` — WGS-84 ⇄ GCJ-02 ⇄ BD-09, vectorised.
* `model` — `Fence` (value object, exact meaning of each shape, activity in time) and `ActivityTable`.
* `geojson` — `load_fences` / `dump_fences`, `FenceImportError`; `kml` — KML placemarks for it.
* `h3util` — H3 cells for fixes once (`cells_at`), everything coarser by bit arithmetic.
* `cover` — H3 cover of a fence (interior / boundary cells).
* `index` — `FenceIndex.locate`: which fences each of a million points is in; distances to fences.
* `area` — polygon → H3 ranges for B-tree area queries over history.
* `store` — versioned PostgreSQL storage.
"""
