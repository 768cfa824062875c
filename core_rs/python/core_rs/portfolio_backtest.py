"""The portfolio backtest loop: many tokens at once, the top K by trader
grade with equal weights, rebalanced every N bars, all in cash (the
stablecoin) while the market regime is BEAR. One pass in Rust with the GIL
released; the full rules are in ``docs/portfolio-backtest.md``.

::

    from core_rs.portfolio_backtest import portfolio_backtest
    out = portfolio_backtest(
        time_ms,  # int64[n], bar open times, strictly ascending
        open,     # float64[n, m]; NaN: no candle, cannot trade at that bar
        close,    # float64[n, m]; NaN: valued at the last known close
        score,    # float64[n, m], trader grade at the bar's close; NaN: not eligible
        bear,     # bool[n], market regime at the bar's close is BEAR
        {"top_k": 5, "rebalance_every": 24, "fee": 0.001, "slippage": 0.0005},
    )

Config keys: ``cash`` (10000.0), ``fee`` (fraction of notional per fill,
0.0), ``slippage`` (buys fill at ``open * (1 + s)``, sells at ``open * (1 -
s)``, 0.0), ``top_k`` (required, >= 1), ``rebalance_every`` (bars,
required, >= 1), ``min_score`` (0.0), ``whole_units`` (False), ``start``
(0), ``end`` (n, exclusive). Unknown keys and bad values are a
``ValueError`` naming the field.

The loop, for bar i in ``start..end``: (1) the orders decided at bar i-1's
close fill at ``open[i]``, sells first, then buys scaled down together if
the cash would not cover them and their fees; (2) ``equity[i] = cash +
sum(qty * last known close)``; (3) on rebalance bars and when the regime
changes, unless i is the last bar: targets are all cash in BEAR, else
``1/k`` of ``equity[i]`` in each of the top k eligible tokens (ties: lower
column), sized at ``close[i]``; orders below ``1e-9 * equity`` are skipped.
Every position is closed at the last bar's close (reason END), so the final
equity is cash.

Result (a dict of numpy arrays):

- ``equity``, ``cash``, ``exposure`` (invested share at the close),
  ``benchmark`` (equal-weight buy and hold from ``close[start]``, no costs):
  float64[n], NaN outside ``[start, end)``;
- ``weights`` float32[r, m]: each asset's share of the equity right after
  each rebalance's fills (valued at the fill bar's open),
  ``target_weights`` float32[r, m]: what the rebalance aimed at (``1/k`` on
  the picked tokens, all 0 in BEAR), and ``rebalance_bars`` int64[r]: the
  fill bars (each decided at the bar before);
- ``fills``: {bar, time_ms, asset, qty (signed), price, fee, reason};
- ``trades``: one per position episode, {entry_bar, exit_bar,
  entry_time_ms, exit_time_ms, entry_price, exit_price, size, pnl,
  return_pct, fees, duration_ms, exit_reason, asset}, the single-asset
  engine's columns plus ``asset``; their pnl sums to the final equity minus
  the starting cash.

Reasons (uint8, bit flags): ``REBALANCE`` 1, ``REGIME`` 2 (a bar that is
both gives 3), ``END`` 4.
"""

from __future__ import annotations

from typing import Final

from core_rs._core import portfolio_backtest

__all__ = ["END", "REBALANCE", "REGIME", "portfolio_backtest"]

REBALANCE: Final = 1
REGIME: Final = 2
END: Final = 4
