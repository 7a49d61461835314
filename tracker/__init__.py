"""tracker: the compliance engine.

The core (this package minus `tracker.edges`) is pure: rules are functions over batches of fixes with
per-vehicle state carried between batches. Redis, PostgreSQL and service start-up live in `tracker.edges`.
"""
