"""Candles as column arrays: the one shape the engine, the backfill, the
store and the importer hand each other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

# The candle fields, in CandleArrays order (also the engine's dirty-candle keys).
CANDLE_FIELDS: tuple[str, ...] = (
    "open_ms",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "closed",
)


@dataclass
class CandleArrays:
    """Candles of one interval, ascending by ``open_ms``; parallel arrays."""

    open_ms: np.ndarray  # int64, interval start, epoch ms aligned to the width
    open: np.ndarray  # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # base units
    quote_volume: np.ndarray  # quote units (volume x price)
    trades: np.ndarray  # int64
    closed: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.open_ms)

    @classmethod
    def empty(cls) -> CandleArrays:
        f = np.empty(0, np.float64)
        return cls(
            np.empty(0, np.int64), f, f, f, f, f, f, np.empty(0, np.int64), np.empty(0, bool)
        )

    def take(self, selector: slice | np.ndarray) -> CandleArrays:
        return CandleArrays(*(getattr(self, f.name)[selector] for f in fields(self)))

    @classmethod
    def concat(cls, parts: Sequence[CandleArrays]) -> CandleArrays:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    @classmethod
    def from_columns(
        cls, columns: Mapping[str, np.ndarray], selector: slice | np.ndarray = slice(None)
    ) -> CandleArrays:
        """From a dict of columns (e.g. CandleEngine.take_dirty_candles)."""
        return cls(*(columns[name][selector] for name in CANDLE_FIELDS))
