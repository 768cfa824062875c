"""The live quote feed behind StreamQuotes.

One server-wide sequence of batches: every `batch_ms` the feed takes the sids
whose quote changed, gives the batch the next sequence number, records that
number per sid (`Market.last_seq`) and encodes those quotes once. An idle feed
emits an empty heartbeat batch every `heartbeat_s`.

Other feeds on the same sequence (the candle feed) join as parts: a batch is
cut when any of them has changes too, and each records its changes under the
batch's number. Between cadence cuts, `request_cut` asks for an early one
(a closed candle should not wait up to a period; see EARLY_CUT_DELAY_S).

Subscribers hold no queue. Each remembers only the last sequence it sent; when
it is ready for more it sends what changed since then, read from `last_seq`
(the newest value of each quote). A subscriber that is slow, or capped by
max_updates_per_second, therefore gets conflated messages and costs no memory
while it lags; one that keeps up gets each batch.

Fan-out cost is what limits a thousand subscribers, so the per-subscriber work
per batch is kept to one wake-up and one write:

* Unfiltered subscribers share encoded messages: one per (from, to) sequence
  pair, so every subscriber that keeps up sends the same bytes, and those that
  lag by the same number of batches share the conflated message too. The same
  goes for the unfiltered snapshot, built at most once per batch.
* Waiting subscribers each park one bare future that `cut_batch` resolves; no
  per-subscriber timer or task (asyncio.wait_for would add both, per batch).
  The feed itself publishes at least every `heartbeat_s`, so a subscriber is
  woken often enough to send its own heartbeats; if the feed task stops, the
  parked subscribers fail with UNAVAILABLE instead of hanging.
"""

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import structlog

from services.common.errors import Unavailable
from services.common.validation import now_ms
from services.pricing.market import Market
from services.pricing.wire import quote_entries, stream_message, symbol_field

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
# Shared conflated messages kept per sequence (one per distinct lag); a bound
# so a crowd of subscribers at scattered sequences cannot pin many copies.
MAX_SHARED_MESSAGES = 64
# Early cuts (`request_cut`): a closed candle is news a signal is waiting
# for, so it does not wait for the next cadence cut (up to batch_ms away). The
# cut comes EARLY_CUT_DELAY_S after the request, so the ticks of one burst
# (one PublishTicks stream, several publishers at once) share a batch, and at
# least MIN_CUT_GAP_S after the previous cut, so the seconds after a minute
# boundary, when nearly every tick closes a 1m candle, cost subscribers at
# most 1 / MIN_CUT_GAP_S batches a second instead of one per tick.
EARLY_CUT_DELAY_S = 0.005
MIN_CUT_GAP_S = 0.025


