"""core_rs.portfolio_backtest: the portfolio bar loop.

Hand-worked cases (the numbers are worked in the comments), the accounting
identities, the refusals, and an independent brute-force implementation
(``reference`` below, plain Python loops written from the rules in
docs/portfolio-backtest.md) that must agree on seeded random inputs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from core_rs.portfolio_backtest import END, REBALANCE, REGIME, portfolio_backtest

NAN = math.nan

# Two assets, A (column 0) and B (column 1); rows are bars.
TIME = np.arange(6, dtype=np.int64) * 10
OPEN = np.array([[10, 20], [10, 20], [11, 21], [12, 20], [12, 22], [13, 24]], dtype=np.float64)
CLOSE = np.array([[10, 20], [11, 21], [12, 20], [12, 22], [13, 24], [14, 25]], dtype=np.float64)
# A leads at bars 0-2, B from bar 3.
SCORE = np.array([[60, 50]] * 3 + [[40, 70]] * 3, dtype=np.float64)
BULL = np.zeros(6, dtype=bool)


def run(
    open_: np.ndarray = OPEN,
    close: np.ndarray = CLOSE,
    score: np.ndarray = SCORE,
    bear: np.ndarray = BULL,
    **config: Any,
) -> dict[str, Any]:
    return portfolio_backtest(TIME[: len(bear)], open_, close, score, bear, config)


# --- hand-worked cases -------------------------------------------------------


def test_top_1_switches_assets_selling_first_then_buying_with_exact_costs() -> None:
    out = run(cash=1000.0, fee=0.001, slippage=0.01, top_k=1, rebalance_every=3)
    fills, trades = out["fills"], out["trades"]
    # Bar 0 picks A (60 > 50): target 1000 / close 10 = 100 units. Bar 1
    # buys at 10 * 1.01 = 10.1; 100 units would cost 1010 + 1.01 fee > 1000,
    # so the buy is scaled to spend all the cash: notional 1000 / 1.001.
    buy_a = 1000.0 / 1.001
    qty_a = buy_a / 10.1
    # Bar 3 (rebalance) picks B (70 > 40). Bar 4 sells A at 12 * 0.99 =
    # 11.88 first (fee 0.1 %), then buys B at 22 * 1.01 = 22.22 with all the
    # cash (the target, equity / 22, costs more than that).
    sell_a = qty_a * 11.88
    cash_4 = sell_a - 0.001 * sell_a
    buy_b = cash_4 / 1.001
    qty_b = buy_b / 22.22
    # Bar 5 is the last: B closes at 25 * 0.99 = 24.75, fee paid.
    sell_b = qty_b * 24.75
    final = sell_b - 0.001 * sell_b

    np.testing.assert_array_equal(fills["bar"], [1, 4, 4, 5])
    np.testing.assert_array_equal(fills["time_ms"], [10, 40, 40, 50])
    np.testing.assert_array_equal(fills["asset"], [0, 0, 1, 1])
    np.testing.assert_allclose(fills["qty"], [qty_a, -qty_a, qty_b, -qty_b], rtol=1e-12)
    np.testing.assert_allclose(fills["price"], [10.1, 11.88, 22.22, 24.75], rtol=1e-12)
    np.testing.assert_allclose(
        fills["fee"], [0.001 * buy_a, 0.001 * sell_a, 0.001 * buy_b, 0.001 * sell_b], rtol=1e-12
    )
    np.testing.assert_array_equal(fills["reason"], [REBALANCE, REBALANCE, REBALANCE, END])

    np.testing.assert_allclose(
        out["equity"],
        [1000.0, qty_a * 11, qty_a * 12, qty_a * 12, qty_b * 24, final],
        rtol=1e-12,
    )
    np.testing.assert_allclose(out["cash"], [1000, 0, 0, 0, 0, final], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(out["exposure"], [0, 1, 1, 1, 1, 0])

    np.testing.assert_array_equal(trades["asset"], [0, 1])
    np.testing.assert_array_equal(trades["entry_bar"], [1, 4])
    np.testing.assert_array_equal(trades["exit_bar"], [4, 5])
    np.testing.assert_array_equal(trades["duration_ms"], [30, 10])
    np.testing.assert_array_equal(trades["exit_reason"], [REBALANCE, END])
    np.testing.assert_allclose(trades["entry_price"], [10.1, 22.22], rtol=1e-12)
    np.testing.assert_allclose(trades["exit_price"], [11.88, 24.75], rtol=1e-12)
    np.testing.assert_allclose(trades["size"], [qty_a, qty_b], rtol=1e-12)
    pnl_a = sell_a - buy_a - 0.001 * (buy_a + sell_a)
    pnl_b = sell_b - buy_b - 0.001 * (buy_b + sell_b)
    np.testing.assert_allclose(trades["pnl"], [pnl_a, pnl_b], rtol=1e-12)
    np.testing.assert_allclose(
        trades["return_pct"], [pnl_a / buy_a * 100, pnl_b / buy_b * 100], rtol=1e-12
    )
    assert math.isclose(trades["pnl"].sum(), final - 1000.0, rel_tol=1e-12)

    # Decided at 0 and 3, filled at 1 and 4: everything in one asset.
    np.testing.assert_array_equal(out["rebalance_bars"], [1, 4])
    np.testing.assert_array_equal(out["weights"], [[1, 0], [0, 1]])
    assert out["weights"].dtype == np.float32
    # Benchmark: 500 in each at close[0], i.e. 50 A and 25 B, no costs.
    np.testing.assert_allclose(out["benchmark"], 50 * CLOSE[:, 0] + 25 * CLOSE[:, 1])


def test_bear_sends_everything_to_cash_at_the_next_open_and_bull_brings_it_back() -> None:
    bear = np.array([False, True, True, False, False, False])
    out = run(bear=bear, cash=1000.0, top_k=1, rebalance_every=100)
    # Bar 0 buys A at open[1] = 10: 100 units. Bar 1 turns BEAR (reason
    # REGIME): sold at open[2] = 11, cash 1100 and nothing held through bar
    # 3's open. Bar 2 stays BEAR: no decision. Bar 3 is BULL again and B
    # leads: 1100 / close 22 = 50 units at open[4] = 22; closed at 25.
    np.testing.assert_array_equal(out["fills"]["bar"], [1, 2, 4, 5])
    np.testing.assert_array_equal(out["fills"]["asset"], [0, 0, 1, 1])
    np.testing.assert_array_equal(out["fills"]["reason"], [REBALANCE, REGIME, REGIME, END])
    np.testing.assert_allclose(out["fills"]["qty"], [100, -100, 50, -50])
    np.testing.assert_allclose(out["cash"], [1000, 0, 1100, 1100, 0, 1250])
    np.testing.assert_allclose(out["equity"], [1000, 1100, 1100, 1100, 1200, 1250])
    np.testing.assert_array_equal(out["exposure"], [0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(out["rebalance_bars"], [1, 2, 4])
    np.testing.assert_array_equal(out["weights"], [[1, 0], [0, 0], [0, 1]])
    np.testing.assert_array_equal(out["target_weights"], [[1, 0], [0, 0], [0, 1]])


def test_a_bar_that_is_both_a_rebalance_and_a_regime_change_has_both_reasons() -> None:
    bear = np.array([True, True, False, False, False, False])
    out = run(bear=bear, cash=1000.0, top_k=1, rebalance_every=2)
    # Bar 0 is BEAR: nothing. Bar 2 is a rebalance bar and BULL after BEAR:
    # A at open[3] = 12, 1000 / close 12 units; bar 4 (rebalance) moves to B.
    np.testing.assert_array_equal(out["fills"]["reason"], [REBALANCE | REGIME, 1, 1, END])
    np.testing.assert_array_equal(out["fills"]["bar"], [3, 5, 5, 5])


def test_an_asset_without_an_open_is_skipped_and_retried_at_the_next_rebalance() -> None:
    open_, close = OPEN.copy(), CLOSE.copy()
    open_[1, 0] = close[1, 0] = NAN  # A has no candle at bar 1
    out = run(open_, close, cash=1000.0, top_k=1, rebalance_every=2)
    # Bar 0's buy of A cannot fill at bar 1 and is dropped (bar 1 is no
    # rebalance). Bar 2 retries: 1000 / close 12 units at open[3] = 12,
    # sold at open[5] = 13 when bar 4 picks B: 13000 / 12 = 1083.33; bought
    # B with that at open[5] = 24 (sized 1083.33 / close[4] 24 units).
    units_a = 1000 / 12
    units_b = units_a * 13 / 24
    np.testing.assert_array_equal(out["fills"]["bar"], [3, 5, 5, 5])
    np.testing.assert_allclose(out["fills"]["qty"], [units_a, -units_a, units_b, -units_b])
    np.testing.assert_allclose(out["equity"][:3], [1000, 1000, 1000])
    np.testing.assert_allclose(out["equity"][5], units_b * 25)


def test_a_held_asset_without_a_candle_is_carried_at_its_last_close() -> None:
    open_, close = OPEN.copy(), CLOSE.copy()
    open_[4, 0] = close[4, 0] = NAN  # A has no candle at bar 4
    out = run(open_, close, cash=1200.0, top_k=1, rebalance_every=3)
    # 120 A bought at open[1] = 10. Bar 3 picks B but A cannot be sold at
    # open[4]: it is valued at its last close 12 at bar 4, and the buy of B
    # finds no cash. Bar 5 is the last: A closed at close[5] = 14.
    np.testing.assert_array_equal(out["fills"]["bar"], [1, 5])
    np.testing.assert_allclose(out["equity"][3:], [1440, 1440, 1680])
    np.testing.assert_array_equal(out["fills"]["reason"], [REBALANCE, END])


def test_whole_units_are_floored() -> None:
    out = run(cash=1000.0, top_k=1, rebalance_every=3, whole_units=True, fee=0.01)
    # Bar 0: 1000 / 10 = 100 units target, but 100 * 10 * 1.01 = 1010 > 1000,
    # so the buy is scaled to 1000 / 1010 * 100 = 99.0099 and floored to 99:
    # cost 990 + 9.90 fee, cash 0.10. Bar 3: equity 99 * 12 + 0.10 = 1188.1;
    # B target floor(1188.1 / 22) = 54. A sold at open[4] = 12: 1188 less
    # 11.88 fee, cash 1176.22; 54 B at 22 cost 1188 + 11.88 > cash, scaled to
    # 54 * 1176.22 / 1199.88 = 52.94 -> 52 units.
    np.testing.assert_array_equal(out["fills"]["qty"], [99, -99, 52, -52])
    cash_1 = 1000 - 990 - 9.9
    cash_4 = cash_1 + 1188 - 11.88 - 52 * 22 * 1.01
    np.testing.assert_allclose(out["cash"][1:5], [cash_1, cash_1, cash_1, cash_4], rtol=1e-9)
    # The last bar sells the 52 B at 25, fee 1 %.
    np.testing.assert_allclose(out["equity"][5], cash_4 + 52 * 25 - 0.01 * 52 * 25, rtol=1e-12)


def test_top_k_ties_and_min_score() -> None:
    score = np.array([[70.0, 70.0, 30.0]] * 4)
    open_ = close = np.full((4, 3), 10.0)
    out = portfolio_backtest(
        TIME[:4],
        open_,
        close,
        score,
        np.zeros(4, dtype=bool),
        {"top_k": 1, "rebalance_every": 10, "cash": 100.0},
    )
    # A tie at 70 goes to the lower column: asset 0.
    np.testing.assert_array_equal(out["fills"]["asset"], [0, 0])
    out = portfolio_backtest(
        TIME[:4],
        open_,
        close,
        score,
        np.zeros(4, dtype=bool),
        {"top_k": 3, "rebalance_every": 10, "cash": 90.0, "min_score": 50},
    )
    # Asset 2 (30) is below min_score: k = 2, 45 in each of 0 and 1.
    np.testing.assert_allclose(out["weights"], [[0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(out["target_weights"], [[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(out["fills"]["qty"][:2], [4.5, 4.5])


def test_start_and_end_window_the_run() -> None:
    out = run(cash=1000.0, top_k=1, rebalance_every=1, start=1, end=4)
    assert np.isnan(out["equity"][[0, 4, 5]]).all()
    assert np.isnan(out["benchmark"][[0, 4, 5]]).all()
    # Bar 1 picks A: 1000 / 11 units at open[2] = 11; bar 2 again A (no
    # order: on target); bar 3 is the last: closed at close[3] = 12.
    np.testing.assert_allclose(out["equity"][1:4], [1000, 1000 / 11 * 12, 1000 / 11 * 12])
    np.testing.assert_array_equal(out["fills"]["bar"], [2, 3])
    # Benchmark from close[1]: 500 / 11 A and 500 / 21 B.
    np.testing.assert_allclose(
        out["benchmark"][1:4], [1000, 500 / 11 * 12 + 500 / 21 * 20, 500 / 11 * 12 + 500 / 21 * 22]
    )


# --- invariants on random inputs -----------------------------------------------


def random_inputs(seed: int, n: int, m: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.02, size=(n, m))
    close = 50.0 * rng.uniform(0.2, 5.0, size=m) * np.exp(np.cumsum(steps, axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.01, size=(n, m)))
    # Missing candles: mostly both open and close, sometimes only one.
    gone = rng.random((n, m)) < 0.05
    open_[gone | (rng.random((n, m)) < 0.01)] = NAN
    close[gone | (rng.random((n, m)) < 0.01)] = NAN
    # Some tokens list late: no candles at all before their first bar.
    for a in rng.choice(m, size=m // 4, replace=False):
        first = rng.integers(0, n // 2)
        open_[:first, a] = close[:first, a] = NAN
    score = rng.uniform(0.0, 100.0, size=(n, m))
    score[rng.random((n, m)) < 0.1] = NAN
    flips = rng.random(n) < 0.03
    bear = (np.cumsum(flips) % 2).astype(bool)
    time_ms = 1_700_000_000_000 + 3_600_000 * np.arange(n, dtype=np.int64)
    return time_ms, open_, close, score, bear


def random_config(seed: int, n: int, m: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + 1_000_000)
    start = int(rng.integers(0, n // 4))
    return {
        "cash": float(rng.choice([1_000.0, 10_000.0, 250_000.0])),
        "fee": float(rng.choice([0.0, rng.uniform(0.0, 0.01)])),
        "slippage": float(rng.choice([0.0, rng.uniform(0.0, 0.01)])),
        "top_k": int(rng.integers(1, m + 3)),
        "rebalance_every": int(rng.integers(1, 30)),
        "min_score": float(rng.choice([0.0, rng.uniform(0.0, 70.0)])),
        "whole_units": bool(rng.random() < 0.3),
        "start": start,
        "end": int(rng.integers(start + n // 4, n + 1)),
    }


def replayed_holdings(
    out: dict[str, Any], close: np.ndarray, start: int, end: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cash and holdings at every close, replayed from the fills alone with
    marks forward-filled from the closes."""
    n, m = close.shape
    f = out["fills"]
    cash = np.full(n, NAN)
    hold = np.full(n, NAN)
    c, qty, mark = 0.0, np.zeros(m), np.full(m, NAN)
    k = 0
    for i in range(start, end):
        while k < len(f["bar"]) and f["bar"][k] == i and f["reason"][k] != END:
            a, q, p = f["asset"][k], f["qty"][k], f["price"][k]
            c -= q * p + f["fee"][k]
            qty[a] += q
            k += 1
        mark = np.where(np.isfinite(close[i]), close[i], mark)
        while k < len(f["bar"]) and f["bar"][k] == i:
            a, q, p = f["asset"][k], f["qty"][k], f["price"][k]
            c -= q * p + f["fee"][k]
            qty[a] += q
            k += 1
        cash[i] = c
        hold[i] = float(np.sum(np.where(qty > 1e-12 * max(qty.max(), 1.0), qty * mark, 0.0)))
    return cash, hold


