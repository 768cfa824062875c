"""Indicator state and grades of every symbol at one interval.

An :class:`IntervalBook` holds, per symbol (dense ids ``0..n-1``), the core_rs
incremental state of the indicator bundle (``features.members``), a short ring
of recent closed values (for slopes, returns and the momentum label), the
closed and live trader grades and the confirmed direction. Every update and
regrade is vectorized over symbols: no Python loop per symbol, so a universe
of thousands regrades in milliseconds. Reasons are built only for one symbol
on demand (:meth:`IntervalBook.signal_fields`).

Start-up (``warm``) runs the bundle over whole histories in one core_rs call
per chunk of symbols and grades every historic candle at once; the state it
leaves is the state bar-by-bar ``apply_closed`` would have reached, so later
candles continue exactly. That call is ``BundleSet.update`` with each
symbol's id repeated once per candle: it returns the per-candle values that
``bundle.run`` would (both equal the batch kernels bitwise) and, unlike
``bundle.run``, leaves the incremental state behind, so no second pass over
the history is needed to resume. Historic candles are graded with today's market
context (regime, sentiment, on-chain: no history of those is kept);
relative strength uses the peers' returns at the same candle time among the
symbols warmed together.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core_rs.bundle import BundleSet
from marketmesh.v1 import signals_pb2
from services.signals import reasons
from services.signals.candles import CandleSeries
from services.signals.context import (
    MarketContext,
    context_scores,
    peer_returns,
)
from services.signals.direction import DEFAULT_CONFIRM_BARS, step
from services.signals.features import (
    COL,
    COLUMNS,
    MIN_BARS,
    MOMENTUM_BARS,
    OBV_LAG,
    PRICE_FACTORS,
    RING,
    RING_FIELDS,
    RING_LEN,
    RISK_LEN,
    RS_BARS,
    SLOPE_LAG,
    PriceInputs,
    members,
    percent_b,
    price_scores,
)
from services.signals.grading import FactorScore, label_of, labels, momentum_labels
from services.signals.risk import RiskFigures, risk_figures
from services.signals.weights import TRADER_FACTORS, GradeWeights, blend, effective_weights

__all__ = [
    "ClosedUpdate",
    "FactorScore",
    "FlipLog",
    "IntervalBook",
    "MarketContext",
    "RiskFigures",
    "SignalFields",
    "label_of",
    "labels",
]

FORMAT = b"MMIB"
VERSION = 1
WARM_CHUNK_ROWS = 200_000  # bundle rows per warm-up chunk (about 32 MB)
REGIME_NAMES = {
    signals_pb2.REGIME_BULL: "bull",
    signals_pb2.REGIME_BEAR: "bear",
    signals_pb2.REGIME_NEUTRAL: "neutral",
}


@dataclass
class GradedHistories:
    """Every historic candle of some histories, concatenated in the order
    given, with its closed grade (NaN before MIN_BARS candles)."""

    starts: np.ndarray  # first row of each history
    lengths: np.ndarray
    grades: np.ndarray
    open_ms: np.ndarray
    close: np.ndarray


@dataclass
class ClosedUpdate:
    """What one ``apply_closed`` did, per applied candle (skipped ones left out)."""

    sids: np.ndarray  # int64
    open_ms: np.ndarray  # int64
    close: np.ndarray
    grade_before: np.ndarray  # closed grade before the candle, NaN if none
    grade_after: np.ndarray
    direction_before: np.ndarray  # int8 Direction
    direction_after: np.ndarray
    flipped: np.ndarray  # bool: BULLISH <-> BEARISH (a first direction is not a flip)


@dataclass
class FlipLog:
    """Direction flips found while replaying histories in ``warm``: already
    history, not new events."""

    sids: np.ndarray  # int64
    time_ms: np.ndarray  # int64, close time of the confirming candle
    direction: np.ndarray  # int8, the new direction
    price: np.ndarray  # close of the confirming candle
    grade: np.ndarray  # its closed grade

    @classmethod
    def empty(cls) -> FlipLog:
        dtypes = (np.int64, np.int64, np.int8, np.float64, np.float64)
        return cls(*(np.empty(0, dt) for dt in dtypes))


@dataclass
class SignalFields:
    """Everything GetSignal needs from one interval book for one symbol."""

    trader_grade: float
    closed_grade: float
    label: int
    momentum: int
    direction: int
    direction_since_ms: int
    last_flip_price: float
    factors: list[FactorScore] = field(default_factory=list)
    indicators: dict[str, float] = field(default_factory=dict)
    risk: RiskFigures = field(default_factory=lambda: RiskFigures(*(math.nan,) * 5))


# Per-symbol state arrays: name -> (dtype, fill, extra shape).
_STATE: dict[str, tuple[type, float, tuple[int, ...]]] = {
    "count": (np.int64, 0, ()),
    "last_open_ms": (np.int64, -1, ()),
    "as_of_ms": (np.int64, -1, ()),
    "bar": (np.float64, np.nan, (5,)),
    "rows": (np.float64, np.nan, (len(COLUMNS),)),
    "ring": (np.float64, np.nan, (len(RING_FIELDS), RING_LEN)),
    "closes": (np.float64, np.nan, (RISK_LEN,)),  # ring of the last closes, for risk
    "ret_closed": (np.float64, np.nan, ()),
    "high_close": (np.float64, np.nan, ()),
    "closed_grade": (np.float64, np.nan, ()),
    "grade": (np.float64, np.nan, ()),
    "direction": (np.int8, 0, ()),
    "direction_since_ms": (np.int64, -1, ()),
    "last_flip_price": (np.float64, np.nan, ()),
    "direction_score": (np.float64, np.nan, ()),
    "bull_run": (np.int32, 0, ()),
    "bear_run": (np.int32, 0, ()),
    "forming_ms": (np.int64, -1, ()),
    "forming": (np.float64, np.nan, (5,)),
    "live_rows": (np.float64, np.nan, (len(COLUMNS),)),
}


def _ids(sids: np.ndarray | Sequence[int]) -> np.ndarray:
    return np.ascontiguousarray(sids, dtype=np.int64)


def _f64(x: np.ndarray | Sequence[float]) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _log_ratio(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (now > 0) & (before > 0)
        return np.where(ok, np.log(np.where(ok, now, 1.0) / np.where(ok, before, 1.0)), np.nan)


def grade_of(
    weights: GradeWeights,
    p: PriceInputs,
    ctx: MarketContext,
    sids: np.ndarray,
    ret: np.ndarray,
    btc_ret: np.ndarray,
    sector_ret: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Trader grade and factor scores, elementwise (one element per
    ``sids`` entry; a sid may repeat, one per historic candle)."""
    scores = price_scores(p) | context_scores(ctx, sids, ret, btc_ret, sector_ret)
    grade = blend(weights.trader, scores)
    return np.where(p.nbars >= MIN_BARS, grade, np.nan), scores


