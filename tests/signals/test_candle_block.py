"""StreamCandles bytes -> columns (core_rs) -> per-interval blocks, checked
against the generated protobuf classes reading the same bytes."""

import numpy as np
import pytest

import core_rs
from marketmesh.v1 import common_pb2, pricing_pb2
from services.common.validation import ms_to_timestamp
from services.signals.candle_block import blocks_by_interval, join_columns

H1, D1 = common_pb2.INTERVAL_1H, common_pb2.INTERVAL_1D


def message(
    rng: np.random.Generator, n: int, **header: object
) -> pricing_pb2.StreamCandlesResponse:
    updates = []
    for i in range(n):
        t = int(rng.integers(-(10**12), 10**13))
        updates.append(
            pricing_pb2.CandleUpdate(
                symbol=f"S{int(rng.integers(0, 50))}-USD",
                interval=int(rng.choice([H1, D1, common_pb2.INTERVAL_1M])),
                candle=pricing_pb2.Candle(
                    open_time=ms_to_timestamp(t),
                    open=float(rng.normal()),
                    high=float(rng.normal()),
                    low=float(rng.normal()),
                    close=float(rng.normal()),
                    volume=float(rng.random()),
                    trades=int(rng.integers(0, 100)),
                    closed=bool(i % 3),
                    quote_volume=1.0,
                ),
            )
        )
    return pricing_pb2.StreamCandlesResponse(updates=updates, **header)  # type: ignore[arg-type]


def test_decoder_matches_protobuf() -> None:
    rng = np.random.default_rng(5)
    msg = message(rng, 300, sequence=77, snapshot=True, more=True)
    cols = core_rs.decode_stream_candles(msg.SerializeToString())
    assert (cols["sequence"], cols["snapshot"], cols["heartbeat"], cols["more"]) == (
        77,
        True,
        False,
        True,
    )
    assert cols["symbol"] == [u.symbol for u in msg.updates]
    assert cols["interval"].tolist() == [u.interval for u in msg.updates]
    assert cols["open_ms"].tolist() == [u.candle.open_time.ToMilliseconds() for u in msg.updates]
    for name in ("open", "high", "low", "close", "volume"):
        assert cols[name].tolist() == [getattr(u.candle, name) for u in msg.updates]
    assert cols["closed"].tolist() == [u.candle.closed for u in msg.updates]


def test_heartbeat_and_malformed() -> None:
    beat = pricing_pb2.StreamCandlesResponse(sequence=9, heartbeat=True).SerializeToString()
    cols = core_rs.decode_stream_candles(beat)
    assert cols["heartbeat"] and cols["symbol"] == [] and len(cols["open_ms"]) == 0
    raw = message(np.random.default_rng(1), 3).SerializeToString()
    with pytest.raises(ValueError, match="malformed"):
        core_rs.decode_stream_candles(raw[:-3])


def test_blocks_group_sort_and_drop_unknown() -> None:
    rng = np.random.default_rng(9)
    parts = [message(rng, 40), message(rng, 25)]
    cols = join_columns([core_rs.decode_stream_candles(p.SerializeToString()) for p in parts])
    sid_of = {f"S{i}-USD": i for i in range(0, 50, 2)}  # odd symbols unknown
    blocks = blocks_by_interval(cols, sid_of, [H1, D1])
    assert set(blocks) <= {H1, D1}
    expected = {
        iv: sorted(
            (sid_of[u.symbol], u.candle.open_time.ToMilliseconds(), u.candle.close)
            for p in parts
            for u in p.updates
            if u.interval == iv and u.symbol in sid_of
        )
        for iv in (H1, D1)
    }
    for iv, block in blocks.items():
        got = list(
            zip(block.sid.tolist(), block.open_ms.tolist(), block.close.tolist(), strict=True)
        )
        assert got == expected[iv]
