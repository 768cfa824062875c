"""The read side: replays of a book turned into holdings, gains, income and tax rows.

Each report takes the portfolio's lock only while it replays (core_rs, off
the event loop) and reads the immutable result afterwards. A report that
meets a transaction whose market value is unknown first asks pricing again;
if the value is still unknown it fails with FAILED_PRECONDITION naming the
transactions, never values them at zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

import core_rs
from services.common.errors import FailedPrecondition, Unavailable
from services.portfolio import gains, income
from services.portfolio.app import PortfolioApp
from services.portfolio.book import Book
from services.portfolio.db.repository import PortfolioRow
from services.portfolio.holdings import OpenLot, open_lots
from services.portfolio.ledger_writer import PortfolioState
from services.portfolio.methods import PER_WALLET, replay_methods

SHOWN_UNKNOWN = 5
# Holdings retry pricing for lots of unknown cost at most this often.
REVALUE_EVERY_S = 60.0


def unknown_error(book: Book, seqs: list[int], what: str) -> FailedPrecondition:
    ids = ", ".join(book.tx_id(s) for s in seqs[:SHOWN_UNKNOWN])
    more = f" and {len(seqs) - SHOWN_UNKNOWN} more" if len(seqs) > SHOWN_UNKNOWN else ""
    return FailedPrecondition(
        f"{what} needs the market value of transaction {ids}{more}, which pricing does not "
        "have for that time; amend them with a price or value (nothing is valued at zero)"
    )


async def replay_of(
    state: PortfolioState, override: int = 0, until_ms: int | None = None
) -> core_rs.Replay:
    p = state.portfolio
    return await asyncio.to_thread(
        state.book.replay,
        replay_methods(p, override),
        p.pool == PER_WALLET,
        p.allow_negative,
        until_ms,
    )


@dataclass(frozen=True)
class GainsResult:
    book: Book
    replay: core_rs.Replay
    arrays: dict[str, np.ndarray]
    groups: gains.Groups
    idx: np.ndarray


async def realized(
    app: PortfolioApp, portfolio: PortfolioRow, window: gains.Window, override: int, what: str
) -> GainsResult:
    state = await app.state(portfolio)
    async with state.exclusive():
        for attempt in range(2):
            replay = await replay_of(state, override)
            arrays = replay.match_arrays()
            idx = gains.taxable_rows(arrays, window)
            unknown = gains.unknown_seqs(arrays, idx, state.book)
            if not unknown:
                return GainsResult(
                    state.book, replay, arrays, gains.group_disposals(arrays, idx), idx
                )
            if attempt == 0:
                still = await app.revalue_unknown(state, unknown)
                if still:
                    raise unknown_error(state.book, still, what)
        raise unknown_error(state.book, unknown, what)


async def income_of(
    app: PortfolioApp, portfolio: PortfolioRow, start_ms: int | None, end_ms: int | None
) -> list[income.IncomeLine]:
    state = await app.state(portfolio)
    async with state.exclusive():
        unknown = income.unknown_income(state.book, start_ms, end_ms)
        if unknown:
            still = await app.revalue_unknown(state, unknown)
            if still:
                raise unknown_error(state.book, still, "the income report")
        return income.income_lines(state.book, start_ms, end_ms)


async def lots_of(
    app: PortfolioApp,
    portfolio: PortfolioRow,
    *,
    asset: str | None = None,
    wallet: str | None = None,
    as_of_ms: int | None = None,
) -> tuple[list[OpenLot], Book, core_rs.Replay]:
    """The open lots now, or as of a past time (the legs up to it replayed)."""
    state = await app.state(portfolio)
    async with state.exclusive():
        if state.book.unknown and time.monotonic() - state.revalued_at > REVALUE_EVERY_S:
            # Lots with an unknown cost: pricing may have learned the price since.
            state.revalued_at = time.monotonic()
            with contextlib.suppress(Unavailable):
                await app.revalue_unknown(state, sorted(state.book.unknown))
        replay = await replay_of(state, until_ms=as_of_ms)
        book = state.book
    if portfolio.pool != PER_WALLET:
        wallet = None
    return open_lots(replay, book, asset=asset, wallet=wallet), book, replay


async def tax_rows(
    result: GainsResult, chunk: int = 1_000
) -> AsyncIterator[list[gains.DisposalRow]]:
    for page in gains.rows_for_all(result.groups, chunk):
        yield gains.disposal_rows(result.replay, result.arrays, result.groups, page, result.book)
        await asyncio.sleep(0)  # let other calls run between chunks


def all_time_realized(book: Book, replay: core_rs.Replay) -> Decimal:
    """The realized gain of every known disposal, once per replay: holdings
    are read far more often than the ledger changes."""
    cached = book.realized_for
    if cached is not None and cached[0] is replay:
        return cached[1]
    arrays = replay.match_arrays()
    idx = gains.taxable_rows(arrays, gains.Window())
    idx = idx[~arrays["unknown"][idx]]
    _, _, total = gains.totals(replay, idx)
    value = Decimal(total.gain)
    book.realized_for = (replay, value)
    return value
