"""Everything signals asks PricingService, over gRPC only: the asset list,
candle history and the StreamCandles feed (with reconnect and resume).

Signals never imports pricing's modules; a pricing that is down or
restarting shows up here as an AioRpcError, which the follower turns into a
backoff and a retry (and the app into `stale` answers), never a crash.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import structlog

import core_rs
from marketmesh.v1 import pricing_pb2, pricing_pb2_grpc
from services.common.validation import ms_to_timestamp
from services.signals.candle_block import join_columns
from services.signals.candles import CandleSeries
from services.signals.universe import AssetRow

log = structlog.get_logger(__name__)

MAX_PAGE = 5_000
CALL_TIMEOUT_S = 30.0
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 5.0


def series_from_pb(candles: list[pricing_pb2.Candle]) -> CandleSeries:
    n = len(candles)
    open_ms = np.empty(n, dtype=np.int64)
    cols = np.empty((5, n), dtype=np.float64)
    for i, c in enumerate(candles):
        open_ms[i] = c.open_time.seconds * 1000 + c.open_time.nanos // 1_000_000
        cols[0, i] = c.open
        cols[1, i] = c.high
        cols[2, i] = c.low
        cols[3, i] = c.close
        cols[4, i] = c.volume
    return CandleSeries(open_ms, cols[0], cols[1], cols[2], cols[3], cols[4])


@dataclass
class History:
    closed: CandleSeries
    forming: CandleSeries  # zero or one candle


class PricingLink:
    def __init__(self, address: str) -> None:
        self.address = address
        self.channel = grpc.aio.insecure_channel(
            address,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.keepalive_time_ms", 20_000),
            ],
        )
        self.stub = pricing_pb2_grpc.PricingServiceStub(self.channel)
        # StreamCandles messages arrive as bytes and are decoded into columns
        # by core_rs: reading tens of thousands of nested messages field by
        # field from Python took ~5 us each, most of the way from a closed
        # candle to its signal event.
        self.stream_candles = self.channel.unary_stream(
            "/marketmesh.v1.PricingService/StreamCandles",
            request_serializer=pricing_pb2.StreamCandlesRequest.SerializeToString,
            response_deserializer=bytes,
        )

    async def close(self) -> None:
        await self.channel.close()

    async def list_assets(self) -> list[AssetRow]:
        rows: list[AssetRow] = []
        token = ""
        while True:
            page = await self.stub.ListAssets(
                pricing_pb2.ListAssetsRequest(page_size=1000, page_token=token),
                timeout=CALL_TIMEOUT_S,
            )
            rows.extend(
                AssetRow(a.symbol, tuple(a.sectors), a.circulating_supply) for a in page.assets
            )
            token = page.next_page_token
            if not token:
                return rows

    async def candles(
        self,
        symbol: str,
        interval: int,
        *,
        bars: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> History:
        """The most recent `bars` candles, or every candle from start_ms to
        end_ms (paged); split into the closed ones and the forming one."""
        out: list[pricing_pb2.Candle] = []
        if start_ms is None:
            request = pricing_pb2.GetCandlesRequest(
                symbol=symbol, interval=interval, limit=min(bars or 500, MAX_PAGE)
            )
            if end_ms is not None:
                request.end_time.CopyFrom(ms_to_timestamp(end_ms))
            out.extend((await self.stub.GetCandles(request, timeout=CALL_TIMEOUT_S)).candles)
        else:
            token = ""
            while True:
                request = pricing_pb2.GetCandlesRequest(
                    symbol=symbol, interval=interval, limit=MAX_PAGE, page_token=token
                )
                request.start_time.CopyFrom(ms_to_timestamp(start_ms))
                if end_ms is not None:
                    request.end_time.CopyFrom(ms_to_timestamp(end_ms))
                page = await self.stub.GetCandles(request, timeout=CALL_TIMEOUT_S)
                out.extend(page.candles)
                token = page.next_page_token
                if not token or not page.candles:
                    break
        closed = [c for c in out if c.closed]
        forming = [c for c in out if not c.closed][-1:]
        return History(series_from_pb(closed), series_from_pb(forming))


@dataclass
class CandleBatch:
    """One sequence's worth of StreamCandles messages (more=true joined), as
    columns (see core_rs.decode_stream_candles)."""

    sequence: int
    snapshot: bool
    heartbeat: bool
    columns: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.columns["symbol"])


class CandleFollower:
    """Follows StreamCandles forever: reconnects with jittered exponential
    backoff and resumes from the last complete sequence."""

    def __init__(
        self,
        link: PricingLink,
        intervals: list[int],
        *,
        sequence: Callable[[], int],
        on_batch: Callable[[CandleBatch], Awaitable[None]],
        on_connection: Callable[[bool, str], None],
    ) -> None:
        self.link = link
        self.intervals = intervals
        self._sequence = sequence
        self._on_batch = on_batch
        self._on_connection = on_connection

    async def run(self) -> None:
        backoff = BACKOFF_INITIAL_S
        while True:
            from_sequence = self._sequence()
            try:
                call = self.link.stream_candles(
                    pricing_pb2.StreamCandlesRequest(
                        intervals=self.intervals, from_sequence=from_sequence
                    )
                )
                pending: list[dict[str, Any]] = []
                snapshot = False
                connected = False
                async for raw in call:
                    message = core_rs.decode_stream_candles(raw)
                    if not connected:
                        connected = True
                        backoff = BACKOFF_INITIAL_S
                        self._on_connection(True, "")
                    pending.append(message)  # type: ignore[arg-type]
                    snapshot = snapshot or message["snapshot"]
                    if message["more"]:
                        continue
                    batch = CandleBatch(
                        message["sequence"], snapshot, message["heartbeat"], join_columns(pending)
                    )
                    pending, snapshot = [], False
                    await self._on_batch(batch)
                reason = "pricing ended the candle stream"
            except grpc.aio.AioRpcError as err:
                reason = f"{err.code().name}: {err.details()}"
            self._on_connection(False, reason)
            delay = backoff * (0.5 + random.random())
            log.warning(
                "candle stream lost; reconnecting",
                reason=reason,
                retry_in_s=round(delay, 2),
                from_sequence=self._sequence(),
                pricing=self.link.address,
            )
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
