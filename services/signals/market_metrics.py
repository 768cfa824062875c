"""Sentiment and on-chain metrics: PublishMetrics intake, the latest values with
their trailing baselines, and a seeded simulator that feeds them by default.

(Named market_metrics so it is not mistaken for services/common/metrics.py,
the Prometheus counters.)

Intake is validated like pricing's ticks: each point is accepted or rejected
with its index in the whole stream and a sentence saying why (unknown symbol,
unknown metric name, non-finite value, value out of the metric's range,
malformed time, time more than 5 s ahead of the server clock). A point older
than the latest accepted one of its symbol and metric is accepted but changes
nothing: the book keeps the newest value and its baseline moves forward in
data time only.

Baseline: an exponentially weighted mean in data time with a half-life of
``BASELINE_HALF_LIFE_MS`` (7 days). The first point of a symbol and metric
sets it; a point ``dt`` ms after the previous accepted one moves it by
``b += (1 - 2 ** (-dt / half_life)) * (value - b)`` (the new value stands for
the time since the previous point), so irregular reporting weighs each value
by how long it stood, and a point with the same time as the previous one
replaces the latest value but leaves the baseline alone.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from marketmesh.v1 import signals_pb2

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
BASELINE_HALF_LIFE_MS = 7 * DAY_MS
MAX_FUTURE_MS = 5_000
MAX_LISTED_REJECTIONS = 1_000
# Timestamp's valid range (years 1-9999) in ms.
MIN_TIME_MS = -62_135_596_800_000
MAX_TIME_MS = 253_402_300_799_999
NO_TIME = np.iinfo(np.int64).min
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class MetricDef:
    name: str
    lo: float
    hi: float
    rule: str  # the allowed values, in words


METRICS: tuple[MetricDef, ...] = (
    MetricDef("social_score", 0.0, 100.0, "0 to 100"),
    MetricDef("mention_volume", 0.0, math.inf, ">= 0"),
    MetricDef("active_addresses", 0.0, math.inf, ">= 0"),
    MetricDef("exchange_net_flow", -math.inf, math.inf, "any finite number"),
    MetricDef("dex_liquidity", 0.0, math.inf, ">= 0"),
)
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
METRIC_INDEX: dict[str, int] = {name: i for i, name in enumerate(METRIC_NAMES)}


def known_metrics() -> str:
    return ", ".join(f"{m.name} ({m.rule})" for m in METRICS)


@dataclass(frozen=True)
class MetricColumns:
    """A batch of points as columns; ``metric`` indexes METRIC_NAMES."""

    sids: NDArray[np.int32]
    metric: NDArray[np.int8]
    values: NDArray[np.float64]
    times_ms: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.sids.size)

    def as_tuples(self) -> list[tuple[int, str, float, int]]:
        """(sid, metric name, value, time ms) per point."""
        return [
            (s, METRIC_NAMES[m], v, t)
            for s, m, v, t in zip(
                self.sids.tolist(),
                self.metric.tolist(),
                self.values.tolist(),
                self.times_ms.tolist(),
                strict=True,
            )
        ]


class MetricsBook:
    """Latest value, its time and the baseline per metric and symbol id.

    Arrays are (metric, sid); NaN (and NO_TIME) where nothing arrived yet.
    """

    def __init__(self, n_symbols: int, half_life_ms: int = BASELINE_HALF_LIFE_MS) -> None:
        if n_symbols < 0:
            raise ValueError(f"n_symbols must be >= 0, got {n_symbols}")
        if half_life_ms <= 0:
            raise ValueError(f"half_life_ms must be > 0, got {half_life_ms}")
        shape = (len(METRICS), n_symbols)
        self.half_life_ms = int(half_life_ms)
        self.latest = np.full(shape, np.nan)
        self.latest_ms = np.full(shape, NO_TIME, dtype=np.int64)
        self.baseline = np.full(shape, np.nan)

    @property
    def n_symbols(self) -> int:
        return int(self.latest.shape[1])

    def add_symbols(self, count: int) -> int:
        """Room for ``count`` more symbols; returns the first new sid."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        first = self.n_symbols
        pad = ((0, 0), (0, count))
        self.latest = np.pad(self.latest, pad, constant_values=np.nan)
        self.latest_ms = np.pad(self.latest_ms, pad, constant_values=NO_TIME)
        self.baseline = np.pad(self.baseline, pad, constant_values=np.nan)
        return first

    def update(self, batch: MetricColumns) -> None:
        """Applies valid points in order (a symbol and metric may repeat);
        grows the book when a sid is beyond it."""
        if not len(batch):
            return
        top = int(batch.sids.max())
        if top >= self.n_symbols:
            self.add_symbols(top + 1 - self.n_symbols)
        key = batch.metric.astype(np.int64) * max(self.n_symbols, 1) + batch.sids
        # Points of one key go in rounds (its 1st point, then its 2nd, ...)
        # so each round is a vectorized update with no repeated key.
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(key.size), 0))
        rank = np.empty(key.size, dtype=np.int64)
        rank[order] = np.arange(key.size) - group_start
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            self._apply(batch.metric[sel], batch.sids[sel], batch.values[sel], batch.times_ms[sel])

    def _apply(
        self,
        m: NDArray[np.int8],
        s: NDArray[np.int32],
        v: NDArray[np.float64],
        t: NDArray[np.int64],
    ) -> None:
        prev_t = self.latest_ms[m, s]
        newer = t >= prev_t  # always true for a first point (prev_t is NO_TIME)
        m, s, v, t, prev_t = m[newer], s[newer], v[newer], t[newer], prev_t[newer]
        first = prev_t == NO_TIME
        dt = (t - np.where(first, t, prev_t)).astype(np.float64)
        alpha = np.where(first, 1.0, -np.expm1(-dt * math.log(2.0) / self.half_life_ms))
        base = np.where(first, v, self.baseline[m, s])
        self.baseline[m, s] = base + alpha * (v - base)
        self.latest[m, s] = v
        self.latest_ms[m, s] = t

    def snapshot(self) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.float64]]]:
        """(latest values, baselines) by metric name, one value per sid (copies)."""
        metrics = {name: self.latest[i].copy() for i, name in enumerate(METRIC_NAMES)}
        baseline = {name: self.baseline[i].copy() for i, name in enumerate(METRIC_NAMES)}
        return metrics, baseline

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            version=np.int64(_FORMAT_VERSION),
            names=np.array(METRIC_NAMES),
            half_life_ms=np.int64(self.half_life_ms),
            latest=self.latest,
            latest_ms=self.latest_ms,
            baseline=self.baseline,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> MetricsBook:
        """A book saved by :meth:`to_bytes`; metrics unknown now are dropped,
        metrics added since start empty."""
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            version = int(f["version"])
            if version != _FORMAT_VERSION:
                raise ValueError(f"unsupported metrics book format {version}")
            names = [str(n) for n in f["names"]]
            latest, latest_ms, baseline = f["latest"], f["latest_ms"], f["baseline"]
            book = cls(int(latest.shape[1]), int(f["half_life_ms"]))
        for row, name in enumerate(names):
            i = METRIC_INDEX.get(name)
            if i is not None:
                book.latest[i] = latest[row]
                book.latest_ms[i] = latest_ms[row]
                book.baseline[i] = baseline[row]
        return book


