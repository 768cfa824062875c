"""Import historical candles or ticks from CSV into the pricing store.

    python -m services.pricing.importer FILE [FILE ...]

The kind is read from the header:
- ticks:   symbol,time,price,volume
- candles: symbol,interval,open_time,open,high,low,close,volume[,quote_volume][,trades]

`time`/`open_time` are ISO 8601 (UTC if no offset) or epoch milliseconds;
`interval` is 1m, 5m, 15m, 1h, 4h or 1d. Ticks are aggregated into candles at
every interval; candles at the finest interval in the file are also
aggregated into every coarser one. Rows are upserted by (symbol, interval,
open time), so importing the same file twice changes nothing. Rows that fail
validation are reported with their line number and skipped; nothing else in
the file is affected. Imported candles are served by GetCandles at once; a
running service's live quotes are not changed. A symbol with no quote yet (no
service has run on the data dir) gets its last imported price as its quote, so
the first start keeps its imported history instead of backfilling it.
"""

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

import core_rs
from services.common.config import ConfigError
from services.pricing.app import DB_FILE
from services.pricing.assets import build_universe
from services.pricing.candles import CandleArrays
from services.pricing.history import aggregate
from services.pricing.ingest import MAX_PRICE, MAX_VOLUME
from services.pricing.intervals import INTERVAL_MS, MS_BY_NAME
from services.pricing.settings import load_pricing_settings
from services.pricing.store import MarketStore

TICK_COLUMNS = ("symbol", "time", "price", "volume")
CANDLE_COLUMNS = ("symbol", "interval", "open_time", "open", "high", "low", "close", "volume")
CHUNK_ROWS = 200_000


@dataclass
class ImportReport:
    rows: int = 0
    candles_written: int = 0
    errors: list[str] = field(default_factory=list)


def _parse_times(values: pd.Series) -> pd.Series:
    """Epoch ms (integers) or ISO 8601 strings (UTC unless they say otherwise)
    -> int64 ms; -1 where unreadable."""
    numeric = pd.to_numeric(values, errors="coerce")
    parsed = pd.to_datetime(
        values.where(numeric.isna()), utc=True, errors="coerce", format="ISO8601"
    )
    out = np.full(len(values), -1, dtype=np.int64)
    is_num = numeric.notna().to_numpy()
    out[is_num] = numeric[is_num].to_numpy(dtype=np.float64).astype(np.int64)
    is_date = parsed.notna().to_numpy() & ~is_num
    out[is_date] = (
        parsed[is_date].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ms]")
    ).astype(np.int64)
    return pd.Series(out, index=values.index)


def _detect_kind(columns: Sequence[str]) -> str:
    cols = {c.strip().lower() for c in columns}
    if set(CANDLE_COLUMNS) <= cols:
        return "candles"
    if set(TICK_COLUMNS) <= cols:
        return "ticks"
    raise ValueError(
        f"unrecognised header {list(columns)}: expected {','.join(TICK_COLUMNS)} "
        f"or {','.join(CANDLE_COLUMNS)}"
    )


def _write(store: MarketStore, sid: int, interval_ms: int, arrays: CandleArrays) -> int:
    store.insert_history(sid, interval_ms, arrays)
    return len(arrays.open_ms)


def _quote_if_absent(store: MarketStore, sid: int, price: float, time_ms: int) -> None:
    # A symbol imported before pricing ever ran gets its last imported price as
    # its quote: pricing then restores it instead of backfilling the symbol,
    # which would overwrite the imported candles with synthetic ones. A symbol
    # that already has a quote (a service ran here) keeps it.
    store.insert_quote_if_absent(sid, price, time_ms)


def _with_coarser(finest_ms: int, arrays: CandleArrays) -> dict[int, CandleArrays]:
    out = {finest_ms: arrays}
    for ms in INTERVAL_MS:
        if ms > finest_ms and ms % finest_ms == 0:
            out[ms] = aggregate(arrays, finest_ms, ms)
    return out


