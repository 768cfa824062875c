"""Writes to one portfolio's ledger: checked against its book, committed together.

Concurrent RecordTransaction calls on a portfolio queue here; whoever takes
the portfolio's lock first commits everything waiting in ONE database
transaction (group commit), so a fsync is shared by every call in the batch
and throughput grows with concurrency instead of being one fsync per call.
An import batch goes through the same path as one unit.

For each transaction, in order: a retry of a client id already in the
ledger with the same content is answered with the original; with different
content it is ALREADY_EXISTS. A transaction that would take a wallet below
zero is FAILED_PRECONDITION naming the asset, wallet and shortfall (unless
the portfolio allows negative balances); a named lot that is not open is
INVALID_ARGUMENT on that lot. The book is changed first and rolled back if
the commit fails, so memory never runs ahead of the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import structlog

from core_rs.portfolio_rows import InsertRows, UncommittedIds
from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ServiceError,
    Unavailable,
)
from services.common.validation import now_ms
from services.portfolio.book import Book, Overlay, Shortfall, TxIndex, UnknownLot
from services.portfolio.db.repository import (
    DuplicateClientId,
    LegRow,
    PortfolioNotFound,
    PortfolioRow,
    Repository,
    StaleWrite,
    StorageError,
    StorageUnavailable,
    TransactionRow,
)
from services.portfolio.decimals import fmt
from services.portfolio.legs import Leg, legs_json, selections_text
from services.portfolio.methods import replay_methods
from services.portfolio.transactions import TxContent

log = structlog.get_logger(__name__)

_TX_IN_ERROR = re.compile(r"tx (-?\d+)")
# 16**11 ms: the clock part wraps after 557 years (in 2527).
_TX_ID_CLOCK = 16**11
_ID_BITS = random.Random(secrets.randbits(128))


def new_tx_id() -> str:
    """``tx_`` and 24 hex digits: 11 of the clock in milliseconds, 13 random.

    Time first, so ids are inserted at the right edge of their unique index
    like the ledger's other keys: random ids scattered every insert across
    the whole index (measured on SQLite, 200,000 rows in batches of 5,000:
    22,600 rows/s with random ids, 50,800 with these). 52 random bits keep
    ids apart within a millisecond and across servers; they need not be
    secret (a portfolio is its owner's alone), so they come from a seeded
    PRNG, not a system call per id.
    """
    return f"tx_{now_ms() % _TX_ID_CLOCK:011x}{_ID_BITS.getrandbits(52):013x}"


def tx_id_seed() -> int:
    """A seed for core_rs's ids of a batch (core_rs.portfolio_rows.decide_import:
    new_tx_id's form, the random part from a sequence of this seed)."""
    return _ID_BITS.getrandbits(64)


@dataclass
class Pending:
    """One transaction waiting to be written."""

    client_id: str
    content_hash: str
    content: TxContent
    legs: list[Leg]
    valuation: str
    # The stored JSON (transactions.encode).
    body: str
    # Field prefix for errors ("transaction" or "transactions[17]").
    prefix: str = "transaction"
    future: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True)
class Outcome:
    row: TransactionRow
    created: bool