@pytest.mark.parametrize("seed", range(8))
def test_equity_is_cash_plus_holdings_and_trade_pnl_sums_to_the_gain(seed: int) -> None:
    n, m = 300, 4 + seed
    time_ms, open_, close, score, bear = random_inputs(seed, n, m)
    cfg = random_config(seed, n, m)
    out = portfolio_backtest(time_ms, open_, close, score, bear, cfg)
    start, end = cfg["start"], cfg["end"]
    equity = out["equity"][start:end]

    cash, hold = replayed_holdings(out, close, start, end)
    cash += cfg["cash"]
    scale = cfg["cash"] * 1e-9
    np.testing.assert_allclose(out["cash"][start:end], cash[start:end], rtol=1e-9, atol=scale)
    np.testing.assert_allclose(equity, cash[start:end] + hold[start:end], rtol=1e-9, atol=scale)
    assert (out["cash"][start:end] >= 0).all()
    assert hold[end - 1] == 0.0 and out["exposure"][end - 1] == 0.0

    gain = equity[-1] - cfg["cash"]
    assert math.isclose(out["trades"]["pnl"].sum(), gain, rel_tol=1e-9, abs_tol=scale)
    # The fills alone add up to the same gain.
    f = out["fills"]
    assert math.isclose(-(f["qty"] * f["price"]).sum() - f["fee"].sum(), gain, abs_tol=scale * 10)
    if cfg["whole_units"]:
        np.testing.assert_array_equal(f["qty"], np.round(f["qty"]))


