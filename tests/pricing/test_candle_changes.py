"""CandleChanges hands every take to both consumers; merge_takes keeps the
newest row per candle; candle_entries encodes exactly what the reference
encoder (protobuf's own) does."""

import random

import numpy as np

import core_rs
from marketmesh.v1 import common_pb2, pricing_pb2
from services.pricing.candle_changes import CandleChanges, merge_takes
from services.pricing.candle_wire import (
    candle_entries,
    candle_messages,
    candle_update_entry,
    update_prefix,
)
from services.pricing.intervals import INTERVAL_MS
from tests.pricing.streams import ts

M = 60_000


def ingest(engine: core_rs.CandleEngine, ticks: list[tuple[int, int, float, float]]) -> None:
    sids, times, prices, volumes = zip(*ticks, strict=True)
    codes = engine.ingest(
        np.asarray(sids, dtype=np.int32),
        np.asarray(times, dtype=np.int64),
        np.asarray(prices, dtype=np.float64),
        np.asarray(volumes, dtype=np.float64),
        max(times),
    )
    assert not codes.any()


def keyed(takes: list[dict[str, np.ndarray]]) -> dict[tuple[int, int, int], tuple]:
    """Newest (close, trades, closed) per (symbol, interval, open) over takes."""
    out = {}
    for take in takes:
        for i in range(len(take["open_ms"])):
            key = (int(take["symbol_id"][i]), int(take["interval_idx"][i]), int(take["open_ms"][i]))
            out[key] = (float(take["close"][i]), int(take["trades"][i]), bool(take["closed"][i]))
    return out


def test_both_consumers_get_every_change_whoever_takes_first() -> None:
    engine = core_rs.CandleEngine(intervals_ms=[M, 5 * M], window_ms=60 * M, n_symbols=3)
    changes = CandleChanges(engine.take_dirty_candles)
    persisted: list[dict[str, np.ndarray]] = []
    published: list[dict[str, np.ndarray]] = []
    ingest(engine, [(0, 1_000, 10.0, 1.0), (1, 2_000, 20.0, 1.0)])
    persisted += changes.for_persister()  # the persister takes first
    ingest(engine, [(0, M + 1_000, 11.0, 1.0)])  # closes symbol 0's first 1m
    assert changes.take_closed()  # after ingest: a close is noticed
    ingest(engine, [(2, M + 2_000, 30.0, 2.0)])
    assert not changes.take_closed()
    published += changes.for_feed()
    ingest(engine, [(1, 3 * M, 21.0, 1.0)])
    published += changes.for_feed()
    persisted += changes.for_persister()
    assert changes.for_feed() == [] and changes.for_persister() == []
    # Hand-worked final states: symbol 0 1m [0, M) closed at 10; [M, 2M)
    # forming at 11; 5m [0, 5M) 2 trades close 11. Symbol 1: 1m [0, M)
    # closed at 20, [3M, 4M) forming 21; 5m 2 trades close 21. Symbol 2: 30.
    expected = {
        (0, 0, 0): (10.0, 1, True),
        (0, 0, M): (11.0, 1, False),
        (0, 1, 0): (11.0, 2, False),
        (1, 0, 0): (20.0, 1, True),
        (1, 0, 3 * M): (21.0, 1, False),
        (1, 1, 0): (21.0, 2, False),
        (2, 0, M): (30.0, 1, False),
        (2, 1, 0): (30.0, 1, False),
    }
    assert keyed(persisted) == expected
    assert keyed(published) == expected


def test_merge_takes_keeps_the_newest_row_sorted() -> None:
    def take(rows: list[tuple[int, int, int, float]]) -> dict[str, np.ndarray]:
        sid, k, open_ms, close = zip(*rows, strict=True)
        n = len(rows)
        return {
            "symbol_id": np.asarray(sid, dtype=np.int32),
            "interval_idx": np.asarray(k, dtype=np.uint8),
            "open_ms": np.asarray(open_ms, dtype=np.int64),
            "close": np.asarray(close),
            "closed": np.zeros(n, dtype=bool),
        }

    older = take([(1, 0, M, 1.0), (2, 1, 0, 2.0), (2, 0, 0, 3.0)])
    newer = take([(2, 0, 0, 4.0), (1, 0, M, 5.0), (1, 0, 0, 6.0)])
    merged = merge_takes([older, newer], n_intervals=2)
    assert list(
        zip(
            merged["slot"].tolist(),
            merged["open_ms"].tolist(),
            merged["close"].tolist(),
            strict=True,
        )
    ) == [
        (2, 0, 6.0),
        (2, M, 5.0),
        (4, 0, 4.0),
        (5, 0, 2.0),
    ]


