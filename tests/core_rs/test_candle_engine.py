"""core_rs.CandleEngine against independent pandas references.

Candles are checked against ``DataFrame.resample`` (epoch-aligned, left-closed,
left-labelled buckets, empty ones dropped), the rolling 24h statistics against
``DataFrame.rolling`` over a full minute grid. Ticks are fed in time order so
nothing is rejected, in batches the size the pricing service uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import core_rs
from marketmesh.v1 import pricing_pb2

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
INTERVALS = [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 4 * HOUR, DAY]
RULES = ["1min", "5min", "15min", "1h", "4h", "1D"]
# Not aligned to any interval, so the first buckets start mid-way.
START = 1_700_000_123_456
KEYS = ["symbol_id", "interval_idx", "open_ms"]
PRICE_FIELDS = ["open", "high", "low", "close"]
SUM_FIELDS = ["volume", "quote_volume"]
QUOTE_FIELDS = [
    "price",
    "time_ms",
    "volume_24h",
    "quote_volume_24h",
    "open_24h",
    "high_24h",
    "low_24h",
    "change_24h_pct",
    "has_price",
]


# -- tick streams ------------------------------------------------------------


def random_ticks(seed: int, n_symbols: int = 5, days: int = 3, n: int = 30_000) -> pd.DataFrame:
    """Ticks in time order over `days`, with a 6h gap for everyone and a 2-7h gap
    per symbol; some volumes are zero and some times repeat."""
    rng = np.random.default_rng(seed)
    times = START + rng.integers(0, days * DAY, n)
    times[: n // 50] = times[n // 50 : 2 * (n // 50)]  # repeated times
    ids = rng.integers(0, n_symbols, n).astype(np.int32)
    gone = (times >= START + DAY + 3 * HOUR) & (times < START + DAY + 9 * HOUR)
    for s in range(n_symbols):
        lo = START + int(rng.integers(0, days * DAY - 8 * HOUR))
        gone |= (ids == s) & (times >= lo) & (times < lo + int(rng.integers(2 * HOUR, 7 * HOUR)))
    order = np.argsort(times[~gone], kind="stable")
    times, ids = times[~gone][order], ids[~gone][order]
    m = len(times)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, m)))
    volumes = rng.exponential(2.0, m)
    volumes[rng.random(m) < 0.05] = 0.0
    return pd.DataFrame(
        {"symbol_id": ids, "time_ms": times.astype(np.int64), "price": prices, "volume": volumes}
    )


def batches(ticks: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for lo in range(0, len(ticks), size):
        yield ticks.iloc[lo : lo + size]


def ingest(eng: core_rs.CandleEngine, ticks: pd.DataFrame, now_ms: int | None = None) -> np.ndarray:
    now = int(ticks["time_ms"].max()) if now_ms is None else now_ms
    return eng.ingest(
        ticks["symbol_id"].to_numpy(np.int32),
        ticks["time_ms"].to_numpy(np.int64),
        ticks["price"].to_numpy(np.float64),
        ticks["volume"].to_numpy(np.float64),
        now,
    )


def candles(eng: core_rs.CandleEngine) -> pd.DataFrame:
    return pd.DataFrame(eng.take_dirty_candles())


def latest(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The newest state of every candle seen across several takes."""
    return (
        pd.concat(frames, ignore_index=True)
        .drop_duplicates(KEYS, keep="last")
        .sort_values(KEYS, ignore_index=True)
    )


# -- references --------------------------------------------------------------


def with_index(ticks: pd.DataFrame) -> pd.DataFrame:
    return ticks.assign(
        # Naive UTC: pandas honours origin="epoch" for daily bars only then.
        ts=pd.to_datetime(ticks["time_ms"], unit="ms"),
        quote=ticks["price"] * ticks["volume"],
    ).set_index("ts")