# --- the brute-force reference -------------------------------------------------


@dataclass
class Ref:
    equity: list[float]
    cash: list[float]
    exposure: list[float]
    benchmark: list[float]
    rebalance_bars: list[int] = field(default_factory=list)
    weights: list[list[float]] = field(default_factory=list)
    target_weights: list[list[float]] = field(default_factory=list)
    fills: list[tuple[int, int, float, float, float, int]] = field(default_factory=list)
    trades: list[dict[str, float]] = field(default_factory=list)


def reference(
    time_ms: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    score: np.ndarray,
    bear: np.ndarray,
    config: dict[str, Any],
) -> Ref:
    """The rules of docs/portfolio-backtest.md in plain loops over lists."""
    o, c, s = open_.tolist(), close.tolist(), score.tolist()
    n, m = open_.shape
    cash = config.get("cash", 10000.0)
    fee = config.get("fee", 0.0)
    slip = config.get("slippage", 0.0)
    top_k, every = config["top_k"], config["rebalance_every"]
    min_score = config.get("min_score", 0.0)
    whole = config.get("whole_units", False)
    start, end = config.get("start", 0), config.get("end", n)
    ok = math.isfinite

    ref = Ref([NAN] * n, [NAN] * n, [NAN] * n, [NAN] * n)
    qty = [0.0] * m
    mark = [NAN] * m
    episode: list[dict[str, float] | None] = [None] * m

    def fill(i: int, a: int, q: float, price: float, reason: int) -> None:
        nonlocal cash
        notional = abs(q) * price
        f = fee * notional
        ep = episode[a]
        if ep is None:
            ep = episode[a] = {"entry_bar": i, "bq": 0.0, "b": 0.0, "sq": 0.0, "s": 0.0}
            ep.update(fees=0.0, size=0.0)
        if q > 0:
            cash -= notional + f
            ep["bq"] += q
            ep["b"] += notional
            qty[a] += q
        else:
            cash += notional - f
            ep["sq"] -= q
            ep["s"] += notional
            qty[a] = max(qty[a] + q, 0.0)
        ep["fees"] += f
        ep["size"] = max(ep["size"], qty[a])
        ref.fills.append((i, a, q, price, f, reason))
        if qty[a] == 0.0:
            pnl = ep["s"] - ep["b"] - ep["fees"]
            entry = int(ep["entry_bar"])
            ref.trades.append(
                {
                    "asset": a,
                    "entry_bar": entry,
                    "exit_bar": i,
                    "entry_time_ms": int(time_ms[entry]),
                    "exit_time_ms": int(time_ms[i]),
                    "entry_price": ep["b"] / ep["bq"],
                    "exit_price": ep["s"] / ep["sq"],
                    "size": ep["size"],
                    "pnl": pnl,
                    "return_pct": pnl / ep["b"] * 100,
                    "fees": ep["fees"],
                    "duration_ms": int(time_ms[i] - time_ms[entry]),
                    "exit_reason": reason,
                }
            )
            episode[a] = None

    listed = [a for a in range(m) if ok(c[start][a])]
    units = [cash / len(listed) / c[start][a] if a in listed else 0.0 for a in range(m)]
    bench_mark = list(c[start])

    orders: list[tuple[int, float]] = []
    reason = 0
    for i in range(start, end):
        if reason:
            for a, q in orders:
                if q < 0 and ok(o[i][a]):
                    fill(i, a, q, o[i][a] * (1 - slip), reason)
            buys = [(a, q) for a, q in orders if q > 0 and ok(o[i][a])]
            cost = 0.0
            for a, q in buys:
                cost += q * o[i][a] * (1 + slip) * (1 + fee)
            scale = cash / cost if cost > cash else 1.0
            for a, wanted in buys:
                q = wanted
                if scale < 1.0:
                    q = wanted * scale
                    if whole:
                        q = math.floor(q)
                if q > 0:
                    fill(i, a, q, o[i][a] * (1 + slip), reason)
            cash = max(cash, 0.0)
            values = [
                qty[a] * (o[i][a] if ok(o[i][a]) else mark[a]) if qty[a] > 0 else 0.0
                for a in range(m)
            ]
            total = cash + sum(values)
            ref.weights.append([v / total if total > 0 else 0.0 for v in values])
            ref.rebalance_bars.append(i)
        for a in range(m):
            if ok(c[i][a]):
                mark[a] = c[i][a]
                bench_mark[a] = c[i][a]
        if i == end - 1:
            for a in range(m):
                if qty[a] > 0:
                    fill(i, a, -qty[a], mark[a] * (1 - slip), END)
        holdings = 0.0
        for a in range(m):
            if qty[a] > 0:
                holdings += qty[a] * mark[a]
        equity = cash + holdings
        ref.equity[i], ref.cash[i] = equity, cash
        ref.exposure[i] = holdings / equity if equity > 0 else 0.0
        bench = 0.0 if listed else cash
        for a in listed:
            bench += units[a] * bench_mark[a]
        ref.benchmark[i] = bench

        reason = 0
        if i < end - 1:
            if (i - start) % every == 0:
                reason |= REBALANCE
            if i > start and bear[i] != bear[i - 1]:
                reason |= REGIME
        if not reason:
            continue
        chosen: list[int] = []
        if not bear[i]:
            eligible = [a for a in range(m) if ok(s[i][a]) and s[i][a] >= min_score and ok(c[i][a])]
            chosen = sorted(eligible, key=lambda a: (-s[i][a], a))[:top_k]
        ref.target_weights.append([1 / len(chosen) if a in chosen else 0.0 for a in range(m)])
        orders = []
        for a in range(m):
            target = 0.0
            if a in chosen:
                target = equity / len(chosen) / c[i][a]
                if whole:
                    target = math.floor(target)
            q = target - qty[a]
            price = c[i][a] if ok(c[i][a]) else mark[a]
            if q != 0.0 and abs(q) * price >= 1e-9 * equity:
                orders.append((a, q))
    return ref


