"""Candles of many symbols at one interval as columns, sorted by (sid, open):
what a StreamCandles batch or a set of GetCandles histories becomes before
it is applied to a book."""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np

from marketmesh.v1 import pricing_pb2
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


def updates_by_interval(
    updates: Sequence[pricing_pb2.CandleUpdate], sid_of: dict[str, int], intervals: Iterable[int]
) -> dict[int, CandleBlock]:
    """Updates grouped by interval (symbols and intervals not followed are dropped).

    A catch-up or an hour boundary brings tens of thousands of updates: each
    field is read in one comprehension, the cheapest way through protobuf
    objects from Python, and everything else is numpy."""
    if not updates:
        return {}
    get = sid_of.get
    sid = np.fromiter((get(u.symbol, -1) for u in updates), dtype=np.int64, count=len(updates))
    interval = np.fromiter((u.interval for u in updates), dtype=np.int64, count=len(updates))
    candles = [u.candle for u in updates]
    times = [c.open_time for c in candles]
    open_ms = np.fromiter(
        (t.seconds * 1000 + t.nanos // 1_000_000 for t in times), dtype=np.int64, count=len(times)
    )

    def floats(name: str) -> np.ndarray:
        return np.fromiter(
            (getattr(c, name) for c in candles), dtype=np.float64, count=len(candles)
        )

    block = CandleBlock(
        sid,
        open_ms,
        floats("open"),
        floats("high"),
        floats("low"),
        floats("close"),
        floats("volume"),
        np.fromiter((c.closed for c in candles), dtype=bool, count=len(candles)),
    )
    out = {}
    for value in intervals:
        mask = (interval == value) & (sid >= 0)
        if mask.any():
            out[value] = block.take(mask).sorted()
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
