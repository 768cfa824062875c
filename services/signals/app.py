"""The signals service's moving parts and their life cycle.

Start-up: open the store, restore the last state snapshot (universe, indicator
books, metrics, feed sequence, regimes, alerts), then follow pricing in the
background. The server answers from the restored state at once (marked stale
until pricing is heard from). Following pricing:

1. ListAssets -> the universe (new symbols get new book rows);
2. StreamCandles from the saved sequence. A resume brings exactly the candles
   missed; a snapshot (first start, or pricing no longer knows the sequence)
   makes us re-read history with GetCandles: the full history for symbols we
   have never graded (universe-wide recomputation with the core_rs batch API),
   and only the gap for the others (replayed candle by candle, so flips that
   happened while we were away are still reported);
3. every closed candle updates the incremental state and the closed grade,
   direction and events; forming candles are read with `peek` by the live
   loop, which also evaluates alerts.

Pricing down or restarting: the follower reconnects with backoff and resumes
from its sequence; meanwhile every answer carries stale = true.
"""

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import structlog

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.config import ConfigError
from services.common.errors import Unavailable
from services.common.intervals import ENUM_BY_NAME, MS_BY_ENUM
from services.common.validation import ms_to_timestamp, now_ms
from services.signals import alerts as alert_rules
from services.signals import breadth as breadth_mod
from services.signals.book import ClosedUpdate, FlipLog, IntervalBook, MarketContext
from services.signals.candle_block import CandleBlock, blocks_by_interval, from_histories
from services.signals.candles import CandleSeries
from services.signals.events import EventHub
from services.signals.market_metrics import MetricsBook, MetricsSimulator
from services.signals.pricing_link import (
    CandleBatch,
    CandleFollower,
    PricingLink,
)
from services.signals.settings import SignalsSettings
from services.signals.signal_events import EventRow, alert_event, closed_events, regime_event
from services.signals.signal_view import full_signal
from services.signals.store import FlipRow, SignalsStore
from services.signals.universe import SignalsUniverse
from services.signals.weights import GradeWeights

log = structlog.get_logger(__name__)

DB_FILE = "signals.sqlite3"
STATE_VERSION = 1
METRICS_STEP_S = 5.0
RECENT_FLIPS = 10
SIGNAL_CACHE_MAX = 20_000


@dataclass
class Connection:
    connected: bool = False
    # Monotonic time of the last message from pricing (0: never).
    last_heard: float = 0.0
    reason: str = "not connected to pricing yet"


