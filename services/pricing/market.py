"""The live market: the core_rs candle engine plus the universe, turned into
quotes. Everything here runs on the event loop thread (the engine is not
shared across threads); the heavy loops run inside core_rs without the GIL."""

from dataclasses import dataclass

import numpy as np

import core_rs
from marketmesh.v1 import pricing_pb2
from services.common.tiers import tiers_of
from services.common.validation import ms_to_timestamp
from services.pricing.intervals import INTERVAL_MS
from services.pricing.universe import Universe

DAY_MS = 86_400_000


@dataclass
class QuoteColumns:
    """Quote fields of several sids, as arrays aligned with `sids`."""

    sids: np.ndarray
    price: np.ndarray
    time_ms: np.ndarray
    volume_24h: np.ndarray
    quote_volume_24h: np.ndarray
    open_24h: np.ndarray
    high_24h: np.ndarray
    low_24h: np.ndarray
    change_24h_pct: np.ndarray
    has_price: np.ndarray
    market_cap: np.ndarray
    fdv: np.ndarray
    tier: np.ndarray
    sequence: np.ndarray


class Market:
    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.engine = core_rs.CandleEngine(intervals_ms=list(INTERVAL_MS), window_ms=DAY_MS)
        self.engine.add_symbols(universe.size)
        # Feed sequence at which each sid's quote last changed (see feed.py).
        self.last_seq = np.zeros(universe.size, dtype=np.int64)

    def ingest(
        self,
        sids: np.ndarray,
        times_ms: np.ndarray,
        prices: np.ndarray,
        volumes: np.ndarray,
        now_ms: int,
    ) -> np.ndarray:
        """Apply ticks; returns a rejection code per tick (0 = accepted)."""
        return self.engine.ingest(sids, times_ms, prices, volumes, now_ms)

    def quote_columns(self, sids: np.ndarray, now_ms: int) -> QuoteColumns:
        sids = np.ascontiguousarray(sids, dtype=np.int32)
        q = self.engine.quotes(sids, now_ms)
        price = q["price"]
        market_cap = price * self.universe.circulating[sids]
        return QuoteColumns(
            sids=sids,
            price=price,
            time_ms=q["time_ms"],
            volume_24h=q["volume_24h"],
            quote_volume_24h=q["quote_volume_24h"],
            open_24h=q["open_24h"],
            high_24h=q["high_24h"],
            low_24h=q["low_24h"],
            change_24h_pct=q["change_24h_pct"],
            has_price=q["has_price"],
            market_cap=market_cap,
            fdv=price * self.universe.fdv_supply[sids],
            tier=tiers_of(np.nan_to_num(market_cap)),
            sequence=self.last_seq[sids],
        )

    def quotes_pb(self, sids: np.ndarray, now_ms: int) -> list[pricing_pb2.Quote]:
        """Quote messages for sids that have a price (never-ticked sids are skipped)."""
        cols = self.quote_columns(sids, now_ms)
        return [
            quote_from_columns(self.universe.symbol(int(cols.sids[i])), cols, i)
            for i in np.flatnonzero(cols.has_price)
        ]


def quote_from_columns(symbol: str, cols: QuoteColumns, i: int) -> pricing_pb2.Quote:
    time_ms = int(cols.time_ms[i])
    return pricing_pb2.Quote(
        symbol=symbol,
        price=float(cols.price[i]),
        volume_24h=float(cols.volume_24h[i]),
        change_24h_pct=float(cols.change_24h_pct[i]),
        high_24h=float(cols.high_24h[i]),
        low_24h=float(cols.low_24h[i]),
        market_cap=float(cols.market_cap[i]),
        fully_diluted_valuation=float(cols.fdv[i]),
        tier=int(cols.tier[i]),
        sequence=int(cols.sequence[i]),
        time=ms_to_timestamp(time_ms),
        quote_volume_24h=float(cols.quote_volume_24h[i]),
        open_24h=float(cols.open_24h[i]),
    )
