"""SQLite persistence of the signals service: events, flips, alerts, breadth
history and state snapshots, in one file under MM_DATA_DIR.

Events are written before they are streamed, so `from_event_id` can always
be served from here. Every write runs on one writer thread (a transaction per
call, WAL, synchronous=NORMAL: a committed transaction survives a process
crash); reads that may be slow use the same thread, which keeps the code
simple: the service writes a few rows per closed candle, not per tick.
"""

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    owner TEXT,
    time_ms INTEGER NOT NULL,
    -- What the event is about (type, symbol, interval, candle, threshold...):
    -- replaying candles after a restart must not record an event twice.
    dedupe_key TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS flips (
    symbol TEXT NOT NULL,
    interval INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    direction INTEGER NOT NULL,
    price REAL NOT NULL,
    grade REAL NOT NULL,
    PRIMARY KEY (symbol, interval, time_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alerts_by_owner ON alerts (owner, id);
CREATE TABLE IF NOT EXISTS breadth (
    interval INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (interval, time_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class StoredEvent:
    id: int
    type: int
    symbol: str
    owner: str | None
    body: bytes


@dataclass(frozen=True)
class NewEvent:
    type: int
    symbol: str
    owner: str | None
    time_ms: int
    dedupe_key: str
    body: bytes  # SignalEvent without its id; the id is the row id


@dataclass(frozen=True)
class FlipRow:
    symbol: str
    interval: int
    time_ms: int
    direction: int
    price: float
    grade: float


class SignalsStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signals-store")
        self._conn: sqlite3.Connection | None = None
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)

    # -- events -----------------------------------------------------------

    def append(self, events: Sequence[NewEvent], flips: Sequence[FlipRow] = ()) -> list[int | None]:
        """Insert events (and the flips behind them) in one transaction; their
        ids, None for an event already recorded under the same dedupe key."""
        conn = self.conn
        ids: list[int | None] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for e in events:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO events (type, symbol, owner, time_ms, dedupe_key, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (e.type, e.symbol, e.owner, e.time_ms, e.dedupe_key, e.body),
                )
                ids.append(int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None)
            conn.executemany(
                "INSERT OR REPLACE INTO flips VALUES (?, ?, ?, ?, ?, ?)",
                [(f.symbol, f.interval, f.time_ms, f.direction, f.price, f.grade) for f in flips],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return ids

    def last_event_id(self) -> int:
        row = self.conn.execute("SELECT MAX(id) FROM events").fetchone()
        return int(row[0] or 0)

    def events_after(self, after_id: int, limit: int) -> list[StoredEvent]:
        rows = self.conn.execute(
            "SELECT id, type, symbol, owner, body FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [StoredEvent(int(r[0]), int(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def recent_flips(self, symbol: str, interval: int, limit: int) -> list[FlipRow]:
        rows = self.conn.execute(
            "SELECT symbol, interval, time_ms, direction, price, grade FROM flips"
            " WHERE symbol = ? AND interval = ? ORDER BY time_ms DESC LIMIT ?",
            (symbol, interval, limit),
        ).fetchall()
        return [
            FlipRow(r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4]), float(r[5])) for r in rows
        ]

    def flipped_symbols(self, interval: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT symbol FROM flips WHERE interval = ?", (interval,)
        ).fetchall()
        return [r[0] for r in rows]

    # -- alerts -----------------------------------------------------------

    def insert_alert(self, alert_id: str, owner: str, body: bytes) -> None:
        self.conn.execute(
            "INSERT INTO alerts (id, owner, body) VALUES (?, ?, ?)", (alert_id, owner, body)
        )

    def delete_alert(self, alert_id: str, owner: str) -> bool:
        cur = self.conn.execute("DELETE FROM alerts WHERE id = ? AND owner = ?", (alert_id, owner))
        return cur.rowcount > 0

    def load_alerts(self) -> list[tuple[str, str, bytes, str]]:
        rows = self.conn.execute("SELECT id, owner, body, state FROM alerts ORDER BY id").fetchall()
        return [(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def update_alerts(self, rows: Iterable[tuple[str, bytes, str]]) -> None:
        """(id, body, state) of alerts whose firing state changed."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "UPDATE alerts SET body = ?, state = ? WHERE id = ?",
                [(body, state, alert_id) for alert_id, body, state in rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- breadth history --------------------------------------------------

    def insert_breadth(self, interval: int, time_ms: int, body: bytes) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO breadth VALUES (?, ?, ?)", (interval, time_ms, body)
        )

    def breadth_since(self, interval: int, since_ms: int, limit: int) -> list[bytes]:
        rows = self.conn.execute(
            "SELECT body FROM breadth WHERE interval = ? AND time_ms >= ?"
            " ORDER BY time_ms DESC LIMIT ?",
            (interval, since_ms, limit),
        ).fetchall()
        return [bytes(r[0]) for r in reversed(rows)]

    # -- state snapshots ---------------------------------------------------

    def put_state(self, items: dict[str, bytes]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", list(items.items())
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def get_state(self, key: str) -> bytes | None:
        row = self.conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])