def resample(g: pd.DataFrame, rule: str) -> pd.DataFrame:
    bars = g.resample(rule, label="left", closed="left", origin="epoch").agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("volume", "sum"),
        quote_volume=("quote", "sum"),
        trades=("price", "count"),
    )
    return bars[bars["trades"] > 0]


def reference_candles(ticks: pd.DataFrame) -> pd.DataFrame:
    frames = []
    for sid, g in with_index(ticks).groupby("symbol_id"):
        for k, rule in enumerate(RULES):
            bars = resample(g, rule)
            frames.append(
                bars.assign(
                    symbol_id=np.int32(sid),
                    interval_idx=np.uint8(k),
                    open_ms=bars.index.as_unit("ms").asi8,
                    closed=np.arange(len(bars)) < len(bars) - 1,
                ).reset_index(drop=True)
            )
    return pd.concat(frames, ignore_index=True).sort_values(KEYS, ignore_index=True)


def assert_same_candles(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    for col in [*KEYS, *PRICE_FIELDS, "trades", "closed"]:
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    for col in SUM_FIELDS:
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-9, err_msg=col)


def reference_quotes(ticks: pd.DataFrame, n_symbols: int, now_ms: int) -> pd.DataFrame:
    """Last quote and 24h stats at now_ms from a rolling('1D') over a full grid of
    minute bars: the window (t - 1 day, t] holds exactly the minute opens in
    [floor(now) - 1 day + 1 min, floor(now)]."""
    seen = ticks[ticks["time_ms"] <= now_ms]
    end = pd.Timestamp(now_ms // MINUTE * MINUTE, unit="ms")
    rows = []
    for sid in range(n_symbols):
        g = seen[seen["symbol_id"] == sid]
        if g.empty:
            rows.append(dict.fromkeys(QUOTE_FIELDS, np.nan) | {"time_ms": 0, "has_price": False})
            continue
        last = g.iloc[-1]  # greatest time; ties: the later arrival
        price = float(last["price"])
        bars = resample(with_index(g), "1min")
        grid = pd.date_range(bars.index[0], max(end, bars.index[-1]), freq="1min")
        bars = bars.reindex(grid)  # empty minutes become NaN rows
        bars["opened_ms"] = np.where(bars["trades"].notna(), grid.as_unit("ms").asi8, np.nan)
        win = bars.rolling("1D")
        stats = pd.DataFrame(
            {
                "volume": win["volume"].sum(),
                "quote_volume": win["quote_volume"].sum(),
                "high": win["high"].max(),
                "low": win["low"].min(),
                "oldest": win["opened_ms"].min(),
            }
        )
        if end in stats.index and not np.isnan(stats.at[end, "oldest"]):
            at = stats.loc[end]
            open_24h = float(bars.at[pd.Timestamp(int(at["oldest"]), unit="ms"), "open"])
            vol, qvol, high, low = at["volume"], at["quote_volume"], at["high"], at["low"]
        else:  # no bucket in the window
            open_24h = high = low = price
            vol = qvol = 0.0
        rows.append(
            {
                "price": price,
                "time_ms": int(last["time_ms"]),
                "volume_24h": vol,
                "quote_volume_24h": qvol,
                "open_24h": open_24h,
                "high_24h": high,
                "low_24h": low,
                "change_24h_pct": (price / open_24h - 1.0) * 100.0,
                "has_price": True,
            }
        )
    return pd.DataFrame(rows)


def assert_same_quotes(got: dict[str, np.ndarray], want: pd.DataFrame) -> None:
    np.testing.assert_array_equal(got["has_price"], want["has_price"].to_numpy(bool))
    np.testing.assert_array_equal(got["time_ms"], want["time_ms"].to_numpy(np.int64))
    for col in ["price", "open_24h", "high_24h", "low_24h"]:
        np.testing.assert_array_equal(got[col], want[col].to_numpy(float), err_msg=col)
    for col in ["volume_24h", "quote_volume_24h", "change_24h_pct"]:
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-9, err_msg=col)