# Intake ---------------------------------------------------------------------


@dataclass
class MetricsTally:
    """What a PublishMetrics stream did, accumulated over its messages."""

    accepted: int = 0
    rejected: int = 0
    rejections: list[signals_pb2.MetricRejection] = field(default_factory=list)
    seen: int = 0

    def to_response(self) -> signals_pb2.PublishMetricsResponse:
        return signals_pb2.PublishMetricsResponse(
            accepted=self.accepted, rejected=self.rejected, rejections=self.rejections
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def rejection_reason(
    symbol: str,
    name: str,
    value: float,
    time_ms: int,
    now_ms: int,
    sid: int,
    metric: int,
) -> str | None:
    """Why a point is rejected, or None when it is valid (checks in this order)."""
    if sid < 0:
        return f"unknown symbol {symbol!r}: not in the asset universe (see ListAssets)"
    if metric < 0:
        return f"unknown metric name {name!r}; known: {known_metrics()}"
    if not math.isfinite(value):
        return f"value must be a finite number, got {value}"
    d = METRICS[metric]
    if not d.lo <= value <= d.hi:
        return f"{d.name} must be {d.rule}; got {value:g}"
    if time_ms == NO_TIME:
        return "time is not a valid Timestamp: nanos must be between 0 and 999,999,999"
    if time_ms - now_ms > MAX_FUTURE_MS:
        ahead = (time_ms - now_ms) / 1000
        return (
            f"time {_iso(time_ms)} is {ahead:.3f} s ahead of the server clock; "
            f"at most {MAX_FUTURE_MS / 1000:g} s is allowed"
        )
    return None


def ingest_points(
    book: MetricsBook,
    tally: MetricsTally,
    points: Sequence[signals_pb2.MetricPoint],
    sid_by_symbol: dict[str, int],
    now_ms: int,
) -> MetricColumns:
    """Validates one message's points, applies the valid ones to ``book`` and
    records the rest in ``tally``; returns the accepted points."""
    n = len(points)
    sids = np.empty(n, dtype=np.int32)
    metric = np.empty(n, dtype=np.int8)
    values = np.empty(n, dtype=np.float64)
    times = np.empty(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    room = MAX_LISTED_REJECTIONS - len(tally.rejections)
    for i, p in enumerate(points):
        symbol, name = p.symbol, p.name
        sid = sid_by_symbol.get(symbol)
        if sid is None:
            # A second chance for sloppy spelling ("btc-usd ").
            sid = sid_by_symbol.get(symbol.strip().upper(), -1)
        m = METRIC_INDEX.get(name.strip().lower(), -1)
        t = _point_time(p, now_ms)
        reason = rejection_reason(symbol, name, p.value, t, now_ms, sid, m)
        if reason is None:
            sids[i], metric[i], values[i], times[i], ok[i] = sid, m, p.value, t, True
            continue
        if room > 0:
            tally.rejections.append(
                signals_pb2.MetricRejection(
                    index=tally.seen + i, symbol=symbol, name=name, reason=reason
                )
            )
            room -= 1
    accepted = MetricColumns(sids[ok], metric[ok], values[ok], times[ok])
    book.update(accepted)
    tally.accepted += len(accepted)
    tally.rejected += n - len(accepted)
    tally.seen += n
    return accepted


def _point_time(p: signals_pb2.MetricPoint, now_ms: int) -> int:
    if not p.HasField("time"):
        return now_ms
    ts = p.time
    if not 0 <= ts.nanos <= 999_999_999:
        return int(NO_TIME)
    ms = ts.seconds * 1000 + ts.nanos // 1_000_000
    # Clamped so an absurd time is "too far ahead" (or merely old), not an overflow.
    return min(max(ms, MIN_TIME_MS), MAX_TIME_MS)


# Simulator ------------------------------------------------------------------


class MetricsSimulator:
    """Plausible metric points for ``symbols``, seeded and deterministic.

    Symbols are taken in market-cap rank order (index 0 the largest) unless
    ``ranks`` says otherwise; bigger assets get more mentions, addresses and
    liquidity. Per symbol:

    * social_score: Ornstein-Uhlenbeck around an asset level (40-75), time
      constant 12 h, its level shifted by ``15 * tanh(price_change / 0.05)``
      (``price_change``: fractional change since the previous step, so a 5%
      rise lifts it about 11 points); clipped to 0..100.
    * mention_volume: log-normal around ``5,000 / (rank + 1) ** 0.8`` per hour,
      an AR(1) log deviation (time constant 6 h), higher when price moves.
    * active_addresses: log-normal around ``800,000 / (rank + 1) ** 1.1``.
    * exchange_net_flow: normal around 0 with a scale shrinking with rank,
      leaning to outflows when price rises.
    * dex_liquidity: log-normal around ``4e8 / (rank + 1) ** 1.2``, slow.

    Every step emits one point per symbol and metric at ``now_ms``; a point's
    sid is the symbol's position in ``symbols``.
    """

    SOCIAL_TAU_MS = 12 * HOUR_MS
    SOCIAL_SD = 8.0  # stationary standard deviation of the OU deviation
    SOCIAL_PRICE_SHIFT = 15.0  # most the level moves for a large price change
    LOG_TAU_MS = 6 * HOUR_MS
    LIQ_TAU_MS = 48 * HOUR_MS
    DEFAULT_STEP_MS = HOUR_MS

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int,
        ranks: NDArray[np.int64] | Sequence[int] | None = None,
    ) -> None:
        self.symbols = list(symbols)
        n = len(self.symbols)
        self.rng = np.random.default_rng(seed)
        rank = np.arange(n) if ranks is None else np.asarray(ranks, dtype=np.float64)
        scale = rank.astype(np.float64) + 1.0
        self.social_level = self.rng.uniform(40.0, 75.0, n)
        self.mention_level = np.log(5_000.0 / scale**0.8)
        self.address_level = np.log(800_000.0 / scale**1.1)
        self.flow_scale = 2_000.0 / np.sqrt(scale)
        self.liquidity_level = np.log(4e8 / scale**1.2)
        self.social = self.social_level + self.rng.normal(0.0, self.SOCIAL_SD, n)
        self.log_dev = self.rng.normal(0.0, 0.3, (3, n))  # mentions, addresses, liquidity
        self.last_ms: int | None = None

    def step(self, now_ms: int, price_change: NDArray[np.float64] | None = None) -> MetricColumns:
        n = len(self.symbols)
        dt = self.DEFAULT_STEP_MS if self.last_ms is None else max(now_ms - self.last_ms, 0)
        self.last_ms = now_ms
        change = np.zeros(n) if price_change is None else np.nan_to_num(price_change)
        rng = self.rng

        # OU exact discretisation: decay toward the (price-shifted) level.
        decay = math.exp(-dt / self.SOCIAL_TAU_MS)
        target = self.social_level + self.SOCIAL_PRICE_SHIFT * np.tanh(change / 0.05)
        noise_sd = self.SOCIAL_SD * math.sqrt(1.0 - decay**2)
        self.social = target + (self.social - target) * decay + rng.normal(0, noise_sd, n)
        self.social = np.clip(self.social, 0.0, 100.0)

        taus = np.array([self.LOG_TAU_MS, self.LOG_TAU_MS, self.LIQ_TAU_MS])[:, None]
        sds = np.array([0.4, 0.15, 0.1])[:, None]
        d = np.exp(-dt / taus)
        self.log_dev = self.log_dev * d + rng.normal(0, 1, (3, n)) * sds * np.sqrt(1 - d**2)

        buzz = np.log1p(10.0 * np.abs(change))  # mentions jump when price moves
        mentions = np.exp(self.mention_level + self.log_dev[0] + buzz)
        addresses = np.round(np.exp(self.address_level + self.log_dev[1]))
        flow = self.flow_scale * (rng.normal(0, 1, n) - 5.0 * np.tanh(change / 0.05))
        liquidity = np.exp(self.liquidity_level + self.log_dev[2])

        values = np.concatenate([self.social, mentions, addresses, flow, liquidity])
        k = len(METRICS)
        return MetricColumns(
            sids=np.tile(np.arange(n, dtype=np.int32), k),
            metric=np.repeat(np.arange(k, dtype=np.int8), n),
            values=values,
            times_ms=np.full(k * n, now_ms, dtype=np.int64),
        )