class SignalsApp:
    def __init__(self, settings: SignalsSettings) -> None:
        self.settings = settings
        try:
            self.weights = GradeWeights.from_override(settings.weights)
        except ValueError as err:
            raise ConfigError("MM_SIGNAL_WEIGHTS", settings.weights, str(err)) from None
        self.intervals = [ENUM_BY_NAME[name] for name in settings.intervals]
        self.universe = SignalsUniverse()
        self.books: dict[int, IntervalBook] = {}
        self.regimes: dict[int, int] = {i: signals_pb2.REGIME_UNSPECIFIED for i in self.intervals}
        self.sector_regimes: dict[int, dict[str, int]] = {i: {} for i in self.intervals}
        self.metrics = MetricsBook(0)
        self.alerts = alert_rules.AlertBook()
        self.sequence = 0
        self.connection = Connection()
        self.synced = asyncio.Event()
        self.store: SignalsStore | None = None
        self.hub: EventHub | None = None
        self.link = PricingLink(settings.pricing_address)
        self._tasks: list[asyncio.Task[None]] = []
        self._live_dirty: dict[int, set[int]] = {i: set() for i in self.intervals}
        self._flips: dict[tuple[int, int], list[signals_pb2.DirectionFlip]] = {}
        # Symbols whose direction has flipped at least once, per interval: a
        # first direction is no flip, so direction_since alone cannot tell.
        self._flipped: dict[int, set[str]] = {i: set() for i in self.intervals}
        self._contexts: dict[int, MarketContext] = {}
        self._apply_lock = asyncio.Lock()
        # Per interval: sids whose history was empty at a resync, and the
        # open time of their current candle then.
        self._empty_history: dict[int, dict[int, int]] = {}
        # Closed candles applied (ever) and whether the saved state lags them.
        self._closed_applied = 0
        self._unsaved = False
        self._saved_at = -math.inf  # the first closed batch saves at once
        # GetSignal answers by (interval, sid): (expiry on the monotonic clock,
        # the response serialized fresh, and marked stale). Live grades move
        # only once per live regrade, so an answer is reused for that long; a
        # closed candle clears its interval.
        self._signal_cache: dict[int, dict[int, tuple[float, bytes, bytes]]] = {
            i: {} for i in self.intervals
        }

    # -- life cycle -------------------------------------------------------

    async def start(self) -> None:
        data_dir = self.settings.common.data_dir
        self.store = store = SignalsStore(data_dir / DB_FILE)
        self.hub = EventHub(store)
        await self.hub.load()
        await self._restore()
        for interval in self.intervals:
            self._flipped[interval] = set(await store.run(store.flipped_symbols, interval))
        for row in await store.run(store.load_alerts):
            _, owner, body, state = row
            rule = alert_rules.AlertRule(signals_pb2.Alert.FromString(body), owner)
            rule.load_state(state)
            self.alerts.add(rule)
        self._spawn(self._follow(), "follow")
        self._spawn(self._live_loop(), "live")
        self._spawn(self._snapshot_loop(), "snapshot")
        if self.settings.metrics_feed == "simulator":
            self._spawn(self._simulate_metrics(), "metrics-simulator")
        log.info(
            "signals started",
            intervals=self.settings.intervals,
            symbols=self.universe.size,
            sequence=self.sequence,
            pricing=self.settings.pricing_address,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.hub is not None:
            self.hub.close()
        if self.store is not None:
            try:
                await self.save_state()
            except Exception as exc:  # shutting down anyway; say what was lost
                log.error("final state snapshot failed", error=str(exc))
            self.store.close()
        await self.link.close()
        log.info("signals stopped")

    def _spawn(self, coro, name: str) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task died", task=task.get_name(), error=repr(task.exception()))

    # -- state ------------------------------------------------------------

    async def save_state(self) -> None:
        """Write the whole state (books at self.sequence, universe, metrics,
        regimes) in one transaction.

        Serializing 6,000 symbols' books takes a few hundred ms, so it runs
        on a thread (core_rs releases the GIL) while the apply lock keeps
        the books still; reads keep being answered meanwhile."""
        assert self.store is not None
        async with self._apply_lock:
            items = await asyncio.to_thread(self._state_items)
            await self.store.run(self.store.put_state, items)
        self._saved_at = time.monotonic()
        self._unsaved = False

    def _state_items(self) -> dict[str, bytes]:
        items = {
            "version": str(STATE_VERSION).encode(),
            "universe": self.universe.to_bytes(),
            "metrics": self.metrics.to_bytes(),
            "sequence": str(self.sequence).encode(),
            "regimes": json.dumps(
                {"market": self.regimes, "sectors": self.sector_regimes}
            ).encode(),
        }
        for interval, book in self.books.items():
            items[f"book:{interval}"] = book.to_bytes()
        return items

    async def _restore(self) -> None:
        assert self.store is not None
        store = self.store
        version = await store.run(store.get_state, "version")
        if version is None or int(version) != STATE_VERSION:
            for interval in self.intervals:
                self.books[interval] = self._new_book(interval, 0)
            return
        self.universe = SignalsUniverse.from_bytes(
            await store.run(store.get_state, "universe") or b"[]"
        )
        metrics = await store.run(store.get_state, "metrics")
        if metrics:
            self.metrics = MetricsBook.from_bytes(metrics)
        self.sequence = int(await store.run(store.get_state, "sequence") or b"0")
        regimes = json.loads(await store.run(store.get_state, "regimes") or b"{}")
        for key, value in regimes.get("market", {}).items():
            if int(key) in self.regimes:
                self.regimes[int(key)] = int(value)
        for key, value in regimes.get("sectors", {}).items():
            if int(key) in self.sector_regimes:
                self.sector_regimes[int(key)] = {k: int(v) for k, v in value.items()}
        for interval in self.intervals:
            data = await store.run(store.get_state, f"book:{interval}")
            if data:
                book = IntervalBook.from_bytes(data, self.weights)
                if book.n_symbols < self.universe.size:
                    book.add_symbols(self.universe.size - book.n_symbols)
            else:  # a new interval: graded from scratch on the next snapshot
                book = self._new_book(interval, self.universe.size)
            self.books[interval] = book
        log.info("state restored", symbols=self.universe.size, sequence=self.sequence)

    def _new_book(self, interval: int, n: int) -> IntervalBook:
        return IntervalBook(
            n, MS_BY_ENUM[interval], self.weights, confirm_bars=self.settings.confirm_bars
        )

    async def _save_if_due(self) -> None:
        """After a batch that changed closed state, once its events are out:
        a save never delays the events of the candles that caused it."""
        if self._unsaved and time.monotonic() - self._saved_at >= self.settings.snapshot_interval_s:
            try:
                started = time.monotonic()
                await self.save_state()
                log.debug(
                    "state saved",
                    sequence=self.sequence,
                    seconds=round(time.monotonic() - started, 3),
                )
            except Exception as exc:
                log.error("state snapshot failed; will retry", error=str(exc))

    async def _snapshot_loop(self) -> None:
        """Metrics change without candles (PublishMetrics, the simulator);
        they are small and saved on their own timer."""
        assert self.store is not None
        while True:
            await asyncio.sleep(self.settings.snapshot_interval_s)
            try:
                await self.store.run(self.store.put_state, {"metrics": self.metrics.to_bytes()})
            except Exception as exc:
                log.error("metrics snapshot failed; will retry", error=str(exc))

    # -- freshness --------------------------------------------------------

    def is_stale(self) -> bool:
        c = self.connection
        if not c.connected or not c.last_heard:
            return True
        return time.monotonic() - c.last_heard > self.settings.stale_after_s

    def _on_connection(self, connected: bool, reason: str) -> None:
        was = self.connection.connected
        self.connection.connected = connected
        self.connection.reason = reason
        if connected and not was:
            log.info("following pricing", pricing=self.settings.pricing_address)

    def book(self, interval: int) -> IntervalBook:
        book = self.books.get(interval)
        if book is None:
            raise Unavailable(f"interval {common_pb2.Interval.Name(interval)} is not graded")
        return book

    def context(self, interval: int) -> MarketContext:
        metrics, baseline = self.metrics.snapshot()
        u = self.universe
        return MarketContext(
            btc_sid=u.btc_sid,
            sector_names=u.sector_names,
            sector_members=u.sector_members,
            circulating=u.circulating,
            regime=self.regimes.get(interval, signals_pb2.REGIME_UNSPECIFIED),
            metrics=metrics,
            metrics_baseline=baseline,
        )

    # -- following pricing ------------------------------------------------

    async def _follow(self) -> None:
        delay = 0.2
        while True:
            try:
                rows = await self.link.list_assets()
                break
            except grpc.aio.AioRpcError as err:
                self._on_connection(False, f"{err.code().name}: {err.details()}")
                log.warning(
                    "pricing unreachable; retrying", error=err.code().name, retry_in_s=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._merge_universe(rows)
        follower = CandleFollower(
            self.link,
            self.intervals,
            sequence=lambda: self.sequence,
            on_batch=self._on_batch,
            on_connection=self._on_connection,
        )
        await follower.run()

    def _merge_universe(self, rows: Sequence) -> None:  # type: ignore[type-arg]
        added = self.universe.merge(rows)
        for book in self.books.values():
            if book.n_symbols < self.universe.size:
                book.add_symbols(self.universe.size - book.n_symbols)
        for interval in self.intervals:
            self._live_dirty.setdefault(interval, set())
        if self.metrics.n_symbols < self.universe.size:
            self.metrics.add_symbols(self.universe.size - self.metrics.n_symbols)
        if added:
            log.info("universe updated", added=added, symbols=self.universe.size)

    async def _on_batch(self, batch: CandleBatch) -> None:
        self.connection.last_heard = time.monotonic()
        async with self._apply_lock:
            closed_before = self._closed_applied
            if batch.snapshot:
                try:
                    await self._resync(batch)
                except BaseException:
                    # Some histories may be unread (pricing overloaded, a call
                    # timed out): start the next connection from a snapshot
                    # so the resync runs again, instead of resuming and
                    # leaving those symbols ungraded.
                    self.sequence = 0
                    raise
            elif batch.size:
                await self._apply_updates(batch.columns, report=True)
            self.sequence = batch.sequence
            if self._closed_applied != closed_before:
                self._unsaved = True
        if not self.synced.is_set():
            self.synced.set()
            log.info("signals in sync with pricing", sequence=self.sequence)
        await self._save_if_due()

    async def _apply_updates(self, columns: dict[str, Any], *, report: bool) -> None:
        blocks = blocks_by_interval(columns, self.universe.sid_by_symbol, self.books)
        for interval, block in blocks.items():
            closed = block.take(block.closed)
            if len(closed):
                await self._apply_closed_rounds(interval, closed, report=report)
            forming = block.take(~block.closed)
            if len(forming):
                newest = forming.newest_per_symbol()
                self.books[interval].set_forming(*newest.bars())
                self._live_dirty[interval].update(newest.sid.tolist())

    async def _apply_closed_rounds(
        self, interval: int, block: CandleBlock, *, report: bool
    ) -> None:
        """Closed candles applied round by round (see CandleBlock.rounds)."""
        if not len(block):
            return
        book = self.books[interval]
        context = self.context(interval)
        updates: list[ClosedUpdate] = []
        # Breadth after every round: the history has one point per closed
        # candle even when a batch (a catch-up) brings many of them.
        steps = []
        for part in block.rounds():
            updates.append(book.apply_closed(*part.bars(), context))
            close_ms = int(part.open_ms.max()) + MS_BY_ENUM[interval]
            steps.append((close_ms, self._step_breadth(interval)))
        self._live_dirty[interval].update(block.sid.tolist())
        self._signal_cache[interval].clear()
        self._closed_applied += len(block)
        if report:
            await self._report_closed(interval, updates)
        for close_ms, step in steps:
            if step is not None:
                await self._record_breadth(interval, close_ms, *step)

    # -- resync after a snapshot -------------------------------------------

    async def _resync(self, batch: CandleBatch) -> None:
        started = time.monotonic()
        self._unsaved = True
        # Pricing may have restarted with new assets; they need books rows
        # before their candles can be applied.
        self._merge_universe(await self.link.list_assets())
        blocks = blocks_by_interval(batch.columns, self.universe.sid_by_symbol, self.books)
        fetched = 0
        for interval in self.intervals:
            book = self.books[interval]
            width = MS_BY_ENUM[interval]
            current = blocks.get(interval)
            current_open = np.full(self.universe.size, -1, dtype=np.int64)
            if current is not None:
                current_open[current.sid] = current.open_ms
            last = book.last_open_ms
            # Never graded and pricing has a candle for it (the snapshot holds
            # every symbol's current candle), unless its history was empty at
            # the last resync and that candle has not moved since: asking
            # again would fetch thousands of empty histories (a market that
            # started empty), long enough to fall behind the feed once more.
            empty_at = self._empty_history.setdefault(interval, {})
            never = np.array(
                [
                    sid
                    for sid in np.flatnonzero(last < 0).tolist()
                    if current_open[sid] >= 0 and empty_at.get(sid) != int(current_open[sid])
                ],
                dtype=np.int64,
            )
            # Symbols we know whose snapshot candle is past the next expected one.
            gap = np.flatnonzero((last >= 0) & (current_open > last + width))
            if never.size:
                histories = await self._fetch_many(interval, never, bars=self.settings.history_bars)
                for sid, h in zip(never.tolist(), histories, strict=True):
                    if h is None or not len(h.close):
                        empty_at[sid] = int(current_open[sid])
                keep = [i for i, h in enumerate(histories) if h is not None and len(h.close)]
                if keep:
                    flips = book.warm(
                        never[keep], [histories[i] for i in keep], self.context(interval)
                    )
                    await self._record_history_flips(interval, flips)
                fetched += len(never)
            if gap.size:
                starts = last[gap] + width
                histories = await self._fetch_many(interval, gap, start_ms=starts)
                await self._apply_histories(interval, gap, histories)
                fetched += len(gap)
        # The snapshot's own candles (closed ones are skipped when already seen).
        await self._apply_updates(batch.columns, report=True)
        for interval in self.intervals:
            self._live_dirty[interval].update(range(self.universe.size))
            await self._update_breadth(interval, None)
        log.info(
            "resynced with pricing",
            sequence=batch.sequence,
            series_fetched=fetched,
            seconds=round(time.monotonic() - started, 2),
        )

    async def _record_history_flips(self, interval: int, flips: FlipLog) -> None:
        """Flips found in the history at first start: recorded for
        recent_flips, not reported as new events."""
        if not len(flips.sids):
            return
        assert self.store is not None
        symbols = self.universe.symbols
        rows = [
            FlipRow(symbols[int(sid)], interval, int(t), int(d), float(p), float(g))
            for sid, t, d, p, g in zip(
                flips.sids, flips.time_ms, flips.direction, flips.price, flips.grade, strict=True
            )
        ]
        await self.store.run(self.store.append, [], rows)
        self._flipped[interval].update(r.symbol for r in rows)
        for sid in set(flips.sids.tolist()):
            self._flips.pop((interval, sid), None)

    async def _fetch_many(
        self,
        interval: int,
        sids: np.ndarray,
        *,
        bars: int | None = None,
        start_ms: np.ndarray | None = None,
    ) -> list[CandleSeries | None]:
        semaphore = asyncio.Semaphore(self.settings.backfill_concurrency)
        symbols = self.universe.symbols

        async def one(i: int) -> CandleSeries | None:
            async with semaphore:
                try:
                    history = await self.link.candles(
                        symbols[int(sids[i])],
                        interval,
                        bars=bars,
                        start_ms=None if start_ms is None else int(start_ms[i]),
                    )
                except grpc.aio.AioRpcError as err:
                    if err.code() == grpc.StatusCode.NOT_FOUND:
                        return None
                    raise
                return history.closed

        return list(await asyncio.gather(*(one(i) for i in range(len(sids)))))

    async def _apply_histories(
        self, interval: int, sids: np.ndarray, histories: Sequence[CandleSeries | None]
    ) -> None:
        block = from_histories(sids.tolist(), histories)
        await self._apply_closed_rounds(interval, block, report=True)

    # -- events -----------------------------------------------------------

    async def _report_closed(self, interval: int, updates: list[ClosedUpdate]) -> None:
        assert self.hub is not None
        symbols = self.universe.symbols
        width = MS_BY_ENUM[interval]
        events: list[EventRow] = []
        flips: list[FlipRow] = []
        now = now_ms()
        flip_rules = [
            r
            for r in self.alerts.for_interval(interval)
            if r.alert.condition.kind == alert_rules.FLIP
        ]
        for up in updates:
            found, found_flips = closed_events(interval, width, up, symbols)
            events.extend(found)
            flips.extend(found_flips)
            for flip in found_flips:
                sid = self.universe.sid_by_symbol[flip.symbol]
                self._remember_flip(interval, sid, flip)
                self._flipped[interval].add(flip.symbol)
                for rule in flip_rules:
                    if self._rule_covers(rule, sid) and alert_rules.fire_flip(
                        rule, flip.symbol, now
                    ):
                        events.append(
                            alert_event(
                                rule, flip.symbol, interval, flip.time_ms, flip.price, flip.grade
                            )
                        )
        if events or flips:
            await self.hub.publish(events, flips)
            if flip_rules:
                await self._save_rules(flip_rules)

    def _rule_covers(self, rule: alert_rules.AlertRule, sid: int) -> bool:
        if rule.alert.symbol:
            return self.universe.symbols[sid] == rule.alert.symbol
        names = self.universe.sector_names
        return any(names[k] == rule.alert.sector for k in self.universe.sector_index_of[sid])

    def rule_sids(self, rule: alert_rules.AlertRule) -> np.ndarray:
        if rule.alert.symbol:
            sid = self.universe.sid_by_symbol.get(rule.alert.symbol)
            return np.asarray([] if sid is None else [sid], dtype=np.int64)
        mask = self.universe.sector_mask([rule.alert.sector], "sector")
        return np.flatnonzero(mask) if mask is not None else np.empty(0, dtype=np.int64)

    async def _save_rules(self, rules: Sequence[alert_rules.AlertRule]) -> None:
        assert self.store is not None
        await self.store.run(
            self.store.update_alerts,
            [(r.alert.id, r.alert.SerializeToString(), r.state_json()) for r in rules],
        )

    def _remember_flip(self, interval: int, sid: int, row: FlipRow) -> None:
        cached = self._flips.get((interval, sid))
        if cached is None:
            return  # loaded from the store on first read
        flip = signals_pb2.DirectionFlip(
            direction=row.direction, price=row.price, trader_grade=row.grade
        )
        flip.time.CopyFrom(ms_to_timestamp(row.time_ms))
        cached.insert(0, flip)
        del cached[RECENT_FLIPS:]

    async def recent_flips(self, interval: int, sid: int) -> list[signals_pb2.DirectionFlip]:
        cached = self._flips.get((interval, sid))
        if cached is None:
            assert self.store is not None
            rows = await self.store.run(
                self.store.recent_flips, self.universe.symbols[sid], interval, RECENT_FLIPS
            )
            cached = []
            for r in rows:
                flip = signals_pb2.DirectionFlip(
                    direction=r.direction, price=r.price, trader_grade=r.grade
                )
                flip.time.CopyFrom(ms_to_timestamp(r.time_ms))
                cached.append(flip)
            self._flips[(interval, sid)] = cached
        return cached

    async def signal_response(self, interval: int, sid: int) -> bytes:
        """GetSignalResponse of one symbol, serialized; built at most once per
        live-regrade period (and after every closed candle) and shared by
        every caller meanwhile: the grade moves only at those times."""
        cache = self._signal_cache[interval]
        hit = cache.get(sid)
        if hit is None or hit[0] <= time.monotonic():
            flips = await self.recent_flips(interval, sid)
            hit = cache.get(sid)  # another call may have built it meanwhile
            if hit is None or hit[0] <= time.monotonic():
                hit = self._build_signal(interval, sid, flips)
        return hit[2] if self.is_stale() else hit[1]

    def _build_signal(
        self, interval: int, sid: int, flips: list[signals_pb2.DirectionFlip]
    ) -> tuple[float, bytes, bytes]:
        daily = self.books.get(common_pb2.INTERVAL_1D)
        signal = full_signal(
            self.book(interval),
            daily,
            sid,
            interval,
            self.universe,
            self.context(interval),
            self.context(common_pb2.INTERVAL_1D) if daily is not None else None,
            stale=False,
            flips=flips,
        )
        response = signals_pb2.GetSignalResponse(signal=signal)
        fresh = response.SerializeToString()
        response.signal.stale = True
        entry = (
            time.monotonic() + self.settings.live_regrade_ms / 1000,
            fresh,
            response.SerializeToString(),
        )
        cache = self._signal_cache[interval]
        if len(cache) >= SIGNAL_CACHE_MAX:
            cache.clear()
        cache[sid] = entry
        return entry

    def flipped_mask(self, interval: int) -> np.ndarray:
        """Which symbols' direction has ever flipped (by sid)."""
        flipped = self._flipped.get(interval, set())
        return np.fromiter(
            (s in flipped for s in self.universe.symbols), dtype=bool, count=self.universe.size
        )

    # -- breadth ----------------------------------------------------------

    def breadth_now(
        self, interval: int, mask: np.ndarray | None = None
    ) -> breadth_mod.BreadthFigures:
        book = self.book(interval)
        return breadth_mod.figures(
            book.closed_grade, book.direction, book.above_ma200, book.bar_count >= 200, mask
        )

    async def _update_breadth(self, interval: int, time_ms: int | None) -> None:
        step = self._step_breadth(interval)
        if step is not None and time_ms is not None:
            await self._record_breadth(interval, time_ms, *step)

    def _step_breadth(self, interval: int) -> tuple[breadth_mod.BreadthFigures, int, int] | None:
        """Moves the market and sector regimes on with the current closed
        state; (market figures, regime before, regime after), None with no token."""
        market = self.breadth_now(interval)
        if market.token_count == 0:
            return None
        before = self.regimes[interval]
        after = breadth_mod.next_regime(before, market.bullish_share)
        self.regimes[interval] = after
        sectors = self.sector_regimes[interval]
        for k, name in enumerate(self.universe.sector_names):
            mask = np.zeros(self.universe.size, dtype=bool)
            mask[self.universe.sector_members[k]] = True
            f = self.breadth_now(interval, mask)
            if f.token_count:
                sectors[name] = breadth_mod.next_regime(
                    sectors.get(name, signals_pb2.REGIME_UNSPECIFIED), f.bullish_share
                )
        return market, before, after

    async def _record_breadth(
        self,
        interval: int,
        time_ms: int,
        market: breadth_mod.BreadthFigures,
        before: int,
        after: int,
    ) -> None:
        assert self.store is not None and self.hub is not None
        point = breadth_mod.to_pb(market, after, ms_to_timestamp(time_ms))
        await self.store.run(
            self.store.insert_breadth, interval, time_ms, point.SerializeToString()
        )
        if before not in (after, signals_pb2.REGIME_UNSPECIFIED):
            await self.hub.publish(
                [
                    regime_event(
                        interval, time_ms, before, after, market.bullish_share, market.token_count
                    )
                ]
            )

    # -- live loop: forming candles, alerts ---------------------------------

    async def _live_loop(self) -> None:
        period = self.settings.live_regrade_ms / 1000
        while True:
            await asyncio.sleep(period)
            try:
                await self.regrade_live()
            except Exception:
                log.exception("live regrade failed")

    async def regrade_live(self) -> None:
        async with self._apply_lock:
            for interval in self.intervals:
                dirty = self._live_dirty[interval]
                if not dirty:
                    continue
                sids = np.fromiter(dirty, dtype=np.int64, count=len(dirty))
                dirty.clear()
                book = self.books[interval]
                book.regrade_live(self.context(interval), np.sort(sids))
                await self._evaluate_alerts(interval, book)

    async def _evaluate_alerts(self, interval: int, book: IntervalBook) -> None:
        assert self.hub is not None
        rules = [
            r
            for r in self.alerts.for_interval(interval)
            if r.alert.condition.kind != alert_rules.FLIP
        ]
        if not rules:
            return
        now = now_ms()
        events = []
        changed = []
        for rule in rules:
            sids = self.rule_sids(rule)
            if sids.size == 0:
                continue
            values = self._alert_values(rule, book)[sids]
            symbols = [self.universe.symbols[s] for s in sids.tolist()]
            before = dict(rule.previous)
            fired = alert_rules.evaluate(rule, symbols, values, now)
            if fired or rule.previous != before:
                changed.append(rule)
            for symbol, value in fired:
                sid = self.universe.sid_by_symbol[symbol]
                events.append(
                    alert_event(
                        rule,
                        symbol,
                        interval,
                        now,
                        float(book.last_price[sid]),
                        float(book.grade[sid]),
                        value,
                    )
                )
        if events:
            await self.hub.publish(events)
        if changed:
            await self._save_rules(changed)

    @staticmethod
    def _alert_values(rule: alert_rules.AlertRule, book: IntervalBook) -> np.ndarray:
        kind = rule.alert.condition.kind
        if kind in alert_rules.GRADE_KINDS:
            return book.grade
        if kind in alert_rules.PRICE_KINDS:
            return book.last_price
        return book.rsi

    async def add_alert(self, rule: alert_rules.AlertRule) -> None:
        assert self.store is not None
        async with self._apply_lock:
            if rule.alert.condition.kind != alert_rules.FLIP:
                book = self.books[rule.alert.interval]
                sids = self.rule_sids(rule)
                alert_rules.evaluate(
                    rule,
                    [self.universe.symbols[s] for s in sids.tolist()],
                    self._alert_values(rule, book)[sids],
                    now_ms(),
                    initialize=True,
                )
            await self.store.run(
                self.store.insert_alert, rule.alert.id, rule.owner, rule.alert.SerializeToString()
            )
            await self._save_rules([rule])
            self.alerts.add(rule)

    async def delete_alert(self, alert_id: str, owner: str) -> None:
        assert self.store is not None
        self.alerts.get_owned(alert_id, owner)
        async with self._apply_lock:
            await self.store.run(self.store.delete_alert, alert_id, owner)
            self.alerts.remove(alert_id)

    # -- metrics ------------------------------------------------------------

    async def _simulate_metrics(self) -> None:
        if not self.universe.size:
            await self.synced.wait()
        sim = MetricsSimulator(list(self.universe.symbols), seed=7)
        while True:
            if len(sim.symbols) < self.universe.size:
                sim = MetricsSimulator(list(self.universe.symbols), seed=7)
            self.metrics.update(sim.step(now_ms(), None))
            await asyncio.sleep(METRICS_STEP_S)
