"""The CSV importer (`services.pricing.importer.main`): candles and ticks land
in the store as pandas says they should, importing twice changes nothing, bad
rows are reported by line and skipped, and a server started on the data dir
afterwards serves exactly the imported candles."""

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pytest import approx

from marketmesh.v1 import common_pb2, pricing_pb2
from services.pricing import importer
from tests.pricing.conftest import StartPricing
from tests.pricing.reference import OHLCV_AGG

MINUTE_MS = 60_000
DAY_MS = 86_400_000
WIDTHS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
ENUM = {
    "1m": common_pb2.INTERVAL_1M,
    "5m": common_pb2.INTERVAL_5M,
    "15m": common_pb2.INTERVAL_15M,
    "1h": common_pb2.INTERVAL_1H,
    "4h": common_pb2.INTERVAL_4H,
    "1d": common_pb2.INTERVAL_1D,
}
COLUMNS = ["open_ms", "open", "high", "low", "close", "volume", "quote_volume", "trades", "closed"]


def yesterday_ms() -> int:
    """Start of yesterday (UTC): a whole past day inside a fresh server's backfill window."""
    today = time.time_ns() // 1_000_000 // DAY_MS * DAY_MS
    return today - DAY_MS


def iso(ms: int, style: int) -> str:
    stamp = pd.Timestamp(ms, unit="ms", tz="UTC")
    if style == 0:
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if style == 1:
        return stamp.isoformat()  # +00:00
    if style == 2:
        # Another offset: the same instant written in UTC+02:00.
        return stamp.tz_convert("Etc/GMT-2").isoformat()
    return stamp.tz_localize(None).isoformat()  # naive: UTC


def time_text(ms: int, i: int) -> str:
    """Epoch ms or one of the ISO spellings, by row."""
    return str(ms) if i % 5 == 4 else iso(ms, i % 5)