# -- candles -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_candles_match_pandas_resample_at_every_interval(seed: int) -> None:
    ticks = random_ticks(seed)
    eng = core_rs.CandleEngine(intervals_ms=INTERVALS, n_symbols=5)
    frames = []
    for batch in batches(ticks, 997):
        assert (ingest(eng, batch) == core_rs.ACCEPTED).all()
        frames.append(candles(eng))
    got = latest(frames)
    want = reference_candles(ticks)
    assert_same_candles(got, want)
    # The stream really covers every interval, gaps included.
    assert set(got["interval_idx"]) == set(range(6))
    assert (got.groupby(["symbol_id", "interval_idx"]).size() > 1).all()


def test_dirty_output_is_ordered_and_each_candle_once() -> None:
    ticks = random_ticks(3, days=1, n=5_000)
    eng = core_rs.CandleEngine(n_symbols=5)
    ingest(eng, ticks.iloc[:2_500])
    first = candles(eng)
    eng.take_dirty_quotes()
    keys = list(first[KEYS].itertuples(index=False, name=None))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert candles(eng).empty
    # Only what the next batch touched comes back.
    batch = ticks.iloc[2_500:2_510]
    ingest(eng, batch)
    again = candles(eng)
    assert set(again["symbol_id"]) == set(batch["symbol_id"])
    assert sorted(eng.take_dirty_quotes().tolist()) == sorted(set(batch["symbol_id"].tolist()))
    assert eng.take_dirty_quotes().size == 0


