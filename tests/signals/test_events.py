"""The event log: persisted, ordered, deduplicated, resumable past its ring."""

import asyncio
from pathlib import Path

import pytest

from marketmesh.v1 import signals_pb2
from services.common.validation import ms_to_timestamp
from services.signals import events as events_mod
from services.signals.events import EventHub
from services.signals.store import FlipRow, SignalsStore

FLIP = signals_pb2.SIGNAL_EVENT_TYPE_DIRECTION_FLIP
ALERT = signals_pb2.SIGNAL_EVENT_TYPE_ALERT_TRIGGERED


def event(symbol: str, t: int, kind: int = FLIP) -> signals_pb2.SignalEvent:
    e = signals_pb2.SignalEvent(type=kind, symbol=symbol, message=f"{symbol} at {t}")
    e.time.CopyFrom(ms_to_timestamp(t))
    return e


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SignalsStore(tmp_path / "signals.sqlite3")
    yield s
    s.close()


def everything(e: signals_pb2.SignalEvent, owner: str | None) -> bool:
    return True


async def take(hub: EventHub, from_id: int, n: int, wanted=everything) -> list:  # type: ignore[no-untyped-def]
    out: list[signals_pb2.SignalEvent] = []
    gen = hub.subscribe(from_id, wanted)
    async with asyncio.timeout(5):
        async for message in gen:
            out.extend(message.events)
            if len(out) >= n:
                break
    await gen.aclose()
    return out


async def test_ids_increase_and_duplicates_are_dropped(store: SignalsStore) -> None:
    hub = EventHub(store)
    await hub.load()
    new = await hub.publish(
        [(event("A-USD", 1), None, "k1"), (event("B-USD", 2), None, "k2")],
        [FlipRow("A-USD", 4, 1, 1, 10.0, 70.0)],
    )
    assert [e.id for e in new] == [1, 2]
    again = await hub.publish([(event("A-USD", 1), None, "k1"), (event("C-USD", 3), None, "k3")])
    # The duplicate is dropped; ids keep increasing (they may skip one).
    assert [e.symbol for e in again] == ["C-USD"] and again[0].id > 2
    assert hub.last_id == again[0].id
    flips = await store.run(store.recent_flips, "A-USD", 4, 10)
    assert [(f.time_ms, f.price) for f in flips] == [(1, 10.0)]


async def test_resume_reads_from_the_store_past_the_ring(
    store: SignalsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_mod, "RING_SIZE", 5)
    hub = EventHub(store)
    await hub.load()
    await hub.publish([(event(f"S{i}-USD", i), None, f"k{i}") for i in range(1, 21)])
    got = await take(hub, 2, 18)
    assert [e.symbol for e in got] == [f"S{i}-USD" for i in range(3, 21)]
    assert [e.id for e in got] == list(range(3, 21))
    # A fresh hub over the same store (a restart) serves the same events.
    hub2 = EventHub(store)
    await hub2.load()
    got2 = await take(hub2, 15, 5)
    assert [e.id for e in got2] == [16, 17, 18, 19, 20]


async def test_live_events_reach_a_subscriber_and_filters_apply(store: SignalsStore) -> None:
    hub = EventHub(store, heartbeat_s=0.2)
    await hub.load()
    await hub.publish([(event("OLD-USD", 1), None, "old")])

    def mine(e: signals_pb2.SignalEvent, owner: str | None) -> bool:
        return e.type != ALERT or owner == "alice"

    task = asyncio.create_task(take(hub, 0, 2, mine))
    await asyncio.sleep(0.05)
    await hub.publish(
        [
            (event("A-USD", 2, ALERT), "bob", "b"),
            (event("A-USD", 3, ALERT), "alice", "a"),
            (event("B-USD", 4), None, "f"),
        ]
    )
    got = await task
    # from_event_id 0: only events after the subscription, bob's alert filtered.
    assert [(e.symbol, e.id) for e in got] == [("A-USD", 3), ("B-USD", 4)]


async def test_idle_stream_sends_heartbeats(store: SignalsStore) -> None:
    hub = EventHub(store, heartbeat_s=0.1)
    await hub.load()
    beats = 0
    gen = hub.subscribe(0, everything)
    async with asyncio.timeout(2):
        async for message in gen:
            assert message.heartbeat and not message.events
            beats += 1
            if beats == 3:
                break
    await gen.aclose()