CASES = [(seed, 200 + 13 * seed, 5 + (seed * 7) % 16) for seed in range(24)]


@pytest.mark.parametrize(("seed", "n", "m"), CASES)
def test_agrees_with_the_brute_force_reference(seed: int, n: int, m: int) -> None:
    inputs = random_inputs(seed, n, m)
    cfg = random_config(seed, n, m)
    out = portfolio_backtest(*inputs, cfg)
    ref = reference(*inputs, cfg)
    atol = 1e-9 * cfg["cash"]

    def same(got: np.ndarray, want: list[float], rel: float = 1e-9, abs_: float = atol) -> None:
        np.testing.assert_allclose(got, np.array(want, dtype=np.float64), rtol=rel, atol=abs_)

    for key in ("equity", "cash", "exposure", "benchmark"):
        same(out[key], getattr(ref, key), abs_=atol if key != "exposure" else 1e-9)
    np.testing.assert_array_equal(out["rebalance_bars"], ref.rebalance_bars)
    want_w = np.array(ref.weights, dtype=np.float64).reshape(-1, m)
    np.testing.assert_allclose(out["weights"], want_w, rtol=1e-6, atol=1e-7)
    want_t = np.array(ref.target_weights, dtype=np.float32).reshape(-1, m)
    np.testing.assert_array_equal(out["target_weights"], want_t)

    f = out["fills"]
    assert len(ref.fills) > 0  # the random cases do trade
    assert len(f["bar"]) == len(ref.fills)
    bar, asset, q, price, fee, reason = (list(col) for col in zip(*ref.fills, strict=True))
    np.testing.assert_array_equal(f["bar"], bar)
    np.testing.assert_array_equal(f["time_ms"], inputs[0][np.array(bar, dtype=np.int64)])
    np.testing.assert_array_equal(f["asset"], asset)
    np.testing.assert_array_equal(f["reason"], reason)
    qscale = max((abs(x) for x in q), default=1.0)
    same(f["qty"], q, abs_=1e-9 * qscale)
    same(f["price"], price)
    same(f["fee"], fee)

    t = out["trades"]
    assert len(t["pnl"]) == len(ref.trades)
    for key in ("asset", "entry_bar", "exit_bar", "entry_time_ms", "exit_time_ms"):
        np.testing.assert_array_equal(t[key], [r[key] for r in ref.trades])
    np.testing.assert_array_equal(t["duration_ms"], [r["duration_ms"] for r in ref.trades])
    np.testing.assert_array_equal(t["exit_reason"], [r["exit_reason"] for r in ref.trades])
    for key in ("entry_price", "exit_price", "pnl", "fees"):
        same(t[key], [r[key] for r in ref.trades])
    same(t["size"], [r["size"] for r in ref.trades], abs_=1e-9 * qscale)
    same(t["return_pct"], [r["return_pct"] for r in ref.trades], abs_=1e-9)


