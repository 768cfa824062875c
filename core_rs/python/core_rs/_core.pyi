"""Type stubs for the Rust extension ``core_rs._core``."""

from typing import Final, Literal, Self, TypedDict

import numpy as np
from numpy.typing import NDArray

VERSION: str

# Per-tick codes of CandleEngine.ingest; equal to
# marketmesh.v1.TickRejectionReason, checked in the order 1, 3, 2, 4, 5, 6.
ACCEPTED: Final[Literal[0]]
REJECT_UNKNOWN_SYMBOL: Final[Literal[1]]
REJECT_NON_POSITIVE_PRICE: Final[Literal[2]]
REJECT_NON_FINITE_PRICE: Final[Literal[3]]
REJECT_INVALID_VOLUME: Final[Literal[4]]
REJECT_TIME_IN_FUTURE: Final[Literal[5]]
REJECT_TIME_BEFORE_CLOSED_CANDLE: Final[Literal[6]]

# The two TypedDicts below exist for type checkers only; at run time the
# methods return plain dicts of numpy arrays.

class _CandleColumns(TypedDict):
    """Result of ``CandleEngine.take_dirty_candles``: one array per field."""

    symbol_id: NDArray[np.int32]
    interval_idx: NDArray[np.uint8]
    open_ms: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    quote_volume: NDArray[np.float64]
    trades: NDArray[np.int64]
    closed: NDArray[np.bool_]

class _QuoteColumns(TypedDict):
    """Result of ``CandleEngine.quotes``; NaN (time_ms 0) where has_price is False."""

    price: NDArray[np.float64]
    time_ms: NDArray[np.int64]
    volume_24h: NDArray[np.float64]
    quote_volume_24h: NDArray[np.float64]
    open_24h: NDArray[np.float64]
    high_24h: NDArray[np.float64]
    low_24h: NDArray[np.float64]
    change_24h_pct: NDArray[np.float64]
    has_price: NDArray[np.bool_]

class _StreamCandles(TypedDict):
    """Result of ``decode_stream_candles``: header fields and one row per update."""

    sequence: int
    snapshot: bool
    heartbeat: bool
    more: bool
    symbol: list[str]
    interval: NDArray[np.int32]
    open_ms: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    closed: NDArray[np.bool_]

def decode_stream_candles(data: bytes) -> _StreamCandles:
    """One serialized marketmesh.v1.StreamCandlesResponse as columns (one
    pass in Rust; ValueError for a truncated or malformed message)."""

