"""Trader grade: labels, weights configuration, factors with and without
data, synthetic trends, relative strength and short histories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from marketmesh.v1 import signals_pb2
from services.signals.book import IntervalBook, MarketContext
from services.signals.candles import CandleSeries
from services.signals.context import median_excluding_self, peer_returns
from services.signals.grading import label_of, labels
from services.signals.weights import (
    TRADER_DEFAULTS,
    TRADER_FACTORS,
    GradeWeights,
    blend,
    effective_weights,
    parse_weights,
)
from tests.signals.markets import HOUR, candles, trend

L = signals_pb2


def graded(closes: list[np.ndarray], context: MarketContext | None = None) -> IntervalBook:
    ctx = context or MarketContext()
    book = IntervalBook(len(closes), HOUR, GradeWeights())
    book.warm(np.arange(len(closes)), [candles(c, seed=i) for i, c in enumerate(closes)], ctx)
    return book


def factor(book: IntervalBook, sid: int, name: str, ctx: MarketContext | None = None):
    fields = book.signal_fields(sid, ctx or MarketContext())
    return next(f for f in fields.factors if f.name == name)


# ----- labels -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "label"),
    [
        (0.0, L.GRADE_LABEL_STRONG_SELL),
        (19.999, L.GRADE_LABEL_STRONG_SELL),
        (20.0, L.GRADE_LABEL_SELL),
        (39.999, L.GRADE_LABEL_SELL),
        (40.0, L.GRADE_LABEL_NEUTRAL),
        (59.999, L.GRADE_LABEL_NEUTRAL),
        (60.0, L.GRADE_LABEL_BUY),
        (79.999, L.GRADE_LABEL_BUY),
        (80.0, L.GRADE_LABEL_STRONG_BUY),
        (100.0, L.GRADE_LABEL_STRONG_BUY),
        (math.nan, L.GRADE_LABEL_UNSPECIFIED),
    ],
)
def test_label_boundaries(grade: float, label: int) -> None:
    assert label_of(grade) == label
    assert labels(np.array([grade, grade]))[1] == label


# ----- weights ------------------------------------------------------------------------


def test_default_weights_sum_to_one_and_cover_every_factor() -> None:
    assert set(TRADER_DEFAULTS) == set(TRADER_FACTORS)
    assert math.isclose(sum(TRADER_DEFAULTS.values()), 1.0)
    w = GradeWeights()
    assert math.isclose(sum(w.trader.values()), 1.0)
    assert math.isclose(sum(w.investor.values()), 1.0)


def test_override_replaces_listed_weights_and_rescales() -> None:
    w = parse_weights("trend=0.3, momentum=0.2")
    # Others keep their defaults: 0.10 + 0.10 + 0.15 + 0.05 + 0.075 + 0.075 = 0.55; total 1.05.
    assert math.isclose(w["trend"], 0.3 / 1.05)
    assert math.isclose(w["momentum"], 0.2 / 1.05)
    assert math.isclose(w["regime"], 0.05 / 1.05)
    assert math.isclose(sum(w.values()), 1.0)
    assert parse_weights("") == pytest.approx(dict(TRADER_DEFAULTS))
    assert GradeWeights.from_override("sentiment=0").trader["sentiment"] == 0.0


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("trend=0.3,hype=0.2", "hype"),
        ("trend=-0.1", "trend"),
        ("momentum=abc", "abc"),
        ("momentum=nan", "momentum"),
        ("volume", "volume"),
        ("trend=0.1,trend=0.2", "trend"),
    ],
)
def test_bad_override_names_the_entry(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_weights(text)


def test_all_zero_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="sum to 0"):
        parse_weights(",".join(f"{name}=0" for name in TRADER_FACTORS))


def test_missing_factor_gets_zero_weight_and_others_are_rescaled() -> None:
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    scores = {
        "a": np.array([80.0, 80.0]),
        "b": np.array([np.nan, 20.0]),
        "c": np.array([30.0, np.nan]),
    }
    eff = effective_weights(weights, scores)
    # Symbol 0: a and c have data, 0.5 / 0.7 and 0.2 / 0.7; symbol 1: a and b, 0.5 / 0.8, 0.3 / 0.8.
    assert eff["b"][0] == 0.0 and eff["c"][1] == 0.0
    assert eff["a"] == pytest.approx([0.5 / 0.7, 0.5 / 0.8])
    grade = blend(weights, scores)
    assert grade == pytest.approx([(0.5 * 80 + 0.2 * 30) / 0.7, (0.5 * 80 + 0.3 * 20) / 0.8])
    assert math.isnan(blend(weights, {k: np.array([np.nan]) for k in weights})[0])


# ----- synthetic markets --------------------------------------------------------------


def test_steady_uptrend_grades_high_and_downtrend_low() -> None:
    book = graded([trend(600, 0.004, seed=1), trend(600, -0.004, seed=2)])
    assert book.closed_grade[0] >= 70
    assert book.closed_grade[1] <= 30
    up = book.signal_fields(0, MarketContext())
    assert up.label in (L.GRADE_LABEL_BUY, L.GRADE_LABEL_STRONG_BUY)
    assert up.trader_grade >= 70
    trend_f = next(f for f in up.factors if f.name == "trend")
    assert "above the 50-period EMA, which is rising" in trend_f.reason
    down_trend = next(
        f for f in book.signal_fields(1, MarketContext()).factors if f.name == "trend"
    )
    assert "below the 50-period EMA, which is falling" in down_trend.reason


def test_factor_without_data_has_zero_weight_and_says_so() -> None:
    book = graded([trend(300, 0.003, seed=3)])
    fields = book.signal_fields(0, MarketContext())
    by = {f.name: f for f in fields.factors}
    assert [f.name for f in fields.factors] == list(TRADER_FACTORS)
    for name, text in [
        ("sentiment", "no sentiment data yet"),
        ("onchain", "no on-chain data yet"),
        ("regime", "market regime not known yet"),
        ("relative_strength", "no BTC or sector peers"),
    ]:
        assert by[name].weight == 0.0
        assert math.isnan(by[name].score)
        assert text in by[name].reason
    present = ("trend", "momentum", "volatility", "volume")
    total = sum(TRADER_DEFAULTS[n] for n in present)
    for name in present:
        assert by[name].weight == pytest.approx(TRADER_DEFAULTS[name] / total)
    assert sum(f.weight for f in fields.factors) == pytest.approx(1.0)
    expected = sum(by[n].score * by[n].weight for n in present)
    assert fields.trader_grade == pytest.approx(expected)


def test_sentiment_onchain_and_regime_scores_from_the_context() -> None:
    ctx = MarketContext(
        circulating=np.array([1e6]),
        regime=L.REGIME_BULL,
        metrics={
            "social_score": np.array([70.0]),
            "active_addresses": np.array([2000.0]),
            "exchange_net_flow": np.array([-500.0]),
        },
        metrics_baseline={"active_addresses": np.array([1000.0])},
    )
    book = graded([trend(300, 0.0, seed=4)], ctx)
    by = {f.name: f for f in book.signal_fields(0, ctx).factors}
    assert by["regime"].score == 80.0 and by["regime"].weight > 0
    # Mention volume has no data: the sentiment score is the social score alone.
    assert by["sentiment"].score == pytest.approx(70.0)
    assert "social score 70/100" in by["sentiment"].reason
    # Active addresses doubled: 50 + 50 tanh(2 ln 2); outflow of 0.05% of supply: 50 + 50 tanh(0.5).
    active = 50 + 50 * math.tanh(2 * math.log(2))
    flow = 50 + 50 * math.tanh(500 / (0.001 * 1e6))
    assert by["onchain"].score == pytest.approx((active + flow) / 2)
    assert "outflow" in by["onchain"].reason and "2.00x usual" in by["onchain"].reason


def test_outperformer_scores_higher_relative_strength_than_its_sector() -> None:
    # Five tokens of one sector share a market path; token 0 gains 0.3% more per candle,
    # token 4 loses 0.3% per candle against it. BTC (sid 5) follows the market.
    market = trend(400, 0.0005, noise=0.005, seed=7)
    rng = np.random.default_rng(8)
    extra = [0.003, 0.0, 0.0, 0.0, -0.003]
    closes = [market * np.exp(np.cumsum(e + rng.normal(0, 0.001, 400))) for e in extra]
    closes.append(market.copy())
    ctx = MarketContext(btc_sid=5, sector_names=["defi"], sector_members=[np.arange(5)])
    book = graded(closes, ctx)
    rs = [factor(book, sid, "relative_strength", ctx) for sid in range(6)]
    assert rs[0].score > 75 > rs[1].score
    assert rs[4].score < 25
    assert rs[0].score > max(r.score for r in rs[1:])
    assert rs[0].reason.startswith("outperforming")
    assert "sector median" in rs[0].reason and "BTC" in rs[0].reason
    # BTC has no sector and no "vs BTC": no data.
    assert rs[5].weight == 0.0
    assert book.closed_grade[0] > book.closed_grade[4]


def test_median_excluding_self_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(size=(7, 40))
    values[rng.random(values.shape) < 0.3] = np.nan
    got = median_excluding_self(values)
    for i in range(values.shape[0]):
        for t in range(values.shape[1]):
            others = np.delete(values[:, t], i)
            others = others[~np.isnan(others)]
            if np.isnan(values[i, t]) or len(others) == 0:
                assert np.isnan(got[i, t])
            else:
                assert got[i, t] == pytest.approx(np.median(others), abs=1e-12)


def test_short_history_grades_with_what_exists_and_says_so() -> None:
    book = graded([trend(40, 0.003, seed=9), trend(29, 0.003, seed=10)])
    assert not math.isnan(book.closed_grade[0])
    assert bool(book.has_data[0]) and not bool(book.has_data[1])
    assert math.isnan(book.closed_grade[1])
    by = {f.name: f for f in book.signal_fields(0, MarketContext()).factors}
    assert "the 200-period EMA needs 200 candles (40 so far)" in by["trend"].reason
    short = book.signal_fields(1, MarketContext())
    assert math.isnan(short.trader_grade)
    assert short.label == L.GRADE_LABEL_UNSPECIFIED
    assert all(f.weight == 0.0 for f in short.factors)
    assert "29 closed candles, 30 needed" in short.factors[0].reason


def test_peer_returns_match_brute_force_over_overlapping_sectors() -> None:
    rng = np.random.default_rng(6)
    n = 30
    ret = rng.normal(size=n)
    ret[[3, 17]] = np.nan
    sectors = [rng.choice(n, size=k, replace=False) for k in (5, 8, 2, 1, 12, 6)]
    sectors.append(np.array([4, 40, -1]))  # ids outside the book are ignored
    btc, sector = peer_returns(ret, 0, sectors)
    grid_btc, grid_sector = peer_returns(ret[:, None].copy(), 0, sectors)  # the 2-D path
    for sid in range(n):
        medians = []
        for raw in sectors:
            members = [m for m in raw if 0 <= m < n]
            if sid not in members or np.isnan(ret[sid]):
                continue
            others = [ret[m] for m in members if m != sid and not np.isnan(ret[m])]
            if others:
                medians.append(np.median(others))
        expected = np.mean(medians) if medians else np.nan
        assert sector[sid] == pytest.approx(expected, nan_ok=True, abs=1e-12)
        assert grid_sector[sid, 0] == pytest.approx(expected, nan_ok=True, abs=1e-12)
    assert np.isnan(btc[0]) and btc[1] == ret[0] and grid_btc[5, 0] == ret[0]


def test_a_price_that_never_moves_grades_exactly_neutral() -> None:
    n = 80
    price = np.full(n, 1.0)
    series = CandleSeries(np.arange(n) * HOUR, price, price, price, price, np.full(n, 500.0))
    book = IntervalBook(1, HOUR, GradeWeights())
    book.warm(np.arange(1), [series], MarketContext())
    # No ATR: no trend reading; RSI (0 in TA-Lib's convention) reads 50, %B 0.5, OBV flat.
    assert book.closed_grade[0] == pytest.approx(50.0)
    by = {f.name: f for f in book.signal_fields(0, MarketContext()).factors}
    assert by["trend"].weight == 0.0 and "ATR 0" in by["trend"].reason
    assert by["momentum"].score == pytest.approx(50.0)
