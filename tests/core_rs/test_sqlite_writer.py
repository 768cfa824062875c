"""core_rs.sqlite_writer.SqliteWriter against a file the sqlite3 module also opens."""

from __future__ import annotations

import _sqlite3
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core_rs.sqlite_writer import SqliteWriter

ADVANCE = "UPDATE c SET n = ? WHERE id = ? AND n <= ?"
INSERT = "INSERT INTO items VALUES (?, ?, ?)"


@pytest.fixture
def files(tmp_path: Path) -> tuple[sqlite3.Connection, SqliteWriter]:
    path = tmp_path / "t.sqlite3"
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE c (id TEXT PRIMARY KEY, n INTEGER)")
    db.execute("CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER, t TEXT)")
    db.execute("INSERT INTO c VALUES ('a', 0)")
    if not links_shared_sqlite():
        pytest.skip("this Python's sqlite3 carries its own SQLite: no library to share")
    writer = SqliteWriter(_sqlite3.__file__, str(path), ["PRAGMA busy_timeout=5000"])
    return db, writer


def links_shared_sqlite() -> bool:
    """Whether this process has SQLite as a shared library that _sqlite3 uses
    (then SqliteWriter must work; else it must refuse, and callers fall back)."""
    maps = Path("/proc/self/maps")
    return maps.exists() and "libsqlite3.so" in maps.read_text() and bool(_sqlite3.__file__)


