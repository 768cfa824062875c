"""SQLite persistence of the pricing service: assets' ids, candles, last quotes.

One writer connection on its own thread takes every write, grouped into a
transaction per call, so ingest is never bound by one fsync per tick. WAL mode
with synchronous=NORMAL keeps every committed transaction across a process
crash (kill -9); only a power loss can take the last few. Readers use their own
connections on a small thread pool, so a slow query never blocks the event
loop or the writer.
"""

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.pricing.candles import CANDLE_FIELDS, CandleArrays

# Both candle tables hold the same row; only their keys differ.
_CANDLE_COLUMNS_SQL = """
    sid INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    open_ms INTEGER NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume REAL NOT NULL,
    quote_volume REAL NOT NULL,
    trades INTEGER NOT NULL,
    closed INTEGER NOT NULL,"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS assets (
    sid INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS candles_closed (
{_CANDLE_COLUMNS_SQL}
    PRIMARY KEY (sid, interval_ms, open_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS candles_forming (
{_CANDLE_COLUMNS_SQL}
    PRIMARY KEY (sid, interval_ms)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS candles AS
    SELECT * FROM candles_closed UNION ALL SELECT * FROM candles_forming;
CREATE TABLE IF NOT EXISTS quotes (
    sid INTEGER PRIMARY KEY,
    price REAL NOT NULL,
    time_ms INTEGER NOT NULL,
    sequence INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Closed candles never change again and are appended in time order; the one
# forming candle per (symbol, interval) changes on every commit. Keeping the
# forming ones in a small table of their own means a commit rewrites a few
# dozen pages instead of one leaf page per series of the big table (measured:
# ~30 ms -> ~7 ms per commit). The `candles` view shows both.
_UPSERT_CLOSED = """
INSERT INTO candles_closed (sid, interval_ms, open_ms, open, high, low, close, volume,
                            quote_volume, trades, closed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sid, interval_ms, open_ms) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low,
    close = excluded.close, volume = excluded.volume,
    quote_volume = excluded.quote_volume, trades = excluded.trades,
    closed = excluded.closed
"""

# A forming candle replaces the series' previous one unless that is newer.
_UPSERT_FORMING = """
INSERT INTO candles_forming (sid, interval_ms, open_ms, open, high, low, close, volume,
                             quote_volume, trades, closed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sid, interval_ms) DO UPDATE SET
    open_ms = excluded.open_ms, open = excluded.open, high = excluded.high,
    low = excluded.low, close = excluded.close, volume = excluded.volume,
    quote_volume = excluded.quote_volume, trades = excluded.trades,
    closed = excluded.closed
WHERE excluded.open_ms >= candles_forming.open_ms
"""

# Once a candle is closed, the forming row it came from (or an older one) goes.
_DROP_SUPERSEDED_FORMING = """
DELETE FROM candles_forming WHERE sid = ? AND interval_ms = ? AND open_ms <= ?
"""

_SELECT_COLUMNS = ", ".join(CANDLE_FIELDS)

_UPSERT_QUOTE = """
INSERT INTO quotes (sid, price, time_ms, sequence) VALUES (?, ?, ?, ?)
ON CONFLICT (sid) DO UPDATE SET
    price = excluded.price, time_ms = excluded.time_ms, sequence = excluded.sequence
