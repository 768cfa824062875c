"""The signal event log: persisted first, then fanned out to subscribers.

Ids are the store's row ids, so they increase and survive restarts. Recent
events stay in a bounded in-memory ring; a subscriber keeps no queue of its
own, only the id it sent last, and reads what follows it from the ring, or
from the store when it has fallen behind the ring (a reconnect with an old
from_event_id, or a consumer slower than the ring is long). Memory therefore
stays bounded whatever the subscribers do, and nothing is skipped.
"""

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from marketmesh.v1 import signals_pb2
from services.common.errors import Unavailable
from services.signals.store import FlipRow, NewEvent, SignalsStore

RING_SIZE = 20_000
STORE_PAGE = 2_000
# Events per stream message.
MAX_PER_MESSAGE = 1_000

EventFilter = Callable[[signals_pb2.SignalEvent, str | None], bool]


class EventHub:
    def __init__(self, store: SignalsStore, *, heartbeat_s: float = 5.0) -> None:
        self.store = store
        self.heartbeat_s = heartbeat_s
        self.last_id = 0
        # Recent (event, owner) pairs and their ids, ascending (ids may have
        # gaps: a deduplicated insert can use one up).
        self._ring: list[tuple[signals_pb2.SignalEvent, str | None]] = []
        self._ring_ids: list[int] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self._ring_floor = 0

    async def load(self) -> None:
        self.last_id = await self.store.run(self.store.last_event_id)
        self._ring_floor = self.last_id

    async def publish(
        self,
        events: Sequence[tuple[signals_pb2.SignalEvent, str | None, str]],
        flips: Sequence[FlipRow] = (),
    ) -> list[signals_pb2.SignalEvent]:
        """Persist (event, owner, dedupe key) triples and flips in one
        transaction, then wake subscribers; the events that were new."""
        if not events and not flips:
            return []
        rows = [
            NewEvent(
                e.type,
                e.symbol,
                owner,
                e.time.seconds * 1000 + e.time.nanos // 1_000_000,
                key,
                e.SerializeToString(),
            )
            for e, owner, key in events
        ]
        new: list[signals_pb2.SignalEvent] = []
        # One writer at a time, so ids reach the ring in order.
        async with self._lock:
            ids = await self.store.run(self.store.append, rows, flips)
            for (event, owner, _), event_id in zip(events, ids, strict=True):
                if event_id is None:
                    continue
                event.id = event_id
                self._ring.append((event, owner))
                self._ring_ids.append(event_id)
                self.last_id = event_id
                new.append(event)
            if len(self._ring) > 2 * RING_SIZE:  # trimmed in halves: amortized O(1)
                self._ring_floor = self._ring_ids[-RING_SIZE - 1]
                del self._ring[:-RING_SIZE]
                del self._ring_ids[:-RING_SIZE]
        if new:
            self._wake()
        return new

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        self._closed = True
        self._wake()

    async def _wait(self, seconds: float) -> None:
        """Until the next publish, or `seconds` (the heartbeat is due)."""
        if self._closed:
            raise Unavailable("signals is shutting down; reconnect")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, seconds)

    async def _after(self, after_id: int) -> list[tuple[signals_pb2.SignalEvent, str | None]]:
        """Events with id > after_id, at most a page, from the ring or the store."""
        # The ring holds every event after _ring_floor.
        if after_id >= self._ring_floor:
            start = bisect.bisect_right(self._ring_ids, after_id)
            return self._ring[start : start + STORE_PAGE]
        stored = await self.store.run(self.store.events_after, after_id, STORE_PAGE)
        out = []
        for row in stored:
            event = signals_pb2.SignalEvent.FromString(row.body)
            event.id = row.id
            out.append((event, row.owner))
        return out

    async def subscribe(
        self, from_event_id: int, wanted: EventFilter
    ) -> AsyncIterator[signals_pb2.StreamSignalEventsResponse]:
        """Messages of events after from_event_id (0: after the newest now)
        that pass `wanted`, then live ones; heartbeats when idle."""
        sent = from_event_id if from_event_id else self.last_id
        sent = min(sent, self.last_id)
        yield signals_pb2.StreamSignalEventsResponse(heartbeat=True, last_event_id=self.last_id)
        loop = asyncio.get_running_loop()
        last_send = loop.time()
        while True:
            if sent >= self.last_id:
                await self._wait(max(0.05, self.heartbeat_s - (loop.time() - last_send)))
            batch = await self._after(sent) if sent < self.last_id else []
            matched = [event for event, event_owner in batch if wanted(event, event_owner)]
            if batch:
                sent = batch[-1][0].id
            for i in range(0, len(matched), MAX_PER_MESSAGE):
                yield signals_pb2.StreamSignalEventsResponse(
                    events=matched[i : i + MAX_PER_MESSAGE], last_event_id=self.last_id
                )
                last_send = loop.time()
            if loop.time() - last_send >= self.heartbeat_s:
                yield signals_pb2.StreamSignalEventsResponse(
                    heartbeat=True, last_event_id=self.last_id
                )
                last_send = loop.time()
