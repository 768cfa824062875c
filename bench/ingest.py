"""In-process ingest: ticks in, quotes and candles at all six intervals out.

A 500-asset universe whose store already holds history (the server's short
backfill: 2 days of 1h/4h/1d, 1 day of 1m/5m/15m, ~950k candles), and ticks
whose times rise monotonically across a few simulated minutes right after that
history (so 1m and 5m candles close along the way), in batches of 1,000 and
10,000. Each case runs on a fresh market and a fresh copy of the store:

* engine:      Market.ingest on ready sid arrays (core_rs) plus the close sweep;
* mapped:      symbols as strings mapped to sids, then the engine;
* commit-each: mapped + the persister's commit of the dirty candles and quotes
               to SQLite, awaited after every batch (what PublishTicks does for
               a call of one batch): one transaction per batch;
* group-4:     the same with four concurrent producers, which share commits;
* feed:        one producer paced at the goal rate while the persister's
               background cycle commits every 200 ms (MM_COMMIT_INTERVAL_MS),
               as for a live feed; then the final commit. Reports whether it
               kept up and the CPU share it needed.

Wall-clock ticks/s and ticks per CPU-second of this process (all threads,
writer included) are both reported: the second is the steadier one on a
machine doing other work. A commit costs more the deeper the history (with
the server's default 365 days it is ~1.5x the 2-day figure); --history-days
measures that. The feed's 100 ms StreamQuotes batches are not part
of this path (bench/fanout.py covers them).

    .venv/bin/python -m bench.ingest [--history-days 365,2] [--repeats R] [--wait-quiet S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import services  # noqa: F401  (puts the generated stubs on sys.path)
from bench.common import (
    fmt_rate,
    machine_info,
    machine_line,
    md_table,
    verdict,
    wait_quiet,
    write_results,
)
from services.pricing.app import DB_FILE
from services.pricing.assets import AssetInfo, build_universe
from services.pricing.feed import QuoteFeed
from services.pricing.history import generate_history
from services.pricing.ingest import symbols_to_sids
from services.pricing.intervals import INTERVAL_MS
from services.pricing.market import Market
from services.pricing.persister import Persister
from services.pricing.store import MarketStore
from services.pricing.universe import Universe

GOAL_TICKS_PER_S = 300_000
N_ASSETS = 500
SIM_MINUTES = 5
MINUTE_MS = 60_000
CLOSE_GRACE_MS = 5_000
COMMIT_INTERVAL_MS = 200
BATCH_SIZES = (1_000, 10_000)
# The server's short backfill (MM_BACKFILL_DAYS=2, MM_BACKFILL_FINE_DAYS=1).
HISTORY_DAYS = (2.0, 1.0)

Batch = tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    producers: int = 1
    commits: bool = True
    map_symbols: bool = True
    paced: bool = False


CASES = (
    Case("engine", "engine only (Market.ingest + close sweep)", commits=False, map_symbols=False),
    Case("mapped", "symbol→sid + engine", commits=False),
    Case("commit-each", "full, commit awaited after every batch"),
    Case("group-4", "full, 4 producers sharing commits", producers=4),
    Case("feed", "full, paced at 300k/s, background commit every 200 ms", paced=True),
)


@dataclass
class TickStream:
    """A run's ticks, prebuilt so generating them is never timed."""

    symbols: list[str]
    sids: np.ndarray
    times_ms: np.ndarray
    prices: np.ndarray
    volumes: np.ndarray

    def __len__(self) -> int:
        return len(self.symbols)

    def batches(self, size: int) -> list[Batch]:
        return [
            (
                self.symbols[lo : lo + size],
                self.sids[lo : lo + size],
                self.times_ms[lo : lo + size],
                self.prices[lo : lo + size],
                self.volumes[lo : lo + size],
            )
            for lo in range(0, len(self), size)
        ]


