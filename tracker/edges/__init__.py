"""Edges of the tracker: the only modules that talk to Redis, PostgreSQL or start services."""
