"""Backtest charts: valid PNGs of the promised size, markers where the trades
are (found in the pixels, located against the drawn price line), long series,
portfolio shading, and drawing from two threads at once."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg
from PIL import Image

from services.signals.backtest.chart import (
    BEAR_COLOUR,
    ENTRY_COLOUR,
    EXIT_COLOUR,
    envelope,
    portfolio_chart,
    single_chart,
    split_exits,
    title,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
T0 = 1_700_000_000_000 // HOUR_MS * HOUR_MS
STATS = {
    "return_pct": 12.5,
    "buy_and_hold_return_pct": -3.25,
    "sharpe_ratio": 1.1,
    "max_drawdown_pct": -8.0,
    "trade_count": 2.0,
}


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)


def _mask(img: np.ndarray, colour: str, tolerance: int = 12) -> np.ndarray:
    return (np.abs(img - _rgb(colour)) <= tolerance).all(axis=2)


def _curves(n: int, close: np.ndarray) -> dict[str, np.ndarray]:
    equity = 10_000.0 * close / (close[0] if n else 1.0)
    peak = np.fmax.accumulate(equity)
    return {
        "time_ms": T0 + np.arange(n, dtype=np.int64) * HOUR_MS,
        "close": close,
        "equity": equity,
        "buy_and_hold": equity.copy(),
        "drawdown": 1.0 - equity / peak,
    }


def _single(
    n: int = 500,
    close: np.ndarray | None = None,
    entries: Any = (),
    exits: Any = (),
    shorts: Any = None,
    **extra: Any,
) -> bytes:
    curves = _curves(n, np.full(n, 100.0) if close is None else close)
    curves.update(extra)
    return single_chart(
        symbol="BTC-USD",
        interval_name="1h",
        entry_bars=np.asarray(entries, dtype=np.int64),
        exit_bars=np.asarray(exits, dtype=np.int64),
        short_entry_bars=None if shorts is None else np.asarray(shorts, dtype=np.int64),
        title_stats=STATS,
        **curves,
    )


def _portfolio(n: int = 365, bear: np.ndarray | None = None) -> bytes:
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    curves = _curves(n, close)
    del curves["close"]
    curves["time_ms"] = T0 + np.arange(n, dtype=np.int64) * DAY_MS
    return portfolio_chart(
        symbols=["BTC-USD", "ETH-USD", "SOL-USD"],
        interval_name="1d",
        bear=np.zeros(n, dtype=bool) if bear is None else bear,
        rebalance_bars=np.arange(0, n, 7),
        title_stats=STATS,
        **curves,
    )


class FlatLine:
    """Where a flat price line lies in a chart: its row, and the columns of
    its first and last bar (the longest dark run on that row; the axes' frame
    lies apart from it, beyond the plot's x margins)."""

    def __init__(self, img: np.ndarray) -> None:
        height, width = img.shape[:2]
        dark = 255 - img.mean(axis=2)
        band = dark[int(0.06 * height) : int(0.45 * height), int(0.15 * width) : int(0.85 * width)]
        self.row = int(0.06 * height) + int(np.argmax((band > 60).sum(axis=1)))
        line = dark[self.row - 1 : self.row + 2].max(axis=0) > 60
        runs = _runs(line, max_gap=14)
        self.first, self.last = max(runs, key=lambda r: r[1] - r[0])

    def x_of(self, bar: int, n: int) -> float:
        return self.first + (self.last - self.first) * bar / (n - 1)


def _runs(flags: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    cols = np.flatnonzero(flags)
    runs: list[tuple[int, int]] = []
    start = prev = int(cols[0])
    for c in cols[1:]:
        if c - prev > max_gap:
            runs.append((start, prev))
            start = int(c)
        prev = int(c)
    runs.append((start, prev))
    return runs


def _clusters(mask: np.ndarray, row: int) -> list[np.ndarray]:
    """The (y, x) pixels of each marker on the line's row, left to right."""
    near = np.zeros_like(mask)
    near[row - 8 : row + 9] = mask[row - 8 : row + 9]
    ys, xs = np.nonzero(near)
    if not len(xs):
        return []
    order = np.argsort(xs)
    ys, xs = ys[order], xs[order]
    cuts = np.flatnonzero(np.diff(xs) > 3) + 1
    return [np.column_stack(p) for p in zip(np.split(ys, cuts), np.split(xs, cuts), strict=True)]


# ----- the PNG itself -----


def test_png_is_valid_and_1400_by_900() -> None:
    png = _single(entries=[100], exits=[200])
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        assert im.size == (1400, 900)
    decoded = mpimg.imread(io.BytesIO(png), format="png")
    assert decoded.shape[:2] == (900, 1400)


def test_long_series_renders() -> None:
    n = 200_000
    rng = np.random.default_rng(3)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    equity = _curves(n, close)["equity"]
    equity[:5_000] = np.nan  # bars before the tested range
    entries = np.arange(6_000, n - 1_000, 3_000)
    png = _single(n, close, entries=entries, exits=entries + 1_000, equity=equity)
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (1400, 900)


def test_empty_entries_render_without_markers() -> None:
    img = _pixels(_single(entries=[], exits=[]))
    assert img.shape == (900, 1400, 3)
    assert _mask(img, ENTRY_COLOUR).sum() == 0
    assert _mask(img, EXIT_COLOUR).sum() == 0


@pytest.mark.parametrize("n", [0, 1, 2])
def test_degenerate_series_render(n: int) -> None:
    nan = np.full(n, np.nan)  # nothing tested yet: every curve NaN
    png = _single(n, np.full(n, 5.0), equity=nan, buy_and_hold=nan, drawdown=nan)
    assert _pixels(png).shape == (900, 1400, 3)


# ----- markers in the pixels -----


def test_entry_and_exit_markers_sit_on_their_bars() -> None:
    n = 500
    img = _pixels(_single(n, entries=[350], exits=[420]))
    line = FlatLine(img)
    green = _clusters(_mask(img, ENTRY_COLOUR), line.row)
    red = _clusters(_mask(img, EXIT_COLOUR), line.row)
    assert len(green) == 1
    assert len(red) == 1
    assert green[0][:, 1].mean() == pytest.approx(line.x_of(350, n), abs=3)
    assert red[0][:, 1].mean() == pytest.approx(line.x_of(420, n), abs=3)
    assert green[0][:, 0].mean() == pytest.approx(line.row, abs=3)
    # Elsewhere only the legend's small sample dot is green.
    assert 0 < _mask(img, ENTRY_COLOUR).sum() - len(green[0]) < 100


def test_every_marker_is_drawn_and_shorts_are_triangles() -> None:
    n = 600
    # short 100 -> 150 (an up-triangle exit), long 200 -> 260, short 260 (reversal) -> 400
    img = _pixels(_single(n, entries=[200], shorts=[100, 260], exits=[150, 260, 400]))
    line = FlatLine(img)
    green = _clusters(_mask(img, ENTRY_COLOUR), line.row)
    red = _clusters(_mask(img, EXIT_COLOUR), line.row)
    assert [round(c[:, 1].mean()) for c in green] == pytest.approx(
        [line.x_of(b, n) for b in (100, 200, 260)], abs=3
    )
    assert [round(c[:, 1].mean()) for c in red] == pytest.approx(
        [line.x_of(b, n) for b in (150, 260, 400)], abs=3
    )

    def wider_on_top(pixels: np.ndarray) -> bool:
        ys = pixels[:, 0]
        mid = (ys.min() + ys.max()) / 2
        return bool((ys < mid).sum() > (ys > mid).sum())

    # Short entries point down, short exits up; the long entry is a dot.
    assert wider_on_top(green[0]) and wider_on_top(green[2])
    assert not wider_on_top(red[0]) and not wider_on_top(red[2])
    dot = green[1][:, 0]
    assert abs((dot < dot.mean()).sum() - (dot > dot.mean()).sum()) <= 2


def test_many_markers_are_never_dropped() -> None:
    n = 100_000
    entries = np.array([10_000, 30_000, 50_000, 70_000, 90_000])
    img = _pixels(_single(n, entries=entries, exits=entries + 5_000))
    line = FlatLine(img)
    green = _clusters(_mask(img, ENTRY_COLOUR), line.row)
    assert len(green) == len(entries)
    assert [c[:, 1].mean() for c in green] == pytest.approx(
        [line.x_of(int(b), n) for b in entries], abs=3
    )


@pytest.mark.parametrize(
    ("longs", "shorts", "exits", "long_exits", "short_exits"),
    [
        ([1, 10], None, [5, 12], [5, 12], []),
        ([], [3], [8], [], [8]),
        # long 2 -> 6, reversal to short at 6 -> 9, long 9 -> 9 (stopped on entry), end
        ([2, 9], [6], [6, 9, 9], [6, 9], [9]),
        # a position still open at the end has no exit
        ([4], [1], [3], [], [3]),
        # bars outside the series are ignored
        ([1], None, [2, 50], [2], []),
    ],
)
def test_split_exits_pairs_by_rank(
    longs: list[int],
    shorts: list[int] | None,
    exits: list[int],
    long_exits: list[int],
    short_exits: list[int],
) -> None:
    got_long, got_short = split_exits(
        np.array(longs, dtype=np.int64),
        None if shorts is None else np.array(shorts, dtype=np.int64),
        np.array(exits, dtype=np.int64),
        20,
    )
    assert got_long.tolist() == long_exits
    assert got_short.tolist() == short_exits


# ----- envelope and title -----


def test_envelope_keeps_each_columns_min_and_max_in_time_order() -> None:
    rng = np.random.default_rng(11)
    n, columns = 10_007, 100
    y = rng.normal(size=n)
    y[:300] = np.nan
    y[5_000:5_050] = np.nan
    x = np.arange(n, dtype=np.float64)
    xs, ys = envelope(x, y, columns)
    assert len(xs) <= 2 * columns + 2
    assert np.all(np.diff(xs) >= 0)
    k = -(-n // columns)
    for start in range(0, n, k):
        chunk = y[start : start + k]
        inside = (xs >= start) & (xs < start + k)
        if np.isnan(chunk).all():
            assert np.isnan(ys[inside]).all()
            continue
        assert np.nanmin(ys[inside]) == np.nanmin(chunk)
        assert np.nanmax(ys[inside]) == np.nanmax(chunk)
    # Short series are drawn as they are.
    xs, ys = envelope(x[:200], y[:200], columns)
    assert np.array_equal(xs, x[:200])


def test_title_lists_the_figures() -> None:
    assert title("ETH-USD 4h", STATS | {"sharpe_ratio": float("nan"), "trade_count": 1234.0}) == (
        "ETH-USD 4h  |  return +12.50%  |  buy & hold -3.25%  |  Sharpe n/a  |  "
        "max drawdown -8.00%  |  trades 1,234"
    )
    assert title("X 1d", {}) == "X 1d"
    # core_rs.backtest's stat names work too.
    core = {"return_pct": -1.0, "buy_hold_return_pct": 2.0, "sharpe": 0.5, "n_trades": 3.0}
    assert title("X 1d", core) == (
        "X 1d  |  return -1.00%  |  buy & hold +2.00%  |  Sharpe 0.50  |  trades 3"
    )


# ----- portfolio -----


def test_portfolio_chart_renders_bear_stretches() -> None:
    n = 365
    plain = _pixels(_portfolio(n))
    assert plain.shape == (900, 1400, 3)
    shade = BEAR_COLOUR  # drawn at alpha 0.6 over white
    blended = "#" + "".join(f"{round(0.6 * c + 0.4 * 255):02x}" for c in _rgb(shade))
    assert _mask(plain, blended, 3).sum() == 0

    bear = np.zeros(n, dtype=bool)
    bear[200:300] = True
    img = _pixels(_portfolio(n, bear))
    tinted = _mask(img, blended, 3)
    assert tinted.sum() > 10_000
    cols = np.flatnonzero(tinted.sum(axis=0) > 100)  # the stretch, not the legend patch
    centre = (cols.min() + cols.max()) / 2
    # The shaded block's centre: bar 250 of 365 across a plot from ~7% to ~99%.
    assert 0.55 * 1400 < centre < 0.75 * 1400
    assert (cols.max() - cols.min()) == pytest.approx(100 / 365 * 0.84 * 1400, rel=0.15)


# ----- threads -----


def test_two_threads_drawing_at_once_both_succeed() -> None:
    jobs: list[Callable[[], bytes]] = [
        lambda: _single(2_000, entries=[300, 900], exits=[600, 1_500]),
        lambda: _portfolio(400, np.arange(400) % 50 < 10),
    ]
    expected = [job() for job in jobs]
    results: dict[int, list[bytes]] = {0: [], 1: []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(i: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                results[i].append(jobs[i]())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for i in range(2):
        assert results[i] == [expected[i]] * 3
