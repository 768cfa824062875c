"""The portfolio ledger's storage: plain rows in, plain rows out, one async API.

The domain (servicer, in-memory ledger) decides what to write; this module
only stores it, on SQLite or PostgreSQL through the same SQLAlchemy Core
statements, except for bulk inserts, which go to the driver directly
(executemany on SQLite, COPY on PostgreSQL: see _bulk_insert). Each method is
one database transaction. Money and quantities stay decimal strings end to
end; the repository never parses them.

Errors are the small hierarchy below, never driver exceptions:
StorageUnavailable (the database cannot be reached; retry later),
PortfolioNotFound, DuplicateClientId, StaleWrite (the rows changed under the
caller), and StorageError for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core_rs.portfolio_rows import InsertRows
from services.common.errors import NotFound, Unavailable
from services.portfolio.db import migrate
from services.portfolio.db.engine import (
    WRITE_LOCK,
    DatabaseUrlError,
    create_engine,
    redact,
)
from services.portfolio.db.native_sqlite import (
    NOT_CHANGED,
    SQLITE_BUSY,
    SQLITE_CONSTRAINT,
    SQLITE_LOCKED,
    SqliteWriter,
    open_native_writer,
)
from services.portfolio.db.schema import portfolios, transactions

# Bound parameters per IN (...) query: far below SQLite's 32,766 and
# PostgreSQL's 32,767 limits, and small enough for the statement cache to help.
IN_CHUNK = 500
# Ids passed as one array parameter (json_each / unnest): no bind limit, and
# every extra query is another round trip to the driver's thread.
ARRAY_CHUNK = 10_000


class StorageError(Exception):
    """A storage failure that is not the caller's input; the message says what.

    The subclasses are also the service errors they mean to a caller (the
    one mapping in services/common/errors.py turns them into statuses):
    unreachable or locked is UNAVAILABLE, a vanished portfolio NOT_FOUND, and
    rows changed under a writer (another process) UNAVAILABLE: retry.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class StorageUnavailable(StorageError, Unavailable):
    """The database cannot be reached or is locked: worth retrying later."""


class PortfolioNotFound(StorageError, NotFound):
    def __init__(self, portfolio_id: str) -> None:
        self.portfolio_id = portfolio_id
        super().__init__(f"portfolio {portfolio_id!r} does not exist")


class DuplicateClientId(StorageError, Unavailable):
    """A transaction with this client_transaction_id is already in the portfolio
    (or twice in one batch); nothing of the batch was written."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        super().__init__(f"client_transaction_id {client_id!r} is already in the portfolio")


class StaleWrite(StorageError, Unavailable):
    """The rows changed under the caller (a seq already taken, a transaction
    already deleted, next_seq moved backwards): another writer got there first.
    Nothing was written; reload the ledger before trying again."""


@dataclass(frozen=True, slots=True)
class PortfolioRow:
    id: str
    owner: str
    name: str
    base_currency: str
    cost_basis_method: int
    # (from_year, method) pairs, oldest first.
    method_changes: tuple[tuple[int, int], ...]
    pool: int
    allow_negative: bool
    create_ms: int
    update_ms: int
    next_seq: int
    # Filled only by reads that ask for it (with_count=True); 0 otherwise, and
    # ignored on writes.
    transaction_count: int = 0


@dataclass(frozen=True, slots=True)
class TransactionRow:
    """One row of ``transactions``; fields in column order. Text fields that do
    not apply (to_asset of a buy) are "", never None."""

    portfolio_id: str
    seq: int
    id: str
    client_transaction_id: str
    content_hash: str
    kind: int
    time_ms: int
    asset: str
    wallet: str
    to_asset: str
    to_wallet: str
    body: str
    valuation: str
    record_ms: int


@dataclass(frozen=True, slots=True)
class LegRow:
    """One leg of a transaction: a movement of one asset. Stored in its
    transaction's row (the ``legs`` JSON column, see :func:`encode_legs`)."""

    portfolio_id: str
    seq: int
    leg: int
    kind: int
    time_ms: int
    asset: str
    wallet: str
    to_wallet: str
    qty: str
    # None: the amount is not known yet.
    amount: str | None
    # JSON [[lot_seq, lot_leg, qty], ...] or None.
    selections: str | None