def stream_start_ms() -> int:
    """A minute boundary such that the stream ends a minute before now (no
    tick is "in the future" for the engine)."""
    return (time.time_ns() // 1_000_000 // MINUTE_MS - SIM_MINUTES - 1) * MINUTE_MS


def make_ticks(
    symbols: list[str], ref_prices: np.ndarray, n: int, start: int, seed: int = 7
) -> TickStream:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(symbols), n)
    times = start + np.sort(rng.integers(0, SIM_MINUTES * MINUTE_MS, n))
    return TickStream(
        symbols=[symbols[i] for i in idx.tolist()],
        sids=idx.astype(np.int32),
        times_ms=times.astype(np.int64),
        prices=ref_prices[idx] * np.exp(rng.normal(0.0, 2e-3, n)),
        volumes=rng.exponential(1.0, n),
    )


def prefill(data_dir: Path, infos: list[AssetInfo], end_ms: int, days: tuple[float, float]) -> int:
    """The store as the server's backfill leaves it (candles and last quotes),
    history ending where the tick stream starts; returns the candle count."""
    store = MarketStore(data_dir / DB_FILE)
    try:
        sid_map = store.assign_sids([a.symbol for a in infos])
        candles = 0
        quotes = []
        for history in generate_history(
            infos, seed=42, end_ms=end_ms, coarse_days=days[0], fine_days=days[1]
        ):
            sid = sid_map[infos[history.symbol_idx].symbol]
            for interval_ms, arrays in history.candles.items():
                candles += len(arrays)
                store.insert_history(sid, interval_ms, arrays)
            quotes.append((sid, history.last_price, history.last_time_ms, 0))
        store.write_batch(None, INTERVAL_MS, quotes, {})
        store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one file to copy
    finally:
        store.close()
    return candles


