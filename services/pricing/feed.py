"""The live quote feed behind StreamQuotes.

One server-wide sequence of batches: every `batch_ms` the feed takes the sids
whose quote changed, gives the batch the next sequence number, records that
number per sid (`Market.last_seq`) and encodes those quotes once. An idle feed
emits an empty heartbeat batch every `heartbeat_s`.

Subscribers hold no queue. Each remembers only the last sequence it sent; when
it is ready for more it sends what changed since then, read from `last_seq`
(the newest value of each quote). A subscriber that is slow, or capped by
max_updates_per_second, therefore gets conflated messages and costs no memory
while it lags; one that keeps up gets each batch, and an unfiltered one shares
a single encoded message per batch with every other unfiltered subscriber.
"""

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import structlog

from services.pricing.market import Market, quote_from_columns
from services.pricing.wire import quote_entry, stream_message

log = structlog.get_logger(__name__)

# Sequences a client may resume from; older ones get a snapshot.
RESUME_WINDOW = 1_000_000
# After a restart the feed continues this far past the last persisted
# sequence, so numbers handed out but not yet committed before a crash are
# never reused for different data.
RESTART_SEQUENCE_GAP = 10_000
# Cached quote encodings are refreshed this often so snapshots of quiet
# symbols carry current 24h figures.
REFRESH_ALL_S = 10.0


@dataclass(frozen=True)
class Batch:
    sequence: int
    sids: np.ndarray  # empty for a heartbeat


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class QuoteFeed:
    def __init__(
        self, market: Market, *, batch_ms: int, heartbeat_s: float, start_sequence: int
    ) -> None:
        self.market = market
        self.batch_s = batch_ms / 1000
        self.heartbeat_s = heartbeat_s
        self.sequence = start_sequence
        self.first_sequence = start_sequence
        self._entries: list[bytes | None] = [None] * market.universe.size
        self._batches: deque[Batch] = deque(maxlen=16)
        self._full_message: tuple[int, bytes] | None = None
        self._changed = asyncio.Event()
        self._last_publish = time.monotonic()
        self.subscribers = 0

    # -- producing --------------------------------------------------------

    def refresh_entries(self, sids: np.ndarray, now_ms: int) -> None:
        cols = self.market.quote_columns(sids, now_ms)
        universe = self.market.universe
        for i in np.flatnonzero(cols.has_price):
            sid = int(cols.sids[i])
            self._entries[sid] = quote_entry(quote_from_columns(universe.symbol(sid), cols, i))

    def cut_batch(self) -> Batch | None:
        """Publish what changed since the previous batch (or a heartbeat)."""
        changed = self.market.engine.take_dirty_quotes()
        now = time.monotonic()
        if changed.size == 0 and now - self._last_publish < self.heartbeat_s:
            return None
        self.sequence += 1
        if changed.size:
            self.market.last_seq[changed] = self.sequence
            self.refresh_entries(changed, _now_ms())
        batch = Batch(self.sequence, changed)
        self._batches.append(batch)
        self._last_publish = now
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        return batch

    async def run(self) -> None:
        next_refresh = time.monotonic() + REFRESH_ALL_S
        while True:
            await asyncio.sleep(self.batch_s)
            self.cut_batch()
            if time.monotonic() >= next_refresh:
                self.refresh_entries(self.market.universe.active_sids, _now_ms())
                next_refresh = time.monotonic() + REFRESH_ALL_S

    # -- consuming --------------------------------------------------------

    def _batch(self, sequence: int) -> Batch | None:
        if self._batches and self._batches[-1].sequence >= sequence:
            index = len(self._batches) - 1 - (self._batches[-1].sequence - sequence)
            if index >= 0:
                return self._batches[index]
        return None

    def _entries_for(self, sids: np.ndarray) -> list[bytes]:
        entries = self._entries
        return [e for e in (entries[s] for s in sids.tolist()) if e is not None]

    def _full_batch_message(self, batch: Batch) -> bytes:
        cached = self._full_message
        if cached is not None and cached[0] == batch.sequence:
            return cached[1]
        message = stream_message(
            batch.sequence, self._entries_for(batch.sids), heartbeat=batch.sids.size == 0
        )
        self._full_message = (batch.sequence, message)
        return message

    def snapshot(self, sids: np.ndarray) -> bytes:
        self.refresh_entries(sids, _now_ms())
        return stream_message(self.sequence, self._entries_for(sids), snapshot=True)

    def can_resume(self, from_sequence: int) -> bool:
        return self.first_sequence <= from_sequence <= self.sequence and (
            self.sequence - from_sequence <= RESUME_WINDOW
        )

    def changed_since(self, sequence: int, sids: np.ndarray | None) -> np.ndarray:
        last_seq = self.market.last_seq
        if sids is None:
            return np.flatnonzero(last_seq > sequence).astype(np.int32)
        return sids[last_seq[sids] > sequence]

    async def subscribe(
        self,
        sids: np.ndarray | None,
        *,
        max_updates_per_second: float,
        from_sequence: int,
    ) -> AsyncIterator[bytes]:
        """Encoded StreamQuotesResponse messages for one subscriber.

        `sids` None means every asset (and shares encoded batches)."""
        wanted = self.market.universe.active_sids if sids is None else sids
        min_gap = 1.0 / max_updates_per_second if max_updates_per_second > 0 else 0.0
        self.subscribers += 1
        try:
            if from_sequence and self.can_resume(from_sequence):
                missed = self.changed_since(from_sequence, sids)
                sent_seq = self.sequence
                yield stream_message(
                    sent_seq, self._entries_for(missed), heartbeat=missed.size == 0
                )
            else:
                sent_seq = self.sequence
                yield self.snapshot(wanted)
            last_send = time.monotonic()
            while True:
                if min_gap:
                    wait = last_send + min_gap - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if self.sequence == sent_seq:
                    event = self._changed
                    remaining = self.heartbeat_s - (time.monotonic() - last_send)
                    try:
                        await asyncio.wait_for(event.wait(), timeout=max(remaining, 0.0))
                    except TimeoutError:
                        pass
                current = self.sequence
                if current == sent_seq:
                    # The feed publishes heartbeats itself; this covers a stalled producer.
                    message = stream_message(current, (), heartbeat=True)
                elif sids is None and current == sent_seq + 1 and self._batch(current):
                    message = self._full_batch_message(self._batch(current))  # type: ignore[arg-type]
                else:
                    changed = self.changed_since(sent_seq, sids)
                    batch = self._batch(current)
                    heartbeat_due = time.monotonic() - last_send >= self.heartbeat_s
                    if changed.size == 0:
                        is_feed_heartbeat = batch is not None and batch.sids.size == 0
                        if not (heartbeat_due or (sids is None and is_feed_heartbeat)):
                            # Only batches of other symbols: nothing to tell yet.
                            sent_seq = current
                            continue
                        message = stream_message(current, (), heartbeat=True)
                    else:
                        message = stream_message(current, self._entries_for(changed))
                sent_seq = current
                yield message
                last_send = time.monotonic()
        finally:
            self.subscribers -= 1