def import_ticks(
    frame: pd.DataFrame, store: MarketStore, sid_by_symbol: dict[str, int], report: ImportReport
) -> None:
    now_ms = pd.Timestamp.now(tz="UTC").value // 1_000_000
    for symbol, unsorted in frame.groupby("symbol", sort=True):
        sid = sid_by_symbol[str(symbol)]
        group = unsorted.sort_values("time_ms", kind="stable")
        engine = core_rs.CandleEngine(intervals_ms=list(INTERVAL_MS), window_ms=86_400_000)
        engine.add_symbols(1)
        codes = engine.ingest(
            np.zeros(len(group), dtype=np.int32),
            group["time_ms"].to_numpy(np.int64),
            group["price"].to_numpy(np.float64),
            group["volume"].to_numpy(np.float64),
            now_ms,
        )
        for line, code in zip(group["line"].to_numpy()[codes != 0], codes[codes != 0], strict=True):
            report.errors.append(f"line {line}: tick rejected (reason code {int(code)})")
        engine.close_expired(now_ms)
        last = engine.quotes(np.zeros(1, dtype=np.int32), now_ms)
        if last["has_price"][0]:
            _quote_if_absent(store, sid, float(last["price"][0]), int(last["time_ms"][0]))
        dirty = engine.take_dirty_candles()
        for idx, interval_ms in enumerate(INTERVAL_MS):
            mask = dirty["interval_idx"] == idx
            arrays = CandleArrays.from_columns(dirty, mask)
            report.candles_written += _write(store, sid, interval_ms, arrays)


def import_candles(
    frame: pd.DataFrame, store: MarketStore, sid_by_symbol: dict[str, int], report: ImportReport
) -> None:
    for (symbol, interval_ms), rows in frame.groupby(["symbol", "interval_ms"], sort=True):
        sid = sid_by_symbol[str(symbol)]
        group = rows.sort_values("time_ms").drop_duplicates("time_ms", keep="last")
        n = len(group)
        arrays = CandleArrays(
            open_ms=group["time_ms"].to_numpy(np.int64),
            open=group["open"].to_numpy(np.float64),
            high=group["high"].to_numpy(np.float64),
            low=group["low"].to_numpy(np.float64),
            close=group["close"].to_numpy(np.float64),
            volume=group["volume"].to_numpy(np.float64),
            quote_volume=(
                group["quote_volume"].to_numpy(np.float64)
                if "quote_volume" in group
                else group["close"].to_numpy(np.float64) * group["volume"].to_numpy(np.float64)
            ),
            trades=group["trades"].to_numpy(np.int64)
            if "trades" in group
            else np.zeros(n, np.int64),
            closed=np.ones(n, dtype=bool),
        )
        finest = min(frame.loc[frame["symbol"] == symbol, "interval_ms"])
        series = (
            _with_coarser(int(interval_ms), arrays)
            if interval_ms == finest
            else {int(interval_ms): arrays}
        )
        for ms, part in series.items():
            report.candles_written += _write(store, sid, ms, part)
        if interval_ms == finest and n:
            # The close of the last finest candle; its open is the one time
            # known not to be after its last trade.
            _quote_if_absent(store, sid, float(arrays.close[-1]), int(arrays.open_ms[-1]))