_TX_FIELDS = tuple(f.name for f in fields(TransactionRow))
# What an insert writes: the row's fields, then its legs' JSON.
INSERT_FIELDS = (*_TX_FIELDS, "legs")
assert set(INSERT_FIELDS) == {c.name for c in transactions.columns}
_CLIENT_ID_AT = INSERT_FIELDS.index("client_transaction_id")


def _tuples(rows: Sequence[tuple[Any, ...]] | InsertRows) -> list[tuple[Any, ...]]:
    return rows.tuples() if isinstance(rows, InsertRows) else list(rows)


def _client_ids(rows: Sequence[tuple[Any, ...]] | InsertRows) -> list[str]:
    if isinstance(rows, InsertRows):
        return rows.client_ids()
    return [row[_CLIENT_ID_AT] for row in rows]


_tx_values = attrgetter(*_TX_FIELDS)


def encode_legs(tx_legs: Sequence[LegRow]) -> str:
    """The ``legs`` column: ``[[leg, kind, asset, wallet, to_wallet, qty,
    amount, selections], ...]`` in leg order (amount, selections may be null)."""
    return json.dumps(
        [
            [g.leg, g.kind, g.asset, g.wallet, g.to_wallet, g.qty, g.amount, g.selections]
            for g in tx_legs
        ],
        separators=(",", ":"),
    )


# A transaction's legs as rows, or already encoded (encode_legs' format).
Legs = Sequence[LegRow] | str


def _legs_text(legs: Legs) -> str:
    return legs if isinstance(legs, str) else encode_legs(legs)


def decode_legs(portfolio_id: str, seq: int, time_ms: int, text: str) -> list[LegRow]:
    return [
        LegRow(portfolio_id, seq, leg, kind, time_ms, asset, wallet, to_wallet, qty, amount, sel)
        for leg, kind, asset, wallet, to_wallet, qty, amount, sel in json.loads(text)
    ]


# Columns of a portfolio a settings change may rewrite (never id, owner,
# create_ms, or next_seq, which only write_batch moves).
_PORTFOLIO_SETTINGS = (
    "name",
    "base_currency",
    "cost_basis_method",
    "method_changes",
    "pool",
    "allow_negative",
    "update_ms",
)

_TX_COLUMNS = tuple(transactions.c[name] for name in _TX_FIELDS)
# The wanted ids drive the join, each looked up in the unique
# (portfolio_id, client_transaction_id) index. A plain `IN (...)` let SQLite
# (without fresh statistics) search the primary key by portfolio instead: a
# scan of the whole ledger, 0.4 s for 25 ids in a million. One parameter (a
# JSON array / a text[]) keeps the statement the same for every batch size,
# so it is compiled once.
_TX_SELECT = ", ".join(f"t.{name}" for name in _TX_FIELDS)
# _advance's UPDATE for the native SQLite writer (positional: next_seq, id, next_seq).
_ADVANCE_SQLITE = (
    f"UPDATE {portfolios.name} SET {portfolios.c.next_seq.name} = ? "
    f"WHERE {portfolios.c.id.name} = ? AND {portfolios.c.next_seq.name} <= ?"
)
_FIND_CLIENT_IDS_SQLITE = text(
    f"SELECT {_TX_SELECT} FROM json_each(:ids) AS w CROSS JOIN transactions AS t "
    "ON t.portfolio_id = :portfolio_id AND t.client_transaction_id = w.value"
)
_FIND_CLIENT_IDS_PG = text(
    f"SELECT {_TX_SELECT} FROM unnest(CAST(:ids AS text[])) AS w(value) "
    "JOIN transactions AS t "
    "ON t.portfolio_id = :portfolio_id AND t.client_transaction_id = w.value"
)
_REPLACE_TX = (
    update(transactions)
    .where(
        transactions.c.portfolio_id == bindparam("k_portfolio_id"),
        transactions.c.seq == bindparam("k_seq"),
    )
    .values({name: bindparam("v_" + name) for name in INSERT_FIELDS[2:]})
)
_SET_VALUATION = (
    update(transactions)
    .where(
        transactions.c.portfolio_id == bindparam("k_portfolio_id"),
        transactions.c.seq == bindparam("k_seq"),
    )
    .values(body=bindparam("v_body"), valuation=bindparam("v_valuation"), legs=bindparam("v_legs"))
)


