"""Group commit of the live market to the store.

Ticks change the engine in memory; the persister takes every candle change
not yet written (from CandleChanges, which also feeds StreamCandles) and
writes it in one transaction on the store's writer thread. `commit()` waits
for a transaction that started after the call, so PublishTicks acknowledges
only what is on disk, and concurrent publishers share one transaction instead
of queueing one each. A background cycle commits at least every
`interval_ms` for the simulator's ticks.
"""

import asyncio
import contextlib
import time

import numpy as np
import structlog

from services.common.metrics import histogram
from services.common.validation import now_ms
from services.pricing.candle_changes import CandleChanges, CandleRows, merge_takes
from services.pricing.feed import QuoteFeed
from services.pricing.intervals import INTERVAL_MS
from services.pricing.market import Market
from services.pricing.store import MarketStore

log = structlog.get_logger(__name__)

# One observation per committed transaction: its count is the commit count.
COMMIT_SECONDS = histogram(
    "marketmesh_pricing_commit_duration_seconds",
    "Time from taking the dirty candles to the end of the store transaction.",
    ("service",),
).labels("pricing")


class Persister:
    def __init__(
        self,
        market: Market,
        feed: QuoteFeed,
        store: MarketStore,
        *,
        interval_ms: int,
        changes: CandleChanges | None = None,
    ):
        self.market = market
        # Shared with the candle feed in the app; alone (benchmarks), the
        # persister is the engine's only consumer of candle changes.
        self.changes = (
            CandleChanges(market.engine.take_dirty_candles) if changes is None else changes
        )
        self.feed = feed
        self.store = store
        self.interval_s = interval_ms / 1000
        self._wake = asyncio.Event()
        self._next: asyncio.Future[None] | None = None
        # Dirty candles whose write failed, written again (first) next cycle.
        self._carry: list[CandleRows] = []
        self.commits = 0

    async def commit(self) -> None:
        """Return once everything ingested before this call is committed."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        future = self._next
        self._wake.set()
        await asyncio.shield(future)

    async def _cycle(self) -> None:
        future, self._next = self._next, None
        started = time.perf_counter()
        takes = [*self._carry, *self.changes.for_persister()]
        # One transaction for every take: the newest state of each candle.
        part = merge_takes(takes, len(INTERVAL_MS)) if takes else None
        try:
            # Nothing changed: still one (empty) write, for the feed sequence.
            sids = np.unique(part["symbol_id"]) if part is not None else None
            quotes = self._quote_rows(sids) if sids is not None else []
            await self.store.awrite_batch(
                part, INTERVAL_MS, quotes, {"feed_sequence": str(self.feed.sequence)}
            )
            self._carry = []
            self.commits += 1
            COMMIT_SECONDS.observe(time.perf_counter() - started)
        except Exception as exc:
            self._carry = [part] if part is not None else []
            log.error("commit failed; will retry", error=str(exc))
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(None)

    def _quote_rows(self, sids: np.ndarray) -> list[tuple[int, float, int, int]]:
        cols = self.market.quote_columns(sids, now_ms())
        keep = cols.has_price
        return list(
            zip(
                cols.sids[keep].tolist(),
                cols.price[keep].tolist(),
                cols.time_ms[keep].tolist(),
                cols.sequence[keep].tolist(),
                strict=True,
            )
        )

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()
            await self._cycle()

    async def flush(self) -> None:
        """Final commit at shutdown."""
        await self._cycle()