def test_shuffled_ticks_within_the_current_minute_give_the_sorted_candle() -> None:
    rng = np.random.default_rng(11)
    history = random_ticks(4, n_symbols=3, days=1, n=3_000)
    minute = (int(history["time_ms"].max()) // MINUTE + 1) * MINUTE
    n = 400
    current = pd.DataFrame(
        {
            "symbol_id": rng.integers(0, 3, n).astype(np.int32),
            "time_ms": minute + rng.choice(MINUTE, n, replace=False),  # distinct times
            "price": rng.uniform(90.0, 110.0, n),
            "volume": rng.exponential(1.0, n),
        }
    )
    results = []
    for order in (np.argsort(current["time_ms"].to_numpy()), rng.permutation(n)):
        eng = core_rs.CandleEngine(n_symbols=3)
        ingest(eng, history)
        eng.take_dirty_candles()
        codes = ingest(eng, current.iloc[order], now_ms=minute + MINUTE)
        assert (codes == core_rs.ACCEPTED).all()
        results.append((candles(eng), eng.quotes(np.arange(3, dtype=np.int32), minute + MINUTE)))
    (sorted_c, sorted_q), (shuffled_c, shuffled_q) = results
    assert_same_candles(shuffled_c, sorted_c)
    forming = shuffled_c[(shuffled_c["open_ms"] == minute) & (shuffled_c["interval_idx"] == 0)]
    assert len(forming) == 3 and not forming["closed"].any()
    for col in ["price", "time_ms", "open_24h", "high_24h", "low_24h"]:
        np.testing.assert_array_equal(shuffled_q[col], sorted_q[col])


# -- rejections --------------------------------------------------------------


def test_codes_equal_the_proto_rejection_reasons() -> None:
    assert core_rs.ACCEPTED == pricing_pb2.TICK_REJECTION_REASON_UNSPECIFIED
    for name in [
        "UNKNOWN_SYMBOL",
        "NON_POSITIVE_PRICE",
        "NON_FINITE_PRICE",
        "INVALID_VOLUME",
        "TIME_IN_FUTURE",
        "TIME_BEFORE_CLOSED_CANDLE",
    ]:
        assert getattr(core_rs, f"REJECT_{name}") == pricing_pb2.TickRejectionReason.Value(
            f"TICK_REJECTION_REASON_{name}"
        )


NOW = START + 10 * MINUTE
NAN, INF = float("nan"), float("inf")
REJECTIONS = [
    # (symbol, time, price, volume) -> code; several faults: the first in check order wins
    ((2, NOW, 10.0, 1.0), core_rs.REJECT_UNKNOWN_SYMBOL),
    ((-1, NOW, 10.0, 1.0), core_rs.REJECT_UNKNOWN_SYMBOL),
    ((7, NOW, NAN, -1.0), core_rs.REJECT_UNKNOWN_SYMBOL),
    ((0, NOW, NAN, 1.0), core_rs.REJECT_NON_FINITE_PRICE),
    ((0, NOW, INF, 1.0), core_rs.REJECT_NON_FINITE_PRICE),
    ((0, NOW, -INF, -1.0), core_rs.REJECT_NON_FINITE_PRICE),
    ((0, NOW, 0.0, 1.0), core_rs.REJECT_NON_POSITIVE_PRICE),
    ((0, NOW, -5.0, NAN), core_rs.REJECT_NON_POSITIVE_PRICE),
    ((0, NOW, 10.0, -0.5), core_rs.REJECT_INVALID_VOLUME),
    ((0, NOW, 10.0, NAN), core_rs.REJECT_INVALID_VOLUME),
    ((0, NOW + 10**9, 10.0, INF), core_rs.REJECT_INVALID_VOLUME),
    ((0, NOW + 5_001, 10.0, 1.0), core_rs.REJECT_TIME_IN_FUTURE),
    ((0, NOW - 5 * MINUTE, 10.0, 1.0), core_rs.REJECT_TIME_BEFORE_CLOSED_CANDLE),
]


def primed_engine() -> core_rs.CandleEngine:
    """Two symbols; symbol 0 has ticked in the minute before NOW."""
    eng = core_rs.CandleEngine(n_symbols=2)
    first = pd.DataFrame(
        {
            "symbol_id": [0, 0],
            "time_ms": [NOW - MINUTE, NOW - 1],
            "price": [9.0, 9.5],
            "volume": [1.0, 2.0],
        }
    )
    assert (ingest(eng, first, NOW) == 0).all()
    eng.take_dirty_candles()
    eng.take_dirty_quotes()
    return eng


@pytest.mark.parametrize(("tick", "code"), REJECTIONS)
def test_each_rejection_leaves_state_unchanged(tick: tuple, code: int) -> None:
    eng = primed_engine()
    everyone = np.array([0, 1], dtype=np.int32)
    before = eng.quotes(everyone, NOW)
    sid, t, p, v = tick
    got = eng.ingest(
        np.array([sid], np.int32), np.array([t], np.int64), np.array([p]), np.array([v]), NOW
    )
    assert got.tolist() == [code]
    assert got.dtype == np.uint8
    assert candles(eng).empty
    assert eng.take_dirty_quotes().size == 0
    after = eng.quotes(everyone, NOW)
    for col in QUOTE_FIELDS:
        np.testing.assert_array_equal(after[col], before[col], err_msg=col)


def test_boundaries_are_accepted() -> None:
    eng = primed_engine()
    ok = pd.DataFrame(
        {
            "symbol_id": [0, 0, 1],
            # the horizon; the watermark (open of the current minute); a fresh symbol
            "time_ms": [NOW + 5_000, (NOW - 1) // MINUTE * MINUTE, NOW - DAY],
            "price": [1e-12, 10.0, 10.0],
            "volume": [0.0, 0.0, 1.0],
        }
    )
    assert ingest(eng, ok, NOW).tolist() == [0, 0, 0]


def junk_for(batch: pd.DataFrame, prev: pd.Series | None, now: int) -> pd.DataFrame:
    """One tick per rejection reason, valid in every other respect."""
    sid, t = int(batch["symbol_id"].iloc[0]), int(batch["time_ms"].iloc[0])
    rows = [
        (3, t, 10.0, 1.0),
        (-1, t, 10.0, 1.0),
        (sid, t, NAN, 1.0),
        (sid, t, 0.0, 1.0),
        (sid, t, 10.0, -1.0),
        (sid, now + 5_001, 10.0, 1.0),
    ]
    if prev is not None:  # before the minute of the previous batch's last tick
        rows.append(
            (int(prev["symbol_id"]), int(prev["time_ms"]) // MINUTE * MINUTE - 1, 10.0, 1.0)
        )
    return pd.DataFrame(rows, columns=["symbol_id", "time_ms", "price", "volume"])


def test_rejected_batch_elements_change_nothing() -> None:
    ticks = random_ticks(5, n_symbols=3, days=1, n=4_000)
    clean = core_rs.CandleEngine(n_symbols=3)
    mixed = core_rs.CandleEngine(n_symbols=3)
    rng = np.random.default_rng(0)
    everyone = np.arange(3, dtype=np.int32)
    prev = None
    for batch in batches(ticks, 500):
        now = int(batch["time_ms"].max())
        junk = junk_for(batch, prev, now)
        # The good ticks keep their order; the bad ones land anywhere between.
        both = pd.concat(
            [
                batch.assign(at=np.arange(len(batch), dtype=float)),
                junk.assign(at=rng.uniform(-1, len(batch), len(junk))),
            ]
        ).sort_values("at", kind="stable")
        assert (ingest(clean, batch, now) == 0).all()
        codes = ingest(mixed, both, now)
        want = [1, 1, 2, 3, 4, 5] + ([6] if prev is not None else [])
        assert sorted(codes[codes != 0].tolist()) == want
        assert_same_candles(candles(mixed), candles(clean))
        np.testing.assert_array_equal(mixed.take_dirty_quotes(), clean.take_dirty_quotes())
        q_mixed, q_clean = mixed.quotes(everyone, now), clean.quotes(everyone, now)
        for col in QUOTE_FIELDS:
            np.testing.assert_array_equal(q_mixed[col], q_clean[col], err_msg=col)
        prev = batch.iloc[-1]


def test_close_expired_closes_due_candles_and_rejects_late_ticks() -> None:
    eng = core_rs.CandleEngine(intervals_ms=[MINUTE, 5 * MINUTE], n_symbols=1)
    t0 = 100 * MINUTE + 10_000
    one = pd.DataFrame({"symbol_id": [0], "time_ms": [t0], "price": [10.0], "volume": [1.0]})
    ingest(eng, one)
    eng.take_dirty_candles()
    assert eng.close_expired(101 * MINUTE - 1) == 0
    assert eng.close_expired(101 * MINUTE) == 1
    got = candles(eng)
    assert got[[*KEYS, "closed"]].values.tolist() == [[0, 0, 100 * MINUTE, True]]
    assert ingest(eng, one).tolist() == [core_rs.REJECT_TIME_BEFORE_CLOSED_CANDLE]
    assert eng.close_expired(105 * MINUTE) == 1  # the 5m candle
    later = one.assign(time_ms=104 * MINUTE)  # inside the closed 5m candle
    assert ingest(eng, later).tolist() == [core_rs.REJECT_TIME_BEFORE_CLOSED_CANDLE]
    assert ingest(eng, one.assign(time_ms=105 * MINUTE)).tolist() == [0]


# -- rolling 24h -------------------------------------------------------------


def test_rolling_24h_stats_match_pandas_rolling() -> None:
    n_symbols = 4
    ticks = random_ticks(6, n_symbols=n_symbols, days=3, n=12_000)
    eng = core_rs.CandleEngine(n_symbols=n_symbols + 1)  # the last never ticks
    everyone = np.arange(n_symbols + 1, dtype=np.int32)
    # Cut batches at minute boundaries so the bucket of now-1 is complete.
    minutes = ticks["time_ms"].to_numpy() // MINUTE
    cuts = np.unique(minutes)[:: len(np.unique(minutes)) // 9][1:]
    lo = 0
    checked = 0
    for cut in cuts:
        hi = int(np.searchsorted(minutes, cut))
        now = int(cut) * MINUTE - 1
        ingest(eng, ticks.iloc[lo:hi], now)
        lo = hi
        want = reference_quotes(ticks, n_symbols + 1, now)
        assert_same_quotes(eng.quotes(everyone, now), want)
        checked += 1
    ingest(eng, ticks.iloc[lo:])
    last = int(ticks["time_ms"].max())
    for later in [0, 1, MINUTE, HOUR, 6 * HOUR, DAY - MINUTE, DAY, DAY + MINUTE, 2 * DAY]:
        now = last + later
        assert_same_quotes(eng.quotes(everyone, now), reference_quotes(ticks, n_symbols + 1, now))
        checked += 1
    assert checked >= 15
    # Unknown ids are an error, not a NaN row.
    with pytest.raises(ValueError, match="unknown symbol id 9"):
        eng.quotes(np.array([0, 9], np.int32), last)


def test_quotes_with_no_bucket_in_the_window_read_as_flat() -> None:
    eng = core_rs.CandleEngine(n_symbols=2)
    eng.set_last(0, 42.0, START)
    q = eng.quotes(np.array([0, 1], np.int32), START + 10 * DAY)
    assert q["has_price"].tolist() == [True, False]
    assert (q["price"][0], q["time_ms"][0]) == (42.0, START)
    assert (q["open_24h"][0], q["high_24h"][0], q["low_24h"][0]) == (42.0, 42.0, 42.0)
    assert (q["volume_24h"][0], q["quote_volume_24h"][0], q["change_24h_pct"][0]) == (0.0, 0.0, 0.0)
    assert np.isnan([q[c][1] for c in QUOTE_FIELDS if c not in ("time_ms", "has_price")]).all()
    assert eng.take_dirty_quotes().size == 0  # set_last is not news


# -- restore -----------------------------------------------------------------


def restore(eng: core_rs.CandleEngine, saved: pd.DataFrame) -> None:
    for (sid, k), rows in saved.groupby(["symbol_id", "interval_idx"]):
        eng.restore_candles(
            int(sid),
            int(k),
            rows["open_ms"].to_numpy(np.int64),
            rows["open"].to_numpy(np.float64),
            rows["high"].to_numpy(np.float64),
            rows["low"].to_numpy(np.float64),
            rows["close"].to_numpy(np.float64),
            rows["volume"].to_numpy(np.float64),
            rows["quote_volume"].to_numpy(np.float64),
            rows["trades"].to_numpy(np.int64),
            rows["closed"].to_numpy(bool),
        )


def test_restore_from_dirty_output_then_continue_matches_the_original() -> None:
    n_symbols = 4
    ticks = random_ticks(7, n_symbols=n_symbols, days=3, n=15_000)
    split = len(ticks) * 3 // 5
    everyone = np.arange(n_symbols, dtype=np.int32)
    original = core_rs.CandleEngine(n_symbols=n_symbols)
    frames = []
    for batch in batches(ticks.iloc[:split], 1_000):
        ingest(original, batch)
        frames.append(candles(original))
    cut = int(ticks["time_ms"].iloc[split - 1])
    original.close_expired(cut - 30_000)
    frames.append(candles(original))
    saved = latest(frames)
    assert saved["closed"].any() and not saved["closed"].all()

    restored = core_rs.CandleEngine(n_symbols=n_symbols)
    restore(restored, saved)
    last = original.quotes(everyone, cut)
    for sid in range(n_symbols):
        restored.set_last(sid, float(last["price"][sid]), int(last["time_ms"][sid]))
    assert candles(restored).empty
    assert restored.take_dirty_quotes().size == 0
    original.take_dirty_quotes()
    q = restored.quotes(everyone, cut)
    for col in QUOTE_FIELDS:
        np.testing.assert_array_equal(q[col], last[col], err_msg=col)

    for batch in batches(ticks.iloc[split:], 700):
        now = int(batch["time_ms"].max())
        np.testing.assert_array_equal(ingest(restored, batch), ingest(original, batch))
        got, want = restored.take_dirty_candles(), original.take_dirty_candles()
        assert got.keys() == want.keys()
        for col in want:
            np.testing.assert_array_equal(got[col], want[col], err_msg=col)
        np.testing.assert_array_equal(restored.take_dirty_quotes(), original.take_dirty_quotes())
        a, b = restored.quotes(everyone, now), original.quotes(everyone, now)
        for col in QUOTE_FIELDS:
            np.testing.assert_array_equal(a[col], b[col], err_msg=col)

    with pytest.raises(ValueError, match="already received ticks"):
        restore(restored, saved)


# -- arguments ---------------------------------------------------------------


def test_defaults_and_properties() -> None:
    eng = core_rs.CandleEngine()
    assert eng.intervals_ms == INTERVALS
    assert eng.window_ms == DAY
    assert eng.n_symbols == 0
    assert eng.add_symbols(3) == 0
    assert eng.add_symbols(2) == 3
    assert eng.n_symbols == 5


def test_empty_input_gives_empty_output() -> None:
    eng = core_rs.CandleEngine(n_symbols=1)
    e = np.array([], np.int32)
    codes = eng.ingest(e, np.array([], np.int64), np.array([]), np.array([]), 0)
    assert codes.dtype == np.uint8 and codes.size == 0
    got = eng.take_dirty_candles()
    assert all(v.size == 0 for v in got.values())
    assert got["symbol_id"].dtype == np.int32 and got["interval_idx"].dtype == np.uint8
    assert got["closed"].dtype == bool and got["trades"].dtype == np.int64
    assert all(v.size == 0 for v in eng.quotes(e, 0).values())


def test_strided_and_int64_input_equals_contiguous_int32() -> None:
    ticks = random_ticks(8, n_symbols=3, days=1, n=2_000)
    a = core_rs.CandleEngine(n_symbols=3)
    b = core_rs.CandleEngine(n_symbols=3)
    ingest(a, ticks)
    wide = np.zeros((len(ticks), 4))
    wide[:, 1] = ticks["price"]
    wide[:, 2] = ticks["volume"]
    times = np.repeat(ticks["time_ms"].to_numpy(np.int64), 2)[::2]
    codes = b.ingest(
        ticks["symbol_id"].to_numpy(np.int64), times, wide[:, 1], wide[:, 2], int(times.max())
    )
    assert not wide[:, 1].flags.c_contiguous
    assert (codes == 0).all()
    assert_same_candles(candles(b), candles(a))
    q_ids = np.arange(3, dtype=np.int64)[::-1]
    np.testing.assert_array_equal(
        b.quotes(q_ids, 0)["price"], a.quotes(q_ids[::-1].copy(), 0)["price"][::-1]
    )


def ticks_args(n: int = 3) -> list[np.ndarray]:
    return [np.zeros(n, np.int32), np.zeros(n, np.int64), np.ones(n), np.ones(n)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"intervals_ms": [MINUTE, 90_000]}, "not a positive multiple of the finest"),
        ({"intervals_ms": [5 * MINUTE, MINUTE]}, "not a positive multiple of the finest"),
        ({"intervals_ms": [MINUTE, MINUTE]}, "listed twice"),
        ({"intervals_ms": []}, "at least one interval"),
        ({"intervals_ms": [0]}, "positive"),
        ({"window_ms": 90_000}, "window_ms"),
        ({"window_ms": 0}, "window_ms"),
        ({"n_symbols": -1}, "n_symbols"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        core_rs.CandleEngine(**kwargs)


@pytest.mark.parametrize(
    ("position", "value", "match"),
    [
        (1, np.zeros(2, np.int64), r"times_ms must have the same length as symbol_ids \(2 != 3\)"),
        (2, np.ones(4), r"prices must have the same length as symbol_ids \(4 != 3\)"),
        (3, np.ones(1), r"volumes must have the same length as symbol_ids"),
        (0, np.zeros(3, np.float64), "symbol_ids must be a 1-D numpy array of int32 or int64"),
        (0, [0, 0, 0], "symbol_ids must be .* got a list"),
        (
            1,
            np.zeros(3, np.int32),
            "times_ms must be a 1-D numpy array of int64, got a 1-D array of int32",
        ),
        (
            2,
            np.ones(3, np.float32),
            "prices must be a 1-D numpy array of float64, got a 1-D array of float32",
        ),
        (3, np.ones((3, 1)), "volumes must be a 1-D numpy array of float64, got a 2-D array"),
    ],
)
def test_bad_ingest_arguments(position: int, value: object, match: str) -> None:
    eng = core_rs.CandleEngine(n_symbols=1)
    args: list[object] = list(ticks_args())
    args[position] = value
    with pytest.raises(ValueError, match=match):
        eng.ingest(*args, 0)
    assert candles(eng).empty


def restore_args(n: int = 2, **override: np.ndarray) -> dict[str, np.ndarray]:
    args = {
        "open_ms": np.arange(n, dtype=np.int64) * MINUTE,
        "open": np.ones(n),
        "high": np.ones(n),
        "low": np.ones(n),
        "close": np.ones(n),
        "volume": np.ones(n),
        "quote_volume": np.ones(n),
        "trades": np.ones(n, np.int64),
        "closed": np.ones(n, bool),
    }
    return args | override


@pytest.mark.parametrize(
    ("sid", "k", "override", "match"),
    [
        (5, 0, {}, "unknown symbol id 5"),
        (0, 6, {}, "interval_idx"),
        (0, 1, {}, "not aligned to the interval"),
        (0, 0, {"open_ms": np.array([MINUTE, 0])}, "ascending"),
        (0, 0, {"open_ms": np.array([7, 8])}, "not aligned"),
        (0, 0, {"high": np.array([1.0, np.nan])}, "high: row 1"),
        (0, 0, {"volume": np.array([1.0, -1.0])}, "volume: row 1"),
        (0, 0, {"trades": np.ones(3, np.int64)}, "trades must have the same length as open_ms"),
        (0, 0, {"closed": np.ones(2, np.int64)}, "closed must be a 1-D numpy array of bool"),
    ],
)
def test_bad_restore_arguments(sid: int, k: int, override: dict, match: str) -> None:
    eng = core_rs.CandleEngine(n_symbols=1)
    with pytest.raises(ValueError, match=match):
        eng.restore_candles(sid, k, **restore_args(**override))


def test_bad_scalar_arguments() -> None:
    eng = core_rs.CandleEngine(n_symbols=1)
    with pytest.raises(ValueError, match="n must be >= 0"):
        eng.add_symbols(-1)
    with pytest.raises(ValueError, match="finite positive price"):
        eng.set_last(0, float("nan"), 0)
    with pytest.raises(ValueError, match="unknown symbol id 1"):
        eng.set_last(1, 1.0, 0)


def test_threads_share_one_engine() -> None:
    """Calls from several threads wait for each other instead of failing; per
    symbol the result is the same as feeding that symbol alone."""
    ticks = random_ticks(9, n_symbols=4, days=1, n=8_000)
    shared = core_rs.CandleEngine(n_symbols=4)
    alone = core_rs.CandleEngine(n_symbols=4)
    ingest(alone, ticks)

    def feed(sid: int) -> None:
        mine = ticks[ticks["symbol_id"] == sid]
        for batch in batches(mine, 50):
            assert (ingest(shared, batch) == 0).all()
            shared.quotes(np.arange(4, dtype=np.int32), int(batch["time_ms"].max()))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(feed, range(4)))
    got = latest([candles(shared)])
    assert_same_candles(got, latest([candles(alone)]))