@dataclass
class PortfolioState:
    """A portfolio's book and the lock that serialises its writes."""

    portfolio: PortfolioRow
    book: Book
    next_seq: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: list[Pending] = field(default_factory=list)
    # Set when the database changed under this book (another writer): the
    # app drops the book and rebuilds it from the database on next use.
    stale: bool = False
    # Monotonic time of the last retry of unknown valuations by a holdings read.
    revalued_at: float = -1e9
    # The database write of the latest bulk import batch, which may still be
    # running after the lock is released (bulk_import pipelines its batches).
    committing: asyncio.Future[None] | None = None
    # The one before it (a new batch waits for it: two uncommitted at most).
    committing_prior: asyncio.Future[None] | None = None
    # client id -> (content hash, transaction id) of rows in uncommitted batches.
    uncommitted: UncommittedIds = field(default_factory=UncommittedIds)
    # Batches committed whose ids are still in uncommitted: a client-id lookup
    # that began before their commit does not see them in the database, so
    # they leave uncommitted only once the next lookup has begun after it.
    retiring: list[InsertRows] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def exclusive(self, *, fresh: bool = True) -> AsyncIterator[None]:
        """The portfolio's write lock, once every earlier write has finished
        (the database sees writes in the order the book took them).

        A failed one was reported to its import and marked the book stale:
        with ``fresh`` (whoever decides on the book's contents) that is
        UNAVAILABLE, retry, rather than a decision on rows the database does
        not hold; without it (settings, deleting the portfolio) the work goes on.
        """
        async with self.lock:
            if self.committing is not None:
                await asyncio.wait([self.committing])
            if fresh and self.stale:
                raise Unavailable(
                    "the ledger changed under this server (a write failed); it is reloaded: "
                    "retry the call (a retry with the same client_transaction_id is safe)"
                )
            yield

    @property
    def busy(self) -> bool:
        """Writing or about to: not to be evicted."""
        committing = self.committing is not None and not self.committing.done()
        return self.lock.locked() or bool(self.pending) or committing


def storage_error(err: StorageError) -> ServiceError:
    """The caller-facing status of a storage failure."""
    if isinstance(err, PortfolioNotFound):
        return NotFound(f"portfolio {err.portfolio_id!r} not found")
    if isinstance(err, StorageUnavailable):
        return Unavailable(f"the portfolio database is unavailable ({err}); retry shortly")
    # StaleWrite, DuplicateClientId: another process wrote this ledger.
    return Unavailable(
        f"the ledger changed under this server ({err}); it is reloaded: retry the call "
        "(a retry with the same client_transaction_id is safe)"
    )


def shortfall_error(short: Shortfall, prefix: str) -> FailedPrecondition:
    held = fmt(short.shortfall.copy_negate())
    return FailedPrecondition(
        f"{prefix}: wallet {short.wallet!r} would hold {held} {short.asset}: "
        f"short by {fmt(short.shortfall)} {short.asset} "
        "(record the acquisition first, or create the portfolio with allow_negative_balances)"
    )


