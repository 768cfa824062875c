"""One-line human reasons for the trader factors of one symbol.

Built only on demand (GetSignal), from the same readings the vectorized
scoring uses, so a reason never disagrees with its score.
"""

from __future__ import annotations

import math

from services.signals.features import (
    OBV_LAG,
    RS_BARS,
    SLOPE_LAG,
    SLOPE_SCALE,
    PriceInputs,
    percent_b,
)


def _f(x: object) -> float:
    return float(x[0]) if hasattr(x, "__len__") else float(x)  # type: ignore[index]


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _side(x: float) -> str:
    return "above" if x >= 0 else "below"


def trend_reason(p: PriceInputs) -> str:
    close, atr, n = _f(p.close), _f(p.atr), int(_f(p.nbars))
    if atr == 0.0:
        return "no trend reading: the price has not moved (ATR 0)"
    out = []
    missing = []
    for period in (50, 20, 200):
        ema = _f(getattr(p, f"ema_{period}"))
        if math.isnan(ema):
            missing.append(f"the {period}-period EMA needs {period} candles ({n} so far)")
            continue
        lag = _f(getattr(p, f"ema_{period}_lag"))
        if math.isnan(lag) or not atr > 0:
            way = "too new for a slope"
        else:
            slope = (ema - lag) / SLOPE_LAG / atr
            flat = abs(slope) < 0.1 * SLOPE_SCALE[period]
            way = "flat" if flat else ("rising" if slope > 0 else "falling")
        dist = close / ema - 1.0
        if not out:
            out.append(
                f"close {abs(dist) * 100:.1f}% {_side(dist)} the {period}-period EMA, "
                f"which is {way}"
            )
        else:
            out.append(f"{abs(dist) * 100:.1f}% {_side(dist)} the {period}-EMA ({way})")
    if not out:
        return f"no trend reading yet: {missing[0]}"
    return "; ".join(out + missing)


def momentum_reason(p: PriceInputs) -> str:
    rsi, hist, roc = _f(p.rsi), _f(p.macdhist), _f(p.roc)
    parts = []
    if not math.isnan(rsi):
        tone = " (overbought)" if rsi >= 70 else " (oversold)" if rsi <= 30 else ""
        parts.append(f"RSI {rsi:.1f}{tone}")
    if not math.isnan(hist):
        parts.append(f"MACD histogram {hist:+.4g} ({'positive' if hist >= 0 else 'negative'})")
    else:
        parts.append(f"MACD needs 34 candles ({int(_f(p.nbars))} so far)")
    if not math.isnan(roc):
        parts.append(f"10-candle change {roc:+.1f}%")
    if math.isnan(rsi) and math.isnan(roc):
        return "no momentum reading yet: RSI needs 15 candles"
    return ", ".join(parts)


def volatility_reason(p: PriceInputs) -> str:
    b, atr, close = _f(percent_b(p)), _f(p.atr), _f(p.close)
    if math.isnan(b):
        return "no range reading yet: Bollinger bands need 20 candles"
    where = (
        "above the upper band"
        if b > 1
        else "below the lower band"
        if b < 0
        else (f"at {b * 100:.0f}% of the Bollinger range")
    )
    atr_txt = f", ATR {atr / close * 100:.1f}% of price" if atr > 0 and close > 0 else ""
    return f"close {where} (%B {b:.2f}){atr_txt}"


def volume_reason(p: PriceInputs) -> str:
    obv, lag, avg, vol = _f(p.obv), _f(p.obv_lag), _f(p.vol_sma), _f(p.volume)
    if not avg > 0:
        return "no volume reading yet: the volume average needs 20 candles with volume"
    parts = []
    if not math.isnan(lag):
        share = (obv - lag) / (OBV_LAG * avg)
        trend = "rising" if share > 0.05 else "falling" if share < -0.05 else "flat"
        parts.append(f"OBV {trend} over {OBV_LAG} candles")
    parts.append(f"volume {vol / avg:.1f}x its 20-candle average")
    return ", ".join(parts)


def relative_reason(ret: float, btc: float, sector: float) -> str:
    if math.isnan(ret):
        return f"no relative strength yet: needs {RS_BARS + 1} candles"
    if math.isnan(btc) and math.isnan(sector):
        return "no BTC or sector peers to compare with"
    others = []
    if not math.isnan(btc):
        others.append(f"BTC {_pct(math.expm1(btc))}")
    if not math.isnan(sector):
        others.append(f"the sector median {_pct(math.expm1(sector))}")
    bench = sector if not math.isnan(sector) else btc
    lead = "outperforming" if ret >= bench else "lagging"
    return f"{lead}: {RS_BARS}-candle return {_pct(math.expm1(ret))} vs " + " and ".join(others)


def regime_reason(name: str | None) -> str:
    return f"{name} market regime" if name else "market regime not known yet"


def sentiment_reason(social: float, mentions: float, baseline: float) -> str:
    parts = []
    if not math.isnan(social):
        parts.append(f"social score {social:.0f}/100")
    if mentions > 0 and baseline > 0:
        parts.append(f"mentions {mentions / baseline:.1f}x their usual")
    return ", ".join(parts) if parts else "no sentiment data yet"


def onchain_reason(
    active: tuple[float, float], flow: float, supply: float, dex: tuple[float, float]
) -> str:
    parts = []
    if active[0] > 0 and active[1] > 0:
        parts.append(f"active addresses {active[0] / active[1]:.2f}x usual")
    if not math.isnan(flow) and supply > 0:
        kind = "outflow" if flow < 0 else "inflow"
        parts.append(f"exchange net {kind} of {abs(flow) / supply * 100:.3f}% of supply")
    if dex[0] > 0 and dex[1] > 0:
        parts.append(f"DEX liquidity {dex[0] / dex[1]:.2f}x usual")
    return ", ".join(parts) if parts else "no on-chain data yet"
