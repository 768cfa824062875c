"""An import batch of rows core_rs vouched for, written as columns.

``core_rs.portfolio_rows.parse_import`` parses a whole ImportTransactions
message and hands back, for every row it is certain of (valid, its own
price or value, no named lots), the normalised fields, the content hash and
stored body, and the legs (see :data:`FastRow`). This module writes a batch
of those with the same rules as LedgerWriter's per-transaction path (a
client id already in the ledger is a duplicate or ALREADY_EXISTS, a
same-content repeat inside the batch a duplicate of the first, an oversell
FAILED_PRECONDITION naming the shortfall) but without an object, a future or
a Decimal round trip per row: the per-row Python cost is what bounded
imports to a few thousand rows a second.

A batch that holds a transaction dated before the latest one of a wallet it
touches is not taken (:func:`write_fast_rows` returns None before changing
anything): backdated rows need the whole-ledger check of the general path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from services.common.errors import ServiceError
from services.common.validation import now_ms
from services.portfolio.book import Shortfall
from services.portfolio.db.repository import (
    StorageError,
)
from services.portfolio.decimals import CONTEXT
from services.portfolio.ledger_writer import (
    LedgerWriter,
    Pending,
    PortfolioState,
    conflict_error,
    new_tx_id,
    shortfall_error,
    storage_error,
)
from services.portfolio.legs import ACQUIRE, MOVE, Leg
from services.portfolio.transactions import INCOME, TxContent

log = structlog.get_logger(__name__)

# core_rs.portfolio_rows.parse_import's tuple for a row it parsed:
# (position, client_id, kind, time_ms, asset, quantity, price, value,
#  fee_asset, fee_amount, fee_value, wallet, to_wallet, to_asset, to_quantity,
#  income_kind, note, content_hash, body, valuation,
#  legs: [(leg, kind, asset, wallet, qty, amount, to_wallet), ...])
FastRow = tuple[Any, ...]
POSITION, CLIENT_ID, KIND, TIME_MS, ASSET = 0, 1, 2, 3, 4
WALLET, TO_WALLET, TO_ASSET = 11, 12, 13
CONTENT_HASH, BODY, VALUATION, LEGS = 17, 18, 19, 20

_NEVER = -(2**62)
_ZERO = Decimal(0)


@dataclass
class BulkResult:
    """What became of each row of a batch, by its row number in the import."""

    # (row, client id, transaction id, created: False for a duplicate).
    written: list[tuple[int, str, str, bool]] = field(default_factory=list)
    # (row, client id, why).
    rejected: list[tuple[int, str, ServiceError]] = field(default_factory=list)
    # The database write of the rows written (None when there were none).
    committed: asyncio.Future[None] | None = None


def _prefix(row: int) -> str:
    return f"transactions[{row}]"


def _stored_legs(legs: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The legs in their stored order (legs.legs_json): leg, kind, asset,
    wallet, to_wallet, qty, amount, selections (never any here)."""
    return [(g[0], g[1], g[2], g[3], g[6], g[4], g[5], None) for g in legs]


def _legs_text(stored: Sequence[tuple[Any, ...]]) -> str:
    # What legs_json writes for these legs, without json.dumps per row: the
    # names are validated tickers and wallet names (no quote, backslash or
    # control character to escape) and the numbers are plain decimals.
    legs = (f'[{g[0]},{g[1]},"{g[2]}","{g[3]}","{g[4]}","{g[5]}","{g[6]}",null]' for g in stored)
    return "[" + ",".join(legs) + "]"


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
    writer: LedgerWriter, state: PortfolioState, rows: Sequence[tuple[int, FastRow]]
) -> BulkResult | None:
    """Decide ``rows`` ((row number in the import, row)), put them in the
    book, and start their database write: one transaction, all or nothing,
    after every earlier batch's. ``result.committed`` finishes with it (and
    fails if it or an earlier batch failed: the book is then marked stale
    and rebuilt from the database on next use).

    The write runs while the caller prepares its next batch: a batch's
    database time overlaps the next one's Python time instead of adding to
    it. At most two batches are uncommitted at a time.

    None when the batch is backdated (nothing done: write it through the
    general path).
    """
    async with state.lock:
        if state.committing_prior is not None:
            await asyncio.shield(state.committing_prior)
        return await _decide(writer, state, rows)


