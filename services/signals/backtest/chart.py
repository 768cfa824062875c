"""Backtest charts as PNG bytes: three panels over one UTC time axis.

Single symbol: (1) the close with the trades' entries and exits, (2) equity
against buy-and-hold, (3) drawdown in %. Portfolio: (1) equity with the BEAR
stretches shaded and a tick per rebalance, (2) and (3) as above.

Drawn with the object API (``Figure`` + ``FigureCanvasAgg``), never pyplot:
pyplot keeps global figure state, and these functions run in worker threads of
the signals server, several at a time. Long series are reduced to their
min/max envelope per pixel column before drawing (the picture is the same, the
render stays well under a second for a decade of hourly bars); trade markers,
bear stretches and rebalance ticks are never reduced.

Markers (also in the legend): long entry = green dot, long exit = red dot,
short entry = green down-triangle, short exit = red up-triangle.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from datetime import UTC

import numpy as np
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 1400, 900, 100
# Envelope columns: a little more than the plot area is wide in pixels.
ENVELOPE_COLUMNS = 1600

# Exact colours, so a test can find the markers in the pixels; green and red
# appear nowhere else on a single-symbol chart.
ENTRY_COLOUR = "#00b000"
EXIT_COLOUR = "#e00000"
PRICE_COLOUR = "#202020"
EQUITY_COLOUR = "#1f4fd0"
HOLD_COLOUR = "#909090"
DRAWDOWN_COLOUR = "#c05080"
BEAR_COLOUR = "#f4c7a0"
REBALANCE_COLOUR = "#606060"

# (keys in title_stats, label, format): BacktestStatistics' field name first,
# then core_rs.backtest's stat name, so either dict can be passed as it is.
TITLE_FIELDS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("return_pct",), "return", "{:+.2f}%"),
    (("buy_and_hold_return_pct", "buy_hold_return_pct"), "buy & hold", "{:+.2f}%"),
    (("sharpe_ratio", "sharpe"), "Sharpe", "{:.2f}"),
    (("max_drawdown_pct",), "max drawdown", "{:.2f}%"),
    (("trade_count", "n_trades"), "trades", "{:,.0f}"),
)
TITLE_SYMBOLS = 6
MARGINS = {"left": 0.07, "right": 0.99, "top": 0.95, "bottom": 0.065, "hspace": 0.06}


def single_chart(
    *,
    symbol: str,
    interval_name: str,
    time_ms: np.ndarray,
    close: np.ndarray,
    entry_bars: np.ndarray,
    exit_bars: np.ndarray,
    short_entry_bars: np.ndarray | None,
    equity: np.ndarray,
    buy_and_hold: np.ndarray,
    drawdown: np.ndarray,
    title_stats: Mapping[str, float],
) -> bytes:
    """The chart of a single-symbol backtest as PNG bytes (1400x900 px).

    ``entry_bars`` are the bars of long entries, ``short_entry_bars`` those of
    short entries (None: long only), ``exit_bars`` the bars of every exit.
    Trades never overlap, so the k-th exit in time closes the k-th entry in
    time; that pairing tells a short's exit from a long's. Markers sit on the
    close of their bar. ``drawdown`` is the fraction below the running peak
    (0.25 = 25% down); NaN in the curves (bars outside the tested range) is
    left out. ``title_stats``: return, buy & hold, Sharpe, max drawdown and
    trade count, by BacktestStatistics field name (or core_rs.backtest stat
    name); a missing one is left out of the title, NaN reads "n/a".
    """
    x = _x(time_ms)
    fig, (top, mid, low) = _figure()
    close = np.asarray(close, dtype=np.float64)
    _line(top, x, close, PRICE_COLOUR, "close", 1.0)
    long_exits, short_exits = split_exits(entry_bars, short_entry_bars, exit_bars, len(close))
    _trade_markers(
        top,
        x,
        close,
        _bars(entry_bars, len(close)),
        long_exits,
        _bars(short_entry_bars, len(close)),
        short_exits,
    )
    top.set_ylabel("price")
    _log_if_wide(top, close)
    _equity_panel(mid, x, equity, buy_and_hold)
    _drawdown_panel(low, x, drawdown)
    fig.suptitle(title(f"{symbol} {interval_name}", title_stats), fontsize=12)
    return _png(fig)


def portfolio_chart(
    *,
    symbols: Sequence[str],
    interval_name: str,
    time_ms: np.ndarray,
    equity: np.ndarray,
    buy_and_hold: np.ndarray,
    drawdown: np.ndarray,
    bear: np.ndarray,
    rebalance_bars: np.ndarray,
    title_stats: Mapping[str, float],
) -> bytes:
    """The chart of a portfolio backtest as PNG bytes (1400x900 px).

    ``bear`` is True on the bars the market regime was BEAR (shaded in the top
    panel); ``rebalance_bars`` the bars of the rebalances (ticks along the top
    panel's bottom edge). Curves as in :func:`single_chart`.
    """
    x = _x(time_ms)
    fig, (top, mid, low) = _figure()
    _bear_shading(top, x, np.asarray(bear, dtype=bool))
    _line(top, x, equity, EQUITY_COLOUR, "equity", 1.2)
    _rebalance_ticks(top, x, rebalance_bars)
    top.set_ylabel("equity")
    _log_if_wide(top, equity)
    top.legend(loc="best", fontsize=9, framealpha=0.85)
    _equity_panel(mid, x, equity, buy_and_hold)
    _drawdown_panel(low, x, drawdown)
    shown = ", ".join(symbols[:TITLE_SYMBOLS])
    if len(symbols) > TITLE_SYMBOLS:
        shown += f" +{len(symbols) - TITLE_SYMBOLS} more"
    fig.suptitle(title(f"portfolio {interval_name}: {shown}", title_stats), fontsize=12)
    return _png(fig)


# ----- building blocks -----


def _figure() -> tuple[Figure, tuple[Axes, Axes, Axes]]:
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    # Fixed, tight margins instead of a layout engine: the size never changes,
    # and tight_layout would measure every tick label in an extra draw (it
    # doubled the render time).
    fig.subplots_adjust(**MARGINS)
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": (3.0, 2.2, 1.3)})
    top, mid, low = axes
    locator = mdates.AutoDateLocator(tz=UTC)
    low.xaxis.set_major_locator(locator)
    low.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    low.set_xlabel("UTC")
    fig.align_ylabels(axes)
    for ax in axes:
        # Plain numbers: an offset ("1e6" in the corner) is easy to misread.
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(_plain))
        ax.grid(True, color="#e4e4e4", linewidth=0.6)
        ax.set_axisbelow(True)
    return fig, (top, mid, low)


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    # zlib level 3 instead of 6: quicker to encode, a few % bigger.
    fig.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    return out.getvalue()


def _x(time_ms: np.ndarray) -> np.ndarray:
    """Matplotlib date numbers (days since its epoch) of epoch milliseconds."""
    t = np.asarray(time_ms, dtype=np.int64)
    return np.asarray(mdates.date2num(t.astype("datetime64[ms]")), dtype=np.float64)


def envelope(
    x: np.ndarray, y: np.ndarray, columns: int = ENVELOPE_COLUMNS
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * columns`` points that draw like (x, y) at that width.

    Each column of consecutive points keeps its lowest and highest point, in
    time order, so every spike survives. NaN points are skipped; a column of
    NaN only stays NaN (a gap in the line).
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n <= 3 * columns:
        return x, y
    k = math.ceil(n / columns)
    rows = math.ceil(n / k)
    pad = rows * k - n
    grid = np.concatenate([y, np.full(pad, np.nan)]).reshape(rows, k)
    finite = np.isfinite(grid)
    lo = np.argmin(np.where(finite, grid, np.inf), axis=1)
    hi = np.argmax(np.where(finite, grid, -np.inf), axis=1)
    base = np.arange(rows) * k
    first = base + np.minimum(lo, hi)
    second = base + np.maximum(lo, hi)
    idx = np.column_stack([first, second]).ravel()
    empty = ~finite.any(axis=1)
    ys = y[idx]  # idx < n: a row's argmin/argmax is a real point unless the row is all NaN
    ys[np.repeat(empty, 2)] = np.nan
    return x[idx], ys


def _line(ax: Axes, x: np.ndarray, y: np.ndarray, colour: str, label: str, width: float) -> None:
    xs, ys = envelope(x, y)
    ax.plot(xs, ys, color=colour, linewidth=width, label=label)


def _bars(bars: np.ndarray | None, n: int) -> np.ndarray:
    if bars is None:
        return np.empty(0, dtype=np.int64)
    b = np.asarray(bars, dtype=np.int64).ravel()
    return b[(b >= 0) & (b < n)]


def split_exits(
    entry_bars: np.ndarray,
    short_entry_bars: np.ndarray | None,
    exit_bars: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The exit bars of long trades and those of short trades.

    Trades never overlap, so pairing by rank is exact: the k-th exit in time
    closes the k-th entry in time. At a reversal the exit and the next entry
    share a bar, and the entry before it still sorts first. Bars outside
    [0, n) are dropped; exits beyond the entries count as long exits.
    """
    longs, shorts, exits = _bars(entry_bars, n), _bars(short_entry_bars, n), _bars(exit_bars, n)
    entries = np.concatenate([longs, shorts])
    is_short = np.concatenate([np.zeros(len(longs), bool), np.ones(len(shorts), bool)])
    order = np.argsort(entries, kind="stable")
    exits = np.sort(exits, kind="stable")
    short_exit = np.zeros(len(exits), dtype=bool)
    paired = min(len(exits), len(order))
    short_exit[:paired] = is_short[order][:paired]
    return exits[~short_exit], exits[short_exit]


def _trade_markers(
    ax: Axes,
    x: np.ndarray,
    close: np.ndarray,
    longs: np.ndarray,
    long_exits: np.ndarray,
    shorts: np.ndarray,
    short_exits: np.ndarray,
) -> None:
    groups = (
        (longs, "o", ENTRY_COLOUR, "long entry"),
        (long_exits, "o", EXIT_COLOUR, "long exit" if len(shorts) else "exit"),
        (shorts, "v", ENTRY_COLOUR, "short entry"),
        (short_exits, "^", EXIT_COLOUR, "short exit"),
    )
    for bars, marker, colour, label in groups:
        if len(bars):
            # Flat colour, no edge: the marker's fill is the exact colour in the PNG.
            ax.scatter(
                x[bars],
                close[bars],
                s=30,
                marker=marker,
                color=colour,
                linewidths=0,
                label=label,
                zorder=3,
            )
    ax.legend(loc="best", fontsize=9, framealpha=0.85)


def _log_if_wide(ax: Axes, *series: np.ndarray) -> None:
    """A log scale when the values span more than 20x (a coin that went 100x
    is a flat line on a linear scale for most of its history)."""
    values = np.concatenate([np.asarray(s, dtype=np.float64) for s in series])
    values = values[np.isfinite(values)]
    if len(values) and values.min() > 0 and values.max() / values.min() > 20:
        ax.set_yscale("log")
        # Plain labels ("100", "0.01"): the default 10^k ones go through
        # mathtext, whose parser is shared state that threads must not race on.
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(_plain))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def _plain(value: float, _pos: int | None = None) -> str:
    """Plain tick labels, millions and up shortened: "2,500", "0.0012", "1.5M"."""
    size = abs(value)
    for unit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if size >= unit:
            return f"{value / unit:,.6g}{suffix}"
    return f"{value:,.10g}"


