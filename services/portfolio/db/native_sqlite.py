"""A bulk import's rows into SQLite without the GIL (core_rs.sqlite_writer).

An import batch is thousands of rows. Through the sqlite3 module each row's
parameters are bound holding the GIL and the GIL is taken back after each
row's step, so the insert, in aiosqlite's thread, and the next batch's
decisions, on the event loop, took turns row by row. core_rs binds them
with the GIL released, on its own connection to the same file through the
same SQLite library (locks are shared as between any two connections).

Only for a SQLite file, and only where Python's ``_sqlite3`` links SQLite as
a shared library; elsewhere the repository inserts through SQLAlchemy as
for PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from core_rs.sqlite_writer import SqliteWriter
from services.portfolio.db.engine import SQLITE_PRAGMAS

log = structlog.get_logger(__name__)

# SQLite's primary result codes (an extended code & 0xff).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CONSTRAINT = 5, 6, 19
# What SqliteWriter.write returns when its first statement changed no row.
NOT_CHANGED = -1


def open_native_writer(engine: AsyncEngine) -> SqliteWriter | None:
    """A writer on ``engine``'s SQLite file, or None (PostgreSQL, an in-memory
    database, or a Python whose sqlite3 carries its own SQLite)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    import _sqlite3  # noqa: PLC0415  (the module whose SQLite library is shared)

    module = getattr(_sqlite3, "__file__", None)
    if module is None:
        log.info("bulk inserts through the sqlite3 module", reason="_sqlite3 is built in")
        return None
    try:
        return SqliteWriter(module, str(Path(database).expanduser()), list(SQLITE_PRAGMAS))
    except (OSError, TypeError) as err:
        log.info("bulk inserts through the sqlite3 module", reason=str(err))
        return None
