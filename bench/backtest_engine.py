"""A quick look at the core_rs backtest engine alone (no service, no gRPC):
ms per 87,600-bar MA-cross run (indicators and statistics included) and
seconds per 1,000-combination sweep on the same bars. Prints; writes nothing.

    .venv/bin/python -m bench.backtest_engine [--repeat 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core_rs import backtest, batch_threads

N_BARS = 87_600  # ten years of hourly bars


def hourly_bars(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.005, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.005, n))
    t = np.arange(n, dtype=np.int64) * 3_600_000
    return t, o, h, lo, c


def best_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    bars = hourly_bars(N_BARS)
    cfg = {"fee": 0.001, "slippage": 0.0005}
    runs = {
        "ma_cross sma 10/30": {"kind": "ma_cross", "fast": 10, "slow": 30},
        "ma_cross ema 12/26 + atr stop": {"kind": "ma_cross", "fast": 12, "slow": 26, "ma": "ema"},
        "rsi 14": {"kind": "rsi"},
        "bollinger 20/2": {"kind": "bollinger"},
    }
    print(f"{N_BARS} bars, {batch_threads()} pool threads")
    for name, strategy in runs.items():
        extra = {"stop_loss": ("atr", 2.0)} if "atr" in name else {}
        ms = best_ms(
            lambda s=strategy, e=extra: backtest.run_backtest(*bars, s, {**cfg, **e}),
            args.repeat,
        )
        print(f"  run_backtest {name:32s} {ms:7.2f} ms (best of {args.repeat})")
    params = [{"fast": f, "slow": s} for f in range(5, 45) for s in range(50, 150, 4)]
    assert len(params) == 1000
    t0 = time.perf_counter()
    values, _ = backtest.sweep(*bars, "ma_cross", params, cfg, [(0, N_BARS)])
    dt = time.perf_counter() - t0
    print(f"  sweep 1000 ma_cross combinations   {dt:7.2f} s ({dt / 1000 * 1e3:.2f} ms each)")
    assert values.shape[0] == 1000


if __name__ == "__main__":
    main()
