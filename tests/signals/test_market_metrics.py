"""Metrics intake, the book's baseline against hand computation, persistence, simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from marketmesh.v1 import signals_pb2
from services.signals.market_metrics import (
    DAY_MS,
    HOUR_MS,
    MAX_LISTED_REJECTIONS,
    METRIC_NAMES,
    MetricColumns,
    MetricsBook,
    MetricsSimulator,
    MetricsTally,
    ingest_points,
)

NOW = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SIDS = {"BTC-USD": 0, "ETH-USD": 1, "SOL-USD": 2}


def ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def point(
    symbol: str = "BTC-USD",
    name: str = "social_score",
    value: float = 50.0,
    time_ms: int | None = NOW,
) -> signals_pb2.MetricPoint:
    p = signals_pb2.MetricPoint(symbol=symbol, name=name, value=value)
    if time_ms is not None:
        p.time.CopyFrom(ts(time_ms))
    return p


def ingest(
    book: MetricsBook, *points: signals_pb2.MetricPoint, tally: MetricsTally | None = None
) -> MetricsTally:
    tally = tally or MetricsTally()
    ingest_points(book, tally, list(points), SIDS, NOW)
    return tally


def latest(book: MetricsBook, name: str, sid: int = 0) -> float:
    return float(book.snapshot()[0][name][sid])


def baseline(book: MetricsBook, name: str, sid: int = 0) -> float:
    return float(book.snapshot()[1][name][sid])


@pytest.mark.parametrize(
    ("p", "needle"),
    [
        (point(symbol="NOPE-USD"), "unknown symbol 'NOPE-USD'"),
        (point(name="tweets"), "unknown metric name 'tweets'; known: social_score (0 to 100)"),
        (point(value=math.nan), "finite"),
        (point(value=math.inf), "finite"),
        (point(name="exchange_net_flow", value=-math.inf), "finite"),
        (point(value=100.5), "social_score must be 0 to 100"),
        (point(value=-0.1), "social_score must be 0 to 100"),
        (point(name="mention_volume", value=-1), "mention_volume must be >= 0; got -1"),
        (point(name="active_addresses", value=-0.5), "active_addresses must be >= 0"),
        (point(name="dex_liquidity", value=-1e-9), "dex_liquidity must be >= 0"),
        (point(time_ms=NOW + 5_001), "ahead of the server clock"),
        (point(time_ms=10**20), "ahead of the server clock"),
    ],
)
def test_each_rejection(p: signals_pb2.MetricPoint, needle: str) -> None:
    book = MetricsBook(3)
    tally = ingest(book, point(symbol="ETH-USD"), p)
    assert (tally.accepted, tally.rejected) == (1, 1)
    (rej,) = tally.rejections
    assert rej.index == 1
    assert (rej.symbol, rej.name) == (p.symbol, p.name)
    assert needle in rej.reason
    # Nothing of the rejected point reached the book.
    assert np.isnan(book.latest[:, 0]).all()


def test_malformed_time_is_rejected() -> None:
    p = point()
    p.time.nanos = 1_000_000_000
    tally = ingest(MetricsBook(3), p)
    assert tally.rejected == 1
    assert "not a valid Timestamp" in tally.rejections[0].reason


def test_valid_edges_and_defaults() -> None:
    book = MetricsBook(3)
    tally = ingest(
        book,
        point(value=0.0),
        point(symbol="ETH-USD", value=100.0),
        point(symbol=" sol-usd", name="exchange_net_flow", value=-1e12),
        point(name="dex_liquidity", value=0.0, time_ms=NOW + 5_000),
        point(name="mention_volume", value=3.0, time_ms=None),  # server time
    )
    assert (tally.accepted, tally.rejected) == (5, 0)
    assert latest(book, "social_score", 1) == 100.0
    assert latest(book, "exchange_net_flow", 2) == -1e12
    assert book.latest_ms[METRIC_NAMES.index("mention_volume"), 0] == NOW


def test_indices_count_across_the_stream_and_listing_is_capped() -> None:
    book = MetricsBook(3)
    tally = MetricsTally()
    ingest(book, point(), point(symbol="X-USD"), tally=tally)
    ingest(book, point(value=-1), point(), tally=tally)
    assert [r.index for r in tally.rejections] == [1, 2]
    assert tally.seen == 4
    ingest(book, *[point(value=200) for _ in range(MAX_LISTED_REJECTIONS + 5)], tally=tally)
    assert tally.rejected == 2 + MAX_LISTED_REJECTIONS + 5
    assert len(tally.rejections) == MAX_LISTED_REJECTIONS
    response = tally.to_response()
    assert (response.accepted, response.rejected) == (2, tally.rejected)


def test_baseline_by_hand() -> None:
    # Half-life 7 days: 7 days later a new value gets weight 1/2, 3.5 days
    # later 1 - 2**-0.5.
    book = MetricsBook(3)
    ingest(book, point(value=10.0, time_ms=NOW - 14 * DAY_MS))
    assert baseline(book, "social_score") == 10.0
    ingest(book, point(value=20.0, time_ms=NOW - 7 * DAY_MS))
    assert baseline(book, "social_score") == pytest.approx(15.0)
    ingest(book, point(value=40.0, time_ms=NOW))
    assert baseline(book, "social_score") == pytest.approx(27.5)
    later = MetricsTally()
    ingest_points(
        book, later, [point(value=0.0, time_ms=NOW + DAY_MS * 7 // 2)], SIDS, NOW + 4 * DAY_MS
    )
    assert baseline(book, "social_score") == pytest.approx(27.5 / math.sqrt(2))
    assert latest(book, "social_score") == 0.0


def test_late_point_is_accepted_but_changes_nothing() -> None:
    book = MetricsBook(3)
    ingest(book, point(value=30.0, time_ms=NOW - DAY_MS), point(value=60.0, time_ms=NOW))
    before = baseline(book, "social_score")
    tally = ingest(book, point(value=90.0, time_ms=NOW - HOUR_MS))
    assert (tally.accepted, tally.rejected) == (1, 0)
    assert latest(book, "social_score") == 60.0
    assert book.latest_ms[0, 0] == NOW
    assert baseline(book, "social_score") == before


def test_same_time_replaces_latest_not_baseline() -> None:
    book = MetricsBook(3)
    ingest(book, point(value=30.0, time_ms=NOW - DAY_MS), point(value=60.0, time_ms=NOW))
    before = baseline(book, "social_score")
    ingest(book, point(value=70.0, time_ms=NOW))
    assert latest(book, "social_score") == 70.0
    assert baseline(book, "social_score") == before


def test_repeated_key_in_one_batch_equals_one_by_one() -> None:
    rng = np.random.default_rng(3)
    times = NOW - DAY_MS * 10 + np.sort(rng.integers(0, 10 * DAY_MS, 40))
    pts = [
        point(symbol=("BTC-USD", "ETH-USD")[i % 2], value=float(v), time_ms=int(t))
        for i, (v, t) in enumerate(zip(rng.uniform(0, 100, 40), times, strict=True))
    ]
    pts[5], pts[6] = pts[6], pts[5]  # one late point
    together, apart = MetricsBook(3), MetricsBook(3)
    ingest(together, *pts)
    for p in pts:
        ingest(apart, p)
    np.testing.assert_array_equal(together.latest, apart.latest)
    np.testing.assert_array_equal(together.baseline, apart.baseline)
    # And the same numbers by a plain loop over BTC's points.
    b, last_t = math.nan, None
    for p in pts:
        if p.symbol != "BTC-USD":
            continue
        t = p.time.seconds * 1000 + p.time.nanos // 1_000_000
        if last_t is None:
            b, last_t = p.value, t
        elif t >= last_t:
            b += (1 - 0.5 ** ((t - last_t) / (7 * DAY_MS))) * (p.value - b)
            last_t = t
    assert baseline(together, "social_score", 0) == pytest.approx(b, rel=1e-12)


def test_snapshot_nan_where_none_and_copies() -> None:
    book = MetricsBook(3)
    ingest(book, point(symbol="ETH-USD", name="dex_liquidity", value=5.0))
    metrics, base = book.snapshot()
    assert set(metrics) == set(METRIC_NAMES) == set(base)
    assert np.isnan(metrics["dex_liquidity"][[0, 2]]).all()
    assert metrics["dex_liquidity"][1] == 5.0 == base["dex_liquidity"][1]
    assert np.isnan(metrics["social_score"]).all()
    metrics["dex_liquidity"][1] = -1
    assert latest(book, "dex_liquidity", 1) == 5.0


def test_add_symbols() -> None:
    book = MetricsBook(2)
    ingest(book, point(symbol="ETH-USD", value=42.0))
    assert book.add_symbols(3) == 2
    assert book.n_symbols == 5
    assert latest(book, "social_score", 1) == 42.0
    assert np.isnan(book.latest[:, 2:]).all()
    tally = MetricsTally()
    ingest_points(book, tally, [point(symbol="NEW-USD", value=7.0)], {"NEW-USD": 4}, NOW)
    assert latest(book, "social_score", 4) == 7.0
    # A sid beyond the book (a symbol the servicer just added) grows it.
    ingest_points(book, tally, [point(symbol="NEWER-USD", value=8.0)], {"NEWER-USD": 6}, NOW)
    assert book.n_symbols == 7
    assert latest(book, "social_score", 6) == 8.0
    assert np.isnan(book.latest[:, 5]).all()


def test_persistence_round_trip() -> None:
    book = MetricsBook(3, half_life_ms=DAY_MS)
    ingest(book, point(value=10.0, time_ms=NOW - DAY_MS), point(value=20.0))
    ingest(book, point(symbol="SOL-USD", name="exchange_net_flow", value=-3.5))
    copy = MetricsBook.from_bytes(book.to_bytes())
    assert copy.half_life_ms == DAY_MS
    np.testing.assert_array_equal(copy.latest, book.latest)
    np.testing.assert_array_equal(copy.latest_ms, book.latest_ms)
    np.testing.assert_array_equal(copy.baseline, book.baseline)
    # Restored state carries on exactly as the original.
    for b in (book, copy):
        ingest(b, point(value=80.0, time_ms=NOW + 1000))
    np.testing.assert_array_equal(copy.baseline, book.baseline)
    assert baseline(copy, "social_score") == pytest.approx(15.0 + (1 - 0.5 ** (1000 / DAY_MS)) * 65)


def test_book_update_takes_columns() -> None:
    book = MetricsBook(2)
    book.update(
        MetricColumns(
            sids=np.array([1, 0], dtype=np.int32),
            metric=np.array([4, 4], dtype=np.int8),
            values=np.array([5.0, 6.0]),
            times_ms=np.array([NOW, NOW], dtype=np.int64),
        )
    )
    assert book.snapshot()[0]["dex_liquidity"].tolist() == [6.0, 5.0]


SYMBOLS = [f"A{i}-USD" for i in range(60)]


def run_sim(seed: int, change: float | None, steps: int = 48) -> list[MetricColumns]:
    sim = MetricsSimulator(SYMBOLS, seed)
    moves = None if change is None else np.full(len(SYMBOLS), change)
    return [sim.step(NOW + h * HOUR_MS, moves) for h in range(steps)]


def column(batches: list[MetricColumns], name: str) -> np.ndarray:
    """(step, sid) values of one metric."""
    m = METRIC_NAMES.index(name)
    return np.array([b.values[b.metric == m] for b in batches])


def test_simulator_values_plausible_and_valid() -> None:
    batches = run_sim(1, None)
    first = batches[0]
    assert len(first) == len(SYMBOLS) * len(METRIC_NAMES)
    assert (first.times_ms == NOW).all()
    social = column(batches, "social_score")
    assert ((social >= 0) & (social <= 100)).all()
    assert 35 < social.mean() < 80
    for name in ("mention_volume", "active_addresses", "dex_liquidity"):
        assert (column(batches, name) > 0).all()
    addresses = column(batches, "active_addresses")
    assert (addresses == np.round(addresses)).all()
    flow = column(batches, "exchange_net_flow")
    assert np.isfinite(flow).all()
    assert abs(flow.mean()) < flow.std()  # centred near 0
    # Bigger assets (lower rank) get more mentions, addresses and liquidity.
    for name in ("mention_volume", "active_addresses", "dex_liquidity"):
        v = np.log(column(batches, name)).mean(axis=0)
        assert v[:5].mean() > v[-5:].mean() + 1.0
    # Every point passes PublishMetrics validation.
    book, tally = MetricsBook(len(SYMBOLS)), MetricsTally()
    sids = {s: i for i, s in enumerate(SYMBOLS)}
    for b in batches:
        pts = [point(SYMBOLS[s], name, v, t) for s, name, v, t in b.as_tuples()]
        ingest_points(book, tally, pts, sids, NOW + 48 * HOUR_MS)
    assert tally.rejected == 0
    assert tally.accepted == 48 * len(SYMBOLS) * len(METRIC_NAMES)


def test_simulator_is_deterministic() -> None:
    a, b, c = run_sim(7, None, 5), run_sim(7, None, 5), run_sim(8, None, 5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.values, y.values)
    assert not np.array_equal(a[-1].values, c[-1].values)


def test_simulator_follows_price() -> None:
    # Same seed, same noise: only the price change differs.
    up, down = run_sim(3, 0.05), run_sim(3, -0.05)
    assert column(up, "social_score")[-12:].mean() > column(down, "social_score")[-12:].mean() + 5
    # Rising prices: coins leave exchanges (net outflow).
    assert column(up, "exchange_net_flow").mean() < 0 < column(down, "exchange_net_flow").mean()
    flat = run_sim(3, 0.0)
    assert column(up, "mention_volume").mean() > column(flat, "mention_volume").mean()
