"""Single-asset backtests in one pass without the GIL: ``run_backtest``,
``statistics`` and a parallel parameter ``sweep`` with ``SweepControl``.

The rules (fills, stops, sizing, the window, every statistic's formula, and
where they differ from backtesting.py 0.6.6) are written down once, in
``docs/backtest.md``.

Bars are numpy arrays: ``time_ms`` int64 (bar open times), ``open``,
``high``, ``low``, ``close`` float64; other dtypes are converted here.

``run_backtest(time_ms, open, high, low, close, strategy, config=None,
series=None, direction=None, atr=None)`` returns a dict:

- ``trades``: a dict of arrays, one element per trade: ``entry_bar``,
  ``exit_bar``, ``entry_time_ms``, ``exit_time_ms``, ``duration_ms`` (int64),
  ``entry_price``, ``exit_price`` (fills, slippage included), ``size``
  (signed units: + long, - short), ``pnl`` (after both fees), ``return_pct``
  (backtesting.py's ``pl_pct``: a fraction, fees included), ``fees``
  (float64), ``exit_reason`` (uint8: 1 SIGNAL, 2 STOP_LOSS, 3 TAKE_PROFIT,
  4 END, 5 REVERSE).
- ``equity``, ``drawdown`` (fraction below the running peak), ``position``
  (signed units held at the bar's close, before an END exit): float64 of
  length n, NaN outside the window ``[start, end)``.
- ``stats``: ``{name: float}`` for every name of ``STAT_NAMES`` (NaN where
  undefined; times in ms).
- ``entries``, ``exits``: the entry and exit bar of each trade (int64).

``strategy`` is a dict with a ``kind``:

- ``{"kind": "ma_cross", "fast": 10, "slow": 30, "ma": "sma" | "ema"}``
- ``{"kind": "rsi", "period": 14, "lower": 30, "upper": 70}``
- ``{"kind": "bollinger", "period": 20, "k": 2.0}``
- ``{"kind": "threshold", "enter_above": 80, "exit_below": 50}`` over
  ``series`` (float64, e.g. the trader grade)
- ``{"kind": "direction"}`` over ``direction`` (int8: 1 bullish, -1
  bearish, 0 none)
- ``{"kind": "conditions", "enter_long": b, "exit_long": b, "enter_short":
  b, "exit_short": b}`` with bool arrays (a missing one is all False).

``config`` keys (defaults): ``cash`` 10000, ``fee`` 0 (fraction of notional
per fill), ``slippage`` 0 (fraction of price per fill), ``whole_units``
False, ``allow_short`` False, ``size_fraction`` 1.0, ``stop_loss`` and
``take_profit`` None or ``("pct", 0.05)`` or ``("atr", 2.0)``,
``atr_period`` 14, ``bars_per_year`` 8760, ``start`` 0, ``end`` n. An
unknown key is a ValueError, as is any setting out of range (the message
names it).

``sweep(time_ms, open, high, low, close, kind, params, config, windows,
control=None, series=None, direction=None)`` runs every parameter dict of
``params`` (strategy parameters of ``kind``, and optionally config keys that
override ``config`` for that set) over every ``(start, end)`` window, in
parallel on the core_rs pool. It returns ``(values, STAT_NAMES)`` with
``values`` float64 of shape ``(len(params), len(windows), len(STAT_NAMES))``;
each cell equals ``run_backtest`` with the same parameters bit for bit.
``SweepControl().cancel()`` from another thread stops it between parameter
sets with ``ValueError("cancelled")``; ``done()`` counts the sets finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core_rs import _core
from core_rs._core import SweepControl

STAT_NAMES: tuple[str, ...] = tuple(_core.stat_names())

SIGNAL, STOP_LOSS, TAKE_PROFIT, END, REVERSE = 1, 2, 3, 4, 5

__all__ = [
    "END",
    "REVERSE",
    "SIGNAL",
    "STAT_NAMES",
    "STOP_LOSS",
    "TAKE_PROFIT",
    "SweepControl",
    "run_backtest",
    "statistics",
    "sweep",
]


def _bars(
    time_ms: ArrayLike, open: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike
) -> tuple[NDArray[np.int64], ...]:
    return (
        np.ascontiguousarray(time_ms, dtype=np.int64),
        *(np.ascontiguousarray(x, dtype=np.float64) for x in (open, high, low, close)),
    )


def _strategy(strategy: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(strategy)
    if out.get("kind") == "conditions":
        for key in ("enter_long", "exit_long", "enter_short", "exit_short"):
            if out.get(key) is not None:
                out[key] = np.ascontiguousarray(out[key], dtype=np.bool_)
    return out


def _optional(x: ArrayLike | None, dtype: type) -> NDArray[Any] | None:
    return None if x is None else np.ascontiguousarray(x, dtype=dtype)


def run_backtest(
    time_ms: ArrayLike,
    open: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    strategy: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    series: ArrayLike | None = None,
    direction: ArrayLike | None = None,
    atr: ArrayLike | None = None,
) -> dict[str, Any]:
    """One backtest (see the module docstring for the shapes)."""
    return _core.run_backtest(
        *_bars(time_ms, open, high, low, close),
        _strategy(strategy),
        dict(config or {}),
        series=_optional(series, np.float64),
        direction=_optional(direction, np.int8),
        atr=_optional(atr, np.float64),
    )


def statistics(
    time_ms: ArrayLike,
    equity: ArrayLike,
    close: ArrayLike,
    trades: Mapping[str, ArrayLike],
    bars_per_year: float,
) -> dict[str, float]:
    """The statistics of an equity curve and its trades.

    ``trades`` needs ``entry_bar``, ``exit_bar`` (indices into these arrays),
    ``pnl``, ``return_pct``, ``duration_ms`` and optionally ``fees``.
    """
    ints = {"entry_bar", "exit_bar", "duration_ms"}
    cols = {
        k: np.ascontiguousarray(v, dtype=np.int64 if k in ints else np.float64)
        for k, v in trades.items()
        if k in ints | {"pnl", "return_pct", "fees"}
    }
    return _core.statistics(
        np.ascontiguousarray(time_ms, dtype=np.int64),
        np.ascontiguousarray(equity, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        cols,
        float(bars_per_year),
    )


def sweep(
    time_ms: ArrayLike,
    open: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    kind: str,
    params: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any] | None,
    windows: Sequence[tuple[int, int]],
    control: SweepControl | None = None,
    series: ArrayLike | None = None,
    direction: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    """Every parameter set over every window (see the module docstring)."""
    values = _core.sweep(
        *_bars(time_ms, open, high, low, close),
        kind,
        [dict(p) for p in params],
        dict(config or {}),
        [(int(s), int(e)) for s, e in windows],
        control=control,
        series=_optional(series, np.float64),
        direction=_optional(direction, np.int8),
    )
    return values, STAT_NAMES
