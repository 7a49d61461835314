"""The case workflow: from an alert (or a person's report) to a closed, assessed case.

Pure domain, no SQL and no HTTP (the store is `tracker.edges.cases_store`, the API `dashboard.routes_cases`):

* `machine` — the stages and every transition, with who may take it (`apply`, `open_case`);
* `sla` — per-stage time limits per category/priority and overdue escalation levels;
* `dispatch` — district polygons and dispatch rules → district, grid cell, team, category, priority;
* `access` — `Scope`: which companies/districts/kinds a user sees;
* `stats` — dispatch, closure, on-time closure and rework rates, mean handling time, by any dimension;
* `scoring` — monthly company scores, grades A–D, red/black lists;
* `evidence` — the evidence package (JSON + GeoJSON + PNG map, zipped with a manifest);
* `settings` — the `[cases]` configuration section;
* `vocab` — actions, priorities, clocks, resolutions (stages and roles come from `tracker.vocab`).
"""