async def _decide(
    writer: LedgerWriter, state: PortfolioState, rows: Sequence[tuple[int, FastRow]]
) -> BulkResult | None:
    pid = state.portfolio.id
    book = state.book
    result = BulkResult()
    existing: dict[str, tuple[str, str]] = {
        cid: (tx.content_hash, tx.id)
        for cid, tx in (
            await writer.repository.find_client_ids(pid, [r[CLIENT_ID] for _, r in rows])
        ).items()
    }
    # Rows of batches decided but not yet committed are not found in the database.
    uncommitted = state.uncommitted
    # Written in time order, as the general path does.
    ordered = sorted(rows, key=lambda item: (item[1][TIME_MS], item[0]))

    # 1. Decide every row against the book plus the rows before it, changing nothing.
    check = not state.portfolio.allow_negative
    # The ledger's context: the default 28 digits would round balances.
    add = CONTEXT.add
    balances, last_ms = book.balances, book.last_ms
    overlay: dict[tuple[str, str], Decimal] = {}
    overlay_ms: dict[tuple[str, str], int] = {}
    taken: list[tuple[int, FastRow, list[tuple[Any, ...]]]] = []
    firsts: dict[str, FastRow] = {}
    twins: list[tuple[int, FastRow]] = []
    refused: dict[str, ServiceError] = {}
    for row_no, r in ordered:
        cid = r[CLIENT_ID]
        original = existing.get(cid) or uncommitted.get(cid)
        if original is not None:
            if original[0] == r[CONTENT_HASH]:
                result.written.append((row_no, cid, original[1], False))
            else:
                result.rejected.append((row_no, cid, conflict_error(_prefix(row_no), cid)))
            continue
        first = firsts.get(cid)
        if first is not None:
            if first[CONTENT_HASH] == r[CONTENT_HASH]:
                twins.append((row_no, r))  # answered with the first's outcome
            else:
                result.rejected.append((row_no, cid, conflict_error(_prefix(row_no), cid)))
            continue
        firsts[cid] = r
        time_ms = r[TIME_MS]
        stored = _stored_legs(r[LEGS])
        moves: dict[tuple[str, str], Decimal] = {}
        short: Shortfall | None = None
        for g in stored:
            q = Decimal(g[5])
            own = ((g[2], g[3]), q if g[1] == ACQUIRE else q.copy_negate())
            # Leg.deltas: an ACQUIRE adds, the rest take; a MOVE also gives to_wallet.
            for key, delta in (own, ((g[2], g[4]), q)) if g[1] == MOVE else (own,):
                if overlay_ms.get(key, last_ms.get(key, _NEVER)) > time_ms:
                    return None  # backdated
                balance = moves.get(key)
                if balance is None:
                    balance = overlay.get(key)
                    if balance is None:
                        balance = balances.get(key, _ZERO)
                balance = moves[key] = add(balance, delta)
                if check and balance < 0 and short is None:
                    short = Shortfall(-1, key[0], key[1], time_ms, balance.copy_negate())
        if short is not None:
            refused[cid] = shortfall_error(short, _prefix(row_no))
            result.rejected.append((row_no, cid, refused[cid]))
            continue
        overlay.update(moves)
        for key in moves:
            overlay_ms[key] = time_ms
        taken.append((row_no, r, stored))

    # 2. Into the book; the database write goes on in its own task.
    accepted_ids: dict[str, str] = {}
    if taken:
        record_ms = now_ms()
        seq0 = state.next_seq
        book_rows, every_legs, inserts = [], [], []
        for i, (_, r, stored) in enumerate(taken):
            seq, tx_id, text = seq0 + i, new_tx_id(), _legs_text(stored)
            accepted_ids[r[CLIENT_ID]] = tx_id
            # The book reads an INCOME's kind of income from its body.
            body = r[BODY] if r[KIND] == INCOME else ""
            book_rows.append((seq, tx_id, r[KIND], r[TIME_MS], r[VALUATION], body, text))
            every_legs.append(stored)
            # Repository.INSERT_FIELDS order.
            inserts.append(
                (
                    pid,
                    seq,
                    tx_id,
                    r[CLIENT_ID],
                    r[CONTENT_HASH],
                    r[KIND],
                    r[TIME_MS],
                    r[ASSET],
                    r[WALLET],
                    r[TO_ASSET],
                    r[TO_WALLET],
                    r[BODY],
                    r[VALUATION],
                    record_ms,
                    text,
                )
            )
        book.load_parsed(book_rows, every_legs, (overlay, overlay_ms))
        next_seq = state.next_seq = seq0 + len(taken)
        ids = {r[CLIENT_ID]: (r[CONTENT_HASH], accepted_ids[r[CLIENT_ID]]) for _, r, _ in taken}
        uncommitted.update(ids)
        prior = state.committing
        commit = asyncio.ensure_future(_commit(writer, state, prior, next_seq, inserts, ids))
        commit.add_done_callback(_observed)
        state.committing_prior, state.committing = prior, commit
        result.committed = commit
        for row_no, r, _ in taken:
            result.written.append((row_no, r[CLIENT_ID], accepted_ids[r[CLIENT_ID]], True))

    for row_no, r in twins:
        cid = r[CLIENT_ID]
        if cid in accepted_ids:
            result.written.append((row_no, cid, accepted_ids[cid], False))
        else:
            result.rejected.append((row_no, cid, refused[cid]))
    result.written.sort()
    result.rejected.sort(key=lambda item: item[0])
    return result


async def _commit(
    writer: LedgerWriter,
    state: PortfolioState,
    prior: asyncio.Future[None] | None,
    next_seq: int,
    inserts: list[tuple[Any, ...]],
    ids: dict[str, tuple[str, str]],
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
    for cid in ids:
        state.uncommitted.pop(cid, None)
    log.info("transactions committed", portfolio=pid, count=len(inserts), next_seq=next_seq)


def _observed(commit: asyncio.Future[None]) -> None:
    # Whoever waits for a batch gets its error; this keeps one nobody waited
    # for (a cancelled import) from being reported as never retrieved.
    if not commit.cancelled() and commit.exception() is not None:
        log.warning("import batch not committed", reason=str(commit.exception()))
