"""The live candle feed behind StreamCandles, on the quote feed's sequence.

The quote feed (feed.py) cuts every batch; before a cut it asks this feed
whether candles changed (`has_pending`), so a batch is cut when candles
changed but no quote did (the close sweep), and after the cut it hands over
the batch's sequence (`publish`). The candle rows taken for that batch are
conflated per (symbol, interval, open time) to the newest state, sorted by
(symbol, interval, open time), encoded once and kept in a ring under that
sequence. The ring is bounded by rows and by age (MAX_RING_ROWS,
MAX_RING_AGE_S); `floor` is the newest sequence whose rows are gone, so a
subscriber at or after it can be told exactly what changed since.

Subscribers hold no queue (as in feed.py). Each remembers the sequence it
sent; when woken it sends every ring row of its symbols x intervals after
that sequence, conflated by (symbol, interval, open time) keeping the newest:
every closed candle survives conflation (it has its own open time) and only
the newest state of the forming one is sent. A subscriber whose sequence left
the ring gets a snapshot instead: the current candle of each requested
symbol x interval, kept per slot as of the newest sequence (so a snapshot
never shows a candle newer than its sequence says).

Unfiltered subscribers coming from the same sequence share encoded messages,
as StreamQuotes does; filtered ones gather the shared encoded rows.
"""

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from services.common.errors import Unavailable
from services.pricing.candle_changes import CandleChanges, CandleRows, merge_takes
from services.pricing.candle_wire import candle_entries, candle_messages, update_prefix
from services.pricing.feed import MAX_SHARED_MESSAGES, QuoteFeed
from services.pricing.intervals import INTERVALS
from services.pricing.market import Market

# The ring of published candle rows, the window a subscriber can lag or
# resume in without a snapshot: at most this many rows (~130 bytes each with
# their encoding: ~26 MB) and this old. At 2,000 ticks/s over 6,000 symbols
# a batch carries ~1,200 rows, so rows bound the ring at ~17 s of a busy
# feed; a quiet one keeps the full ten minutes.
MAX_RING_ROWS = 200_000
MAX_RING_AGE_S = 600.0
# Updates per message; a larger snapshot or catch-up is split (more = true).
MAX_UPDATES_PER_MESSAGE = 5_000


@dataclass(frozen=True)
class CandleBatch:
    """The candle rows of one feed batch: conflated, sorted by (slot, open_ms)."""

    sequence: int
    slot: np.ndarray  # int64: symbol_id * n_intervals + interval_idx
    sid: np.ndarray  # int32
    interval_idx: np.ndarray  # uint8
    open_ms: np.ndarray  # int64
    entries: list[bytes]
    at: float  # time.monotonic() of the cut


