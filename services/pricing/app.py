"""The pricing service's moving parts and their life cycle: the store, the
live market, the quote and candle feeds, the persister, the simulator and the
close sweep.

Start-up order: open the store, give every asset a stable id, backfill history
for assets that have none, restore the engine from the store, then start the
background tasks. Until that is done `ready` is False (health NOT_SERVING and
calls get UNAVAILABLE)."""

import asyncio
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import structlog

from services.common.config import ConfigError
from services.common.errors import Unavailable
from services.common.pagination import init_page_tokens
from services.common.validation import now_ms
from services.pricing.assets import AssetInfo, build_universe
from services.pricing.candle_changes import CandleChanges
from services.pricing.candle_feed import CandleFeed
from services.pricing.candles import CandleArrays
from services.pricing.feed import RESTART_SEQUENCE_GAP, QuoteFeed
from services.pricing.history import generate_history
from services.pricing.intervals import FINEST_MS, INDEX_BY_MS, INTERVAL_MS, NAME_BY_MS
from services.pricing.market import DAY_MS, Market
from services.pricing.persister import Persister
from services.pricing.settings import PricingSettings
from services.pricing.simulator import MarketSimulator
from services.pricing.store import MarketStore
from services.pricing.universe import Universe

log = structlog.get_logger(__name__)

DB_FILE = "pricing.sqlite3"
SIMULATOR_STEP_S = 0.05
SWEEP_S = 1.0
PRUNE_EVERY_S = 3600.0
FINE_INTERVALS_MS = (60_000, 300_000, 900_000)