# --- refusals and input forms --------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"top_k": 0, "rebalance_every": 1}, "top_k: must be at least 1"),
        ({"top_k": -2, "rebalance_every": 1}, "top_k: must be at least 1"),
        ({"top_k": 1, "rebalance_every": 0}, "rebalance_every: must be at least 1"),
        ({"rebalance_every": 1}, "top_k: is required"),
        ({"top_k": 1}, "rebalance_every: is required"),
        ({"top_k": 1, "rebalance_every": 1, "fee": 1.5}, "fee: must be in [0, 1)"),
        ({"top_k": 1, "rebalance_every": 1, "slippage": -0.1}, "slippage: must be in [0, 1)"),
        ({"top_k": 1, "rebalance_every": 1, "cash": 0}, "cash: must be positive"),
        ({"top_k": 1, "rebalance_every": 1, "min_score": NAN}, "min_score: must be a number"),
        ({"top_k": 1, "rebalance_every": 1, "start": 6}, "start: must be in [0, end)"),
        ({"top_k": 1, "rebalance_every": 1, "end": 7}, "end: must be in [1, 6]"),
        ({"top_k": 1, "rebalance_every": 1, "start": 3, "end": 3}, "start: must be in"),
        ({"top_k": "3", "rebalance_every": 1}, "top_k: must be an integer"),
        ({"top_k": 1, "rebalance_every": 1, "whole_units": "no"}, "whole_units: must be True"),
        ({"top_k": 1, "rebalance_every": 1, "topk": 1}, 'config: unknown key "topk"'),
    ],
)
def test_bad_config_is_refused_naming_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        portfolio_backtest(TIME, OPEN, CLOSE, SCORE, BULL, config)


