"""Candles as signals sees them: OHLCV column arrays of one symbol at one
interval, ascending by open time. Signals keeps its own shape so it never
imports the pricing service (services talk over gRPC only)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class CandleSeries:
    """Closed candles of one symbol and interval, ascending by ``open_ms``."""

    open_ms: np.ndarray  # int64, interval start, epoch ms
    open: np.ndarray  # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # base units

    def __post_init__(self) -> None:
        self.open_ms = np.ascontiguousarray(self.open_ms, dtype=np.int64)
        for name in ("open", "high", "low", "close", "volume"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        n = len(self.open_ms)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(
                    f"CandleSeries.{f.name} has {len(getattr(self, f.name))} values, "
                    f"open_ms has {n}"
                )
        if n > 1 and not bool(np.all(np.diff(self.open_ms) > 0)):
            raise ValueError("CandleSeries.open_ms must be strictly ascending")

    def __len__(self) -> int:
        return len(self.open_ms)

    @classmethod
    def empty(cls) -> CandleSeries:
        f = np.empty(0, np.float64)
        return cls(np.empty(0, np.int64), f, f, f, f, f)

    def take(self, selector: slice | np.ndarray) -> CandleSeries:
        return CandleSeries(*(getattr(self, f.name)[selector] for f in fields(self)))
