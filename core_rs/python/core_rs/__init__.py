"""marketmesh's Rust core: candle aggregation and indicator kernels.

Indicators speak TA-Lib's language: ``core_rs.macd(close, fastperiod=12,
slowperiod=26, signalperiod=9)`` takes the arguments of ``talib.MACD`` and
returns its values (to 1e-9 relative), a tuple where TA-Lib returns several.
float64 in, float64 out; other real dtypes and lists are converted, and
non-contiguous arrays are accepted. Every kernel releases the GIL.

NaN policy: a bar where any input is NaN or infinite is a gap. Outputs at a
gap are NaN and the indicator starts over after it, with a fresh warm-up:
the result equals the kernel run separately on each gap-free stretch. (TA-Lib
lets one NaN turn every later value of a recursive indicator such as EMA, RSI
or ATR into NaN, and can return wrong numbers after it.)

Bad input is a ``ValueError`` that says what to change: a period out of
range, inputs of different lengths, a 2-D array where one series is
expected, a non-numeric dtype. Empty input returns empty output.

- Many series at once: ``core_rs.batch`` (see ``core_rs.batch``).
- Per bar: ``core_rs.incremental`` (``Rsi(timeperiod=14).update(close)``).
- Several indicators per series at once, over many series or bar by bar
  for many symbols: ``core_rs.bundle`` (``bundle.run``, ``bundle.BundleSet``).

The extension module is ``core_rs._core``.
"""

from core_rs import _cpu, _extra, _risk, _ta_hlc, _ta_ma, _ta_momentum, _ta_osc, bundle, incremental  # noqa: F401
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
    Ledger,
    Replay,
    TxIndex,
    decode_stream_candles,
    index_stored,
)
from core_rs._extra import *  # noqa: F403
from core_rs._risk import *  # noqa: F403
from core_rs._ta_hlc import *  # noqa: F403
from core_rs._ta_ma import *  # noqa: F403
from core_rs._ta_momentum import *  # noqa: F403
from core_rs._ta_osc import *  # noqa: F403
from core_rs.batch import batch, batch_threads

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
    "Ledger",
    "Replay",
    "TxIndex",
    "batch",
    "batch_threads",
    "bundle",
    "decode_stream_candles",
    "incremental",
    "index_stored",
]
__all__ += (
    _ta_ma.__all__
    + _ta_momentum.__all__
    + _ta_hlc.__all__
    + _ta_osc.__all__
    + _extra.__all__
    + _risk.__all__
)
