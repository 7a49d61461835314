"""PostgreSQL connections and schema migrations.

Migrations are plain versioned SQL files in `tracker/edges/migrations/` named `NNNN_name.sql`, applied in
name order, each once, inside one transaction per file, recorded in `schema_migrations`. An advisory lock
makes concurrent start-ups (demo, workers, tests) safe. Number ranges by area: 00xx core, 01xx geofences,
02xx ingest/history, 03xx tracker, 04xx coverage, 05xx cases and audit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg

from tracker.config import Settings, get_settings

log = logging.getLogger(__name__)

_LOCK_KEY = 0x46_57_4D_49  # "FWMI"


def migration_files() -> list[tuple[str, str]]:
    root = resources.files("tracker.edges") / "migrations"
    files = sorted(p for p in root.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz "
            "NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            with conn.transaction():
                conn.execute(sql)  # type: ignore[arg-type]
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            applied.append(name)
            log.info("applied migration %s", name)
    return applied


def connect(url: str, **kwargs: object) -> psycopg.Connection:
    return psycopg.connect(url, **kwargs)  # type: ignore[arg-type]


@contextmanager
def connect_from_settings(settings: Settings | None = None, *, autocommit: bool = True
                          ) -> Iterator[psycopg.Connection]:
    """For command-line tools: start/reuse the embedded servers (or check external ones), apply migrations,
    yield a connection. Embedded servers started here are left running only if they were running before."""
    from tracker.edges.services import ensure_services

    settings = settings or get_settings()
    services = ensure_services(settings)
    try:
        with psycopg.connect(services.database_url, autocommit=autocommit) as conn:
            migrate(conn)
            yield conn
    finally:
        services.stop()
