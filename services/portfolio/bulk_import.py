"""An import batch of rows core_rs vouched for, written as columns.

``core_rs.portfolio_rows.parse_import`` parses a whole ImportTransactions
message and hands back, for every row it is certain of (valid, its own
price or value, no named lots), the normalised fields, the content hash and
stored body, and the legs (see :data:`FastRow`). This module writes a batch
of those with the same rules as LedgerWriter's per-transaction path (a
client id already in the ledger is a duplicate or ALREADY_EXISTS, a
same-content repeat inside the batch a duplicate of the first, an oversell
FAILED_PRECONDITION naming the shortfall) but without Python per row:
``core_rs.portfolio_rows.decide_import`` decides the whole batch against the
book and builds its insert rows, book rows and stored legs in one call. The
rows stay in core_rs from the parse to the insert (``ImportRows``,
``InsertRows``): the per-row Python cost is what bounded imports.

A batch that holds a transaction dated before the latest one of a wallet it
touches is not taken (:func:`write_fast_rows` returns None before changing
anything): backdated rows need the whole-ledger check of the general path.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from core_rs.portfolio_rows import ImportRows, InsertRows, decide_import
from services.common.errors import ServiceError
from services.common.validation import now_ms
from services.portfolio.book import Shortfall
from services.portfolio.db.repository import (
    StorageError,
)
from services.portfolio.ledger_writer import (
    LedgerWriter,
    Pending,
    PortfolioState,
    conflict_error,
    shortfall_error,
    storage_error,
    tx_id_seed,
)
from services.portfolio.legs import Leg
from services.portfolio.transactions import TxContent

log = structlog.get_logger(__name__)

# core_rs.portfolio_rows.parse_import's tuple for a row it parsed:
# (position, client_id, kind, time_ms, asset, quantity, price, value,
#  fee_asset, fee_amount, fee_value, wallet, to_wallet, to_asset, to_quantity,
#  income_kind, note, content_hash, body, valuation,
#  legs: [(leg, kind, asset, wallet, qty, amount, to_wallet), ...])
FastRow = tuple[Any, ...]


@dataclass
class BulkResult:
    """What became of each row of a batch, by its row number in the import."""

    # Rows written (or found written): created, and duplicates.
    created: int = 0
    duplicates: int = 0
    # The first of those, in row order, as many as asked for: (row, client
    # id, transaction id, created: False for a duplicate).
    written: list[tuple[int, str, str, bool]] = field(default_factory=list)
    # (row, client id, why).
    rejected: list[tuple[int, str, ServiceError]] = field(default_factory=list)
    # The database write of the rows written (None when there were none).
    committed: asyncio.Future[None] | None = None


def _prefix(row: int) -> str:
    return f"transactions[{row}]"


def _dec(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def fast_pending(row: int, r: FastRow) -> Pending:
    """A row core_rs parsed, as the general path's Pending (for a batch that
    cannot be written as columns)."""
    tx = TxContent(
        kind=r[2],
        time_ms=r[3],
        asset=r[4],
        quantity=Decimal(r[5]),
        price=_dec(r[6]),
        value=_dec(r[7]),
        fee_asset=r[8],
        fee_amount=_dec(r[9]),
        fee_value=_dec(r[10]),
        wallet=r[11],
        to_wallet=r[12],
        to_asset=r[13],
        to_quantity=_dec(r[14]),
        income_kind=r[15],
        note=r[16],
    )
    legs = [Leg(g[0], g[1], g[2], g[3], Decimal(g[4]), _dec(g[5]), g[6]) for g in r[20]]
    return Pending(r[1], r[17], tx, legs, r[19], r[18], f"transactions[{row}]")


async def write_fast_rows(
    writer: LedgerWriter, state: PortfolioState, rows: ImportRows, show: int = sys.maxsize
) -> BulkResult | None:
    """Decide ``rows``, put them in the book, and start their database
    write: one transaction, all or nothing,
    after every earlier batch's. ``result.committed`` finishes with it (and
    fails if it or an earlier batch failed: the book is then marked stale
    and rebuilt from the database on next use).

    The write runs while the caller prepares its next batch: a batch's
    database time overlaps the next one's Python time instead of adding to
    it. At most two batches are uncommitted at a time.

    ``result.written`` lists the first ``show`` rows written.

    None when the batch is backdated (nothing done: write it through the
    general path).
    """
    async with state.lock:
        if state.committing_prior is not None:
            await asyncio.shield(state.committing_prior)
        return await _decide(writer, state, rows, show)


async def _decide(
    writer: LedgerWriter, state: PortfolioState, rows: ImportRows, show: int
) -> BulkResult | None:
    pid = state.portfolio.id
    book = state.book
    # Batches committed by now are in the database for this lookup; one
    # committing meanwhile may not be, and stays in state.uncommitted.
    retired, state.retiring = state.retiring, []
    try:
        found = await writer.repository.find_client_ids(pid, rows.client_ids())
    finally:
        # Any lookup from now on begins after their commit.
        for batch in retired:
            state.uncommitted.remove(batch)
    # Rows of batches decided but not yet committed are not found in the
    # database: they are in state.uncommitted.
    existing = {cid: (tx.content_hash, tx.id) for cid, tx in found.items()}
    seq0 = state.next_seq
    record_ms = now_ms()
    decided = decide_import(
        rows,
        existing,
        state.uncommitted,
        book.balances,
        book.last_ms,
        not state.portfolio.allow_negative,
        pid,
        seq0,
        record_ms,
        tx_id_seed(),
        record_ms,
        show,
    )
    if decided is None:
        return None
    written, created, duplicates, rejected, inserts, book_rows, changed = decided
    result = BulkResult(created, duplicates, written)
    for row, cid, prefix_row, short in rejected:
        if short is None:
            err = conflict_error(_prefix(row), cid)
        else:
            asset, wallet, time_ms, shortfall = short
            err = shortfall_error(
                Shortfall(-1, asset, wallet, time_ms, Decimal(shortfall)), _prefix(prefix_row)
            )
        result.rejected.append((row, cid, err))
    if not inserts:
        return result

    # Into the book; the database write goes on in its own task.
    book.load_rows(
        book_rows,
        (
            {key: Decimal(balance) for key, balance, _ in changed},
            {key: last for key, _, last in changed},
        ),
    )
    next_seq = state.next_seq = seq0 + len(inserts)
    state.uncommitted.add(inserts)
    prior = state.committing
    commit = asyncio.ensure_future(_commit(writer, state, prior, next_seq, inserts))
    commit.add_done_callback(_observed)
    state.committing_prior, state.committing = prior, commit
    result.committed = commit
    return result


async def _commit(
    writer: LedgerWriter,
    state: PortfolioState,
    prior: asyncio.Future[None] | None,
    next_seq: int,
    inserts: InsertRows,
) -> None:
    pid = state.portfolio.id
    try:
        if prior is not None:
            await asyncio.shield(prior)  # an earlier batch's failure is this one's
        await writer.repository.insert_rows(pid, next_seq, inserts)
    except BaseException as err:
        # The book holds rows the database does not: rebuilt on next use.
        state.stale = True
        if isinstance(err, StorageError):
            raise storage_error(err) from None
        raise
    state.retiring.append(inserts)
    log.info("transactions committed", portfolio=pid, count=len(inserts), next_seq=next_seq)


def _observed(commit: asyncio.Future[None]) -> None:
    # Whoever waits for a batch gets its error; this keeps one nobody waited
    # for (a cancelled import) from being reported as never retrieved.
    if not commit.cancelled() and commit.exception() is not None:
        log.warning("import batch not committed", reason=str(commit.exception()))
