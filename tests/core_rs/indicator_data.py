"""Series the indicator tests share, and the comparison rules against
TA-Lib (the independent reference)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Values must equal TA-Lib's to this relative tolerance.
REL = 1e-9


def ohlcv(n: int, seed: int = 0, start: float = 100.0, vol: float = 0.02) -> dict[str, Array]:
    """A geometric random walk with consistent bars: open at the previous
    close, high/low beyond both, positive volume."""
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, vol / 2, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, vol / 2, n))
    volume = rng.uniform(1e3, 1e5, n)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def flat(n: int, value: float = 42.0) -> dict[str, Array]:
    """Every price equal: ranges and deviations are exactly zero."""
    x = np.full(n, value)
    return {
        "open": x,
        "high": x.copy(),
        "low": x.copy(),
        "close": x.copy(),
        "volume": np.full(n, 10.0),
    }


# Scales traders meet: sub-cent tokens and BTC-like prices.
SCALES = (1e-6, 1.0, 1e5)

# Extreme but finite values for robustness checks (no crash, finite output).
EXTREME = (1e-300, 1e300)


def assert_close(ours: Array, theirs: Array, rel: float = REL, what: str = "") -> None:
    """Same NaN positions, and values within ``rel`` (absolute near zero,
    scaled by the largest magnitude in the reference)."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    nan_ours, nan_theirs = np.isnan(ours), np.isnan(theirs)
    mismatch = np.flatnonzero(nan_ours != nan_theirs)
    assert mismatch.size == 0, f"{what}: NaN at different places, first at {mismatch[:5]}"
    a, b = ours[~nan_ours], theirs[~nan_theirs]
    if a.size == 0:
        return
    floor = rel * max(float(np.max(np.abs(b))), 1e-300)
    err = np.abs(a - b)
    tol = np.maximum(rel * np.abs(b), floor)
    bad = np.flatnonzero(err > tol)
    assert bad.size == 0, (
        f"{what}: {bad.size} values differ, first at {bad[0]}: {a[bad[0]]!r} vs {b[bad[0]]!r}"
    )


def per_segment(fn: Callable[..., object], inputs: Sequence[Array], n_out: int) -> list[Array]:
    """The NaN policy's reference: ``fn`` (TA-Lib) run separately on each run
    of bars where every input is finite, NaN at the gaps."""
    n = len(inputs[0])
    finite = np.all([np.isfinite(x) for x in inputs], axis=0)
    outs = [np.full(n, np.nan) for _ in range(n_out)]
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return outs
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    for run in np.split(idx, breaks):
        lo, hi = run[0], run[-1] + 1
        res = fn(*[x[lo:hi] for x in inputs])
        res_list = list(res) if isinstance(res, tuple) else [res]
        for out, r in zip(outs, res_list, strict=True):
            out[lo:hi] = r
    return outs