class LedgerWriter:
    def __init__(self, repository: Repository, max_batch: int) -> None:
        self.repository = repository
        self.max_batch = max_batch

    async def submit(self, state: PortfolioState, items: Sequence[Pending]) -> None:
        """Queue items and make sure they are written; each item's future says how it went.

        The writing runs in its own task, shielded from the caller: a client
        that cancels mid-commit cannot leave the database committed and the
        book rolled back (or the other way round).
        """
        state.pending.extend(items)
        for item in items:
            while not item.future.done():
                await asyncio.shield(asyncio.ensure_future(self._drain(state, item)))

    async def _drain(self, state: PortfolioState, item: Pending) -> None:
        async with state.exclusive():
            # Written meanwhile by another caller's batch: nothing to do. (A
            # drain per waiting caller must not write whatever trickled in
            # since, or batches shrink to one.)
            if item.future.done() or not state.pending:
                return
            batch = state.pending[: self.max_batch]
            del state.pending[: self.max_batch]
            await self._write(state, batch)

    async def _write(self, state: PortfolioState, batch: list[Pending]) -> None:
        try:
            await self._write_batch(state, batch)
        except BaseException as err:
            for item in batch:
                if not item.future.done():
                    if isinstance(err, Exception):
                        item.future.set_exception(err)
                    else:
                        item.future.cancel()
            if not isinstance(err, Exception):
                raise

    async def _write_batch(self, state: PortfolioState, batch: list[Pending]) -> None:
        pid = state.portfolio.id
        existing = await self.repository.find_client_ids(pid, [p.client_id for p in batch])
        book = state.book
        fresh: list[tuple[Pending, TxIndex, TransactionRow]] = []
        in_batch: dict[str, Pending] = {}
        record_ms = now_ms()
        for item in batch:
            original = existing.get(item.client_id)
            if original is not None:
                if original.content_hash == item.content_hash:
                    item.future.set_result(Outcome(original, created=False))
                else:
                    item.future.set_exception(_conflict(item))
                continue
            twin = in_batch.get(item.client_id)
            if twin is not None:
                if twin.content_hash != item.content_hash:
                    item.future.set_exception(_conflict(item))
                # a same-content twin is answered from the first once written
                continue
            in_batch[item.client_id] = item
            seq = state.next_seq + len(fresh)
            tx_id = new_tx_id()
            index = TxIndex(
                seq=seq,
                tx_id=tx_id,
                kind=item.content.kind,
                time_ms=item.content.time_ms,
                legs=tuple(item.legs),
                income_kind=item.content.income_kind,
            )
            row = TransactionRow(
                portfolio_id=pid,
                seq=seq,
                id=tx_id,
                client_transaction_id=item.client_id,
                content_hash=item.content_hash,
                kind=item.content.kind,
                time_ms=item.content.time_ms,
                asset=item.content.asset,
                wallet=item.content.wallet,
                to_asset=item.content.to_asset,
                to_wallet=item.content.to_wallet,
                body=item.body,
                valuation=item.valuation,
                record_ms=record_ms,
            )
            fresh.append((item, index, row))

        admitted = self._admit(state, fresh)
        if admitted:
            inserts = [(row, legs_json(index.legs)) for _, index, row in admitted]
            next_seq = max(index.seq for _, index, _ in admitted) + 1
            try:
                await self.repository.write_batch(pid, next_seq, inserts)
            except BaseException as err:
                for _, index, _ in admitted:
                    book.remove(index.seq)
                if isinstance(err, StorageError):
                    state.stale = isinstance(err, StaleWrite | DuplicateClientId)
                    raise storage_error(err) from None
                raise
            state.next_seq = next_seq
            log.info(
                "transactions committed", portfolio=pid, count=len(admitted), next_seq=next_seq
            )
        for item, _, row in admitted:
            item.future.set_result(Outcome(row, created=True))
        # Same-content twins inside the batch: the first one's row.
        for item in batch:
            if not item.future.done():
                first = in_batch[item.client_id]
                if first.future.done() and first.future.exception() is None:
                    item.future.set_result(Outcome(first.future.result().row, created=False))
                elif first.future.done():
                    item.future.set_exception(first.future.exception())  # type: ignore[arg-type]

    def _admit(
        self, state: PortfolioState, fresh: list[tuple[Pending, TxIndex, TransactionRow]]
    ) -> list[tuple[Pending, TxIndex, TransactionRow]]:
        """Add what fits to the book; fail the rest (their futures get the error)."""
        book = state.book
        allow_negative = state.portfolio.allow_negative
        admitted: list[tuple[Pending, TxIndex, TransactionRow]] = []
        backdated: list[tuple[Pending, TxIndex, TransactionRow]] = []
        selecting: list[tuple[Pending, TxIndex, TransactionRow]] = []
        # In-order transactions without named lots are added in one call.
        bulk: list[tuple[Pending, TxIndex, TransactionRow]] = []
        overlay = Overlay()

        def add_bulk() -> None:
            if bulk:
                book.add([(index, item.valuation) for item, index, _ in bulk])
                admitted.extend(bulk)
                bulk.clear()
                overlay.balances.clear()
                overlay.last_ms.clear()

        for entry in fresh:
            item, index, _ = entry
            if not allow_negative:
                fit = book.fits_in_order(index.legs, index.time_ms, overlay)
                if fit is False:
                    backdated.append(entry)
                    continue
                if isinstance(fit, Shortfall):
                    item.future.set_exception(shortfall_error(fit, item.prefix))
                    continue
            if any(leg.selections for leg in index.legs):
                add_bulk()  # a named lot may be bought earlier in this batch
                if not self._add(book, entry):
                    continue
                admitted.append(entry)
                selecting.append(entry)
            else:
                bulk.append(entry)
        add_bulk()

        if backdated:
            added = [e for e in backdated if self._add(book, e)]
            if book.first_negative() is None:
                admitted.extend(added)
                selecting.extend(e for e in added if any(leg.selections for leg in e[1].legs))
            else:
                # Somebody in here oversells at some point: find out who, one at a time.
                for e in added:
                    book.remove(e[1].seq)
                for e in added:
                    if not self._add(book, e):
                        continue
                    short = book.first_negative()
                    if short is not None:
                        book.remove(e[1].seq)
                        e[0].future.set_exception(shortfall_error(short, e[0].prefix))
                        continue
                    admitted.append(e)
                    if any(leg.selections for leg in e[1].legs):
                        selecting.append(e)

        if selecting:
            admitted = self._check_selections(state, admitted, selecting)
        admitted.sort(key=lambda e: e[1].seq)
        return admitted

    def _add(self, book: Book, entry: tuple[Pending, TxIndex, TransactionRow]) -> bool:
        item, index, _ = entry
        try:
            book.add([(index, item.valuation)])
        except UnknownLot as err:
            item.future.set_exception(
                _lot_error(item, err.lot_id, "is not a lot of this portfolio")
            )
            return False
        except ValueError as err:  # core_rs refused an amount: cannot happen after parsing
            item.future.set_exception(InvalidArgument(item.prefix, str(err)))
            return False
        return True

    def _check_selections(
        self,
        state: PortfolioState,
        admitted: list[tuple[Pending, TxIndex, TransactionRow]],
        selecting: list[tuple[Pending, TxIndex, TransactionRow]],
    ) -> list[tuple[Pending, TxIndex, TransactionRow]]:
        """Named lots must be open, in the right pool, with enough left: ask a replay."""
        book = state.book
        p = state.portfolio
        by_seq = {e[1].seq: e for e in selecting}
        rejected: set[int] = set()
        for _ in range(len(selecting) + 1):
            try:
                book.replay(replay_methods(p), p.pool == 2, p.allow_negative)
                break
            except ValueError as err:
                match = _TX_IN_ERROR.search(str(err))
                seq = int(match.group(1)) if match else None
                if seq is None or seq not in by_seq or seq in rejected:
                    # A lot named by an older transaction broke: refuse the whole set.
                    for e in selecting:
                        if e[1].seq not in rejected:
                            book.remove(e[1].seq)
                            rejected.add(e[1].seq)
                            e[0].future.set_exception(FailedPrecondition(f"{e[0].prefix}: {err}"))
                    break
                entry = by_seq[seq]
                book.remove(seq)
                rejected.add(seq)
                entry[0].future.set_exception(
                    InvalidArgument(f"{entry[0].prefix}.lots", _lot_reason(str(err)))
                )
        return [e for e in admitted if e[1].seq not in rejected]


