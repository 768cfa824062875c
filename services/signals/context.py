"""Market-wide inputs of the grades and the factors drawn from them:
relative strength against BTC and the sector, the regime, sentiment and
on-chain data (see ``services.signals.weights`` for the scoring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from marketmesh.v1 import signals_pb2
from services.signals.features import RS_SCALE, mean_available, sq

METRIC_NAMES: tuple[str, ...] = (
    "social_score",
    "mention_volume",
    "active_addresses",
    "exchange_net_flow",
    "dex_liquidity",
)
FLOW_SCALE = 0.001  # exchange net flow in units of circulating supply
REGIME_SCORES: Mapping[int, float] = {
    signals_pb2.REGIME_BULL: 80.0,
    signals_pb2.REGIME_NEUTRAL: 50.0,
    signals_pb2.REGIME_BEAR: 20.0,
}


@dataclass(frozen=True)
class MarketContext:
    """What the grades need beyond a symbol's own candles; arrays per sid."""

    btc_sid: int | None = None
    sector_names: list[str] = field(default_factory=list)
    sector_members: list[np.ndarray] = field(default_factory=list)  # sids per sector
    circulating: np.ndarray = field(default_factory=lambda: np.empty(0))
    regime: int = signals_pb2.REGIME_UNSPECIFIED
    metrics: Mapping[str, np.ndarray] = field(default_factory=dict)  # latest, NaN none
    metrics_baseline: Mapping[str, np.ndarray] = field(default_factory=dict)  # trailing mean

    def metric(self, name: str, sids: np.ndarray, *, baseline: bool = False) -> np.ndarray:
        """Values of one metric for ``sids``; NaN where unknown or not given."""
        source = self.metrics_baseline if baseline else self.metrics
        return _take(source.get(name), sids)

    def circulating_of(self, sids: np.ndarray) -> np.ndarray:
        return _take(self.circulating, sids)

    def sectors_of(self, sid: int) -> list[str]:
        return [
            name
            for name, m in zip(self.sector_names, self.sector_members, strict=True)
            if np.any(np.asarray(m) == sid)
        ]


def _take(values: np.ndarray | None, sids: np.ndarray) -> np.ndarray:
    out = np.full(len(sids), np.nan)
    if values is None:
        return out
    arr = np.asarray(values, dtype=np.float64)
    ok = sids < len(arr)
    out[ok] = arr[sids[ok]]
    return out