class CandleEngine:
    """Ticks to last quotes, aligned OHLCV candles and rolling-window stats.

    Times are int64 ms since the epoch (UTC); every interval is aligned to
    epoch multiples of its width. ``intervals_ms`` lists the finest first and
    every other one must be a multiple of it; ``window_ms`` (the rolling
    statistics window) too. Symbols are dense ids ``0..n_symbols-1``. Every
    method releases the GIL around its loop; bad arguments raise ValueError.
    """

    def __init__(
        self,
        intervals_ms: list[int] = ...,  # [1m, 5m, 15m, 1h, 4h, 1d]
        window_ms: int = 86_400_000,
        n_symbols: int = 0,
    ) -> None: ...
    def add_symbols(self, n: int) -> int:
        """Adds ``n`` symbols; returns the first new id."""
    @property
    def n_symbols(self) -> int: ...
    @property
    def intervals_ms(self) -> list[int]: ...
    @property
    def window_ms(self) -> int: ...
    def ingest(
        self,
        symbol_ids: NDArray[np.int32] | NDArray[np.int64],
        times_ms: NDArray[np.int64],
        prices: NDArray[np.float64],
        volumes: NDArray[np.float64],
        now_ms: int,
        max_future_ms: int = 5000,
    ) -> NDArray[np.uint8]:
        """Applies ticks in order; returns one code per tick (0 = accepted).

        A rejected tick changes nothing. Arrays must have equal lengths.
        """
    def close_expired(self, cutoff_ms: int) -> int:
        """Closes every current candle whose end (open + width) <= cutoff_ms.

        Returns how many; late ticks for those candles are rejected after.
        """
    def take_dirty_candles(self) -> _CandleColumns:
        """Candles touched since the previous call, once each, latest state.

        Ordered by (symbol_id, interval_idx, open_ms).
        """
    def current_candles(
        self, symbol_ids: NDArray[np.int32] | NDArray[np.int64], interval_idx: list[int]
    ) -> _CandleColumns:
        """The current candle (forming, else last closed) per id and interval.

        Ordered by (id, interval) as given; slots with no candle are left out.
        Read-only: takes nothing from ``take_dirty_candles``.
        """
    def take_dirty_quotes(self) -> NDArray[np.int32]:
        """Sorted ids whose last price/time changed since the previous call."""
    def quotes(
        self, symbol_ids: NDArray[np.int32] | NDArray[np.int64], now_ms: int
    ) -> _QuoteColumns:
        """Last quote and rolling-window statistics at ``now_ms`` per id.

        An unknown id raises ValueError.
        """
    def restore_candles(
        self,
        symbol_id: int,
        interval_idx: int,
        open_ms: NDArray[np.int64],
        open: NDArray[np.float64],
        high: NDArray[np.float64],
        low: NDArray[np.float64],
        close: NDArray[np.float64],
        volume: NDArray[np.float64],
        quote_volume: NDArray[np.float64],
        trades: NDArray[np.int64],
        closed: NDArray[np.bool_],
    ) -> None:
        """Loads persisted candles of one symbol and interval, ascending.

        The last becomes the current candle; finest candles fill the rolling
        window. Must come before the symbol's first tick. Marks nothing dirty.
        """
    def set_last(self, symbol_id: int, price: float, time_ms: int) -> None:
        """Restores the last quote of a symbol (not marked dirty)."""

# Indicator registry (see core_rs._kernels, core_rs.batch, core_rs.incremental).

def run(
    name: str, inputs: list[object], params: list[float]
) -> tuple[NDArray[np.float64], ...]: ...
def run_batch(
    name: str, inputs: list[object], params: list[float]
) -> tuple[NDArray[np.float64], ...]: ...
def kernels() -> list[dict[str, object]]: ...
def lookback(name: str, params: list[float]) -> int: ...
def batch_threads() -> int: ...

class Incremental:
    def __new__(cls, name: str, params: list[float]) -> Incremental: ...
    def update(self, *values: float) -> float | tuple[float, ...]: ...
    def peek(self, *values: float) -> float | tuple[float, ...]: ...
    def reset(self) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def params(self) -> list[float]: ...
    def to_bytes(self) -> bytes: ...
    def _restore(self, data: bytes) -> None: ...

# Bundles (see core_rs.bundle): members as (kernel, [(param, value)], alias,
# [(kernel input, bar field)]).

_MemberTuple = tuple[str, list[tuple[str, float]], str | None, list[tuple[str, str]]]
_Field = object | None

def bundle_columns(members: list[_MemberTuple]) -> list[str]: ...
def bundle_run(
    members: list[_MemberTuple],
    open: _Field = None,
    high: _Field = None,
    low: _Field = None,
    close: _Field = None,
    volume: _Field = None,
) -> dict[str, NDArray[np.float64]]: ...

class BundleSet:
    def __new__(cls, members: list[_MemberTuple], n_symbols: int = 0) -> Self: ...
    def add_symbols(self, n: int) -> int: ...
    @property
    def n_symbols(self) -> int: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def _members(self) -> list[_MemberTuple]: ...
    def update(
        self,
        ids: object,
        open: _Field = None,
        high: _Field = None,
        low: _Field = None,
        close: _Field = None,
        volume: _Field = None,
        out: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]: ...
    def peek(
        self,
        ids: object,
        open: _Field = None,
        high: _Field = None,
        low: _Field = None,
        close: _Field = None,
        volume: _Field = None,
        out: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]: ...
    def reset(self, ids: object) -> None: ...
    def to_bytes(self) -> bytes: ...
    def _restore(self, data: bytes) -> None: ...
