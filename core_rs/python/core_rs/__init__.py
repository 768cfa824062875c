"""marketmesh's Rust core: candle aggregation and indicator kernels.

The extension module is ``core_rs._core``; this package re-exports its public
names so callers write ``import core_rs``.
"""

from core_rs._core import (
    ACCEPTED,
    REJECT_INVALID_VOLUME,
    REJECT_NON_FINITE_PRICE,
    REJECT_NON_POSITIVE_PRICE,
    REJECT_TIME_BEFORE_CLOSED_CANDLE,
    REJECT_TIME_IN_FUTURE,
    REJECT_UNKNOWN_SYMBOL,
    VERSION,
    CandleEngine,
)

__all__ = [
    "ACCEPTED",
    "REJECT_INVALID_VOLUME",
    "REJECT_NON_FINITE_PRICE",
    "REJECT_NON_POSITIVE_PRICE",
    "REJECT_TIME_BEFORE_CLOSED_CANDLE",
    "REJECT_TIME_IN_FUTURE",
    "REJECT_UNKNOWN_SYMBOL",
    "VERSION",
    "CandleEngine",
]