"""


@dataclass(frozen=True)
class StoredQuote:
    sid: int
    price: float
    time_ms: int
    sequence: int


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-65536")
    # A live commit rewrites the latest candle of every (symbol, interval) it
    # touched: ~2,000 scattered pages for a busy 500-asset market. At the
    # default 1,000-page threshold every such commit also ran a checkpoint
    # copying them all into the database file; at 10,000 pages (~40 MB of WAL)
    # one checkpoint covers several commits, which rewrite the same hot pages.
    conn.execute("PRAGMA wal_autocheckpoint=10000")
    return conn


def _rows_from_columns(sid_col: Iterable, interval_col: Iterable, cols: dict) -> Iterable:
    return zip(
        sid_col,
        interval_col,
        cols["open_ms"].tolist(),
        cols["open"].tolist(),
        cols["high"].tolist(),
        cols["low"].tolist(),
        cols["close"].tolist(),
        cols["volume"].tolist(),
        cols["quote_volume"].tolist(),
        cols["trades"].tolist(),
        cols["closed"].astype(np.int8).tolist(),
        strict=True,
    )


class MarketStore:
    """The pricing database. Sync methods are meant for the store's threads;
    the `a`-prefixed coroutines hop onto them."""

    def __init__(self, path: Path, *, readers: int = 4) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = _connect(path)
        self._writer.executescript(_SCHEMA)
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._read_pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="store-reader")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def on_writer(self, fn, *args):  # type: ignore[no-untyped-def]
        """Run a sync store method on the writer thread (the only one that writes)."""
        return await asyncio.get_running_loop().run_in_executor(self._write_pool, fn, *args)

    async def _on_reader(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, fn, *args)

    def close(self) -> None:
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
        self._writer.close()

    # -- assets -----------------------------------------------------------

    def assign_sids(self, symbols: Sequence[str]) -> dict[str, int]:
        """Stable integer ids for symbols: existing ones are kept, new ones get
        the next free id, so candles keep their owner across restarts."""
        conn = self._writer
        known = dict(conn.execute("SELECT symbol, sid FROM assets").fetchall())
        next_sid = max(known.values(), default=-1) + 1
        new_rows = []
        for symbol in symbols:
            if symbol not in known:
                known[symbol] = next_sid
                new_rows.append((next_sid, symbol))
                next_sid += 1
        if new_rows:
            with conn:
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO assets (sid, symbol) VALUES (?, ?)", new_rows)
        return known

    # -- meta -------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._writer.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._writer:
            self._writer.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- writes -----------------------------------------------------------

    def insert_history(self, sid: int, interval_ms: int, rows: CandleArrays) -> None:
        """Bulk insert (or replace) one series; used by the backfill and the importer."""
        n = len(rows)
        cols = {name: getattr(rows, name) for name in CANDLE_FIELDS}
        conn = self._writer
        conn.execute("BEGIN")
        try:
            _write_candles(conn, _rows_from_columns([sid] * n, [interval_ms] * n, cols))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def write_batch(
        self,
        candles: dict[str, np.ndarray] | None,
        interval_ms_by_idx: Sequence[int],
        quotes: Sequence[tuple[int, float, int, int]],
        meta: dict[str, str],
    ) -> None:
        """Commit one group of changes atomically: dirty candles (the engine's
        column dict), last quotes (sid, price, time_ms, sequence), meta."""
        conn = self._writer
        conn.execute("BEGIN")
        try:
            if candles is not None and len(candles["open_ms"]):
                iv = np.asarray(interval_ms_by_idx, dtype=np.int64)[candles["interval_idx"]]
                _write_candles(
                    conn, _rows_from_columns(candles["symbol_id"].tolist(), iv.tolist(), candles)
                )
            if quotes:
                conn.executemany(_UPSERT_QUOTE, quotes)
            if meta:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    list(meta.items()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def insert_quote_if_absent(self, sid: int, price: float, time_ms: int) -> None:
        """A last quote for a sid that has none yet; never replaces one."""
        self._writer.execute(
            "INSERT INTO quotes (sid, price, time_ms, sequence) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (sid) DO NOTHING",
            (sid, price, time_ms),
        )

    async def awrite_batch(
        self,
        candles: dict[str, np.ndarray] | None,
        interval_ms_by_idx: Sequence[int],
        quotes: Sequence[tuple[int, float, int, int]],
        meta: dict[str, str],
    ) -> None:
        await self.on_writer(self.write_batch, candles, interval_ms_by_idx, quotes, meta)

    async def ainsert_history(self, sid: int, interval_ms: int, rows: CandleArrays) -> None:
        await self.on_writer(self.insert_history, sid, interval_ms, rows)

    def prune_closed(self, interval_ms: Sequence[int], before_ms: int) -> int:
        """Delete closed candles of these intervals opened before `before_ms`;
        returns how many. Forming candles are never pruned."""
        conn = self._writer
        deleted = 0
        for width in interval_ms:
            conn.execute("BEGIN")
            try:
                cursor = conn.execute(
                    "DELETE FROM candles_closed WHERE interval_ms = ? AND open_ms < ?",
                    (width, before_ms),
                )
                deleted += cursor.rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return deleted

    # -- reads ------------------------------------------------------------

    def load_quotes(self) -> list[StoredQuote]:
        rows = self._writer.execute("SELECT sid, price, time_ms, sequence FROM quotes").fetchall()
        return [StoredQuote(*row) for row in rows]

    def load_candles_since(self, sid: int, interval_ms: int, since_ms: int) -> CandleArrays:
        """Candles with open_ms >= since_ms, plus always the latest one."""
        conn = self._writer
        closed = conn.execute(
            f"SELECT {_SELECT_COLUMNS} FROM candles_closed "
            "WHERE sid = ? AND interval_ms = ? AND open_ms >= ? ORDER BY open_ms",
            (sid, interval_ms, since_ms),
        ).fetchall()
        forming = _forming_row(conn, sid, interval_ms)
        rows = _merge(closed, forming, lambda ms: ms >= since_ms)
        if not rows:
            latest = conn.execute(
                f"SELECT {_SELECT_COLUMNS} FROM candles_closed "
                "WHERE sid = ? AND interval_ms = ? ORDER BY open_ms DESC LIMIT 1",
                (sid, interval_ms),
            ).fetchall()
            rows = _merge(latest, forming, lambda _: True)[-1:]
        return _to_rows(rows)

    def query_candles(
        self,
        sid: int,
        interval_ms: int,
        *,
        start_ms: int | None,
        end_ms: int | None,
        after_ms: int | None,
        limit: int,
    ) -> CandleArrays:
        """Ascending candles in [start, end) after a keyset cursor; with no
        start and no cursor, the latest `limit` of them."""
        clauses = ["sid = ?", "interval_ms = ?"]
        params: list[int] = [sid, interval_ms]
        if start_ms is not None:
            clauses.append("open_ms >= ?")
            params.append(start_ms)
        if end_ms is not None:
            clauses.append("open_ms < ?")
            params.append(end_ms)
        if after_ms is not None:
            clauses.append("open_ms > ?")
            params.append(after_ms)
        latest_first = start_ms is None and after_ms is None
        order = "DESC" if latest_first else "ASC"
        sql = (
            f"SELECT {_SELECT_COLUMNS} FROM candles_closed "
            f"WHERE {' AND '.join(clauses)} ORDER BY open_ms {order} LIMIT ?"
        )
        conn = self._reader()
        rows = conn.execute(sql, [*params, limit]).fetchall()
        if latest_first:
            rows.reverse()

        def in_range(ms: int) -> bool:
            return (
                (start_ms is None or ms >= start_ms)
                and (end_ms is None or ms < end_ms)
                and (after_ms is None or ms > after_ms)
            )

        rows = _merge(rows, _forming_row(conn, sid, interval_ms), in_range)
        rows = rows[-limit:] if latest_first else rows[:limit]
        return _to_rows(rows)

    async def aquery_candles(
        self,
        sid: int,
        interval_ms: int,
        *,
        start_ms: int | None,
        end_ms: int | None,
        after_ms: int | None,
        limit: int,
    ) -> CandleArrays:
        return await self._on_reader(
            lambda: self.query_candles(
                sid, interval_ms, start_ms=start_ms, end_ms=end_ms, after_ms=after_ms, limit=limit
            )
        )


def _write_candles(conn: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Route candle rows by their closed flag (the last column)."""
    closed: list[tuple] = []
    forming: list[tuple] = []
    for row in rows:
        (closed if row[-1] else forming).append(row)
    if closed:
        conn.executemany(_UPSERT_CLOSED, closed)
        # The newest closed candle of each series supersedes its forming row.
        newest: dict[tuple[int, int], int] = {}
        for row in closed:
            key = (row[0], row[1])
            if row[2] > newest.get(key, row[2] - 1):
                newest[key] = row[2]
        conn.executemany(
            _DROP_SUPERSEDED_FORMING, [(sid, iv, ms) for (sid, iv), ms in newest.items()]
        )
    if forming:
        conn.executemany(_UPSERT_FORMING, forming)