def items(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return db.execute("SELECT * FROM items ORDER BY k").fetchall()


def test_a_batch_commits_with_its_first_statement(
    files: tuple[sqlite3.Connection, SqliteWriter],
) -> None:
    db, writer = files
    rows = [("x", 1, None), ("y", -(2**63), "h\u00e9llo \U0001f600"), ("z", 2**63 - 1, "")]
    assert writer.write(ADVANCE, (2, "a", 2), INSERT, rows) == (0, "")
    assert items(db) == rows
    assert db.execute("SELECT n FROM c").fetchone() == (2,)


def test_nothing_is_written_when_a_statement_fails(
    files: tuple[sqlite3.Connection, SqliteWriter],
) -> None:
    db, writer = files
    assert writer.write(ADVANCE, (2, "a", 2), INSERT, [("x", 1, None)]) == (0, "")
    # The first statement changes no row (n is already beyond 1): rolled back.
    assert writer.write(ADVANCE, (1, "a", 1), INSERT, [("q", 1, None)]) == (-1, "")
    # A constraint: SQLite's extended code (SQLITE_CONSTRAINT_PRIMARYKEY) and message.
    code, message = writer.write(ADVANCE, (3, "a", 3), INSERT, [("w", 1, None), ("x", 5, None)])
    assert (code & 0xFF, code) == (19, 1555)
    assert "UNIQUE constraint failed: items.k" in message
    assert items(db) == [("x", 1, None)]
    assert db.execute("SELECT n FROM c").fetchone() == (2,)
    # A value of another type: TypeError before anything runs.
    with pytest.raises(TypeError, match="str, int or None, not float"):
        writer.write(ADVANCE, (4, "a", 4), INSERT, [("v", 1.5, None)])
    assert writer.write(ADVANCE, (4, "a", 4), INSERT, [("v", 7, "ok")]) == (0, "")
    assert items(db)[-1] == ("x", 1, None) and ("v", 7, "ok") in items(db)


def test_it_waits_for_another_connections_write_lock(
    files: tuple[sqlite3.Connection, SqliteWriter],
) -> None:
    db, writer = files
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO items VALUES ('first', 0, NULL)")
    release = threading.Timer(0.3, lambda: db.execute("COMMIT"))
    release.start()
    t0 = time.perf_counter()
    assert writer.write(ADVANCE, (1, "a", 1), INSERT, [("second", 1, None)]) == (0, "")
    release.join()
    assert time.perf_counter() - t0 >= 0.25
    assert [k for k, _, _ in items(db)] == ["first", "second"]


@pytest.mark.skipif(not links_shared_sqlite(), reason="no shared SQLite library to write with")
def test_busy_past_the_timeout_is_sqlite_busy(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE c (id TEXT PRIMARY KEY, n INTEGER)")
    db.execute("CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER, t TEXT)")
    db.execute("INSERT INTO c VALUES ('a', 0)")
    writer = SqliteWriter(_sqlite3.__file__, str(path), ["PRAGMA busy_timeout=100"])
    db.execute("BEGIN IMMEDIATE")
    code, message = writer.write(ADVANCE, (1, "a", 1), INSERT, [("x", 1, None)])
    db.execute("ROLLBACK")
    assert (code & 0xFF, message) == (5, "database is locked")


def test_refusals(files: tuple[sqlite3.Connection, SqliteWriter], tmp_path: Path) -> None:
    _, writer = files
    writer.close()
    with pytest.raises(OSError, match="closed"):
        writer.write(ADVANCE, (1, "a", 1), INSERT, [])
    # Only a library this process already loaded, never a second copy.
    with pytest.raises(OSError, match="not loaded in this process"):
        SqliteWriter(str(tmp_path / "libsqlite3.so"), str(tmp_path / "t.sqlite3"), [])
    with pytest.raises(OSError, match="unable to open database file"):
        SqliteWriter(_sqlite3.__file__, str(tmp_path / "no" / "such.sqlite3"), [])
    with pytest.raises(OSError, match="syntax error"):
        SqliteWriter(_sqlite3.__file__, str(tmp_path / "t.sqlite3"), ["PRAGMA("])


# Run in a child process: a deadlock that holds the GIL cannot be timed out
# from inside the process.
_CONCURRENT = """
import sqlite3, sys, threading, _sqlite3
from core_rs.sqlite_writer import SqliteWriter

path = sys.argv[1]
db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE c (id TEXT PRIMARY KEY, n INTEGER)")
db.execute("CREATE TABLE items (k TEXT PRIMARY KEY, v INTEGER, t TEXT)")
db.execute("INSERT INTO c VALUES ('a', 0)")
writer = SqliteWriter(_sqlite3.__file__, path, ["PRAGMA busy_timeout=30000"])
ADVANCE = "UPDATE c SET n = ? WHERE id = ? AND n <= ?"
INSERT = "INSERT INTO items VALUES (?, ?, ?)"
results, errors = [], []

def write(t, rows):
    try:
        results.append(writer.write(ADVANCE, (t, "a", 10**9), INSERT, rows))
    except OSError as err:
        errors.append(str(err))

threads = [
    threading.Thread(target=write, args=(t, [(f"t{t}-{i}", i, "x" * 50) for i in range(20_000)]))
    for t in range(1, 5)
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert errors == [] and results == [(0, "")] * 4, (errors, results)
assert db.execute("SELECT count(*) FROM items").fetchone() == (80_000,)
# A close while a write runs: the write went in first or found the writer closed.
late = threading.Thread(target=write, args=(5, [(f"late-{i}", i, None) for i in range(50_000)]))
late.start()
writer.close()
late.join()
count = db.execute("SELECT count(*) FROM items").fetchone()[0]
assert (count, errors) in ((130_000, []), (80_000, ["the writer is closed"])), (count, errors)
print("ok", count)
"""


@pytest.mark.skipif(not links_shared_sqlite(), reason="no shared SQLite library to write with")
def test_concurrent_writes_and_a_close_do_not_deadlock(tmp_path: Path) -> None:
    """Threads holding the GIL wait for the connection while another writes
    (and needs the GIL back to return): the lock is taken with the GIL
    released, so every call finishes."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CONCURRENT, str(tmp_path / "c.sqlite3")],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("concurrent writes deadlocked")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")


def test_it_is_available_exactly_where_sqlite_is_shared(tmp_path: Path) -> None:
    """Where _sqlite3 carries its own SQLite the writer refuses (the
    repository then inserts through the driver); elsewhere it opens."""
    path = tmp_path / "e.sqlite3"
    sqlite3.connect(path).close()
    if links_shared_sqlite():
        SqliteWriter(_sqlite3.__file__, str(path), []).close()
    else:
        with pytest.raises(OSError, match=r"not exported|not loaded"):
            SqliteWriter(_sqlite3.__file__, str(path), [])