def _equity_panel(ax: Axes, x: np.ndarray, equity: np.ndarray, buy_and_hold: np.ndarray) -> None:
    _line(ax, x, buy_and_hold, HOLD_COLOUR, "buy & hold", 1.0)
    _line(ax, x, equity, EQUITY_COLOUR, "strategy", 1.2)
    ax.set_ylabel("equity")
    _log_if_wide(ax, equity, buy_and_hold)
    ax.legend(loc="best", fontsize=9, framealpha=0.85)


def _drawdown_panel(ax: Axes, x: np.ndarray, drawdown: np.ndarray) -> None:
    xs, ys = envelope(x, -100.0 * np.asarray(drawdown, dtype=np.float64))
    ax.fill_between(
        xs, ys, 0.0, where=np.isfinite(ys), color=DRAWDOWN_COLOUR, alpha=0.45, linewidth=0
    )
    ax.plot(xs, ys, color=DRAWDOWN_COLOUR, linewidth=0.7)
    ax.set_ylabel("drawdown %")
    if np.isfinite(ys).any() and np.nanmin(ys) >= 0:
        ax.set_ylim(-1.0, 0.5)  # no drawdown at all: show a flat zero, not an empty axis


def _bar_width(x: np.ndarray) -> float:
    return float(np.median(np.diff(x))) if len(x) > 1 else 1.0


