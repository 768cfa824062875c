"""The indicator bundle behind the grades and the price-based factor scores.

Everything here is elementwise numpy, so one function scores one symbol, the
whole universe at its latest candle, or every candle of a history (warm-up)
alike; see ``services.signals.weights`` for what each score means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from core_rs.bundle import Member

MIN_BARS = 30  # fewer closed candles: no grade
SLOPE_LAG = 5  # EMA slopes over this many candles
OBV_LAG = 10
RS_BARS = 20  # relative strength: log return over this many candles
MOMENTUM_BARS = 5  # grade change for the momentum label
RISK_BARS = 90  # risk statistics: log returns over this many candles
RISK_LEN = RISK_BARS + 1  # closes kept for them
EMA_PERIODS = (20, 50, 200)
POS_SCALE = {20: 2.0, 50: 3.0, 200: 4.0}  # distance from the EMA, in ATRs
SLOPE_SCALE = {20: 0.2, 50: 0.1, 200: 0.05}  # EMA change per candle, in ATRs
ATR_CALM = 0.05  # ATR above this share of price pulls the range position to 50
RS_SCALE = 0.10


def members() -> tuple[Member, ...]:
    """The indicator bundle every symbol carries (risk figures are computed
    on demand from the last RISK_BARS + 1 closes: see ``risk``)."""
    return (
        Member("ema", {"timeperiod": 20}, alias="ema_20"),
        Member("ema", {"timeperiod": 50}, alias="ema_50"),
        Member("ema", {"timeperiod": 200}, alias="ema_200"),
        Member("sma", {"timeperiod": 200}, alias="sma_200"),
        Member("rsi", {"timeperiod": 14}),
        Member("macd", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
        Member("bbands", {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0}, alias="bb"),
        Member("atr", {"timeperiod": 14}),
        Member("obv"),
        Member("roc", {"timeperiod": 10}),
        Member("sma", {"timeperiod": 20}, alias="vol_sma", inputs={"real": "volume"}),
    )


# Column order of the bundle above (checked against core_rs when a book is built).
COLUMNS: tuple[str, ...] = (
    "ema_20",
    "ema_50",
    "ema_200",
    "sma_200",
    "rsi",
    "macd",
    "macdsignal",
    "macdhist",
    "bb_upperband",
    "bb_middleband",
    "bb_lowerband",
    "atr",
    "obv",
    "roc",
    "vol_sma",
)
COL = {name: i for i, name in enumerate(COLUMNS)}

# Values kept for the last few closed candles of each symbol (lags).
RING_FIELDS: tuple[str, ...] = ("close", "ema_20", "ema_50", "ema_200", "obv", "grade")
RING = {name: i for i, name in enumerate(RING_FIELDS)}
RING_LEN = 24  # > every lag above


@dataclass(frozen=True)
class PriceInputs:
    """What the price factors read, one element per (symbol, candle)."""

    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    nbars: np.ndarray  # closed candles behind the values (the forming one counted)
    ema_20: np.ndarray
    ema_50: np.ndarray
    ema_200: np.ndarray
    ema_20_lag: np.ndarray  # SLOPE_LAG candles before
    ema_50_lag: np.ndarray
    ema_200_lag: np.ndarray
    rsi: np.ndarray
    macd: np.ndarray
    macdhist: np.ndarray
    bb_upper: np.ndarray
    bb_lower: np.ndarray
    atr: np.ndarray
    obv: np.ndarray
    obv_lag: np.ndarray  # OBV_LAG candles before
    roc: np.ndarray
    vol_sma: np.ndarray

    @classmethod
    def from_rows(
        cls,
        rows: np.ndarray,
        open_: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        nbars: np.ndarray,
        lags: dict[str, np.ndarray],
    ) -> PriceInputs:
        """From bundle rows (n x COLUMNS) and the lagged values by name."""

        def c(name: str) -> np.ndarray:
            return rows[:, COL[name]]

        return cls(
            open=open_,
            close=close,
            volume=volume,
            nbars=nbars,
            ema_20=c("ema_20"),
            ema_50=c("ema_50"),
            ema_200=c("ema_200"),
            ema_20_lag=lags["ema_20"],
            ema_50_lag=lags["ema_50"],
            ema_200_lag=lags["ema_200"],
            rsi=c("rsi"),
            macd=c("macd"),
            macdhist=c("macdhist"),
            bb_upper=c("bb_upperband"),
            bb_lower=c("bb_lowerband"),
            atr=c("atr"),
            obv=c("obv"),
            obv_lag=lags["obv"],
            roc=c("roc"),
            vol_sma=c("vol_sma"),
        )

    def scatter(self, idx: np.ndarray, other: PriceInputs) -> PriceInputs:
        """A copy whose elements at ``idx`` come from ``other``."""
        out = {}
        for f in fields(self):
            arr = getattr(self, f.name).copy()
            arr[idx] = getattr(other, f.name)
            out[f.name] = arr
        return replace(self, **out)


def sq(x: np.ndarray) -> np.ndarray:
    """A signed reading onto 0-100 around 50."""
    return 50.0 + 50.0 * np.tanh(x)


def mean_available(parts: list[np.ndarray]) -> np.ndarray:
    """Elementwise mean of the parts that are not NaN; NaN where none is."""
    stack = np.stack(parts)
    ok = ~np.isnan(stack)
    count = ok.sum(axis=0)
    total = np.where(ok, stack, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _pos_atr(x: np.ndarray) -> np.ndarray:
    # An ATR of 0 (a flat market) cannot scale anything: no reading.
    return np.where(x > 0, x, np.nan)


def trend_parts(p: PriceInputs) -> dict[str, np.ndarray]:
    atr = _pos_atr(p.atr)
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for period in EMA_PERIODS:
            ema = getattr(p, f"ema_{period}")
            lag = getattr(p, f"ema_{period}_lag")
            out[f"pos_{period}"] = sq((p.close - ema) / (POS_SCALE[period] * atr))
            slope = (ema - lag) / SLOPE_LAG / atr
            out[f"slope_{period}"] = sq(slope / SLOPE_SCALE[period])
    return out


def momentum_parts(p: PriceInputs) -> dict[str, np.ndarray]:
    atr = _pos_atr(p.atr)
    with np.errstate(invalid="ignore", divide="ignore"):
        atr_pct = atr / p.close
        # TA-Lib's RSI is 0 over a window with no move at all; that is no
        # momentum (50), not the most bearish reading.
        still = (p.rsi == 0.0) & (p.roc == 0.0)
        return {
            "rsi": np.where(still, 50.0, np.clip(p.rsi, 0.0, 100.0)),
            "macd": sq(p.macd / (2.0 * atr)),
            "macd_hist": sq(p.macdhist / (0.5 * atr)),
            "roc": sq((p.roc / 100.0) / (atr_pct * math.sqrt(10.0)) / 1.5),
        }


def percent_b(p: PriceInputs) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        width = p.bb_upper - p.bb_lower
        return np.where(
            width > 0, (p.close - p.bb_lower) / width, np.where(width == 0, 0.5, np.nan)
        )


def volatility_parts(p: PriceInputs) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        atr_pct = p.atr / p.close
        damp = np.where(atr_pct > ATR_CALM, ATR_CALM / atr_pct, 1.0)
        pos = np.clip(100.0 * percent_b(p), 0.0, 100.0)
        return {"range": 50.0 + (pos - 50.0) * damp}


def volume_parts(p: PriceInputs) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(p.vol_sma > 0, p.vol_sma, np.nan)
        obv = sq(2.0 * (p.obv - p.obv_lag) / (OBV_LAG * avg))
        ratio = p.volume / avg
        surge = 50.0 + 50.0 * np.sign(p.close - p.open) * np.tanh(np.maximum(ratio - 1.0, 0.0))
        return {"obv": obv, "volume": surge}


PRICE_FACTORS = {
    "trend": trend_parts,
    "momentum": momentum_parts,
    "volatility": volatility_parts,
    "volume": volume_parts,
}


def price_scores(p: PriceInputs) -> dict[str, np.ndarray]:
    """Score of each price factor; NaN where a factor has no reading at all."""
    return {name: mean_available(list(fn(p).values())) for name, fn in PRICE_FACTORS.items()}