class Rig:
    """A fresh market + store + persister, wired as PricingApp wires them."""

    def __init__(self, data_dir: Path, infos: list[AssetInfo]) -> None:
        self.store = MarketStore(data_dir / DB_FILE)
        sid_map = self.store.assign_sids([a.symbol for a in infos])
        self.universe = Universe.build(infos, sid_map)
        # The streams' sids are universe positions: the store must agree.
        assert all(sid_map[a.symbol] == i for i, a in enumerate(infos))
        self.market = Market(self.universe)
        self.feed = QuoteFeed(self.market, batch_ms=100, heartbeat_s=2.0, start_sequence=0)
        self.persister = Persister(
            self.market, self.feed, self.store, interval_ms=COMMIT_INTERVAL_MS
        )

    def ingest(self, batch: Batch, *, map_symbols: bool) -> int:
        """One batch in; returns how many ticks were rejected."""
        symbols, sids, times, prices, volumes = batch
        if map_symbols:
            sids = symbols_to_sids(symbols, self.universe.sid_by_symbol)
        codes = self.market.ingest(sids, times, prices, volumes, time.time_ns() // 1_000_000)
        # The app's once-a-second sweep, driven by the simulated clock.
        self.market.engine.close_expired(int(times[-1]) - CLOSE_GRACE_MS)
        return int(np.count_nonzero(codes))

    def stored(self) -> dict[str, int]:
        """Candles in the store by interval: a read-back that commits landed."""
        rows = self.store._writer.execute(
            "SELECT interval_ms, count(*) FROM candles GROUP BY interval_ms"
        ).fetchall()
        return {str(interval_ms): int(n) for interval_ms, n in rows}

    def close(self) -> None:
        self.store.close()


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    rejected: int
    commits: int = 0
    max_lag_ms: float = 0.0


def run_sync(rig: Rig, batches: list[Batch], case: Case) -> Run:
    rejected = 0
    c0, t0 = time.process_time(), time.perf_counter()
    for batch in batches:
        rejected += rig.ingest(batch, map_symbols=case.map_symbols)
    return Run(time.perf_counter() - t0, time.process_time() - c0, rejected)


async def run_pipeline(rig: Rig, batches: list[Batch], case: Case) -> Run:
    persister_task = asyncio.create_task(rig.persister.run())
    await rig.persister.commit()  # writer thread up, connection warm
    pending = iter(batches)
    rejected = 0
    max_lag = 0.0

    async def produce() -> None:
        nonlocal rejected
        for batch in pending:
            rejected += rig.ingest(batch, map_symbols=True)
            await rig.persister.commit()

    async def produce_paced(t0: float) -> None:
        nonlocal rejected, max_lag
        due = t0
        for batch in batches:
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                max_lag = max(max_lag, -wait)
                await asyncio.sleep(0)  # a feed yields between batches too
            rejected += rig.ingest(batch, map_symbols=True)
            due += len(batch[0]) / GOAL_TICKS_PER_S
        await rig.persister.commit()

    commits_before = rig.persister.commits
    c0, t0 = time.process_time(), time.perf_counter()
    if case.paced:
        await produce_paced(t0)
    else:
        await asyncio.gather(*(produce() for _ in range(case.producers)))
    run = Run(
        time.perf_counter() - t0,
        time.process_time() - c0,
        rejected,
        rig.persister.commits - commits_before,
        max_lag * 1000,
    )
    persister_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await persister_task
    return run


def run_case(
    case: Case, batches: list[Batch], *, infos: list[AssetInfo], template: Path | None
) -> dict[str, Any]:
    """One run on a fresh market and a fresh copy of the store."""
    with tempfile.TemporaryDirectory(prefix="mm-bench-ingest-") as tmp:
        if template is not None:
            shutil.copyfile(template, Path(tmp) / DB_FILE)
        rig = Rig(Path(tmp), infos)
        try:
            if case.commits:
                run = asyncio.run(run_pipeline(rig, batches, case))
                stored = rig.stored()
            else:
                run = run_sync(rig, batches, case)
                stored = {}
        finally:
            rig.close()
    n_ticks = sum(len(b[0]) for b in batches)
    row: dict[str, Any] = {
        "seconds": round(run.seconds, 4),
        "cpu_seconds": round(run.cpu_seconds, 4),
        "rejected": run.rejected,
        "ticks_per_s": round(n_ticks / run.seconds),
        "ticks_per_cpu_s": round(n_ticks / max(run.cpu_seconds, 1e-9)),
    }
    if case.commits:
        row["commits"] = run.commits
        row["ms_per_commit"] = round(run.seconds / max(run.commits, 1) * 1000, 2)
        row["stored_candles_by_interval_ms"] = stored
    if case.paced:
        row["cpu_share"] = round(run.cpu_seconds / run.seconds, 3)
        row["max_lag_ms"] = round(run.max_lag_ms, 1)
        # Kept up: finished within 10% of the schedule's length.
        row["kept_up"] = run.seconds <= 1.1 * n_ticks / GOAL_TICKS_PER_S
    return row


def measure(
    n_ticks: int = 1_000_000,
    pipeline_ticks: int = 300_000,
    *,
    repeats: int = 2,
    history_days: tuple[float, float] | None = HISTORY_DAYS,
    quiet_s: float = 0.0,
) -> dict[str, Any]:
    machine = machine_info()
    infos = build_universe(N_ASSETS, seed=42)
    symbols = [a.symbol for a in infos]
    ref = np.asarray([a.reference_price for a in infos], dtype=np.float64)
    start = stream_start_ms()
    long_stream = make_ticks(symbols, ref, n_ticks, start)
    # Fewer ticks over the same span where every batch waits for a commit.
    short_stream = make_ticks(symbols, ref, pipeline_ticks, start)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mm-bench-history-") as history_dir:
        template: Path | None = None
        stored = 0
        t0 = time.perf_counter()
        if history_days is not None:
            stored = prefill(Path(history_dir), infos, start, history_days)
            template = Path(history_dir) / DB_FILE
        prefill_s = time.perf_counter() - t0
        for size in BATCH_SIZES:
            for case in CASES:
                stream = short_stream if case.commits and not case.paced else long_stream
                batches = stream.batches(size)
                if quiet_s:
                    wait_quiet(quiet_s)
                runs = [
                    run_case(case, batches, infos=infos, template=template) for _ in range(repeats)
                ]
                best = max(runs, key=lambda r: r["ticks_per_s"])
                rows.append({"case": case.name, "batch": size, "ticks": len(stream), **best})
    return {
        "name": "ingest",
        "machine": machine,
        "setup": {
            "assets": N_ASSETS,
            "ticks_long": n_ticks,
            "ticks_short": pipeline_ticks,
            "simulated_minutes": SIM_MINUTES,
            "intervals": ["1m", "5m", "15m", "1h", "4h", "1d"],
            "history_days_coarse_fine": list(history_days) if history_days else None,
            "history_candles": stored,
            "prefill_seconds": round(prefill_s, 1),
            "commit_interval_ms": COMMIT_INTERVAL_MS,
            "repeats": repeats,
            "figure": "best wall-clock run of the repeats",
            "cases": {c.name: c.text for c in CASES},
        },
        "goal_ticks_per_s": GOAL_TICKS_PER_S,
        "results": rows,
        "goal_met": _goal_met(rows),
    }


def _meets(row: dict[str, Any]) -> bool:
    if row["case"] == "feed":
        return bool(row["kept_up"]) and row["rejected"] == 0
    return row["ticks_per_s"] >= GOAL_TICKS_PER_S and row["rejected"] == 0


def _goal_met(rows: list[dict[str, Any]]) -> dict[str, bool]:
    return {
        f"{r['case']}@{r['batch']}": _meets(r)
        for r in rows
        if r["case"] not in ("engine", "mapped")
    }


HEADERS = ("path", "batch", "ticks/s", "ticks/CPU-s", "commits", "goal ≥ 300k/s")
TEXT = {c.name: c.text for c in CASES}


def table_rows(result: dict[str, Any]) -> list[list[object]]:
    out: list[list[object]] = []
    for r in result["results"]:
        commits = ""
        if "commits" in r:
            commits = f"{r['commits']:,} ({r['ms_per_commit']:.1f} ms apart)"
        goal = "" if r["case"] in ("engine", "mapped") else verdict(_meets(r))
        rate = fmt_rate(r["ticks_per_s"])
        if r["case"] == "feed":
            rate = f"{rate} (CPU {r['cpu_share'] * 100:.0f}%)"
        out.append(
            [
                TEXT[r["case"]],
                f"{r['batch']:,}",
                rate,
                fmt_rate(r["ticks_per_cpu_s"]),
                commits,
                goal,
            ]
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    days = setup["history_days_coarse_fine"]
    history = (
        f"a store already holding {setup['history_candles']:,} candles "
        f"({days[0]:g} days of 1h/4h/1d, {days[1]:g} of 1m/5m/15m)"
        if days
        else "an empty store"
    )
    return "\n\n".join(
        [
            "# Ingest in-process",
            machine_line(result["machine"]),
            f"{setup['assets']} assets, {history}; ticks with times rising across "
            f"{setup['simulated_minutes']} simulated minutes, candles at "
            f"{', '.join(setup['intervals'])}. {setup['ticks_long']:,} ticks per run, "
            f"{setup['ticks_short']:,} where every batch awaits its commit. "
            f"{setup['figure']} ({setup['repeats']}); ticks/CPU-s counts every thread "
            "of the process. The paced feed row meets the goal when it keeps up "
            "with 300k ticks/s; its CPU share is of one core.",
            md_table(HEADERS, table_rows(result)),
        ]
    )


def _history_days(text: str) -> tuple[float, float] | None:
    if text.strip() in ("0", ""):
        return None
    coarse, fine = (float(part) for part in text.split(","))
    return coarse, fine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--pipeline-ticks", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--history-days",
        default="2,1",
        metavar="COARSE,FINE",
        help="history in the store: days of 1h/4h/1d and of 1m/5m/15m candles "
        "(the server's defaults are 365,2); 0 = an empty store",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each case wait up to S seconds for the rest of the machine to go idle",
    )
    args = parser.parse_args()
    result = measure(
        args.ticks,
        args.pipeline_ticks,
        repeats=args.repeats,
        history_days=_history_days(args.history_days),
        quiet_s=args.wait_quiet,
    )
    print(md_table(HEADERS, table_rows(result)))
    write_results("ingest", result, markdown(result))


if __name__ == "__main__":
    main()