def _lot_reason(message: str) -> str:
    return _TX_IN_ERROR.sub("", message, count=1).lstrip(": ").strip() or message


def _lot_error(item: Pending, lot_id: str, reason: str) -> InvalidArgument:
    index = next((i for i, (lot, _) in enumerate(item.content.lots) if lot == lot_id), 0)
    return InvalidArgument(f"{item.prefix}.lots[{index}].lot_id", f"{lot_id} {reason}")


def _conflict(item: Pending) -> ServiceError:
    return conflict_error(item.prefix, item.client_id)


def conflict_error(prefix: str, client_id: str) -> ServiceError:
    return AlreadyExists(
        f"{prefix}: client_transaction_id {client_id!r} was already used for a "
        "different transaction; retries must send the same content (or use a new id)"
    )


def leg_rows(row: TransactionRow, legs: Sequence[Leg]) -> list[LegRow]:
    return [
        LegRow(
            portfolio_id=row.portfolio_id,
            seq=row.seq,
            leg=leg.leg,
            kind=leg.kind,
            time_ms=row.time_ms,
            asset=leg.asset,
            wallet=leg.wallet,
            to_wallet=leg.to_wallet,
            qty=fmt(leg.qty),
            amount=None if leg.amount is None else fmt(leg.amount),
            selections=selections_text(leg),
        )
        for leg in legs
    ]