def _bear_shading(ax: Axes, x: np.ndarray, bear: np.ndarray) -> None:
    if not bear.any():
        return
    flags = np.concatenate([[False], bear[: len(x)], [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(flags) == 1)
    ends = np.flatnonzero(np.diff(flags) == -1)  # exclusive
    right = np.append(x, x[-1] + _bar_width(x))
    boxes = [
        [(right[s], 0.0), (right[e], 0.0), (right[e], 1.0), (right[s], 1.0)]
        for s, e in zip(starts, ends, strict=True)
    ]
    ax.add_collection(
        PolyCollection(
            boxes,
            transform=ax.get_xaxis_transform(),
            facecolor=BEAR_COLOUR,
            edgecolor="none",
            alpha=0.6,
            label="BEAR regime",
            zorder=0,
        )
    )


def _rebalance_ticks(ax: Axes, x: np.ndarray, rebalance_bars: np.ndarray) -> None:
    bars = _bars(rebalance_bars, len(x))
    if not len(bars):
        return
    ax.plot(
        x[bars],
        np.full(len(bars), 0.02),
        linestyle="none",
        marker="|",
        markersize=8,
        color=REBALANCE_COLOUR,
        transform=ax.get_xaxis_transform(),
        label="rebalance",
    )


def title(head: str, stats: Mapping[str, float]) -> str:
    parts = [head]
    for keys, label, fmt in TITLE_FIELDS:
        key = next((k for k in keys if k in stats), None)
        if key is None:
            continue
        value = float(stats[key])
        parts.append(f"{label} {fmt.format(value) if math.isfinite(value) else 'n/a'}")
    return "  |  ".join(parts)