def test_bad_arrays_are_refused_naming_the_array() -> None:
    cfg = {"top_k": 1, "rebalance_every": 1}
    with pytest.raises(ValueError, match=r"^close: must have shape \(bars, assets\) = \(6, 2\)"):
        portfolio_backtest(TIME, OPEN, CLOSE[:5], SCORE, BULL, cfg)
    with pytest.raises(ValueError, match=r"^score: must have shape .* got \(6, 3\)"):
        portfolio_backtest(TIME, OPEN, CLOSE, np.zeros((6, 3)), BULL, cfg)
    with pytest.raises(ValueError, match=r"^open: must have shape .* got \(6, 2\)"):
        portfolio_backtest(TIME[:5], OPEN, CLOSE, SCORE, BULL[:5], cfg)
    with pytest.raises(ValueError, match=r"^bear must have the same length as time_ms \(5 != 6\)"):
        portfolio_backtest(TIME, OPEN, CLOSE, SCORE, BULL[:5], cfg)
    with pytest.raises(ValueError, match=r"^time_ms: must be strictly ascending; bar 2"):
        portfolio_backtest(TIME[[0, 1, 1, 3, 4, 5]], OPEN, CLOSE, SCORE, BULL, cfg)
    none = np.zeros((0, 2))
    with pytest.raises(ValueError, match=r"^time_ms: is empty"):
        portfolio_backtest(TIME[:0], none, none, none, BULL[:0], cfg)
    bad = OPEN.copy()
    bad[2, 1] = 0.0
    with pytest.raises(ValueError, match=r"^open: prices must be positive .* bar 2 asset 1 is 0"):
        portfolio_backtest(TIME, bad, CLOSE, SCORE, BULL, cfg)
    bad[2, 1] = math.inf
    with pytest.raises(ValueError, match=r"^open: prices must be positive"):
        portfolio_backtest(TIME, bad, CLOSE, SCORE, BULL, cfg)
    with pytest.raises(ValueError, match=r"^open must be a 2-D numpy array of float64"):
        portfolio_backtest(TIME, OPEN.astype(np.float32), CLOSE, SCORE, BULL, cfg)
    with pytest.raises(ValueError, match=r"^bear must be a 1-D numpy array of bool"):
        portfolio_backtest(TIME, OPEN, CLOSE, SCORE, BULL.astype(np.int64), cfg)
    with pytest.raises(ValueError, match=r"^time_ms must be a 1-D numpy array of int64"):
        portfolio_backtest(TIME.astype(np.float64), OPEN, CLOSE, SCORE, BULL, cfg)


