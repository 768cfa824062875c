"""The portfolio service's moving parts: storage, market link, books, writes.

Portfolios belong to owners; every method takes the owner from the call's
bearer token and a portfolio of another owner is NOT_FOUND. Each portfolio's
ledger lives in a :class:`~services.portfolio.book.Book` built from the
database on first use and kept in step by the
:class:`~services.portfolio.ledger_writer.LedgerWriter`; books are evicted
least-recently-used past ``MM_PORTFOLIO_CACHE_LEGS`` legs in memory.

One process writes a database (the books and the oversell checks are in
memory); run one portfolio process per database.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import structlog

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.common.validation import now_ms
from services.portfolio.book import Book, TxIndex
from services.portfolio.db.repository import PortfolioRow, Repository, TransactionRow
from services.portfolio.ledger_writer import (
    LedgerWriter,
    Outcome,
    Pending,
    PortfolioState,
    leg_rows,
    shortfall_error,
)
from services.portfolio.legs import build_legs, market_needs
from services.portfolio.market import MarketLink
from services.portfolio.methods import replay_methods
from services.portfolio.settings import PortfolioSettings
from services.portfolio.transactions import (
    TxContent,
    content_hash,
    encode,
    from_body,
    to_body,
    with_market,
)

log = structlog.get_logger(__name__)

BASE_CURRENCY = "USD"


def new_portfolio_id() -> str:
    return "pf_" + secrets.token_hex(12)


class PortfolioApp:
    def __init__(self, settings: PortfolioSettings) -> None:
        self.settings = settings
        self.repository: Repository | None = None
        self.writer: LedgerWriter | None = None
        self.market = MarketLink(
            settings.pricing_address,
            settings.signals_address,
            BASE_CURRENCY,
            settings.market_timeout_s,
            settings.upstream_token,
        )
        self._states: OrderedDict[str, PortfolioState] = OrderedDict()
        self._loading: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        self.repository = await Repository.open(self.settings.resolved_database_url)
        self.writer = LedgerWriter(self.repository, self.settings.max_batch)
        try:
            assets = await self.market.refresh_assets()
            log.info("asset list loaded from pricing", assets=len(assets))
        except Unavailable as err:
            # Not fatal: reads work without pricing; writes will ask again.
            log.warning("pricing unreachable at start-up", reason=err.message)

    async def stop(self) -> None:
        await self.market.close()
        if self.repository is not None:
            await self.repository.close()

    @property
    def repo(self) -> Repository:
        assert self.repository is not None, "start() first"
        return self.repository

    # -- portfolios ---------------------------------------------------------

    async def create_portfolio(self, row: PortfolioRow) -> PortfolioRow:
        await self.repo.create_portfolio(row)
        log.info("portfolio created", portfolio=row.id, owner=row.owner)
        return row

    async def portfolio(
        self, owner: str, portfolio_id: str, *, with_count: bool = False
    ) -> PortfolioRow:
        pid = portfolio_id.strip()
        if not pid:
            raise InvalidArgument("portfolio_id", "is required")
        state = self._states.get(pid)
        if state is not None and not with_count and not state.stale:
            # Loaded books carry their portfolio row (kept current by updates): no query.
            if state.portfolio.owner != owner:
                raise NotFound(f"portfolio {pid!r} not found")
            return state.portfolio
        row = await self.repo.get_portfolio(owner, pid, with_count=with_count)
        if row is None:
            raise NotFound(f"portfolio {pid!r} not found")
        return row

    async def update_portfolio(self, row: PortfolioRow) -> PortfolioRow:
        state = self._states.get(row.id)
        if state is not None:
            async with state.exclusive(fresh=False):
                await self.repo.update_portfolio(row)
                state.portfolio = row
                state.book._changed()
        else:
            await self.repo.update_portfolio(row)
        return row

    async def delete_portfolio(self, owner: str, portfolio_id: str) -> None:
        row = await self.portfolio(owner, portfolio_id)
        state = self._states.pop(row.id, None)
        if state is not None:
            async with state.exclusive(fresh=False):
                await self.repo.delete_portfolio(owner, row.id)
        else:
            await self.repo.delete_portfolio(owner, row.id)
        log.info("portfolio deleted", portfolio=row.id, owner=owner)

    # -- books ----------------------------------------------------------------

    async def state(self, portfolio: PortfolioRow) -> PortfolioState:
        """The portfolio's book, loaded from the database on first use."""
        state = self._states.get(portfolio.id)
        if state is not None and state.stale:
            log.warning("book out of step with the database; reloading", portfolio=portfolio.id)
            self._states.pop(portfolio.id, None)
            state = None
        if state is None:
            lock = self._loading.setdefault(portfolio.id, asyncio.Lock())
            async with lock:
                state = self._states.get(portfolio.id)
                if state is None:
                    state = await self._load(portfolio)
                    self._states[portfolio.id] = state
                    self._evict()
            self._loading.pop(portfolio.id, None)
        else:
            state.portfolio = portfolio
        self._states.move_to_end(portfolio.id)
        return state

    async def _load(self, portfolio: PortfolioRow) -> PortfolioState:
        # The database's next_seq, not the caller's copy of the row: a book is
        # rebuilt after writes the caller's row predates.
        fresh = await self.repo.get_portfolio(portfolio.owner, portfolio.id)
        if fresh is None:
            raise NotFound(f"portfolio {portfolio.id!r} not found")
        book = Book(portfolio.id)
        count, next_seq = 0, fresh.next_seq
        async for rows in self.repo.load_book_rows(portfolio.id):
            if len(rows) > 10_000:
                await asyncio.to_thread(book.load, rows)
            else:
                book.load(rows)
            count += len(rows)
            next_seq = max(next_seq, rows[-1][0] + 1)
        log.info("book loaded", portfolio=portfolio.id, transactions=count, legs=book.leg_count)
        return PortfolioState(portfolio=portfolio, book=book, next_seq=next_seq)

    def _evict(self) -> None:
        total = sum(s.book.leg_count for s in self._states.values())
        while total > self.settings.cache_legs and len(self._states) > 1:
            pid, state = next(iter(self._states.items()))
            if state.busy:
                break
            self._states.pop(pid)
            total -= state.book.leg_count
            log.info("book evicted", portfolio=pid, legs=state.book.leg_count)

    # -- writes -----------------------------------------------------------------

    async def valued(self, tx: TxContent) -> TxContent:
        """``tx`` with the market prices its legs need (None where pricing has none)."""
        needs = market_needs(tx, BASE_CURRENCY)
        if not needs:
            return tx
        market: dict[str, Decimal | None] = {}
        for key, asset in needs:
            try:
                market[key] = await self.market.price_at(asset, tx.time_ms)
            except Unavailable as err:
                # Recorded now, valued later: reports retry and fail loudly if still unknown.
                log.warning(
                    "price lookup failed; valuation left unknown", asset=asset, reason=err.message
                )
                market[key] = None
        return with_market(tx, market)

    def pending(self, client_id: str, tx: TxContent, prefix: str = "transaction") -> Pending:
        legs, valuation = build_legs(tx, BASE_CURRENCY)
        digest, body = encode(tx)
        return Pending(client_id, digest, tx, legs, valuation, body, prefix)

    async def record(self, portfolio: PortfolioRow, client_id: str, tx: TxContent) -> Outcome:
        state = await self.state(portfolio)
        item = self.pending(client_id, await self.valued(tx))
        assert self.writer is not None
        await self.writer.submit(state, [item])
        return item.future.result()

    async def record_many(self, portfolio: PortfolioRow, items: Sequence[Pending]) -> None:
        state = await self.state(portfolio)
        assert self.writer is not None
        await self.writer.submit(state, items)

    async def transaction(self, portfolio: PortfolioRow, tx_id: str) -> TransactionRow:
        row = await self.repo.get_transaction(portfolio.id, tx_id.strip())
        if row is None:
            raise NotFound(f"transaction {tx_id!r} not found in portfolio {portfolio.id}")
        return row

    async def amend(self, portfolio: PortfolioRow, tx_id: str, tx: TxContent) -> TransactionRow:
        old = await self.transaction(portfolio, tx_id)
        tx = await self.valued(tx)
        legs, valuation = build_legs(tx, BASE_CURRENCY)
        state = await self.state(portfolio)
        async with state.exclusive():
            book = state.book
            previous = book.remove(old.seq)
            index = TxIndex(old.seq, old.id, tx.kind, tx.time_ms, tuple(legs), tx.income_kind)
            new_row = replace(
                old,
                content_hash=content_hash(tx),
                kind=tx.kind,
                time_ms=tx.time_ms,
                asset=tx.asset,
                wallet=tx.wallet,
                to_asset=tx.to_asset,
                to_wallet=tx.to_wallet,
                body=to_body(tx),
                valuation=valuation,
            )
            try:
                book.add([(index, valuation)])
                self._check_consistent(state, "transaction")
                await self.repo.write_batch(
                    portfolio.id, state.next_seq, [], replaces=[(new_row, leg_rows(new_row, legs))]
                )
            except BaseException:
                book.remove(old.seq)
                if previous is not None:
                    book.add([(previous, old.valuation)])
                raise
        log.info("transaction amended", portfolio=portfolio.id, transaction=old.id)
        return new_row

    async def delete(self, portfolio: PortfolioRow, tx_id: str) -> None:
        old = await self.transaction(portfolio, tx_id)
        state = await self.state(portfolio)
        async with state.exclusive():
            book = state.book
            previous = book.remove(old.seq)
            try:
                self._check_consistent(state, "transaction_id")
                await self.repo.write_batch(portfolio.id, state.next_seq, [], deletes=[old.seq])
            except BaseException:
                if previous is not None:
                    book.add([(previous, old.valuation)])
                raise
        log.info("transaction deleted", portfolio=portfolio.id, transaction=old.id)

    def _check_consistent(self, state: PortfolioState, what: str) -> None:
        """After an amend or delete: no wallet below zero, every named lot still there."""
        p = state.portfolio
        if not p.allow_negative:
            short = state.book.first_negative()
            if short is not None:
                raise FailedPrecondition(
                    shortfall_error(short, what).message
                    + f" (at {state.book.tx_id(short.seq)}, which depends on it)"
                )
        try:
            state.book.replay(replay_methods(p), p.pool == 2, p.allow_negative)
        except ValueError as err:
            raise FailedPrecondition(f"{what}: a later transaction depends on it: {err}") from None

    async def revalue_unknown(self, state: PortfolioState, seqs: Sequence[int]) -> list[int]:
        """Try pricing again for transactions recorded without a market price.

        Returns the seqs still unknown. Runs under the portfolio's lock by the caller.
        """
        rows = await self.repo.transactions_by_seq(state.portfolio.id, list(seqs))
        updates = []
        still: list[int] = []
        for seq in seqs:
            row = rows.get(seq)
            if row is None:
                continue
            tx = from_body(row.body)
            tx = replace(tx, market={})
            tx = await self._valued_strict(tx)
            legs, valuation = build_legs(tx, BASE_CURRENCY)
            if valuation == "unknown":
                still.append(seq)
                continue
            new_row = replace(row, body=to_body(tx), valuation=valuation)
            updates.append((new_row, legs))
        if updates:
            await self.repo.set_valuations(
                state.portfolio.id,
                [(r.seq, r.body, r.valuation, leg_rows(r, legs)) for r, legs in updates],
            )
            for new_row, legs in updates:
                previous = state.book.remove(new_row.seq)
                assert previous is not None
                state.book.add([(previous.with_legs(tuple(legs)), new_row.valuation)])
            log.info(
                "transactions valued from market history",
                portfolio=state.portfolio.id,
                count=len(updates),
            )
        return still

    async def _valued_strict(self, tx: TxContent) -> TxContent:
        needs = market_needs(tx, BASE_CURRENCY)
        market: dict[str, Decimal | None] = {}
        for key, asset in needs:
            market[key] = await self.market.price_at(asset, tx.time_ms)  # Unavailable propagates
        return with_market(tx, market)


def portfolio_row(
    owner: str,
    name: str,
    method: int,
    changes: tuple[tuple[int, int], ...],
    pool: int,
    allow_negative: bool,
) -> PortfolioRow:
    now = now_ms()
    return PortfolioRow(
        id=new_portfolio_id(),
        owner=owner,
        name=name,
        base_currency=BASE_CURRENCY,
        cost_basis_method=method,
        method_changes=changes,
        pool=pool,
        allow_negative=allow_negative,
        create_ms=now,
        update_ms=now,
        next_seq=1,
        transaction_count=0,
    )