def test_candle_entries_parse_like_the_reference_encoder() -> None:
    rng = random.Random(3)
    symbols = ["BTC-USD", "ETH-USD", "A" * 20 + "-USD"]
    enums = [common_pb2.INTERVAL_1M, common_pb2.INTERVAL_1D]
    prefixes = [update_prefix(s, e) for s in symbols for e in enums]
    n = 200
    rows = {
        "slot": np.asarray([rng.randrange(6) for _ in range(n)], dtype=np.int64),
        "open_ms": np.asarray(
            [
                rng.choice(
                    [
                        0,
                        -M,
                        1_795_000_020_000,
                        rng.randrange(-(2**40), 2**42) * 1000 + rng.randrange(1000),
                    ]
                )
                for _ in range(n)
            ],
            dtype=np.int64,
        ),
        "trades": np.asarray(
            [rng.choice([0, 1, 127, 128, 16_383, 16_384, 2**40]) for _ in range(n)], dtype=np.int64
        ),
        "closed": np.asarray([rng.random() < 0.5 for _ in range(n)]),
    }
    for name in ("open", "high", "low", "close", "volume", "quote_volume"):
        rows[name] = np.asarray([rng.choice([0.0, 1e-9, 65_000.5, 1e300]) for _ in range(n)])
    index = np.arange(n)[::-1]  # any order of rows
    entries = candle_entries(rows, index, prefixes)
    for entry, i in zip(entries, index.tolist(), strict=True):
        slot = int(rows["slot"][i])
        open_ms = int(rows["open_ms"][i])
        expected = pricing_pb2.CandleUpdate(
            symbol=symbols[slot // 2],
            interval=enums[slot % 2],
            candle=pricing_pb2.Candle(
                open_time=ts(open_ms),
                open=float(rows["open"][i]),
                high=float(rows["high"][i]),
                low=float(rows["low"][i]),
                close=float(rows["close"][i]),
                volume=float(rows["volume"][i]),
                quote_volume=float(rows["quote_volume"][i]),
                trades=int(rows["trades"][i]),
                closed=bool(rows["closed"][i]),
            ),
        )
        parsed = pricing_pb2.StreamCandlesResponse.FromString(entry)
        reference = pricing_pb2.StreamCandlesResponse.FromString(candle_update_entry(expected))
        assert parsed == reference
        assert list(parsed.updates) == [expected]


def test_candle_messages_split_with_more_on_all_but_the_last() -> None:
    update = pricing_pb2.CandleUpdate(symbol="BTC-USD", interval=common_pb2.INTERVAL_1M)
    entries = [candle_update_entry(update)] * 7
    messages = [
        pricing_pb2.StreamCandlesResponse.FromString(m) for m in candle_messages(42, entries, 3)
    ]
    assert [(m.sequence, len(m.updates), m.more) for m in messages] == [
        (42, 3, True),
        (42, 3, True),
        (42, 1, False),
    ]
    [beat] = candle_messages(43, [], 3, heartbeat=True)
    assert pricing_pb2.StreamCandlesResponse.FromString(beat) == pricing_pb2.StreamCandlesResponse(
        sequence=43, heartbeat=True
    )
    [empty] = candle_messages(44, [], 3, snapshot=True)
    assert pricing_pb2.StreamCandlesResponse.FromString(empty) == pricing_pb2.StreamCandlesResponse(
        sequence=44, snapshot=True
    )


def test_intervals_match_the_engine_default() -> None:
    assert list(INTERVAL_MS) == core_rs.CandleEngine().intervals_ms
