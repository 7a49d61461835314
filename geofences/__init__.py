"""geofences: a geometry library for sites, routes and zones.

Knows nothing about vehicles, sockets or SQL (save `geofences.store`). Coordinates inside are always WGS-84
longitude/latitude degrees; conversion from GCJ-02 / BD-09 happens on import (`geofences.crs`).
"""
