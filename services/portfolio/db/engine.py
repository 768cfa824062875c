"""Async engines for the portfolio database: SQLite by default, PostgreSQL by URL.

One code path for both: SQLAlchemy Core over aiosqlite or asyncpg. Callers
hand in what an operator types (``postgresql://user:pw@host/db``, a
``sqlite:///path`` URL, or nothing and a data directory); this module picks the
async driver, tunes SQLite and keeps passwords out of messages.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_FILE = "portfolio.sqlite3"

# Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE.
# A writer that began DEFERRED, read, and then tried to write can fail at once
# with SQLITE_BUSY when another connection committed in between (the busy
# timeout cannot help it); taking the write lock up front makes it wait instead.
WRITE_LOCK = "mm_sqlite_write_lock"

# A connection waits this long for another connection's write lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PRAGMAS = (
    # First: the pragmas below (journal_mode above all) need locks too, and a
    # second process opening the file at the same moment must wait for them.
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    # Takes effect only on a new, empty file (before WAL mode): an existing
    # database keeps its page size. Rows are about 700 bytes. With SQLite's
    # 4 KiB pages a bulk import wrote four times the WAL frames (a syscall
    # pair each) and ran about 10% slower (bench/results/portfolio.md); a
    # single-row commit writes bigger pages, a few percent slower.
    "PRAGMA page_size=16384",
    "PRAGMA journal_mode=WAL",
    # A ledger: a committed batch must survive a power loss, not only a crash.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    # 64 MiB of page cache: the unique indexes on random ids are written all
    # over; a big cache keeps a large import from re-reading them.
    "PRAGMA cache_size=-65536",
    "PRAGMA temp_store=MEMORY",
)

_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}


class DatabaseUrlError(ValueError):
    """The database URL is not one this service can use; the message redacts the password."""


def resolve_url(database_url: str | None, data_dir: Path) -> str:
    """The async driver URL for ``database_url``, or the SQLite file under ``data_dir``.

    An empty or missing URL means the default: ``<data_dir>/portfolio.sqlite3``
    (the directory is created). ``postgresql://`` and ``postgres://`` become
    ``postgresql+asyncpg://``, ``sqlite://`` becomes ``sqlite+aiosqlite://``.
    """
    if not database_url or not database_url.strip():
        data_dir.mkdir(parents=True, exist_ok=True)
        return str(URL.create("sqlite+aiosqlite", database=str(data_dir / SQLITE_FILE)))
    return driver_url(database_url.strip())


def driver_url(url: str) -> str:
    """``url`` with the async driver named; DatabaseUrlError for other databases."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            f"{_redact_text(url)!r} is not a database URL "
            "(expected postgresql://user:password@host:port/db or sqlite:///path)"
        ) from None
    scheme = parsed.drivername
    if scheme in _POSTGRES_SCHEMES:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif scheme in _SQLITE_SCHEMES:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise DatabaseUrlError(
            f"{redact(url)!r}: unsupported database {scheme!r} (use postgresql:// or sqlite://)"
        )
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _redact_text(url)


def _redact_text(text: str) -> str:
    # Not parseable as a URL; still never echo what might be a password.
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def create_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for an operator's URL (see :func:`driver_url`), not yet connected."""
    resolved = make_url(driver_url(url))
    options: dict[str, Any] = {"echo": echo}
    if resolved.get_backend_name() == "sqlite":
        if resolved.database not in (None, "", ":memory:"):
            options.update(pool_size=pool_size, max_overflow=0, pool_timeout=60)
        engine = create_async_engine(resolved, **options)
        _tune_sqlite(engine)
        return engine
    options.update(
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=30,
        # A server restart leaves dead connections in the pool; ping on checkout.
        pool_pre_ping=True,
        # A connection refused or a host that drops packets fails start-up in
        # seconds with a message, not after asyncpg's default minute.
        connect_args={"timeout": 10, "server_settings": {"application_name": "marketmesh"}},
    )
    return create_async_engine(resolved, **options)


def _execute_pragma(cursor: Any, pragma: str) -> None:
    # Switching a new file to WAL takes an exclusive lock without waiting on
    # the busy timeout: two processes creating the database at the same moment
    # get "database is locked" at once. The switch is brief and happens once
    # per file (WAL persists), so retry it for up to a second.
    for attempt in range(50):
        try:
            cursor.execute(pragma)
            return
        except Exception as err:  # the adapted driver's OperationalError
            if "locked" not in str(err) or attempt == 49:
                raise
            time.sleep(0.02)


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (below) instead of the sqlite3 module, which
        # starts no transaction for SELECT: a multi-query read would otherwise
        # see several snapshots, and DDL would run outside any transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                _execute_pragma(cursor, pragma)
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_LOCK, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
