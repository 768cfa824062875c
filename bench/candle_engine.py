"""Throughput of CandleEngine.ingest through the Python API (run by hand).

1e6 ticks over 500 symbols at the six default intervals, fed in batches the
way the pricing service would, plus the per-batch bookkeeping calls. Prints
ticks/s; not a test (no timing asserts anywhere).

    .venv/bin/python -m bench.candle_engine
"""

import time

import numpy as np

import core_rs

N_TICKS = 1_000_000
N_SYMBOLS = 500
START_MS = 1_700_000_000_000
# A live-like stream (1e6 ticks in an hour: most ticks land in a forming
# minute) and a sparse one (three days: nearly every tick opens a new minute,
# the slow path, and every interval rolls over).
SPANS_MS = {"1 hour": 3_600_000, "3 days": 3 * 86_400_000}


def make_ticks(rng: np.random.Generator, span_ms: int) -> tuple[np.ndarray, ...]:
    times = START_MS + np.sort(rng.integers(0, span_ms, N_TICKS))
    ids = rng.integers(0, N_SYMBOLS, N_TICKS).astype(np.int32)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-4, N_TICKS)))
    volumes = rng.exponential(1.0, N_TICKS)
    return ids, times.astype(np.int64), prices, volumes


def run(batch: int, ticks: tuple[np.ndarray, ...]) -> float:
    ids, times, prices, volumes = ticks
    eng = core_rs.CandleEngine(n_symbols=N_SYMBOLS)
    everyone = np.arange(N_SYMBOLS, dtype=np.int32)
    t0 = time.perf_counter()
    for lo in range(0, N_TICKS, batch):
        hi = lo + batch
        now = int(times[min(hi, N_TICKS) - 1])
        eng.ingest(ids[lo:hi], times[lo:hi], prices[lo:hi], volumes[lo:hi], now)
        eng.close_expired(now - 2_000)
        eng.take_dirty_candles()
        eng.take_dirty_quotes()
    eng.quotes(everyone, int(times[-1]))
    return N_TICKS / (time.perf_counter() - t0)


def main() -> None:
    for label, span_ms in SPANS_MS.items():
        ticks = make_ticks(np.random.default_rng(7), span_ms)
        print(f"1e6 ticks, {N_SYMBOLS} symbols, 6 intervals, spread over {label}:")
        for batch in (10_000, 1_000):
            best = max(run(batch, ticks) for _ in range(5))
            print(f"  batches of {batch:>6,}: {best / 1e6:6.2f} M ticks/s (ingest + close + take)")
        ids, times, prices, volumes = ticks
        best = 0.0
        for _ in range(5):
            eng = core_rs.CandleEngine(n_symbols=N_SYMBOLS)
            t0 = time.perf_counter()
            eng.ingest(ids, times, prices, volumes, int(times[-1]))
            best = max(best, N_TICKS / (time.perf_counter() - t0))
        print(f"  one ingest call:      {best / 1e6:6.2f} M ticks/s (ingest alone)")
    eng = core_rs.CandleEngine(n_symbols=6_000)
    everyone = np.arange(6_000, dtype=np.int32)
    ids, times, prices, volumes = make_ticks(np.random.default_rng(8), 86_400_000)
    eng.ingest(ids * 12, times, prices, volumes, int(times[-1]))
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        eng.quotes(everyone, int(times[-1]))
        print(
            f"quotes for 6,000 symbols ({label} cache): {(time.perf_counter() - t0) * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
