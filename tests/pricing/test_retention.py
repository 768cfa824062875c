"""MM_FINE_RETENTION_DAYS: old 1m/5m/15m candles go, coarse history stays."""

import time

from google.protobuf.timestamp_pb2 import Timestamp

from marketmesh.v1 import common_pb2, pricing_pb2
from tests.pricing.conftest import StartPricing

DAY_MS = 86_400_000


def _ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


async def _first_open_ms(stub, interval: int, since_ms: int) -> int:  # type: ignore[no-untyped-def]
    reply = await stub.GetCandles(
        pricing_pb2.GetCandlesRequest(
            symbol="ETH-USD", interval=interval, start_time=_ts(since_ms), limit=1
        )
    )
    first = reply.candles[0].open_time
    return first.seconds * 1000 + first.nanos // 1_000_000


async def test_fine_candles_older_than_retention_are_pruned(
    start_pricing_server: StartPricing,
) -> None:
    # Three days of fine history are backfilled, then pruned to one at start-up.
    server = await start_pricing_server(
        universe_size=2, backfill_days=3, backfill_fine_days=3, fine_retention_days=1
    )
    now = time.time_ns() // 1_000_000
    since = now - 3 * DAY_MS
    for interval in (common_pb2.INTERVAL_1M, common_pb2.INTERVAL_5M, common_pb2.INTERVAL_15M):
        first = await _first_open_ms(server.stub, interval, since)
        assert now - DAY_MS - 60_000 <= first <= now - DAY_MS + 15 * 60_000
    # Coarse history is untouched: the 1h series still starts three days back.
    assert await _first_open_ms(server.stub, common_pb2.INTERVAL_1H, since) < now - 2 * DAY_MS


async def test_zero_retention_keeps_everything(start_pricing_server: StartPricing) -> None:
    server = await start_pricing_server(
        universe_size=2, backfill_days=3, backfill_fine_days=3, fine_retention_days=0
    )
    now = time.time_ns() // 1_000_000
    first = await _first_open_ms(server.stub, common_pb2.INTERVAL_1M, now - 3 * DAY_MS)
    assert first < now - 2 * DAY_MS