def median_excluding_self(values: np.ndarray) -> np.ndarray:
    """For each element along axis 0, the median of the other non-NaN
    elements of its column; NaN where the element is NaN or has no peer."""
    m = values.shape[0]
    order = np.argsort(values, axis=0, kind="stable")  # NaN sort last
    s = np.take_along_axis(values, order, axis=0)
    rank = np.empty_like(order)
    ranks = np.arange(m).reshape((m,) + (1,) * (values.ndim - 1))
    np.put_along_axis(rank, order, np.broadcast_to(ranks, order.shape), axis=0)
    k = (~np.isnan(values)).sum(axis=0) - 1  # peers of a valid element

    def without_self(j: np.ndarray) -> np.ndarray:
        # The j-th smallest peer: skip the element's own slot in the sorted column.
        idx = np.where(j < rank, j, j + 1)
        return np.take_along_axis(s, np.clip(idx, 0, m - 1), axis=0)

    lo = np.broadcast_to(np.maximum((k - 1) // 2, 0), values.shape)
    hi = np.broadcast_to(np.maximum(k // 2, 0), values.shape)
    med = 0.5 * (without_self(lo) + without_self(hi))
    return np.where(np.isnan(values) | (k < 1), np.nan, med)


def _sector_medians_flat(
    ret: np.ndarray, sector_members: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count, per symbol, of its peer medians over all its sectors:
    every sector at once (one sort), for a 1-D ``ret``."""
    n = len(ret)
    groups = [np.asarray(m, dtype=np.int64) for m in sector_members]
    groups = [g[(g >= 0) & (g < n)] for g in groups]
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    if sizes.sum() == 0:
        return np.zeros(n), np.zeros(n)
    grp = np.repeat(np.arange(len(groups)), sizes)
    sid = np.concatenate(groups)
    val = ret[sid]
    valid = ~np.isnan(val)
    # By sector, then missing values last, then value: each sector a sorted run.
    order = np.lexsort((np.where(valid, val, 0.0), ~valid, grp))
    sorted_val = val[order]
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(len(sid), dtype=np.int64)
    rank[order] = np.arange(len(sid)) - start[grp[order]]
    k = np.bincount(grp, weights=valid, minlength=len(groups)).astype(np.int64)[grp] - 1
    base, size = start[grp], sizes[grp]

    def peer(j: np.ndarray) -> np.ndarray:
        # The j-th smallest peer: skip the element's own slot in its sorted sector.
        idx = np.where(j < rank, j, j + 1)
        return sorted_val[base + np.clip(idx, 0, size - 1)]

    med = 0.5 * (peer(np.maximum((k - 1) // 2, 0)) + peer(np.maximum(k // 2, 0)))
    ok = valid & (k >= 1)
    total = np.bincount(sid, weights=np.where(ok, med, 0.0), minlength=n)
    count = np.bincount(sid, weights=ok, minlength=n)
    return total, count


def peer_returns(
    ret: np.ndarray, btc_idx: int | None, sector_members: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """BTC's return and the sector peers' median return for every row of
    ``ret`` (rows indexed like ``sector_members``; extra axes are candles).
    A symbol in several sectors takes the mean of its sectors' medians."""
    btc = np.full(ret.shape, np.nan)
    if btc_idx is not None and 0 <= btc_idx < ret.shape[0]:
        btc[...] = ret[btc_idx]
        btc[btc_idx] = np.nan  # BTC against itself says nothing
    if ret.ndim == 1:
        total, count = _sector_medians_flat(ret, sector_members)
    else:
        total = np.zeros(ret.shape)
        count = np.zeros(ret.shape)
        for members in sector_members:
            idx = np.asarray(members, dtype=np.int64)
            idx = idx[(idx >= 0) & (idx < ret.shape[0])]
            if len(idx) < 2:
                continue
            med = median_excluding_self(ret[idx])
            ok = ~np.isnan(med)
            np.add.at(total, idx, np.where(ok, med, 0.0))
            np.add.at(count, idx, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        sector = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return btc, sector


def relative_parts(
    ret: np.ndarray, btc_ret: np.ndarray, sector_ret: np.ndarray
) -> dict[str, np.ndarray]:
    return {
        "vs_btc": sq((ret - btc_ret) / RS_SCALE),
        "vs_sector": sq((ret - sector_ret) / RS_SCALE),
    }


def regime_score(regime: int, n: int) -> np.ndarray:
    return np.full(n, REGIME_SCORES.get(regime, np.nan))


def _ratio(now: np.ndarray, base: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (now > 0) & (base > 0)
        return np.where(ok, np.log(np.where(ok, now / np.where(ok, base, 1.0), 1.0)), np.nan)


def sentiment_parts(ctx: MarketContext, sids: np.ndarray) -> dict[str, np.ndarray]:
    social = ctx.metric("social_score", sids)
    mentions = _ratio(
        ctx.metric("mention_volume", sids), ctx.metric("mention_volume", sids, baseline=True)
    )
    return {"social_score": np.clip(social, 0.0, 100.0), "mention_volume": sq(mentions)}


def onchain_parts(ctx: MarketContext, sids: np.ndarray) -> dict[str, np.ndarray]:
    active = _ratio(
        ctx.metric("active_addresses", sids), ctx.metric("active_addresses", sids, baseline=True)
    )
    liquidity = _ratio(
        ctx.metric("dex_liquidity", sids), ctx.metric("dex_liquidity", sids, baseline=True)
    )
    supply = ctx.circulating_of(sids)
    with np.errstate(invalid="ignore", divide="ignore"):
        flow = -ctx.metric("exchange_net_flow", sids) / np.where(
            supply > 0, FLOW_SCALE * supply, np.nan
        )
    return {
        "active_addresses": sq(2.0 * active),
        "exchange_net_flow": sq(flow),
        "dex_liquidity": sq(2.0 * liquidity),
    }


def context_scores(
    ctx: MarketContext,
    sids: np.ndarray,
    ret: np.ndarray,
    btc_ret: np.ndarray,
    sector_ret: np.ndarray,
) -> dict[str, np.ndarray]:
    """Scores of relative_strength, regime, sentiment and onchain for ``sids``
    (``ret``, ``btc_ret``, ``sector_ret`` already taken for them)."""
    return {
        "relative_strength": mean_available(
            list(relative_parts(ret, btc_ret, sector_ret).values())
        ),
        "regime": regime_score(ctx.regime, len(sids)),
        "sentiment": mean_available(list(sentiment_parts(ctx, sids).values())),
        "onchain": mean_available(list(onchain_parts(ctx, sids).values())),
    }