def _forming_row(conn: sqlite3.Connection, sid: int, interval_ms: int) -> tuple | None:
    return conn.execute(
        f"SELECT {_SELECT_COLUMNS} FROM candles_forming WHERE sid = ? AND interval_ms = ?",
        (sid, interval_ms),
    ).fetchone()


def _merge(
    closed: list[tuple], forming: tuple | None, wanted: Callable[[int], bool]
) -> list[tuple]:
    """Closed rows (ascending) plus the forming row where it belongs."""
    if forming is None or not wanted(forming[0]):
        return closed
    if closed and closed[-1][0] >= forming[0]:
        # Not expected (a forming row is newer than every closed one); keep order.
        return sorted([*[r for r in closed if r[0] != forming[0]], forming], key=lambda r: r[0])
    return [*closed, forming]


def _to_rows(rows: list[tuple]) -> CandleArrays:
    if not rows:
        return CandleArrays.empty()
    cols = list(zip(*rows, strict=True))
    return CandleArrays(
        open_ms=np.asarray(cols[0], dtype=np.int64),
        open=np.asarray(cols[1], dtype=np.float64),
        high=np.asarray(cols[2], dtype=np.float64),
        low=np.asarray(cols[3], dtype=np.float64),
        close=np.asarray(cols[4], dtype=np.float64),
        volume=np.asarray(cols[5], dtype=np.float64),
        quote_volume=np.asarray(cols[6], dtype=np.float64),
        trades=np.asarray(cols[7], dtype=np.int64),
        closed=np.asarray(cols[8], dtype=bool),
    )