def test_non_contiguous_inputs_give_the_same_result() -> None:
    cfg = {"top_k": 1, "rebalance_every": 2, "fee": 0.001}
    want = portfolio_backtest(TIME, OPEN, CLOSE, SCORE, BULL, cfg)
    wide = np.zeros((6, 4))
    wide[:, ::2] = CLOSE
    got = portfolio_backtest(
        TIME, np.asfortranarray(OPEN), wide[:, ::2], SCORE[::-1][::-1], BULL, cfg
    )
    for key in ("equity", "cash", "weights", "benchmark"):
        np.testing.assert_array_equal(got[key], want[key])
    np.testing.assert_array_equal(got["fills"]["qty"], want["fills"]["qty"])


def test_without_any_listed_token_the_money_stays_in_cash() -> None:
    nothing = np.full((6, 2), NAN)
    out = portfolio_backtest(
        TIME, nothing, nothing, SCORE, BULL, {"top_k": 2, "rebalance_every": 1}
    )
    np.testing.assert_array_equal(out["equity"], np.full(6, 10000.0))
    np.testing.assert_array_equal(out["benchmark"], np.full(6, 10000.0))
    assert len(out["fills"]["bar"]) == 0 and len(out["trades"]["pnl"]) == 0
    assert out["weights"].shape == (5, 2)