@dataclass(frozen=True, slots=True)
class _DriverSql:
    """A statement compiled once for the engine's driver, run with positional
    tuples. Core's executemany processes every row's parameters in Python
    (~20 µs a row, measured: more than SQLite's own insert); a bulk write
    hands the driver plain tuples instead. ``keys`` is the tuple order."""

    sql: str
    keys: tuple[str, ...]
    # The table an INSERT fills (PostgreSQL copies into it instead).
    table: str = ""

    @classmethod
    def compile(
        cls,
        statement: Any,
        dialect: Any,
        column_keys: Sequence[str] | None = None,
        *,
        table: str = "",
    ) -> _DriverSql:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys else None
        )
        return cls(str(compiled), tuple(compiled.positiontup or ()), table)

    def ordered(self, params: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(params[key] for key in self.keys)


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _portfolio_values(row: PortfolioRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "owner": row.owner,
        "name": row.name,
        "base_currency": row.base_currency,
        "cost_basis_method": row.cost_basis_method,
        "method_changes": json.dumps([list(change) for change in row.method_changes]),
        "pool": row.pool,
        "allow_negative": row.allow_negative,
        "create_ms": row.create_ms,
        "update_ms": row.update_ms,
        "next_seq": row.next_seq,
    }


def _portfolio_row(row: Any, count: int = 0) -> PortfolioRow:
    return PortfolioRow(
        id=row.id,
        owner=row.owner,
        name=row.name,
        base_currency=row.base_currency,
        cost_basis_method=row.cost_basis_method,
        method_changes=tuple((int(y), int(m)) for y, m in json.loads(row.method_changes)),
        pool=row.pool,
        allow_negative=bool(row.allow_negative),
        create_ms=row.create_ms,
        update_ms=row.update_ms,
        next_seq=row.next_seq,
        transaction_count=count,
    )


def _count_column() -> Any:
    return (
        select(func.count())
        .select_from(transactions)
        .where(transactions.c.portfolio_id == portfolios.c.id)
        .scalar_subquery()
        .label("transaction_count")
    )


def _reason(err: BaseException) -> str:
    # A DBAPIError's text carries the SQL and its parameters; the driver's
    # message is the part a person needs.
    inner = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Driver and network exceptions as StorageUnavailable / StorageError.

    IntegrityError passes through: each write method says what it means.
    """
    try:
        yield
    except (StorageError, IntegrityError):
        raise
    except (OperationalError, InterfaceError, OSError, TimeoutError) as err:
        raise StorageUnavailable(f"portfolio database unavailable: {_reason(err)}") from err
    except DBAPIError as err:
        if err.connection_invalidated:
            raise StorageUnavailable(f"portfolio database unavailable: {_reason(err)}") from err
        raise StorageError(f"portfolio database error: {_reason(err)}") from err


class Repository:
    """The portfolio database. Open with ``await Repository.open(url)``; every
    method is safe to call concurrently (each takes its own pooled connection)."""

    def __init__(self, engine: AsyncEngine, native: SqliteWriter | None = None) -> None:
        self._engine = engine
        # insert_rows' writer on SQLite (native_sqlite); None: through the driver.
        self._native = native
        self._pg = engine.dialect.name == "postgresql"
        dialect = engine.dialect
        self._insert_tx = _DriverSql.compile(
            insert(transactions), dialect, INSERT_FIELDS, table="transactions"
        )
        # The tuples are built straight from the rows in field order.
        assert self._insert_tx.keys == INSERT_FIELDS, self._insert_tx.keys
        self._replace_tx = _DriverSql.compile(_REPLACE_TX, dialect)
        self._set_valuation = _DriverSql.compile(_SET_VALUATION, dialect)

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 5, native_sqlite: bool = True) -> Repository:
        """Connect to ``url`` (postgresql://..., sqlite:///path, or their async
        driver forms; see engine.resolve_url for the default under MM_DATA_DIR)
        and migrate the schema to head. StorageUnavailable, naming the URL with
        its password hidden, when the database cannot be reached.
        ``native_sqlite``: insert_rows through core_rs on a SQLite file when
        it can (native_sqlite.py); else through the driver."""
        try:
            engine = create_engine(url, pool_size=pool_size)
        except DatabaseUrlError as err:
            raise StorageError(str(err)) from None
        try:
            _make_sqlite_dir(engine)
            await migrate.upgrade(engine)
        except (DBAPIError, OSError, TimeoutError) as err:
            await engine.dispose()
            raise StorageUnavailable(
                f"cannot open the portfolio database at {redact(url)}: {_reason(err)}"
            ) from err
        except BaseException:
            await engine.dispose()
            raise
        # Off the event loop: opening may wait on another connection's lock.
        native = await asyncio.to_thread(open_native_writer, engine) if native_sqlite else None
        return cls(engine, native)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        if self._native is not None:
            # Waits for a write in flight (in its thread, off the event loop).
            await asyncio.to_thread(self._native.close)
        await self._engine.dispose()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed when the block ends, rolled back on
        any exception. On SQLite it takes the write lock at BEGIN."""
        with _storage_errors():
            async with self._engine.connect() as conn:
                await conn.execution_options(**{WRITE_LOCK: True})
                async with conn.begin():
                    yield conn

    @contextlib.asynccontextmanager
    async def _read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read transaction; ``snapshot`` makes every query in it see the same
        state (SQLite's transactions always do; PostgreSQL needs REPEATABLE READ)."""
        with _storage_errors():
            async with self._engine.connect() as conn:
                if snapshot and self._pg:
                    await conn.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                async with conn.begin():
                    yield conn

    # -- portfolios ---------------------------------------------------------

    async def create_portfolio(self, row: PortfolioRow) -> None:
        async with self._write() as conn:
            try:
                await conn.execute(insert(portfolios).values(_portfolio_values(row)))
            except IntegrityError as err:
                raise StorageError(f"portfolio {row.id!r} already exists") from err

    async def get_portfolio(
        self, owner: str, portfolio_id: str, *, with_count: bool = False
    ) -> PortfolioRow | None:
        """The portfolio if ``owner`` owns it; None for another owner's (as for none)."""
        query = select(portfolios).where(
            portfolios.c.id == portfolio_id, portfolios.c.owner == owner
        )
        if with_count:
            query = query.add_columns(_count_column())
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return _portfolio_row(row, row.transaction_count if with_count else 0)

    async def list_portfolios(
        self, owner: str, after_id: str | None, limit: int, *, with_count: bool = False
    ) -> list[PortfolioRow]:
        """Up to ``limit`` of the owner's portfolios ordered by id, after ``after_id``."""
        query = select(portfolios).where(portfolios.c.owner == owner)
        if after_id is not None:
            query = query.where(portfolios.c.id > after_id)
        if with_count:
            query = query.add_columns(_count_column())
        query = query.order_by(portfolios.c.id).limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_portfolio_row(row, row.transaction_count if with_count else 0) for row in rows]

    async def update_portfolio(self, row: PortfolioRow) -> None:
        """Rewrite the settings (name, currency, methods, pool, allow_negative,
        update_ms) of the owner's portfolio; next_seq is left alone.
        PortfolioNotFound when it is gone."""
        values = _portfolio_values(row)
        statement = (
            update(portfolios)
            .where(portfolios.c.id == row.id, portfolios.c.owner == row.owner)
            .values({name: values[name] for name in _PORTFOLIO_SETTINGS})
        )
        async with self._write() as conn:
            result = await conn.execute(statement)
            if result.rowcount != 1:
                raise PortfolioNotFound(row.id)

    async def delete_portfolio(self, owner: str, portfolio_id: str) -> bool:
        """Delete the portfolio with its transactions; False when the owner has
        no such portfolio."""
        async with self._write() as conn:
            # Transactions first, by their primary-key prefix: the same result
            # as the ON DELETE CASCADE, without a per-row cascade on SQLite.
            owned = (
                select(portfolios.c.id)
                .where(portfolios.c.id == portfolio_id, portfolios.c.owner == owner)
                .scalar_subquery()
            )
            await conn.execute(delete(transactions).where(transactions.c.portfolio_id == owned))
            result = await conn.execute(
                delete(portfolios).where(
                    portfolios.c.id == portfolio_id, portfolios.c.owner == owner
                )
            )
            return result.rowcount == 1

    # -- transactions -------------------------------------------------------

    async def find_client_ids(
        self, portfolio_id: str, client_ids: Sequence[str]
    ) -> dict[str, TransactionRow]:
        """The portfolio's transactions among ``client_ids``, by client id."""
        found: dict[str, TransactionRow] = {}
        if not client_ids:
            return found
        async with self._read() as conn:
            query = _FIND_CLIENT_IDS_PG if self._pg else _FIND_CLIENT_IDS_SQLITE
            for chunk in _chunks(list(dict.fromkeys(client_ids)), ARRAY_CHUNK):
                ids: object = chunk if self._pg else json.dumps(chunk)
                rows = await conn.execute(query, {"ids": ids, "portfolio_id": portfolio_id})
                for row in rows:
                    tx = TransactionRow(*row)
                    found[tx.client_transaction_id] = tx
        return found

    async def write_batch(
        self,
        portfolio_id: str,
        next_seq: int,
        inserts: Sequence[tuple[TransactionRow, Legs]],
        replaces: Sequence[tuple[TransactionRow, Legs]] = (),
        deletes: Sequence[int] = (),
    ) -> None:
        """Apply a batch in ONE database transaction, all or nothing.

        In order: ``deletes`` (by seq), ``replaces`` (the transaction row and
        its legs rewritten by seq), ``inserts`` (new rows with their legs), and
        portfolios.next_seq = ``next_seq``.

        DuplicateClientId(client_id) when an inserted or replaced row's
        client_transaction_id is already another transaction's (or twice in
        the batch); PortfolioNotFound when the portfolio is gone; StaleWrite
        when a seq to insert is taken, one to replace or delete is missing, or
        next_seq would go backwards. ValueError for rows of another
        portfolio, legs of another transaction, or a seq >= next_seq: bugs in
        the caller, not conditions of the data.
        """
        written = [*replaces, *inserts]
        _check_batch(portfolio_id, next_seq, written)
        seen: set[str] = set()
        for tx, _ in written:
            if tx.client_transaction_id in seen:
                raise DuplicateClientId(tx.client_transaction_id)
            seen.add(tx.client_transaction_id)
        try:
            async with self._write() as conn:
                await self._advance(conn, portfolio_id, next_seq)
                await self._require_seqs(
                    conn, portfolio_id, [*deletes, *(tx.seq for tx, _ in replaces)]
                )
                for chunk in _chunks(list(deletes)):
                    await conn.execute(
                        delete(transactions).where(
                            transactions.c.portfolio_id == portfolio_id,
                            transactions.c.seq.in_(chunk),
                        )
                    )
                if replaces:
                    await self._replace(conn, portfolio_id, replaces)
                if inserts:
                    await self._bulk_insert(
                        conn,
                        self._insert_tx,
                        [(*_tx_values(tx), _legs_text(tx_legs)) for tx, tx_legs in inserts],
                    )
        except IntegrityError as err:
            raise await self._explain_conflict(portfolio_id, written, set(deletes), err) from err

    async def insert_rows(
        self, portfolio_id: str, next_seq: int, rows: Sequence[tuple[Any, ...]] | InsertRows
    ) -> None:
        """:meth:`write_batch` of inserts only, given as plain tuples in
        :data:`INSERT_FIELDS` order (the TransactionRow fields, then the legs
        JSON) or as core_rs's ``InsertRows`` of a bulk import (no Python
        object per row on SQLite's native writer). The caller
        vouches for the rows (its portfolio, seqs below ``next_seq``); the
        database still refuses a taken seq or client id, as DuplicateClientId
        or StaleWrite, with nothing written."""
        if self._native is not None:
            await self._insert_rows_native(self._native, portfolio_id, next_seq, rows)
            return
        try:
            async with self._write() as conn:
                await self._advance(conn, portfolio_id, next_seq)
                if rows:
                    await self._bulk_insert(conn, self._insert_tx, _tuples(rows))
        except IntegrityError as err:
            raise await self._explain_ids(
                portfolio_id, _client_ids(rows), {}, set(), _reason(err)
            ) from err

    async def _insert_rows_native(
        self,
        native: SqliteWriter,
        portfolio_id: str,
        next_seq: int,
        rows: Sequence[tuple[Any, ...]] | InsertRows,
    ) -> None:
        if not isinstance(rows, list | InsertRows):
            rows = list(rows)
        code, message = await asyncio.to_thread(
            native.write,
            _ADVANCE_SQLITE,
            (next_seq, portfolio_id, next_seq),
            self._insert_tx.sql,
            rows,
        )
        if code == 0:
            return
        if code == NOT_CHANGED:
            async with self._read() as conn:
                raise await self._not_advanced(conn, portfolio_id, next_seq)
        if code & 0xFF == SQLITE_CONSTRAINT:
            raise await self._explain_ids(portfolio_id, _client_ids(rows), {}, set(), message)
        if code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED):
            raise StorageUnavailable(f"portfolio database unavailable: {message}")
        raise StorageError(f"portfolio database error: {message}")

    async def get_transaction(self, portfolio_id: str, tx_id: str) -> TransactionRow | None:
        query = select(*_TX_COLUMNS).where(
            transactions.c.id == tx_id, transactions.c.portfolio_id == portfolio_id
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else TransactionRow(*row)

    async def list_transactions(
        self,
        portfolio_id: str,
        *,
        asset: str | None,
        wallet: str | None,
        kind: int | None,
        start_ms: int | None,
        end_ms: int | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[TransactionRow]:
        """Up to ``limit`` transactions ordered by (time_ms, seq).

        ``asset`` matches asset or to_asset, ``wallet`` wallet or to_wallet;
        times are start_ms <= time_ms < end_ms; ``after`` is the (time_ms, seq)
        of the last row of the previous page (keyset paging: rows added or
        removed meanwhile never shift a page).
        """
        tx = transactions.c
        query: Select[Any] = select(*_TX_COLUMNS).where(tx.portfolio_id == portfolio_id)
        if asset is not None:
            query = query.where(or_(tx.asset == asset, tx.to_asset == asset))
        if wallet is not None:
            query = query.where(or_(tx.wallet == wallet, tx.to_wallet == wallet))
        if kind is not None:
            query = query.where(tx.kind == kind)
        if start_ms is not None:
            query = query.where(tx.time_ms >= start_ms)
        if end_ms is not None:
            query = query.where(tx.time_ms < end_ms)
        if after is not None:
            after_ms, after_seq = after
            # The first term is an index range; the OR only filters its edge.
            query = query.where(
                tx.time_ms >= after_ms,
                or_(tx.time_ms > after_ms, and_(tx.time_ms == after_ms, tx.seq > after_seq)),
            )
        query = query.order_by(tx.time_ms, tx.seq).limit(limit)
        async with self._read() as conn:
            return [TransactionRow(*row) for row in await conn.execute(query)]

    async def load_book_rows(
        self, portfolio_id: str, chunk: int = 100_000
    ) -> AsyncIterator[list[Any]]:
        """What an in-memory book needs, as plain row tuples (no dataclasses).

        Chunks of ``(seq, id, kind, time_ms, valuation, body, legs)`` by seq,
        with the body only for INCOME (5) rows ("" else) and the legs as
        stored (:func:`encode_legs`). One snapshot, like :meth:`load_ledger`;
        this is its fast path for a book of a million transactions.
        """
        t = transactions.c
        after = 0
        async with self._read(snapshot=True) as conn:
            while True:
                query = (
                    select(
                        t.seq,
                        t.id,
                        t.kind,
                        t.time_ms,
                        t.valuation,
                        case((t.kind == 5, t.body), else_=""),
                        t.legs,
                    )
                    .where(t.portfolio_id == portfolio_id, t.seq > after)
                    .order_by(t.seq)
                    .limit(chunk)
                )
                rows = list((await conn.execute(query)).all())
                if not rows:
                    return
                after = rows[-1][0]
                yield rows
                if len(rows) < chunk:
                    return

    async def load_ledger(
        self, portfolio_id: str, chunk: int = 50_000
    ) -> AsyncIterator[tuple[list[TransactionRow], list[LegRow]]]:
        """Every transaction and leg of the portfolio, in chunks of up to
        ``chunk`` transactions ordered by seq, with the legs of exactly those
        transactions (ordered by seq, leg). For rebuilding the in-memory ledger.

        All chunks come from one snapshot: a write committed while the caller
        iterates is not seen. The snapshot holds a pooled connection until the
        iteration ends; close an abandoned iterator with ``contextlib.aclosing``.
        """
        after = 0
        async with self._read(snapshot=True) as conn:
            while True:
                query = (
                    select(*_TX_COLUMNS, transactions.c.legs)
                    .where(transactions.c.portfolio_id == portfolio_id, transactions.c.seq > after)
                    .order_by(transactions.c.seq)
                    .limit(chunk)
                )
                rows = (await conn.execute(query)).all()
                if not rows:
                    return
                tx_rows = [TransactionRow(*row[:-1]) for row in rows]
                after = tx_rows[-1].seq
                leg_rows = [
                    leg
                    for tx, row in zip(tx_rows, rows, strict=True)
                    for leg in decode_legs(portfolio_id, tx.seq, tx.time_ms, row[-1])
                ]
                yield tx_rows, leg_rows
                if len(tx_rows) < chunk:
                    return

    async def transactions_by_seq(
        self, portfolio_id: str, seqs: Sequence[int]
    ) -> dict[int, TransactionRow]:
        """The portfolio's transactions among ``seqs`` (with body), by seq."""
        found: dict[int, TransactionRow] = {}
        if not seqs:
            return found
        async with self._read() as conn:
            for chunk in _chunks(sorted(set(seqs))):
                query = select(*_TX_COLUMNS).where(
                    transactions.c.portfolio_id == portfolio_id, transactions.c.seq.in_(chunk)
                )
                for row in await conn.execute(query):
                    found[row.seq] = TransactionRow(*row)
        return found

    async def set_valuations(
        self, portfolio_id: str, updates: Sequence[tuple[int, str, str, Sequence[LegRow]]]
    ) -> None:
        """For transactions priced after they were recorded: (seq, new body, new
        valuation, new legs) each, in one database transaction. StaleWrite (and
        nothing written) when one of the seqs is gone."""
        if not updates:
            return
        for seq, _, _, new_legs in updates:
            _check_legs(portfolio_id, seq, new_legs)
        seqs = [seq for seq, _, _, _ in updates]
        async with self._write() as conn:
            await self._require_seqs(conn, portfolio_id, seqs)
            statement = self._set_valuation
            await conn.exec_driver_sql(
                statement.sql,
                [
                    statement.ordered(
                        {
                            "k_portfolio_id": portfolio_id,
                            "k_seq": seq,
                            "v_body": body,
                            "v_valuation": v,
                            "v_legs": encode_legs(seq_legs),
                        }
                    )
                    for seq, body, v, seq_legs in updates
                ],
            )

    # -- helpers ------------------------------------------------------------

    async def _bulk_insert(
        self, conn: AsyncConnection, statement: _DriverSql, rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert many rows fast, inside ``conn``'s transaction.

        PostgreSQL: COPY (binary) on the transaction's own asyncpg connection,
        about twice as fast as asyncpg's executemany (measured, 50,000 rows);
        its constraint errors come back as IntegrityError like any other
        statement's. SQLite: executemany on the driver.
        """
        if not self._pg:
            await conn.exec_driver_sql(statement.sql, rows)
            return
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        # COPY must join the batch's transaction, which SQLAlchemy opened on
        # this connection with the batch's first statement.
        assert driver is not None and driver.is_in_transaction()
        try:
            await driver.copy_records_to_table(
                statement.table, records=rows, columns=list(statement.keys)
            )
        except asyncpg.IntegrityConstraintViolationError as err:
            raise IntegrityError(f"COPY {statement.table}", None, err) from err
        # Raw asyncpg errors bypass SQLAlchemy's translation; do it here.
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as err:
            raise StorageUnavailable(f"portfolio database unavailable: {err}") from err
        except asyncpg.PostgresError as err:
            raise StorageError(f"portfolio database error: {err}") from err

    async def _advance(self, conn: AsyncConnection, portfolio_id: str, next_seq: int) -> None:
        # First statement of the batch: on PostgreSQL it locks the portfolio's
        # row, so concurrent batches of one portfolio queue here.
        result = await conn.execute(
            update(portfolios)
            .where(portfolios.c.id == portfolio_id, portfolios.c.next_seq <= next_seq)
            .values(next_seq=next_seq)
        )
        if result.rowcount != 1:
            raise await self._not_advanced(conn, portfolio_id, next_seq)

    async def _not_advanced(
        self, conn: AsyncConnection, portfolio_id: str, next_seq: int
    ) -> StorageError:
        current = await conn.scalar(
            select(portfolios.c.next_seq).where(portfolios.c.id == portfolio_id)
        )
        if current is None:
            return PortfolioNotFound(portfolio_id)
        return StaleWrite(
            f"portfolio {portfolio_id!r} is at next_seq {current}, beyond the batch's {next_seq}"
        )

    async def _require_seqs(
        self, conn: AsyncConnection, portfolio_id: str, seqs: Sequence[int]
    ) -> None:
        wanted = set(seqs)
        if not wanted:
            return
        present: set[int] = set()
        for chunk in _chunks(sorted(wanted)):
            query = select(transactions.c.seq).where(
                transactions.c.portfolio_id == portfolio_id, transactions.c.seq.in_(chunk)
            )
            if self._pg:
                query = query.with_for_update()
            present.update(await conn.scalars(query))
        missing = sorted(wanted - present)
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise StaleWrite(f"portfolio {portfolio_id!r} has no transaction with seq {shown}")

    async def _replace(
        self,
        conn: AsyncConnection,
        portfolio_id: str,
        replaces: Sequence[tuple[TransactionRow, Legs]],
    ) -> None:
        statement = self._replace_tx
        params = [
            statement.ordered(
                {
                    "k_portfolio_id": portfolio_id,
                    "k_seq": tx.seq,
                    **{"v_" + k: v for k, v in zip(_TX_FIELDS, _tx_values(tx), strict=True)},
                    "v_legs": _legs_text(tx_legs),
                }
            )
            for tx, tx_legs in replaces
        ]
        await conn.exec_driver_sql(statement.sql, params)

    async def _explain_conflict(
        self,
        portfolio_id: str,
        written: Sequence[tuple[TransactionRow, Legs]],
        deleted: set[int],
        err: IntegrityError,
    ) -> StorageError:
        """Which constraint a rolled-back batch hit, found by looking rather than
        by parsing each driver's message."""
        seqs = {tx.client_transaction_id: tx.seq for tx, _ in written}
        return await self._explain_ids(portfolio_id, list(seqs), seqs, deleted, _reason(err))

    async def _explain_ids(
        self,
        portfolio_id: str,
        client_ids: Sequence[str],
        seqs: dict[str, int],
        deleted: set[int],
        reason: str,
    ) -> StorageError:
        # A client id already stored under another seq (one not deleted by
        # this batch) is a duplicate; anything else is a lost race on seqs.
        existing = await self.find_client_ids(portfolio_id, client_ids)
        for client_id in client_ids:
            hit = existing.get(client_id)
            if hit is not None and hit.seq != seqs.get(client_id) and hit.seq not in deleted:
                return DuplicateClientId(client_id)
        return StaleWrite(f"portfolio {portfolio_id!r}: batch conflicts: {reason}")


def _make_sqlite_dir(engine: AsyncEngine) -> None:
    # As for every other service's files under MM_DATA_DIR: a fresh deployment
    # has no data directory yet.
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _check_batch(
    portfolio_id: str,
    next_seq: int,
    written: Sequence[tuple[TransactionRow, Legs]],
) -> None:
    for tx, tx_legs in written:
        if tx.portfolio_id != portfolio_id:
            raise ValueError(f"transaction seq {tx.seq} belongs to {tx.portfolio_id!r}")
        if not 1 <= tx.seq < next_seq:
            raise ValueError(f"transaction seq {tx.seq} is outside 1..next_seq-1 ({next_seq - 1})")
        if not isinstance(tx_legs, str):
            _check_legs(portfolio_id, tx.seq, tx_legs)


def _check_legs(portfolio_id: str, seq: int, tx_legs: Sequence[LegRow]) -> None:
    for leg in tx_legs:
        if leg.portfolio_id != portfolio_id or leg.seq != seq:
            raise ValueError(
                f"leg ({leg.portfolio_id!r}, {leg.seq}, {leg.leg}) is not of transaction {seq}"
            )