class IntervalBook:
    """Indicator state and grades of every symbol at one interval."""

    def __init__(
        self,
        n_symbols: int,
        interval_ms: int,
        weights: GradeWeights,
        *,
        confirm_bars: int = DEFAULT_CONFIRM_BARS,
    ) -> None:
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        if confirm_bars < 1:
            raise ValueError(f"confirm_bars must be at least 1, got {confirm_bars}")
        self.interval_ms = int(interval_ms)
        self.weights = weights
        self.confirm_bars = int(confirm_bars)
        self._bundle = BundleSet(0, members())
        if tuple(self._bundle.columns) != COLUMNS:
            raise RuntimeError(f"core_rs bundle columns changed: {self._bundle.columns}")
        self._n = 0
        # BTC's and the sector medians' returns for every symbol as of the
        # last regrade: one symbol's GetSignal reuses them instead of taking
        # the medians of the whole universe again.
        self._peers: tuple[np.ndarray, np.ndarray] | None = None
        self._s: dict[str, np.ndarray] = {
            name: np.full((0, *shape), fill, dtype=dtype)
            for name, (dtype, fill, shape) in _STATE.items()
        }
        self.add_symbols(n_symbols)

    # ----- symbols and persistence -------------------------------------------------

    @property
    def n_symbols(self) -> int:
        return self._n

    def add_symbols(self, n: int) -> None:
        """Appends ``n`` symbols with no data (ids continue from n_symbols)."""
        if n < 0:
            raise ValueError(f"cannot add {n} symbols")
        if n == 0:
            return
        self._bundle.add_symbols(n)
        self._peers = None
        for name, (dtype, fill, shape) in _STATE.items():
            extra = np.full((n, *shape), fill, dtype=dtype)
            self._s[name] = np.concatenate([self._s[name], extra])
        self._n += n

    def to_bytes(self) -> bytes:
        """Everything needed to resume: the versioned state of every symbol."""
        meta = {
            "version": VERSION,
            "interval_ms": self.interval_ms,
            "confirm_bars": self.confirm_bars,
            "n_symbols": self._n,
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            bundle=np.frombuffer(self._bundle.to_bytes(), dtype=np.uint8),
            **self._s,
        )
        return FORMAT + buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, weights: GradeWeights) -> IntervalBook:
        """A book saved by ``to_bytes``; weights come from today's configuration."""
        if not data.startswith(FORMAT):
            raise ValueError("not an IntervalBook state (bad magic)")
        with np.load(io.BytesIO(data[len(FORMAT) :]), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("version") != VERSION:
                raise ValueError(
                    f"IntervalBook state version {meta.get('version')}, expected {VERSION}"
                )
            book = cls(0, meta["interval_ms"], weights, confirm_bars=meta["confirm_bars"])
            book._bundle = BundleSet.from_bytes(bytes(z["bundle"]))
            for name, (dtype, _, shape) in _STATE.items():
                arr = z[name]
                if arr.dtype != dtype or arr.shape != (meta["n_symbols"], *shape):
                    raise ValueError(f"IntervalBook state: {name} has shape {arr.shape}")
                book._s[name] = arr.copy()
            book._n = int(meta["n_symbols"])
        if book._bundle.n_symbols != book._n:
            raise ValueError("IntervalBook state: bundle and arrays disagree on the symbol count")
        return book

    # ----- internal helpers --------------------------------------------------------

    def _ring_at(self, sids: np.ndarray, name: str, idx: np.ndarray) -> np.ndarray:
        """Ring value at absolute closed-candle index ``idx`` (NaN if gone or < 0)."""
        count = self._s["count"][sids]
        ok = (idx >= 0) & (idx > count - 1 - RING_LEN) & (idx < count)
        vals = self._s["ring"][sids, RING[name], np.mod(idx, RING_LEN)]
        return np.where(ok, vals, np.nan)

    def _closed_inputs(self, sids: np.ndarray) -> PriceInputs:
        s = self._s
        cur = s["count"][sids] - 1
        lags = {
            name: self._ring_at(sids, name, cur - SLOPE_LAG)
            for name in ("ema_20", "ema_50", "ema_200")
        }
        lags["obv"] = self._ring_at(sids, "obv", cur - OBV_LAG)
        bar = s["bar"][sids]
        return PriceInputs.from_rows(
            s["rows"][sids],
            bar[:, 0],
            bar[:, 3],
            bar[:, 4],
            s["count"][sids].astype(np.float64),
            lags,
        )

    def _live_inputs(self, sids: np.ndarray, rows: np.ndarray) -> PriceInputs:
        """Inputs with the forming candle as the newest (index ``count``)."""
        s = self._s
        cur = s["count"][sids]
        lags = {
            name: self._ring_at(sids, name, cur - SLOPE_LAG)
            for name in ("ema_20", "ema_50", "ema_200")
        }
        lags["obv"] = self._ring_at(sids, "obv", cur - OBV_LAG)
        bar = s["forming"][sids]
        return PriceInputs.from_rows(
            rows, bar[:, 0], bar[:, 3], bar[:, 4], (cur + 1).astype(np.float64), lags
        )

    def _peek(self, sids: np.ndarray) -> np.ndarray:
        bar = self._s["forming"][sids]
        return self._bundle.peek(
            sids, open=bar[:, 0], high=bar[:, 1], low=bar[:, 2], close=bar[:, 3], volume=bar[:, 4]
        )

    def _live_returns(self) -> np.ndarray:
        """Every symbol's RS_BARS return, to the forming close where there is one."""
        s = self._s
        ret = s["ret_closed"].copy()
        f = np.flatnonzero(s["forming_ms"] >= 0)
        if len(f):
            before = self._ring_at(f, "close", s["count"][f] - RS_BARS)
            ret[f] = _log_ratio(s["forming"][f, 3], before)
        return ret

    def _live_state(self, sids: np.ndarray) -> tuple[PriceInputs, np.ndarray]:
        """Live inputs of ``sids`` (the forming candle where there is one) and
        the live returns of every symbol."""
        p = self._closed_inputs(sids)
        f = np.flatnonzero(self._s["forming_ms"][sids] >= 0)
        if len(f):
            fs = sids[f]
            rows = self._peek(fs)
            self._s["live_rows"][fs] = rows
            p = p.scatter(f, self._live_inputs(fs, rows))
        return p, self._live_returns()

    def _grade(
        self, sids: np.ndarray, p: PriceInputs, ret_all: np.ndarray, ctx: MarketContext
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Grade of ``sids`` with every symbol's returns (``ret_all``) as peers."""
        btc, sector = peer_returns(ret_all, ctx.btc_sid, ctx.sector_members)
        self._peers = (btc, sector)
        return grade_of(self.weights, p, ctx, sids, ret_all[sids], btc[sids], sector[sids])

    # ----- writes --------------------------------------------------------------------

    def apply_closed(
        self,
        sids: np.ndarray,
        open_ms: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        context: MarketContext,
    ) -> ClosedUpdate:
        """One closed candle per listed symbol (ids unique within a call).

        A candle not newer than the symbol's last one is skipped, so replays
        are harmless. Updates the indicator state, regrades the applied
        symbols (closed grade) and advances their direction.
        """
        s = self._s
        sids, open_ms = _ids(sids), np.ascontiguousarray(open_ms, dtype=np.int64)
        o, h, lo, c, v = (_f64(x) for x in (open, high, low, close, volume))
        if not (len(sids) == len(open_ms) == len(o) == len(h) == len(lo) == len(c) == len(v)):
            raise ValueError("apply_closed: sids and candle arrays must have one length")
        if len(sids) and (sids.min() < 0 or sids.max() >= self._n):
            raise ValueError(f"apply_closed: symbol ids must be in 0..{self._n - 1}")
        if len(np.unique(sids)) != len(sids):
            raise ValueError("apply_closed: a symbol id is listed twice")
        new = open_ms > s["last_open_ms"][sids]
        if not new.all():
            sids, open_ms, o, h, lo, c, v = (x[new] for x in (sids, open_ms, o, h, lo, c, v))

        rows = self._bundle.update(sids, open=o, high=h, low=lo, close=c, volume=v)
        s["rows"][sids] = rows
        s["bar"][sids] = np.stack([o, h, lo, c, v], axis=1)
        s["count"][sids] += 1
        s["last_open_ms"][sids] = open_ms
        s["as_of_ms"][sids] = np.maximum(s["as_of_ms"][sids], open_ms + self.interval_ms)
        idx = s["count"][sids] - 1
        pos = np.mod(idx, RING_LEN)
        ring = s["ring"]
        ring[sids, RING["close"], pos] = c
        s["closes"][sids, np.mod(idx, RISK_LEN)] = c
        for name in ("ema_20", "ema_50", "ema_200", "obv"):
            ring[sids, RING[name], pos] = rows[:, COL[name]]
        s["ret_closed"][sids] = _log_ratio(c, self._ring_at(sids, "close", idx - RS_BARS))
        s["high_close"][sids] = np.fmax(s["high_close"][sids], c)
        done = s["forming_ms"][sids] <= open_ms
        s["forming_ms"][sids[done]] = -1
        s["live_rows"][sids[done]] = np.nan

        before = s["closed_grade"][sids].copy()
        grade, _ = self._grade(sids, self._closed_inputs(sids), s["ret_closed"], context)
        ring[sids, RING["grade"], pos] = grade
        s["closed_grade"][sids] = grade
        s["grade"][sids] = grade  # until regrade_live sees a forming candle

        dir_before = s["direction"][sids].copy()
        st = step(
            grade,
            s["direction_score"][sids],
            dir_before,
            s["bull_run"][sids],
            s["bear_run"][sids],
            self.confirm_bars,
        )
        s["direction_score"][sids] = st.score
        s["direction"][sids] = st.direction
        s["bull_run"][sids] = st.bull_run
        s["bear_run"][sids] = st.bear_run
        ch = sids[st.changed]
        s["direction_since_ms"][ch] = open_ms[st.changed] + self.interval_ms
        s["last_flip_price"][ch] = c[st.changed]
        return ClosedUpdate(sids, open_ms, c, before, grade, dir_before, st.direction, st.flipped)

    def set_forming(
        self,
        sids: np.ndarray,
        open_ms: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> None:
        """The forming (not yet closed) candle of each listed symbol; one
        that is not newer than the last closed candle is ignored."""
        s = self._s
        sids, open_ms = _ids(sids), np.ascontiguousarray(open_ms, dtype=np.int64)
        if len(sids) and (sids.min() < 0 or sids.max() >= self._n):
            raise ValueError(f"set_forming: symbol ids must be in 0..{self._n - 1}")
        keep = open_ms > s["last_open_ms"][sids]
        sids, open_ms = sids[keep], open_ms[keep]
        s["forming_ms"][sids] = open_ms
        s["forming"][sids] = np.stack(
            [_f64(x)[keep] for x in (open, high, low, close, volume)], axis=1
        )
        s["as_of_ms"][sids] = np.maximum(s["as_of_ms"][sids], open_ms)

    def regrade_live(self, context: MarketContext, sids: np.ndarray | None = None) -> None:
        """Regrades ``sids`` (default: every symbol with data) including the
        forming candle, read with peek: the closed state does not change."""
        s = self._s
        sids = np.flatnonzero(s["count"] > 0) if sids is None else _ids(sids)
        if len(sids) == 0:
            return
        p, ret = self._live_state(sids)
        grade, _ = self._grade(sids, p, ret, context)
        s["grade"][sids] = grade

    def warm(
        self, sids: np.ndarray, histories: Sequence[CandleSeries], context: MarketContext
    ) -> FlipLog:
        """Recomputes the listed symbols from their closed-candle histories.

        Their previous state (forming candle included) is dropped; each
        history holds closed candles only. Indicators come from one core_rs
        bundle pass per chunk of symbols; every historic candle is graded at
        once, then the direction is replayed over those grades with the same
        hysteresis as ``apply_closed``. Returns the flips found (history, not
        new events). Afterwards ``apply_closed`` continues exactly as if
        every candle had been applied one by one.
        """
        graded = self.grade_histories(sids, histories, context)
        if graded is None:
            return FlipLog.empty()
        sids = _ids(sids)
        s = self._s
        lengths, grades = graded.lengths, graded.grades
        has = lengths > 0
        hs = sids[has]
        flips = self._replay(sids, graded.starts, lengths, grades, graded.open_ms, graded.close)
        # The latest closed grade against every peer in the book, not only those
        # warmed together (the same number when the whole universe is warmed).
        latest, _ = self._grade(hs, self._closed_inputs(hs), s["ret_closed"], context)
        s["ring"][hs, RING["grade"], np.mod(lengths[has] - 1, RING_LEN)] = latest
        s["closed_grade"][hs] = latest
        s["grade"][hs] = latest
        return flips

    def grade_histories(
        self, sids: np.ndarray, histories: Sequence[CandleSeries], context: MarketContext
    ) -> GradedHistories | None:
        """The first half of :meth:`warm`: loads the histories' indicator
        state and grades every historic candle (None when they are all
        empty). Backtests call it on a throwaway book: the grades of a
        history are exactly those ``warm`` replays the direction over."""
        self._peers = None
        s = self._s
        sids = _ids(sids)
        if len(sids) != len(histories):
            raise ValueError("warm: one history per symbol id")
        if len(sids) and (sids.min() < 0 or sids.max() >= self._n):
            raise ValueError(f"warm: symbol ids must be in 0..{self._n - 1}")
        if len(np.unique(sids)) != len(sids):
            raise ValueError("warm: a symbol id is listed twice")
        self._bundle.reset(sids)
        for name, (_, fill, _) in _STATE.items():
            s[name][sids] = fill
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        if lengths.sum() == 0:
            return None

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(h, name) for h in histories])

        t_ms, o, h, lo, c, v = (
            cat(n) for n in ("open_ms", "open", "high", "low", "close", "volume")
        )
        local = np.repeat(np.arange(len(sids)), lengths)
        row_sid = sids[local]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        pos = np.arange(len(t_ms)) - starts[local]

        def lag(arr: np.ndarray, k: int, base: int = 0) -> np.ndarray:
            i = np.arange(len(arr)) - k
            return np.where(pos[base : base + len(arr)] >= k, arr[np.maximum(i, 0)], np.nan)

        # Relative strength needs every symbol's return at the same candle time.
        ret = lag(c, RS_BARS)
        ret = _log_ratio(c, ret)
        times, tcol = np.unique(t_ms, return_inverse=True)
        grid = np.full((len(sids), len(times)), np.nan)
        grid[local, tcol] = ret
        where = np.full(self._n, -1, dtype=np.int64)
        where[sids] = np.arange(len(sids))
        btc_local = None if context.btc_sid is None else int(where[context.btc_sid])
        sectors = [where[np.asarray(m, dtype=np.int64)] for m in context.sector_members]
        btc_grid, sector_grid = peer_returns(grid, btc_local if btc_local != -1 else None, sectors)
        del grid
        btc_ret, sector_ret = btc_grid[local, tcol], sector_grid[local, tcol]
        del btc_grid, sector_grid

        grades = np.full(len(t_ms), np.nan)
        last_rows = np.full((len(sids), len(COLUMNS)), np.nan)
        keep = pos >= (lengths[local] - RING_LEN)  # rows that end up in the ring
        ring = s["ring"]
        ends = np.cumsum(lengths)
        a = 0
        while a < len(t_ms):
            # Whole symbols per chunk, so lags never cross a chunk boundary.
            j = min(int(np.searchsorted(ends, a + WARM_CHUNK_ROWS)), len(ends) - 1)
            b = int(ends[j])
            sl = slice(a, b)
            rows = self._bundle.update(
                row_sid[sl], open=o[sl], high=h[sl], low=lo[sl], close=c[sl], volume=v[sl]
            )
            lags = {n: lag(rows[:, COL[n]], SLOPE_LAG, a) for n in ("ema_20", "ema_50", "ema_200")}
            lags["obv"] = lag(rows[:, COL["obv"]], OBV_LAG, a)
            p = PriceInputs.from_rows(
                rows, o[sl], c[sl], v[sl], (pos[sl] + 1).astype(np.float64), lags
            )
            grades[sl], _ = grade_of(
                self.weights, p, context, row_sid[sl], ret[sl], btc_ret[sl], sector_ret[sl]
            )
            kk = keep[sl]
            at_sid, at_pos = row_sid[sl][kk], np.mod(pos[sl][kk], RING_LEN)
            ring[at_sid, RING["close"], at_pos] = c[sl][kk]
            ring[at_sid, RING["grade"], at_pos] = grades[sl][kk]
            for n in ("ema_20", "ema_50", "ema_200", "obv"):
                ring[at_sid, RING[n], at_pos] = rows[kk, COL[n]]
            is_last = pos[sl] == lengths[local[sl]] - 1
            last_rows[local[sl][is_last]] = rows[is_last]
            a = b

        has = lengths > 0
        hs, ends_h = sids[has], ends[has] - 1
        s["rows"][hs] = last_rows[has]
        s["bar"][hs] = np.stack([o, h, lo, c, v], axis=1)[ends_h]
        s["count"][sids] = lengths
        s["last_open_ms"][hs] = t_ms[ends_h]
        s["as_of_ms"][hs] = t_ms[ends_h] + self.interval_ms
        s["ret_closed"][hs] = ret[ends_h]
        s["high_close"][hs] = np.fmax.reduceat(c, starts[has])
        recent = pos >= (lengths[local] - RISK_LEN)
        s["closes"][row_sid[recent], np.mod(pos[recent], RISK_LEN)] = c[recent]
        return GradedHistories(starts, lengths, grades, t_ms, c)

    def _replay(
        self,
        sids: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
        grades: np.ndarray,
        t_ms: np.ndarray,
        close: np.ndarray,
    ) -> FlipLog:
        """Direction over each history, one candle step at a time for all symbols."""
        score = np.full(len(sids), np.nan)
        direction = np.zeros(len(sids), np.int8)
        bull = np.zeros(len(sids), np.int32)
        bear = np.zeros(len(sids), np.int32)
        since = np.full(len(sids), -1, np.int64)
        price = np.full(len(sids), np.nan)
        flips: list[tuple[np.ndarray, ...]] = []
        for k in range(int(lengths.max(initial=0))):
            act = np.flatnonzero(lengths > k)
            r = starts[act] + k
            st = step(
                grades[r], score[act], direction[act], bull[act], bear[act], self.confirm_bars
            )
            score[act], direction[act] = st.score, st.direction
            bull[act], bear[act] = st.bull_run, st.bear_run
            ch = act[st.changed]
            since[ch] = t_ms[r[st.changed]] + self.interval_ms
            price[ch] = close[r[st.changed]]
            if st.flipped.any():
                fr = r[st.flipped]
                flips.append(
                    (
                        sids[act[st.flipped]],
                        t_ms[fr] + self.interval_ms,
                        st.direction[st.flipped],
                        close[fr],
                        grades[fr],
                    )
                )
        s = self._s
        s["direction_score"][sids], s["direction"][sids] = score, direction
        s["bull_run"][sids], s["bear_run"][sids] = bull, bear
        s["direction_since_ms"][sids], s["last_flip_price"][sids] = since, price
        if not flips:
            return FlipLog.empty()
        cols = list(zip(*flips, strict=True))
        return FlipLog(*(np.concatenate(col) for col in cols))

    # ----- vectorized read side -------------------------------------------------------

    @property
    def last_open_ms(self) -> np.ndarray:
        return self._s["last_open_ms"]

    @property
    def grade(self) -> np.ndarray:
        """Live grade (forming candle included after regrade_live); NaN none."""
        return self._s["grade"]

    @property
    def closed_grade(self) -> np.ndarray:
        return self._s["closed_grade"]

    @property
    def direction(self) -> np.ndarray:
        return self._s["direction"]

    @property
    def direction_since_ms(self) -> np.ndarray:
        """Close time of the candle that confirmed the current direction; -1 none."""
        return self._s["direction_since_ms"]

    @property
    def last_flip_price(self) -> np.ndarray:
        """Close of the candle that confirmed the current direction."""
        return self._s["last_flip_price"]

    @property
    def direction_score(self) -> np.ndarray:
        """Smoothed closed grade the direction is decided on (see direction)."""
        return self._s["direction_score"]

    @property
    def has_data(self) -> np.ndarray:
        """Enough closed candles for a grade."""
        return self._s["count"] >= MIN_BARS

    @property
    def bar_count(self) -> np.ndarray:
        return self._s["count"]

    @property
    def as_of_ms(self) -> np.ndarray:
        """Time of the newest data: a closed candle's close time, a forming
        candle's open time (the book sees no tick times); -1 none."""
        return self._s["as_of_ms"]

    @property
    def high_close(self) -> np.ndarray:
        """Highest close among the candles seen (warm history included)."""
        return self._s["high_close"]

    @property
    def forming(self) -> np.ndarray:
        return self._s["forming_ms"] >= 0

    @property
    def last_price(self) -> np.ndarray:
        """Forming close where there is one, else the last close."""
        s = self._s
        return np.where(s["forming_ms"] >= 0, s["forming"][:, 3], s["bar"][:, 3])

    @property
    def last_close(self) -> np.ndarray:
        return self._s["bar"][:, 3]

    def column(self, name: str, *, live: bool = True) -> np.ndarray:
        """One bundle column for every symbol (the forming candle's value
        where there is one and ``live``, as of the last regrade_live)."""
        s = self._s
        closed = s["rows"][:, COL[name]]
        if not live:
            return closed
        peeked = s["live_rows"][:, COL[name]]
        # Until regrade_live has peeked a new forming candle, the closed value stands.
        return np.where((s["forming_ms"] >= 0) & ~np.isnan(peeked), peeked, closed)

    @property
    def rsi(self) -> np.ndarray:
        return self.column("rsi")

    @property
    def above_ma200(self) -> np.ndarray:
        """Price above its 200-candle SMA (False with fewer than 200 candles)."""
        with np.errstate(invalid="ignore"):
            return self.last_price > self.column("sma_200")

    @property
    def momentum(self) -> np.ndarray:
        """Momentum label of every symbol (the closed grade's recent change)."""
        return self.momentum_of(np.arange(self._n))

    def momentum_of(self, sids: np.ndarray) -> np.ndarray:
        s = self._s
        before = self._ring_at(sids, "grade", s["count"][sids] - 1 - MOMENTUM_BARS)
        return momentum_labels(s["closed_grade"][sids], before, s["direction"][sids])

    def recent_closes(self, sids: np.ndarray) -> np.ndarray:
        """The last RISK_LEN closes of each symbol, oldest first (NaN before
        the first candle)."""
        sids = _ids(sids)
        count = self._s["count"][sids]
        idx = count[:, None] - RISK_LEN + np.arange(RISK_LEN)[None, :]
        vals = self._s["closes"][sids[:, None], np.mod(idx, RISK_LEN)]
        return np.where(idx >= 0, vals, np.nan)

    # ----- one symbol, on demand -----------------------------------------------------

    def signal_fields(self, sid: int, context: MarketContext) -> SignalFields:
        """Grade, factors with reasons, indicators and risk of one symbol."""
        if not 0 <= sid < self._n:
            raise ValueError(f"symbol id {sid} is not in 0..{self._n - 1}")
        s = self._s
        one = np.array([sid], dtype=np.int64)
        p, ret = self._live_state(one)
        if self._peers is None or len(self._peers[0]) != self._n:
            self._peers = peer_returns(ret, context.btc_sid, context.sector_members)
        btc, sector = self._peers
        grade, scores = grade_of(self.weights, p, context, one, ret[one], btc[one], sector[one])
        eff = effective_weights(self.weights.trader, scores)
        if math.isnan(float(grade[0])):
            eff = {n: np.zeros(1) for n in eff}
        reason = self._reasons(
            one, p, context, float(ret[sid]), float(btc[sid]), float(sector[sid])
        )
        factors = [
            FactorScore(n, float(scores[n][0]), float(eff[n][0]), reason[n]) for n in TRADER_FACTORS
        ]
        live_row = s["live_rows"][sid] if s["forming_ms"][sid] >= 0 else s["rows"][sid]
        return SignalFields(
            trader_grade=float(grade[0]),
            closed_grade=float(s["closed_grade"][sid]),
            label=label_of(float(grade[0])),
            momentum=int(self.momentum_of(one)[0]),
            direction=int(s["direction"][sid]),
            direction_since_ms=int(s["direction_since_ms"][sid]),
            last_flip_price=float(s["last_flip_price"][sid]),
            factors=factors,
            indicators=self._indicators(live_row, p),
            risk=risk_figures(self.recent_closes(one)[0], self.interval_ms),
        )

    def _reasons(
        self,
        one: np.ndarray,
        p: PriceInputs,
        ctx: MarketContext,
        ret: float,
        btc: float,
        sector: float,
    ) -> dict[str, str]:
        n = int(p.nbars[0])
        out = {
            "trend": reasons.trend_reason(p),
            "momentum": reasons.momentum_reason(p),
            "volatility": reasons.volatility_reason(p),
            "volume": reasons.volume_reason(p),
            "relative_strength": reasons.relative_reason(ret, btc, sector),
            "regime": reasons.regime_reason(REGIME_NAMES.get(ctx.regime)),
            "sentiment": reasons.sentiment_reason(
                float(ctx.metric("social_score", one)[0]),
                float(ctx.metric("mention_volume", one)[0]),
                float(ctx.metric("mention_volume", one, baseline=True)[0]),
            ),
            "onchain": reasons.onchain_reason(
                (
                    float(ctx.metric("active_addresses", one)[0]),
                    float(ctx.metric("active_addresses", one, baseline=True)[0]),
                ),
                float(ctx.metric("exchange_net_flow", one)[0]),
                float(ctx.circulating_of(one)[0]),
                (
                    float(ctx.metric("dex_liquidity", one)[0]),
                    float(ctx.metric("dex_liquidity", one, baseline=True)[0]),
                ),
            ),
        }
        if n < MIN_BARS:
            short = f"not graded yet: {n} closed candles, {MIN_BARS} needed"
            for name in PRICE_FACTORS:
                out[name] = f"{short}; {out[name]}"
        return out

    @staticmethod
    def _indicators(row: np.ndarray, p: PriceInputs) -> dict[str, float]:
        names = {
            "ema_20": "ema_20",
            "ema_50": "ema_50",
            "ema_200": "ema_200",
            "sma_200": "sma_200",
            "rsi_14": "rsi",
            "macd": "macd",
            "macd_signal": "macdsignal",
            "macd_hist": "macdhist",
            "bb_upper": "bb_upperband",
            "bb_middle": "bb_middleband",
            "bb_lower": "bb_lowerband",
            "atr_14": "atr",
            "obv": "obv",
            "roc_10": "roc",
            "volume_sma_20": "vol_sma",
        }
        out = {key: float(row[COL[col]]) for key, col in names.items()}
        out["bb_percent_b"] = float(percent_b(p)[0])
        out["close"] = float(p.close[0])
        return out