class PricingApp:
    def __init__(self, settings: PricingSettings) -> None:
        self.settings = settings
        self.ready = False
        self._tasks: list[asyncio.Task[None]] = []
        self.store: MarketStore | None = None
        self._market: Market | None = None
        self._feed: QuoteFeed | None = None
        self._candle_feed: CandleFeed | None = None
        self._changes: CandleChanges | None = None
        self._persister: Persister | None = None

    # Accessors used by the servicer: UNAVAILABLE until start-up is done.
    def _check_ready(self) -> None:
        if not self.ready:
            raise Unavailable("pricing is starting up (loading market history); retry shortly")

    @property
    def market(self) -> Market:
        self._check_ready()
        assert self._market is not None
        return self._market

    @property
    def feed(self) -> QuoteFeed:
        self._check_ready()
        assert self._feed is not None
        return self._feed

    @property
    def candle_feed(self) -> CandleFeed:
        self._check_ready()
        assert self._candle_feed is not None
        return self._candle_feed

    @property
    def persister(self) -> Persister:
        self._check_ready()
        assert self._persister is not None
        return self._persister

    @property
    def candle_store(self) -> MarketStore:
        self._check_ready()
        assert self.store is not None
        return self.store

    async def start(self) -> None:
        settings = self.settings
        started = time.monotonic()
        data_dir: Path = settings.common.data_dir
        infos = build_universe(settings.universe_size, settings.seed)
        unknown = sorted(set(settings.sim_exclude) - {a.symbol for a in infos})
        if unknown:
            raise ConfigError(
                "MM_SIM_EXCLUDE",
                ",".join(settings.sim_exclude),
                f"symbols of the universe; unknown: {', '.join(unknown)}",
            )
        init_page_tokens(data_dir)
        self.store = store = MarketStore(data_dir / DB_FILE)
        sid_map = await store.on_writer(store.assign_sids, [a.symbol for a in infos])
        universe = Universe.build(infos, sid_map)
        self._market = market = Market(universe)

        stored_quotes = {q.sid: q for q in await store.on_writer(store.load_quotes)}
        missing = [a for a in infos if sid_map[a.symbol] not in stored_quotes]
        if missing and settings.backfill_days:  # 0: start from an empty market
            await self._backfill(missing, sid_map)
            stored_quotes = {q.sid: q for q in await store.on_writer(store.load_quotes)}
        await self._restore(universe, stored_quotes)

        persisted_seq = int(await store.on_writer(store.get_meta, "feed_sequence") or 0)
        # A fresh feed starts at 1: from_sequence=0 means "no position", so a
        # client holding the first snapshot's sequence can still resume.
        start_seq = persisted_seq + RESTART_SEQUENCE_GAP if persisted_seq else 1
        self._feed = feed = QuoteFeed(
            market,
            batch_ms=settings.stream_batch_ms,
            heartbeat_s=settings.stream_heartbeat_s,
            start_sequence=start_seq,
        )
        market.engine.take_dirty_quotes()  # restored state is not news
        feed.refresh_entries(universe.active_sids, now_ms())
        self._changes = changes = CandleChanges(market.engine.take_dirty_candles)
        self._candle_feed = candle_feed = CandleFeed(market, feed, changes)
        candle_feed.load_current()
        feed.add_part(candle_feed)
        self._persister = persister = Persister(
            market, feed, store, interval_ms=settings.commit_interval_ms, changes=changes
        )
        self._spawn(feed.run(), "feed")
        self._spawn(persister.run(), "persister")
        self._spawn(self._sweep(), "sweep")
        if settings.fine_retention_days:
            await self.prune_fine_candles()  # before ready: reads never see what goes
            self._spawn(self._prune(), "prune")
        if settings.feed == "simulator":
            excluded = set(settings.sim_exclude)
            simulated = [a for a in infos if a.symbol not in excluded]
            self._spawn(self._simulate(simulated, sid_map, stored_quotes), "simulator")
        self.ready = True
        log.info(
            "pricing ready",
            assets=len(infos),
            backfilled=len(missing) if settings.backfill_days else 0,
            feed=settings.feed,
            sequence=feed.sequence,
            seconds=round(time.monotonic() - started, 2),
        )

    def _spawn(self, coro, name: str) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task died", task=task.get_name(), error=repr(task.exception()))

    async def stop(self) -> None:
        self.ready = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        if self._persister is not None:
            try:
                await self._persister.flush()
            except Exception as exc:  # shutting down anyway; say what was lost
                log.error("final commit failed", error=str(exc))
        if self.store is not None:
            self.store.close()
        log.info("pricing stopped")

    # -- start-up ---------------------------------------------------------

    async def _backfill(self, assets: list[AssetInfo], sid_map: dict[str, int]) -> None:
        assert self.store is not None
        settings = self.settings
        end = now_ms()
        started = time.monotonic()
        log.info(
            "backfilling history",
            assets=len(assets),
            coarse_days=settings.backfill_days,
            fine_days=settings.backfill_fine_days,
        )
        rows = 0
        for history in generate_history(
            assets,
            seed=settings.seed,
            end_ms=end,
            coarse_days=settings.backfill_days,
            fine_days=settings.backfill_fine_days,
        ):
            sid = sid_map[assets[history.symbol_idx].symbol]
            for interval_ms, arrays in history.candles.items():
                rows += len(arrays)
                await self.store.ainsert_history(sid, interval_ms, arrays)
            await self.store.awrite_batch(
                None, INTERVAL_MS, [(sid, history.last_price, history.last_time_ms, 0)], {}
            )
        log.info("history backfilled", candles=rows, seconds=round(time.monotonic() - started, 2))

    async def _restore(self, universe: Universe, stored_quotes: dict) -> None:  # type: ignore[type-arg]
        assert self.store is not None and self._market is not None
        engine = self._market.engine
        store = self.store
        window_start = now_ms() - DAY_MS - FINEST_MS
        far_future = 2**62

        def load() -> list[tuple[int, int, CandleArrays]]:
            loaded = []
            for sid in universe.active_sids.tolist():
                for interval_ms in INTERVAL_MS:
                    since = window_start if interval_ms == FINEST_MS else far_future
                    loaded.append(
                        (sid, interval_ms, store.load_candles_since(sid, interval_ms, since))
                    )
            return loaded

        for sid, interval_ms, rows in await store.on_writer(load):
            if len(rows):
                engine.restore_candles(
                    sid,
                    INDEX_BY_MS[interval_ms],
                    rows.open_ms,
                    rows.open,
                    rows.high,
                    rows.low,
                    rows.close,
                    rows.volume,
                    rows.quote_volume,
                    rows.trades,
                    rows.closed,
                )
        for sid, quote in stored_quotes.items():
            if sid < universe.size:
                engine.set_last(sid, quote.price, quote.time_ms)
                self._market.last_seq[sid] = quote.sequence
        log.info(
            "engine restored",
            symbols=len(universe.active_sids),
            intervals=[NAME_BY_MS[ms] for ms in INTERVAL_MS],
        )

    # -- background tasks -------------------------------------------------

    async def prune_fine_candles(self) -> int:
        """Apply MM_FINE_RETENTION_DAYS once: 1m/5m/15m candles are the bulk
        of the store (1,440 a day per asset) and nobody pages that far back at
        that resolution; 1h/4h/1d are kept."""
        assert self.store is not None
        cutoff = now_ms() - self.settings.fine_retention_days * DAY_MS
        deleted = await self.store.on_writer(self.store.prune_closed, FINE_INTERVALS_MS, cutoff)
        if deleted:
            log.info(
                "pruned fine candles",
                deleted=deleted,
                retention_days=self.settings.fine_retention_days,
            )
        return int(deleted)

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            await self.prune_fine_candles()

    def after_ingest(self) -> None:
        """Call after ticks are applied: a candle they closed is published by
        an early cut instead of waiting for the feed's cadence."""
        assert self._changes is not None and self._feed is not None
        if self._changes.take_closed():
            self._feed.request_cut()

    async def _sweep(self) -> None:
        """Close candles whose time is up even when no later tick comes."""
        assert self._market is not None and self._feed is not None
        grace = self.settings.candle_close_grace_ms
        while True:
            if self._market.engine.close_expired(now_ms() - grace):
                self._feed.request_cut()
            await asyncio.sleep(SWEEP_S)

    async def _simulate(
        self,
        infos: list[AssetInfo],
        sid_map: dict[str, int],
        stored_quotes: dict,  # type: ignore[type-arg]
    ) -> None:
        assert self._market is not None
        market = self._market
        sid_of = np.asarray([sid_map[a.symbol] for a in infos], dtype=np.int32)
        start_prices = np.asarray(
            [
                stored_quotes[sid].price if sid in stored_quotes else a.reference_price
                for sid, a in zip(sid_of.tolist(), infos, strict=True)
            ],
            dtype=np.float64,
        )
        start = now_ms()
        sim = MarketSimulator(
            infos, seed=self.settings.seed, start_prices=start_prices, start_ms=start
        )
        rate = self.settings.sim_ticks_per_second
        last = time.monotonic()
        carry = 0.0
        while True:
            await asyncio.sleep(SIMULATOR_STEP_S)
            now = time.monotonic()
            carry += (now - last) * rate
            last = now
            n = int(carry)
            if n == 0:
                continue
            carry -= n
            batch = sim.step(now_ms(), n)
            market.ingest(
                sid_of[batch.symbol_idx], batch.times_ms, batch.prices, batch.volumes, now_ms()
            )
            self.after_ingest()
