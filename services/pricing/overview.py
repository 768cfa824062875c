"""GetMarketOverview: market-wide aggregates over every asset's quote."""

import numpy as np

from marketmesh.v1 import common_pb2, pricing_pb2
from services.common.validation import ms_to_timestamp, parse_limit
from services.pricing.market import Market, quote_from_columns

DEFAULT_TOP_N = 5
MAX_TOP_N = 50


def _weighted_change(market_cap: np.ndarray, change_pct: np.ndarray) -> float:
    """Change of a basket's total market cap over 24h, in percent.

    Each asset's cap 24h ago is cap / (1 + change), so the basket's change is
    sum(cap) / sum(cap_24h_ago) - 1: a market-cap weighted mean that is exact,
    not an approximation."""
    if market_cap.size == 0:
        return 0.0
    before = market_cap / (1.0 + change_pct / 100.0)
    total_before = float(before.sum())
    return 0.0 if total_before <= 0 else (float(market_cap.sum()) / total_before - 1.0) * 100.0


def market_overview(
    market: Market, request: pricing_pb2.GetMarketOverviewRequest, now_ms: int
) -> pricing_pb2.GetMarketOverviewResponse:
    top_n = parse_limit(request.top_n, "top_n", DEFAULT_TOP_N, MAX_TOP_N)
    universe = market.universe
    cols = market.quote_columns(universe.active_sids, now_ms)
    priced = cols.has_price
    cap = np.where(priced, cols.market_cap, 0.0)
    change = np.where(priced, cols.change_24h_pct, 0.0)
    volume_usd = np.where(priced, cols.quote_volume_24h, 0.0)
    total_cap = float(cap.sum())

    def dominance(symbol: str) -> float:
        sid = universe.sid_by_symbol.get(symbol)
        if sid is None or total_cap <= 0:
            return 0.0
        i = int(np.searchsorted(cols.sids, sid))
        return float(cap[i]) / total_cap * 100.0

    tiers = [
        pricing_pb2.TierSummary(
            tier=tier,
            asset_count=int(((cols.tier == tier) & priced).sum()),
            market_cap=float(cap[cols.tier == tier].sum()),
        )
        for tier in (common_pb2.TIER_LARGE, common_pb2.TIER_MID, common_pb2.TIER_SMALL)
    ]

    position = {int(sid): i for i, sid in enumerate(cols.sids.tolist())}
    sectors = []
    for key, sector_sids in sorted(universe.sids_by_sector.items()):
        idx = np.asarray([position[int(s)] for s in sector_sids], dtype=np.int64)
        sectors.append(
            pricing_pb2.SectorSummary(
                sector=universe.sector_names[key],
                asset_count=int(priced[idx].sum()),
                market_cap=float(cap[idx].sum()),
                change_24h_pct=_weighted_change(cap[idx], change[idx]),
                volume_24h=float(volume_usd[idx].sum()),
            )
        )
    sectors.sort(key=lambda s: s.market_cap, reverse=True)

    ranked = np.flatnonzero(priced)
    order = ranked[np.argsort(cols.change_24h_pct[ranked], kind="stable")]
    gainers = [
        quote_from_columns(universe.symbol(int(cols.sids[i])), cols, int(i))
        for i in order[::-1][:top_n]
    ]
    losers = [
        quote_from_columns(universe.symbol(int(cols.sids[i])), cols, int(i)) for i in order[:top_n]
    ]
    return pricing_pb2.GetMarketOverviewResponse(
        total_market_cap=total_cap,
        total_volume_24h=float(volume_usd.sum()),
        btc_dominance_pct=dominance("BTC-USD"),
        eth_dominance_pct=dominance("ETH-USD"),
        asset_count=int(priced.sum()),
        tiers=tiers,
        sectors=sectors,
        top_gainers=gainers,
        top_losers=losers,
        total_market_cap_change_24h_pct=_weighted_change(cap[priced], change[priced]),
        time=ms_to_timestamp(now_ms),
    )