def minute_candles(day: int, seed: int, start_price: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 1_440
    close = start_price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate(([start_price], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    volume = rng.uniform(0, 50, n).round(6)
    return pd.DataFrame(
        {
            "open_ms": day + np.arange(n, dtype=np.int64) * MINUTE_MS,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "quote_volume": volume * (high + low + close) / 3,
            "trades": rng.integers(0, 40, n),
            "closed": True,
        }
    )


def candles_csv(path: Path, symbol: str, frame: pd.DataFrame, extra: Sequence[str] = ()) -> None:
    """Write `frame` as a candles CSV; `extra` lines go in after the 10th row."""
    lines = ["symbol,interval,open_time,open,high,low,close,volume,quote_volume,trades"]
    for i, r in enumerate(frame.itertuples(index=False)):
        lines.append(
            f"{symbol},1m,{time_text(r.open_ms, i)},{r.open!r},{r.high!r},{r.low!r},"
            f"{r.close!r},{r.volume!r},{r.quote_volume!r},{r.trades}"
        )
        if i == 9:
            lines += extra
    path.write_text("\n".join(lines) + "\n")


def resample(frame: pd.DataFrame, width: int) -> pd.DataFrame:
    """Coarser candles from finer ones, by pandas."""
    index = pd.to_datetime(frame["open_ms"], unit="ms", utc=True)
    out = (
        frame.set_index(index)
        .drop(columns="open_ms")
        .resample(f"{width // MINUTE_MS}min", origin="epoch")
        .agg({**OHLCV_AGG, "closed": "all"})
    )
    out.insert(0, "open_ms", out.index.as_unit("ms").asi8)
    return out.reset_index(drop=True)


def tick_candles(ticks: pd.DataFrame, width: int) -> pd.DataFrame:
    """Candles from ticks by the candle rules: open at the earliest time, close
    at the latest (ties keep file order), sums of volume and price x volume."""
    t = ticks.sort_values("time_ms", kind="stable").copy()
    t["bucket"] = t["time_ms"] // width * width
    t["qv"] = t["price"] * t["volume"]
    g = t.groupby("bucket", sort=True)
    out = pd.DataFrame(
        {
            "open_ms": g["bucket"].first(),
            "open": g["price"].first(),
            "high": g["price"].max(),
            "low": g["price"].min(),
            "close": g["price"].last(),
            "volume": g["volume"].sum(),
            "quote_volume": g["qv"].sum(),
            "trades": g["price"].count(),
            "closed": True,
        }
    )
    return out.reset_index(drop=True)


def db_rows(data_dir: Path, symbol: str | None = None, width: int | None = None) -> list[tuple]:
    conn = sqlite3.connect(f"file:{data_dir / 'pricing.sqlite3'}?mode=ro", uri=True)
    try:
        sql = (
            "SELECT a.symbol, c.interval_ms, c.open_ms, c.open, c.high, c.low, c.close, c.volume, "
            "c.quote_volume, c.trades, c.closed FROM candles c JOIN assets a ON a.sid = c.sid"
        )
        clauses, params = [], []
        if symbol is not None:
            clauses.append("a.symbol = ?")
            params.append(symbol)
        if width is not None:
            clauses.append("c.interval_ms = ?")
            params.append(width)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return conn.execute(sql + " ORDER BY 1, 2, 3", params).fetchall()
    finally:
        conn.close()


def db_tables(data_dir: Path, *tables: str) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"file:{data_dir / 'pricing.sqlite3'}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    finally:
        conn.close()


def db_frame(data_dir: Path, symbol: str, width: int) -> pd.DataFrame:
    rows = db_rows(data_dir, symbol, width)
    frame = pd.DataFrame([r[2:] for r in rows], columns=COLUMNS)
    frame["closed"] = frame["closed"].astype(bool)
    return frame


def assert_same_candles(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert len(actual) == len(expected), what
    for col in ("open_ms", "open", "high", "low", "close", "trades", "closed"):
        assert actual[col].tolist() == expected[col].tolist(), (what, col)
    for col in ("volume", "quote_volume"):
        assert actual[col].to_numpy(float) == approx(expected[col].to_numpy(float), rel=1e-12), (
            what,
            col,
        )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("MM_DATA_DIR", str(path))
    for name in ("MM_UNIVERSE_SIZE", "MM_SEED", "MM_PAGE_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return path


def make_ticks(day: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    # Spread over the day, denser in the first hour so buckets hold several.
    times = np.concatenate(
        [rng.integers(day, day + 3_600_000, n // 2), rng.integers(day, day + DAY_MS, n // 2)]
    )
    return pd.DataFrame(
        {
            "time_ms": times.astype(np.int64),
            "price": (60_000 * np.exp(rng.normal(0, 0.01, n))).round(2),
            "volume": np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0, 3, n).round(4)),
        }
    )


def ticks_csv(path: Path, symbol: str, ticks: pd.DataFrame, extra: Sequence[str] = ()) -> None:
    lines = ["symbol,time,price,volume"]
    for i, r in enumerate(ticks.itertuples(index=False)):
        lines.append(f"{symbol},{time_text(r.time_ms, i)},{r.price!r},{r.volume!r}")
        if i == 4:
            lines += extra
    path.write_text("\n".join(lines) + "\n")


def test_import_candles_and_ticks_twice_is_idempotent(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = yesterday_ms()
    eth = minute_candles(day, seed=1, start_price=2_500.0)
    ticks = make_ticks(day, seed=2)
    candles_file, ticks_file = tmp_path / "eth.csv", tmp_path / "btc_ticks.csv"
    candles_csv(candles_file, "ETH-USD", eth)
    ticks_csv(ticks_file, "BTC-USD", ticks)

    assert importer.main([str(candles_file), str(ticks_file)]) == 0
    first = db_rows(data_dir)
    other_tables = db_tables(data_dir, "assets", "quotes")
    assert importer.main([str(candles_file), str(ticks_file)]) == 0
    assert importer.main([str(ticks_file)]) == 0
    assert db_rows(data_dir) == first, "importing again changed the candles"
    assert db_tables(data_dir, "assets", "quotes") == other_tables
    out = capsys.readouterr()
    assert "0 rejected" in out.out

    # 1m rows as written; every coarser interval is the pandas resample of them.
    assert_same_candles(db_frame(data_dir, "ETH-USD", 60_000), eth, "ETH 1m")
    for name, width in WIDTHS.items():
        if width > 60_000:
            expected = resample(eth, width)
            assert len(expected) == DAY_MS // width
            assert_same_candles(db_frame(data_dir, "ETH-USD", width), expected, f"ETH {name}")
    # Ticks into every interval, recomputed here from the rows.
    for name, width in WIDTHS.items():
        assert_same_candles(
            db_frame(data_dir, "BTC-USD", width), tick_candles(ticks, width), f"BTC {name}"
        )
    assert {r[0] for r in first} == {"ETH-USD", "BTC-USD"}


def test_bad_rows_are_reported_by_line_and_good_rows_land(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = yesterday_ms()
    sol = minute_candles(day, seed=3, start_price=150.0).iloc[:30].reset_index(drop=True)
    t = day + 45 * MINUTE_MS
    bad_candles = [
        f"NOPE-USD,1m,{t},1,2,0.5,1.5,10,15,1",  # line 12: unknown symbol
        f"SOL-USD,1m,{t},-1,2,0.5,1.5,10,15,1",  # line 13: negative price
        "SOL-USD,1m,the day before yesterday,1,2,0.5,1.5,10,15,1",  # line 14: unreadable time
        f"SOL-USD,1m,{t},1,0.5,2,1.5,10,15,1",  # line 15: high < low
        f"SOL-USD,1m,{t + 30_000},1,2,0.5,1.5,10,15,1",  # line 16: not on the minute grid
    ]
    candles_file = tmp_path / "sol.csv"
    candles_csv(candles_file, "SOL-USD", sol, bad_candles)
    ticks = make_ticks(day, seed=4).iloc[:40].reset_index(drop=True)
    bad_ticks = [
        f"NOPE-USD,{t},10,1",  # line 7
        f"ADA-USD,{t},-0.5,1",  # line 8
        "ADA-USD,not a time,0.5,1",  # line 9
        f"ADA-USD,{t},0.5,-2",  # line 10: negative volume
    ]
    ticks_file = tmp_path / "ada_ticks.csv"
    ticks_csv(ticks_file, "ADA-USD", ticks, bad_ticks)

    assert importer.main([str(candles_file), str(ticks_file)]) == 1
    err_lines = capsys.readouterr().err.splitlines()

    def reported(path: Path, line_no: int, word: str) -> bool:
        return any(e.startswith(f"{path}: line {line_no}: ") and word in e for e in err_lines)

    for line_no, word in [
        (12, "NOPE-USD"),
        (13, "open"),
        (14, "open_time"),
        (15, "high"),
        (16, "aligned"),
    ]:
        assert reported(candles_file, line_no, word), (line_no, err_lines)
    for line_no, word in [(7, "NOPE-USD"), (8, "price"), (9, "time"), (10, "volume")]:
        assert reported(ticks_file, line_no, word), (line_no, err_lines)
    reported_lines = sorted(
        int(e.split(": line ", 1)[1].split(":", 1)[0]) for e in err_lines if ": line " in e
    )
    assert reported_lines == [7, 8, 9, 10, 12, 13, 14, 15, 16], "only the bad rows"

    # The good rows landed, untouched by their bad neighbours.
    assert_same_candles(db_frame(data_dir, "SOL-USD", 60_000), sol, "SOL 1m")
    assert_same_candles(
        db_frame(data_dir, "SOL-USD", 3_600_000), resample(sol, 3_600_000), "SOL 1h"
    )
    for width in WIDTHS.values():
        assert_same_candles(
            db_frame(data_dir, "ADA-USD", width), tick_candles(ticks, width), f"ADA {width}"
        )
    assert db_rows(data_dir, "NOPE-USD") == []


def test_missing_file_or_unknown_header_fails(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n")
    assert importer.main([str(tmp_path / "missing.csv")]) == 1
    assert importer.main([str(odd)]) == 1
    err = capsys.readouterr().err
    assert "no such file" in err and "unrecognised header" in err


async def test_misaligned_coarse_candle_is_a_bad_row_and_pricing_still_starts(
    tmp_path: Path,
    data_dir: Path,
    start_pricing_server: StartPricing,
    capsys: pytest.CaptureFixture[str],
) -> None:
    day = yesterday_ms() - 5 * DAY_MS  # before the backfill window
    path = tmp_path / "daily.csv"
    path.write_text(
        "symbol,interval,open_time,open,high,low,close,volume\n"
        f"XRP-USD,1d,{day - DAY_MS},2.0,2.2,1.9,2.1,1000\n"
        f"XRP-USD,1d,{day + DAY_MS // 2},2.1,2.3,2.0,2.2,1000\n"  # line 3: noon, not midnight
        f"XRP-USD,1d,{iso(day, 0)},2.2,2.4,2.1,2.3,1000\n"
    )
    assert importer.main([str(path)]) == 1
    errors = [e for e in capsys.readouterr().err.splitlines() if ": line " in e]
    assert len(errors) == 1 and f"{path}: line 3: " in errors[0] and "aligned" in errors[0]

    server = await start_pricing_server(data_dir=data_dir)
    reply = await server.stub.GetCandles(
        pricing_pb2.GetCandlesRequest(
            symbol="XRP-USD", interval=ENUM["1d"], start_time=ts(day - DAY_MS), end_time=ts(day + 1)
        )
    )
    assert [(c.open_time.seconds * 1000, c.close) for c in reply.candles] == [
        (day - DAY_MS, 2.1),
        (day, 2.3),
    ]


def ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def candle_frame(candles: list[pricing_pb2.Candle]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_ms": [
                c.open_time.seconds * 1000 + c.open_time.nanos // 1_000_000 for c in candles
            ],
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "volume": [c.volume for c in candles],
            "quote_volume": [c.quote_volume for c in candles],
            "trades": [c.trades for c in candles],
            "closed": [c.closed for c in candles],
        }
    )


async def test_server_on_the_data_dir_serves_the_imported_day(
    tmp_path: Path, data_dir: Path, start_pricing_server: StartPricing
) -> None:
    """Import into a fresh data dir, then start pricing there: the first-start
    backfill (whose window covers the imported day) must leave the imported
    assets' candles alone, and their quotes are the last imported prices."""
    day = yesterday_ms()
    eth = minute_candles(day, seed=5, start_price=2_400.0)
    ticks = make_ticks(day, seed=6)
    candles_file, ticks_file = tmp_path / "eth.csv", tmp_path / "btc.csv"
    candles_csv(candles_file, "ETH-USD", eth)
    ticks_csv(ticks_file, "BTC-USD", ticks)
    assert importer.main([str(candles_file), str(ticks_file)]) == 0

    server = await start_pricing_server(data_dir=data_dir, backfill_days=3, backfill_fine_days=1)
    stub = server.stub
    for name, width in WIDTHS.items():
        for symbol, expected in (
            ("ETH-USD", eth if width == 60_000 else resample(eth, width)),
            ("BTC-USD", tick_candles(ticks, width)),
        ):
            reply = await stub.GetCandles(
                pricing_pb2.GetCandlesRequest(
                    symbol=symbol,
                    interval=ENUM[name],
                    start_time=ts(day),
                    end_time=ts(day + DAY_MS),
                    limit=5_000,
                )
            )
            assert reply.next_page_token == ""
            assert_same_candles(candle_frame(list(reply.candles)), expected, f"{symbol} {name}")
    # No synthetic candles around the imported ones...
    for symbol in ("ETH-USD", "BTC-USD"):
        for name in ("1m", "1d"):
            latest = await stub.GetCandles(
                pricing_pb2.GetCandlesRequest(symbol=symbol, interval=ENUM[name], limit=5_000)
            )
            assert all(day <= c.open_time.seconds * 1000 < day + DAY_MS for c in latest.candles)
    # ...whose quotes continue from the last imported prices...
    last_tick = ticks.sort_values("time_ms", kind="stable").iloc[-1]
    for symbol, price in (("ETH-USD", eth["close"].iloc[-1]), ("BTC-USD", last_tick["price"])):
        quote = (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=symbol))).quote
        assert quote.price == price, symbol
        assert day <= quote.time.seconds * 1000 < day + DAY_MS
    # ...while the assets nothing was imported for got their backfill.
    sol = await stub.GetCandles(
        pricing_pb2.GetCandlesRequest(symbol="SOL-USD", interval=ENUM["1h"], limit=5_000)
    )
    assert len(sol.candles) >= 72
    assert (await stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="SOL-USD"))).quote.price > 0