def _validate(
    frame: pd.DataFrame, kind: str, known: set[str], report: ImportReport
) -> pd.DataFrame:
    frame["symbol"] = frame["symbol"].astype(str).str.strip().str.upper()
    bad = ~frame["symbol"].isin(known)
    reasons = pd.Series("", index=frame.index, dtype=object)
    reasons[bad] = "unknown symbol " + frame.loc[bad, "symbol"]
    time_col = "time" if kind == "ticks" else "open_time"
    frame["time_ms"] = _parse_times(frame[time_col].astype(str))
    bad_time = frame["time_ms"] < 0
    reasons[bad_time & (reasons == "")] = f"unreadable {time_col}"
    price_cols = ["price"] if kind == "ticks" else ["open", "high", "low", "close"]
    for col in [*price_cols, "volume"]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in price_cols:
        bad_price = ~(np.isfinite(frame[col]) & (frame[col] > 0))
        bad_price |= frame[col] > MAX_PRICE
        reasons[bad_price & (reasons == "")] = (
            f"{col} must be a finite number in (0, {MAX_PRICE:g}]"
        )
    bad_volume = ~(np.isfinite(frame["volume"]) & (frame["volume"] >= 0))
    bad_volume |= frame["volume"] > MAX_VOLUME
    reasons[bad_volume & (reasons == "")] = f"volume must be a finite number in [0, {MAX_VOLUME:g}]"
    if kind == "candles":
        frame["interval_ms"] = frame["interval"].astype(str).str.strip().str.lower().map(MS_BY_NAME)
        reasons[frame["interval_ms"].isna() & (reasons == "")] = (
            "interval must be one of " + ", ".join(MS_BY_NAME)
        )
        # An open off the interval grid would fail aggregation (and the whole
        # symbol with it) or, stored, stop pricing from restoring its candles.
        misaligned = frame["interval_ms"].notna() & (
            frame["time_ms"] % frame["interval_ms"].fillna(1) != 0
        )
        reasons[misaligned & (reasons == "")] = (
            "open_time is not aligned to the interval (opens are UTC multiples of its width)"
        )
        incoherent = (frame["high"] < frame[["open", "close", "low"]].max(axis=1)) | (
            frame["low"] > frame[["open", "close", "high"]].min(axis=1)
        )
        reasons[incoherent & (reasons == "")] = "high/low do not bound open and close"
    for line, reason in zip(frame.loc[reasons != "", "line"], reasons[reasons != ""], strict=True):
        report.errors.append(f"line {line}: {reason}")
    good = frame[reasons == ""].copy()
    if kind == "candles":
        good["interval_ms"] = good["interval_ms"].astype(np.int64)
    return good


def import_file(path: Path, store: MarketStore, known_symbols: Sequence[str]) -> ImportReport:
    report = ImportReport()
    header = pd.read_csv(path, nrows=0)
    header.columns = [c.strip().lower() for c in header.columns]
    kind = _detect_kind(list(header.columns))
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.columns = [c.strip().lower() for c in frame.columns]
    frame["line"] = np.arange(2, len(frame) + 2)
    report.rows = len(frame)
    good = _validate(frame, kind, set(known_symbols), report)
    sid_by_symbol = store.assign_sids(sorted(set(good["symbol"])))
    symbols = sorted(set(good["symbol"]))
    with tqdm(
        total=len(symbols), desc=f"{path.name} ({kind})", unit="symbol", file=sys.stderr
    ) as bar:
        for symbol in symbols:
            part = good[good["symbol"] == symbol]
            if kind == "ticks":
                import_ticks(part, store, sid_by_symbol, report)
            else:
                import_candles(part, store, sid_by_symbol, report)
            bar.update(1)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.pricing.importer",
        description="Import historical candles or ticks from CSV (idempotent).",
    )
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        settings = load_pricing_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    known = [a.symbol for a in build_universe(settings.universe_size, settings.seed)]
    store = MarketStore(settings.common.data_dir / DB_FILE)
    failed = False
    try:
        for path in args.files:
            if not path.is_file():
                print(f"{path}: no such file", file=sys.stderr)
                failed = True
                continue
            try:
                report = import_file(path, store, known)
            except ValueError as exc:
                print(f"{path}: {exc}", file=sys.stderr)
                failed = True
                continue
            for error in report.errors[:50]:
                print(f"{path}: {error}", file=sys.stderr)
            if len(report.errors) > 50:
                print(f"{path}: ... and {len(report.errors) - 50} more", file=sys.stderr)
            print(
                f"{path}: {report.rows} rows, {len(report.errors)} rejected, "
                f"{report.candles_written} candles written"
            )
            failed = failed or bool(report.errors)
    finally:
        store.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
