"""Batch inserts into a SQLite file with the GIL released (Rust).

::

    from core_rs.sqlite_writer import SqliteWriter
    import _sqlite3
    writer = SqliteWriter(_sqlite3.__file__, "/path/db.sqlite3", ["PRAGMA busy_timeout=30000"])
    code, message = writer.write(
        "UPDATE counters SET n = ? WHERE id = ? AND n <= ?", (10, "a", 10),
        "INSERT INTO items VALUES (?, ?, ?)", [("a", 1, None), ("b", 2, "x")],
    )

``write`` runs one BEGIN IMMEDIATE transaction: the first statement, which
must change exactly one row, then the insert once per tuple (str, int or
None values), then COMMIT. ``(0, "")`` committed; ``(-1, "")`` the first
statement changed no row; else SQLite's extended result code and message
(19 & 0xff: a constraint, 5 / 6: busy or locked). Nothing is written unless
committed.

The SQLite library used is the one Python's ``_sqlite3`` module is linked
to, found in the running process: a second copy of SQLite in one process
would not see the first one's file locks. When ``_sqlite3`` carries its own
unexported copy, the constructor raises OSError and callers keep using the
sqlite3 module.
"""

from __future__ import annotations

from core_rs._core import SqliteWriter

__all__ = ["SqliteWriter"]
