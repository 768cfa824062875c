"""Candles of many symbols at one interval as columns, sorted by (sid, open):
what a StreamCandles batch or a set of GetCandles histories becomes before
it is applied to a book."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import repeat
from typing import Any

import numpy as np

from services.signals.candles import CandleSeries


@dataclass(frozen=True)
class CandleBlock:
    sid: np.ndarray  # int64
    open_ms: np.ndarray  # int64
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    closed: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.sid)

    def take(self, selector: np.ndarray) -> "CandleBlock":
        return CandleBlock(*(getattr(self, f.name)[selector] for f in fields(self)))

    def sorted(self) -> "CandleBlock":
        return self.take(np.lexsort((self.open_ms, self.sid)))

    def rounds(self) -> Iterator["CandleBlock"]:
        """The k-th candle of every symbol in round k: each round has unique
        sids and rounds come in time order per symbol."""
        if not len(self):
            return
        sid = self.sid
        starts = np.r_[True, sid[1:] != sid[:-1]]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(sid.size), 0))
        rank = np.arange(sid.size) - group_start
        for r in range(int(rank.max()) + 1):
            yield self.take(rank == r)

    def newest_per_symbol(self) -> "CandleBlock":
        return self.take(np.r_[self.sid[1:] != self.sid[:-1], True])

    def bars(self) -> tuple[np.ndarray, ...]:
        """(sids, open_ms, open, high, low, close, volume) as the book takes them."""
        return self.sid, self.open_ms, self.open, self.high, self.low, self.close, self.volume


def blocks_by_interval(
    columns: Mapping[str, Any], sid_of: dict[str, int], intervals: Iterable[int]
) -> dict[int, CandleBlock]:
    """Decoded StreamCandles columns (core_rs.decode_stream_candles) grouped
    by interval; symbols and intervals not followed are dropped."""
    symbols = columns["symbol"]
    if not symbols:
        return {}
    sid = np.fromiter(map(sid_of.get, symbols, repeat(-1)), dtype=np.int64, count=len(symbols))
    interval = columns["interval"]
    block = CandleBlock(
        sid,
        columns["open_ms"],
        columns["open"],
        columns["high"],
        columns["low"],
        columns["close"],
        columns["volume"],
        columns["closed"],
    )
    out = {}
    for value in intervals:
        mask = (interval == value) & (sid >= 0)
        if mask.any():
            out[value] = block.take(mask).sorted()
    return out


def join_columns(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The columns of several messages of one sequence (more = true) as one."""
    if len(parts) == 1:
        return dict(parts[0])
    out: dict[str, Any] = {"symbol": [s for p in parts for s in p["symbol"]]}
    for name in ("interval", "open_ms", "open", "high", "low", "close", "volume", "closed"):
        out[name] = np.concatenate([p[name] for p in parts])
    return out


def from_histories(sids: Sequence[int], histories: Sequence[CandleSeries | None]) -> CandleBlock:
    """Closed-candle histories of several symbols as one block."""
    pairs = [(sid, h) for sid, h in zip(sids, histories, strict=True) if h is not None]
    if not pairs:
        empty_f = np.empty(0)
        return CandleBlock(
            np.empty(0, np.int64), np.empty(0, np.int64), *([empty_f] * 5), np.empty(0, bool)
        )
    sid = np.concatenate([np.full(len(h.close), s, dtype=np.int64) for s, h in pairs])

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(h, name) for _, h in pairs])

    return CandleBlock(
        sid,
        cat("open_ms").astype(np.int64),
        cat("open"),
        cat("high"),
        cat("low"),
        cat("close"),
        cat("volume"),
        np.ones(len(sid), dtype=bool),
    ).sorted()