class BatchPart(Protocol):
    """Something else published on the feed's sequence (the candle feed)."""

    def has_pending(self) -> bool:
        """Whether it has changes for the next batch (so one must be cut)."""
        ...

    def publish(self, sequence: int) -> None:
        """The batch `sequence` was cut: record what it had pending under it."""
        ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Batch:
    sequence: int
    sids: np.ndarray  # empty for a heartbeat


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
        universe = market.universe
        self._symbol_fields = [
            b"" if universe.assets[sid] is None else symbol_field(universe.symbol(sid))
            for sid in range(universe.size)
        ]
        self._batches: deque[Batch] = deque(maxlen=16)
        # Encoded unfiltered messages for the current sequence, by the sequence
        # the subscriber is coming from.
        self._shared_seq = -1
        self._shared: dict[int, bytes] = {}
        self._snapshot: tuple[int, bytes] | None = None
        self._refreshed_seq = -1  # sequence at which every entry was last refreshed
        self._waiters: list[asyncio.Future[None]] = []
        self._stopped = False
        self._last_publish = time.monotonic()
        # A heartbeat counts as due this much early: subscribers only wake at
        # batches, and the next one may be a whole period away.
        self._heartbeat_early = min(self.batch_s, heartbeat_s / 2)
        self.subscribers = 0
        self._parts: list[BatchPart] = []
        self._early_cut: asyncio.TimerHandle | None = None
        self._last_cut = time.monotonic()

    def add_part(self, part: BatchPart) -> None:
        self._parts.append(part)

    # -- producing --------------------------------------------------------

    def refresh_entries(self, sids: np.ndarray, now_ms: int) -> None:
        cols = self.market.quote_columns(sids, now_ms)
        rows = np.flatnonzero(cols.has_price)
        entries = self._entries
        for sid, entry in zip(
            cols.sids[rows].tolist(),
            quote_entries(cols, rows, self._symbol_fields),
            strict=True,
        ):
            entries[sid] = entry

    def cut_batch(self) -> Batch | None:
        """Publish what changed since the previous batch (or a heartbeat)."""
        changed = self.market.engine.take_dirty_quotes()
        now = time.monotonic()
        # Every part is asked (each takes its changes), not just the first.
        parts_pending = [part.has_pending() for part in self._parts]
        if (
            changed.size == 0
            and not any(parts_pending)
            and now - self._last_publish < self.heartbeat_s
        ):
            return None
        self._last_cut = now
        self.sequence += 1
        if changed.size:
            self.market.last_seq[changed] = self.sequence
            self.refresh_entries(changed, now_ms())
        batch = Batch(self.sequence, changed)
        self._batches.append(batch)
        self._last_publish = now
        for part in self._parts:
            part.publish(self.sequence)
        self._wake_all()
        return batch

    def request_cut(self) -> None:
        """Cut a batch soon, ahead of the cadence (see EARLY_CUT_DELAY_S);
        requests made before that cut share it."""
        if self._early_cut is not None or self._stopped:
            return
        loop = asyncio.get_running_loop()
        delay = max(EARLY_CUT_DELAY_S, self._last_cut + MIN_CUT_GAP_S - time.monotonic())
        self._early_cut = loop.call_later(delay, self._cut_early)

    def _cut_early(self) -> None:
        self._early_cut = None
        if not self._stopped:
            self.cut_batch()

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():  # a cancelled subscriber leaves its future behind
                if self._stopped:
                    waiter.set_exception(Unavailable("the quote feed stopped; reconnect"))
                else:
                    waiter.set_result(None)

    async def _next_batch(self) -> None:
        if self._stopped:
            raise Unavailable("the quote feed stopped; reconnect")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_refresh = time.monotonic() + REFRESH_ALL_S
        # Cut on a fixed cadence: sleeping batch_s after each cut would stretch
        # the period by the cut itself and by every delay of a busy loop.
        next_cut = loop.time() + self.batch_s
        try:
            while True:
                await asyncio.sleep(next_cut - loop.time())
                self.cut_batch()
                # Late (a busy loop): no burst of catch-up cuts, but keep at
                # least half a period between two.
                next_cut = max(next_cut + self.batch_s, loop.time() + self.batch_s / 2)
                if time.monotonic() >= next_refresh:
                    self.refresh_entries(self.market.universe.active_sids, now_ms())
                    next_refresh = time.monotonic() + REFRESH_ALL_S
        finally:
            self._stopped = True
            if self._early_cut is not None:
                self._early_cut.cancel()
            self._wake_all()
            for part in self._parts:
                part.stop()

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

    def _unfiltered_since(self, sent_seq: int) -> bytes:
        """Every quote that changed after `sent_seq`, up to the current sequence;
        shared by all unfiltered subscribers coming from the same sequence."""
        current = self.sequence
        if self._shared_seq != current:
            self._shared_seq = current
            self._shared = {}
        message = self._shared.get(sent_seq)
        if message is None:
            batch = self._batch(current) if sent_seq == current - 1 else None
            changed = batch.sids if batch is not None else self.changed_since(sent_seq, None)
            entries = self._entries_for(changed)
            message = stream_message(current, entries, heartbeat=changed.size == 0)
            if len(self._shared) < MAX_SHARED_MESSAGES:
                self._shared[sent_seq] = message
        return message

    def snapshot(self, sids: np.ndarray | None) -> bytes:
        """Every requested quote (`None`: every active asset) as of now."""
        sequence = self.sequence
        if sids is None and self._snapshot is not None and self._snapshot[0] == sequence:
            return self._snapshot[1]
        wanted = self.market.universe.active_sids if sids is None else sids
        # Fresh 24h figures for quiet symbols, but at most once per batch for
        # all of them: a thousand clients reconnecting must not each re-encode
        # the whole universe.
        if self._refreshed_seq != sequence:
            self.refresh_entries(wanted, now_ms())
            if sids is None:
                self._refreshed_seq = sequence
        message = stream_message(sequence, self._entries_for(wanted), snapshot=True)
        if sids is None:
            self._snapshot = (sequence, message)
        return message

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

        `sids` None means every asset (and shares encoded messages)."""
        min_gap = 1.0 / max_updates_per_second if max_updates_per_second > 0 else 0.0
        self.subscribers += 1
        try:
            if from_sequence and self.can_resume(from_sequence):
                sent_seq = self.sequence
                if sids is None:  # clients reconnecting together share it
                    yield self._unfiltered_since(from_sequence)
                else:
                    missed = self.changed_since(from_sequence, sids)
                    yield stream_message(
                        sent_seq, self._entries_for(missed), heartbeat=missed.size == 0
                    )
            else:
                sent_seq = self.sequence
                yield self.snapshot(sids)
            last_send = time.monotonic()
            while True:
                if min_gap:
                    wait = last_send + min_gap - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if self.sequence == sent_seq:
                    await self._next_batch()
                current = self.sequence
                if sids is None:
                    # An unfiltered stream sends every new sequence: nothing
                    # changed only when every batch since was a feed heartbeat.
                    message = self._unfiltered_since(sent_seq)
                else:
                    changed = self.changed_since(sent_seq, sids)
                    if changed.size:
                        message = stream_message(current, self._entries_for(changed))
                    elif time.monotonic() - last_send >= self.heartbeat_s - self._heartbeat_early:
                        message = stream_message(current, (), heartbeat=True)
                    else:
                        # Only batches of other symbols: nothing to tell yet.
                        sent_seq = current
                        continue
                sent_seq = current
                yield message
                last_send = time.monotonic()
        finally:
            self.subscribers -= 1