class CandleFeed:
    def __init__(self, market: Market, quotes: QuoteFeed, changes: CandleChanges) -> None:
        self.market = market
        self.quotes = quotes
        self.changes = changes
        universe = market.universe
        self.n_intervals = len(INTERVALS)
        self.interval_enums = [enum for enum, _ in INTERVALS]
        self._prefixes = [
            b"" if universe.assets[sid] is None else update_prefix(universe.symbol(sid), enum)
            for sid in range(universe.size)
            for enum in self.interval_enums
        ]
        # Encoded current candle per slot, as of the newest published sequence.
        self._current: list[bytes | None] = [None] * (universe.size * self.n_intervals)
        self._ring: deque[CandleBatch] = deque()
        self._ring_rows = 0
        self.floor = quotes.sequence
        self._pending: list[CandleRows] = []
        self._shared_seq = -1
        self._shared: dict[int, list[bytes] | None] = {}
        self._snapshot: tuple[int, list[bytes]] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._stopped = False
        # A heartbeat counts as due this much early: subscribers only wake at
        # batches, and the next one may be a whole period away (as feed.py).
        self._heartbeat_early = min(quotes.batch_s, quotes.heartbeat_s / 2)
        self.subscribers = 0

    @property
    def sequence(self) -> int:
        return self.quotes.sequence

    def load_current(self) -> None:
        """Seed the per-slot current candles from the engine (restored state,
        which is not news and so never in the ring)."""
        sids = self.market.universe.active_sids
        rows = self.market.engine.current_candles(sids, list(range(self.n_intervals)))
        rows["slot"] = rows["symbol_id"].astype(np.int64) * self.n_intervals + rows["interval_idx"]
        index = np.arange(len(rows["slot"]))
        for slot, entry in zip(
            rows["slot"].tolist(), candle_entries(rows, index, self._prefixes), strict=True
        ):
            self._current[slot] = entry

    # -- producing (called by QuoteFeed.cut_batch) ------------------------

    def has_pending(self) -> bool:
        self._pending.extend(self.changes.for_feed())
        return bool(self._pending)

    def publish(self, sequence: int) -> None:
        """Record the pending rows under `sequence` and wake subscribers."""
        now = time.monotonic()
        if self._pending:
            takes, self._pending = self._pending, []
            rows = merge_takes(takes, self.n_intervals)
            entries = candle_entries(rows, np.arange(len(rows["slot"])), self._prefixes)
            batch = CandleBatch(
                sequence=sequence,
                slot=rows["slot"],
                sid=rows["symbol_id"],
                interval_idx=rows["interval_idx"],
                open_ms=rows["open_ms"],
                entries=entries,
                at=now,
            )
            # Sorted by open time within a slot: the last entry is the newest.
            current = self._current
            for slot, entry in zip(batch.slot.tolist(), entries, strict=True):
                current[slot] = entry
            self._ring.append(batch)
            self._ring_rows += len(entries)
        self._evict(now)
        self._wake_all()

    def _evict(self, now: float) -> None:
        ring = self._ring
        # The newest batch stays whatever its size: it is what keeping up means.
        while len(ring) > 1 and (
            self._ring_rows > MAX_RING_ROWS or ring[0].at < now - MAX_RING_AGE_S
        ):
            old = ring.popleft()
            self._ring_rows -= len(old.entries)
            self.floor = old.sequence

    def stop(self) -> None:
        self._stopped = True
        self._wake_all()

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                if self._stopped:
                    waiter.set_exception(Unavailable("the candle feed stopped; reconnect"))
                else:
                    waiter.set_result(None)

    async def _next_batch(self) -> None:
        if self._stopped:
            raise Unavailable("the candle feed stopped; reconnect")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    # -- consuming --------------------------------------------------------

    def can_resume(self, sequence: int) -> bool:
        return self.floor <= sequence <= self.sequence

    def _batches_after(self, sequence: int) -> list[CandleBatch]:
        ring = self._ring
        i = len(ring)
        while i > 0 and ring[i - 1].sequence > sequence:
            i -= 1
        return [ring[j] for j in range(i, len(ring))]

    def changed_since(
        self, sequence: int, sid_mask: np.ndarray | None, interval_mask: np.ndarray | None
    ) -> list[bytes]:
        """Encoded updates of the filter's slots after `sequence` (which must
        be resumable), conflated, ascending by (symbol, interval, open time)."""
        batches = self._batches_after(sequence)
        unfiltered = sid_mask is None and interval_mask is None
        if unfiltered and len(batches) == 1:
            return batches[0].entries
        slots, opens, entries = [], [], []
        for batch in batches:
            if unfiltered:
                slots.append(batch.slot)
                opens.append(batch.open_ms)
                entries.extend(batch.entries)
                continue
            keep = np.ones(len(batch.entries), dtype=bool)
            if sid_mask is not None:
                keep &= sid_mask[batch.sid]
            if interval_mask is not None:
                keep &= interval_mask[batch.interval_idx]
            index = np.flatnonzero(keep)
            if index.size == 0:
                continue
            slots.append(batch.slot[index])
            opens.append(batch.open_ms[index])
            batch_entries = batch.entries
            entries.extend(batch_entries[i] for i in index.tolist())
        if len(slots) <= 1:
            return entries  # one batch is already conflated and sorted
        slot, open_ms = np.concatenate(slots), np.concatenate(opens)
        n = len(slot)
        # Entries are in batch order, so position order is age order.
        order = np.lexsort((np.arange(n), open_ms, slot))
        slot, open_ms = slot[order], open_ms[order]
        last = np.ones(n, dtype=bool)
        last[:-1] = (slot[1:] != slot[:-1]) | (open_ms[1:] != open_ms[:-1])
        return [entries[i] for i in order[last].tolist()]

    def _messages(
        self,
        sequence: int,
        sent_seq: int,
        sid_mask: np.ndarray | None,
        interval_mask: np.ndarray | None,
    ) -> list[bytes] | None:
        entries = self.changed_since(sent_seq, sid_mask, interval_mask)
        return candle_messages(sequence, entries, MAX_UPDATES_PER_MESSAGE) if entries else None

    def _unfiltered_since(self, sent_seq: int) -> list[bytes] | None:
        """Messages with every update after `sent_seq` (None: there is none),
        shared by the unfiltered subscribers coming from the same sequence."""
        current = self.sequence
        if self._shared_seq != current:
            self._shared_seq = current
            self._shared = {}
        if sent_seq in self._shared:
            return self._shared[sent_seq]
        entries = self.changed_since(sent_seq, None, None)
        messages = candle_messages(current, entries, MAX_UPDATES_PER_MESSAGE) if entries else None
        if len(self._shared) < MAX_SHARED_MESSAGES:
            self._shared[sent_seq] = messages
        return messages

    def snapshot(self, sids: np.ndarray | None, intervals: np.ndarray | None) -> list[bytes]:
        """The current candle of every requested slot, as messages."""
        sequence = self.sequence
        unfiltered = sids is None and intervals is None
        if unfiltered and self._snapshot is not None and self._snapshot[0] == sequence:
            return self._snapshot[1]
        wanted_sids = self.market.universe.active_sids if sids is None else sids
        ks = np.arange(self.n_intervals) if intervals is None else intervals
        slots = (wanted_sids.astype(np.int64)[:, None] * self.n_intervals + ks[None, :]).ravel()
        current = self._current
        entries = [e for e in (current[s] for s in slots.tolist()) if e is not None]
        messages = candle_messages(sequence, entries, MAX_UPDATES_PER_MESSAGE, snapshot=True)
        if unfiltered:
            self._snapshot = (sequence, messages)
        return messages

    async def subscribe(
        self, sids: np.ndarray | None, intervals: np.ndarray | None, *, from_sequence: int
    ) -> AsyncIterator[bytes]:
        """Encoded StreamCandlesResponse messages for one subscriber.

        `sids` None: every asset; `intervals` (indices into INTERVALS) None:
        every interval. Both None share encoded messages."""
        sid_mask = interval_mask = None
        if sids is not None:
            sid_mask = np.zeros(self.market.universe.size, dtype=bool)
            sid_mask[sids] = True
        if intervals is not None:
            interval_mask = np.zeros(self.n_intervals, dtype=bool)
            interval_mask[intervals] = True
        unfiltered = sid_mask is None and interval_mask is None
        self.subscribers += 1
        try:
            sent_seq = self.sequence
            if from_sequence and self.can_resume(from_sequence):
                missed = (
                    self._unfiltered_since(from_sequence)
                    if unfiltered
                    else self._messages(sent_seq, from_sequence, sid_mask, interval_mask)
                )
                messages = missed or candle_messages(sent_seq, (), 1, heartbeat=True)
            else:
                messages = self.snapshot(sids, intervals)
            for message in messages:
                yield message
            last_send = time.monotonic()
            heartbeat_after = self.quotes.heartbeat_s - self._heartbeat_early
            while True:
                if self.sequence == sent_seq:
                    await self._next_batch()
                current = self.sequence
                if not self.can_resume(sent_seq):
                    # Lagged out of the ring: what changed is no longer known.
                    update = self.snapshot(sids, intervals)
                elif unfiltered:
                    update = self._unfiltered_since(sent_seq)
                else:
                    update = self._messages(current, sent_seq, sid_mask, interval_mask)
                if update is None:
                    if time.monotonic() - last_send < heartbeat_after:
                        # Only batches of other symbols or intervals (or none).
                        sent_seq = current
                        continue
                    update = candle_messages(current, (), 1, heartbeat=True)
                sent_seq = current
                for message in update:
                    yield message
                last_send = time.monotonic()
        finally:
            self.subscribers -= 1
