"""Indicator kernels against TA-Lib: single series, a universe, per bar.

* single: every kernel that exists in both core_rs and talib (names matched
  by upper-casing), default parameters, on one consistent OHLCV random walk
  of 1e5 and 1e7 bars. Median time of repeated calls (ours and TA-Lib's
  alternating), the ratio ours / TA-Lib and the geometric mean of the
  ratios. Goals: no ratio above 1.0, geometric mean <= 0.75. Both sides run
  on the calling thread, so the ratio uses process CPU time, which other
  work on a shared machine skews far less than wall time (also reported).
* universe: 6,000 series x 8,760 hourly bars (a year), the signals bundle
  RSI + MACD + BBANDS + ATR (members not built yet are skipped) through
  ``core_rs.bundle.run`` against a Python loop calling talib per series and
  filling the same 2-D result arrays. Goal: >= 1.8x faster. Also each kernel
  alone through ``core_rs.batch`` against its own talib loop.
* incremental: ``core_rs.bundle.BundleSet.update`` for 6,000 symbols, one
  closed bar each per call, with the default bundle (its members that exist)
  and with every stateful kernel at once. Goal: <= 5 ms per call and
  <= 1 us per symbol. Also one ``core_rs.incremental`` ``Ema`` / ``Rsi``
  update from Python (ns per call).

The universe and incremental goals are wall-clock figures: on a shared
machine they depend on the load (the load average at start is in the
result; --wait-quiet waits for the machine to calm down first). The
universe case also reports process CPU seconds (all threads) of both sides.

    .venv/bin/python -m bench.indicators [--quick] [--only NAME ...] [--wait-quiet S]

--quick runs small sizes (a smoke test, results in indicators-quick.*);
--only takes section names (single, universe, incremental) and/or kernel
names (which restrict the kernels measured; kernel names alone run the
single-series section). A partial run writes indicators-partial.*.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import talib

import core_rs
from bench.common import machine_info, machine_line, md_table, verdict, wait_quiet, write_results
from core_rs import bundle
from core_rs._kernels import KERNELS
from core_rs.bundle import DEFAULT, BundleSet, Member

GOAL_MAX_RATIO = 1.0
GOAL_GEOMEAN = 0.75
GOAL_UNIVERSE_SPEEDUP = 1.8
GOAL_CALL_MS = 5.0
GOAL_US_PER_SYMBOL = 1.0
UNIVERSE_KERNELS = ("rsi", "macd", "bbands", "atr")
SECTIONS = ("single", "universe", "incremental")


@dataclass(frozen=True)
class Sizes:
    single: tuple[tuple[int, int], ...]  # (bars, repetitions)
    universe: tuple[int, int, int]  # series, bars, repetitions
    incremental: tuple[int, int, int]  # symbols, warm-up calls, timed calls


FULL = Sizes(
    single=((100_000, 15), (10_000_000, 5)),
    universe=(6_000, 8_760, 5),
    incremental=(6_000, 120, 300),
)
QUICK = Sizes(
    single=((10_000, 5), (100_000, 3)),
    universe=(300, 2_000, 1),
    incremental=(6_000, 40, 30),
)


# ---------------------------------------------------------------- data


def ohlcv(n_series: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Geometric random walks with consistent bars (open = previous close,
    high/low beyond both, positive volume), shape (n_series, n). The random
    draws are float32 (the prices float64): a year of 6,000 series is
    generated in seconds."""
    rng = np.random.default_rng(seed)
    shape = (n_series, n)

    def uniform(lo: float, hi: float) -> np.ndarray:
        u = rng.random(shape, dtype=np.float32)
        u *= np.float32(hi - lo)
        u += np.float32(lo)
        return u

    steps = rng.standard_normal(shape, dtype=np.float32)
    steps *= np.float32(0.01)
    close = np.cumsum(steps, axis=1, dtype=np.float64)
    del steps
    np.exp(close, out=close)
    close *= 100.0
    open_ = np.empty_like(close)
    open_[:, 0] = 100.0
    open_[:, 1:] = close[:, :-1]
    high = np.maximum(open_, close)
    high *= uniform(1.0, 1.005)
    low = np.minimum(open_, close)
    low *= uniform(0.995, 1.0)
    volume = uniform(1e3, 1e5).astype(np.float64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def field_of(kernel_input: str) -> str:
    """The bar field feeding a kernel input (TA-Lib's ``real`` is the close)."""
    if kernel_input in ("open", "high", "low", "close", "volume"):
        return kernel_input
    return "open" if kernel_input == "real1" else "close"


def inputs_of(name: str, bars: dict[str, np.ndarray]) -> list[np.ndarray]:
    out = []
    for i in KERNELS[name]["inputs"]:
        if i == "periods":  # MAVP: a period per bar, within its default range
            out.append(np.full(bars["close"].shape, 10.0))
        else:
            out.append(bars[field_of(i)])
    return out


def talib_fn(name: str) -> Callable[..., Any] | None:
    return getattr(talib, name.upper(), None)


def median_ms(times: Sequence[float]) -> float:
    return round(statistics.median(times) * 1e3, 4)


@dataclass(frozen=True)
class Pair:
    """Median wall and process-CPU seconds of ours and TA-Lib's calls."""

    ours_wall: float
    theirs_wall: float
    ours_cpu: float
    theirs_cpu: float


def time_pair(
    ours: Callable[[], Any], theirs: Callable[[], Any], reps: int, warmup: bool = True
) -> Pair:
    """``reps`` calls each, alternating, after a warm-up call each."""
    if warmup:
        ours()
        theirs()
    times: list[list[float]] = [[], [], [], []]
    for _ in range(reps):
        for k, fn in enumerate((ours, theirs)):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[k].append(time.perf_counter() - w0)
            times[k + 2].append(time.process_time() - c0)
    return Pair(*(statistics.median(t) for t in times))


def short_n(n: int) -> str:
    """1e5, 1e7; other sizes with separators."""
    text = f"{n:.0e}".replace("e+0", "e").replace("e+", "e")
    return text if float(text) == n else f"{n:,}"


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


# ---------------------------------------------------------------- single


def common_kernels(only: set[str]) -> list[str]:
    names = [n for n in sorted(KERNELS) if talib_fn(n) is not None]
    return [n for n in names if not only or n in only]


def single(sizes: Sizes, kernels: list[str]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for n, reps in sizes.single:
        bars = {k: v[0] for k, v in ohlcv(1, n, seed=1).items()}
        for name in kernels:
            ins = inputs_of(name, bars)
            ours_fn, theirs_fn = getattr(core_rs, name), talib_fn(name)
            assert theirs_fn is not None
            try:
                # Long series need no warm-up (and it would cost seconds).
                p = time_pair(
                    lambda f=ours_fn, x=ins: f(*x),
                    lambda f=theirs_fn, x=ins: f(*x),
                    reps,
                    warmup=n < 1_000_000,
                )
            except Exception as exc:  # a kernel that cannot run here is reported, not fatal
                rows.append({"kernel": name, "n": n, "error": repr(exc)})
                continue
            ratio = p.ours_cpu / p.theirs_cpu
            rows.append(
                {
                    "kernel": name,
                    "n": n,
                    "reps": reps,
                    "ours_ms": round(p.ours_cpu * 1e3, 4),
                    "talib_ms": round(p.theirs_cpu * 1e3, 4),
                    "ours_ns_per_bar": round(p.ours_cpu * 1e9 / n, 3),
                    "talib_ns_per_bar": round(p.theirs_cpu * 1e9 / n, 3),
                    "ratio": round(ratio, 4),
                    "ours_wall_ms": round(p.ours_wall * 1e3, 4),
                    "talib_wall_ms": round(p.theirs_wall * 1e3, 4),
                    "ratio_wall": round(p.ours_wall / p.theirs_wall, 4),
                }
            )
            print(f"  single {name:>12} n={n:>10,}: ratio {ratio:.3f}", file=sys.stderr)
        del bars
        gc.collect()
    ratios = [r["ratio"] for r in rows if "ratio" in r]
    by_n = {
        str(n): round(geomean([r["ratio"] for r in rows if r["n"] == n and "ratio" in r]), 4)
        for n, _ in sizes.single
    }
    worst = max(rows, key=lambda r: r.get("ratio", 0.0), default=None)
    return {
        "kernels": kernels,
        "rows": rows,
        "geomean": round(geomean(ratios), 4),
        "geomean_by_n": by_n,
        "max_ratio": worst["ratio"] if worst and "ratio" in worst else None,
        "max_ratio_kernel": f"{worst['kernel']} @ {worst['n']:,}" if worst else None,
        "slower_than_talib": sorted(
            {f"{r['kernel']} @ {r['n']:,}" for r in rows if r.get("ratio", 0) > GOAL_MAX_RATIO}
        ),
        "errors": [f"{r['kernel']} @ {r['n']:,}: {r['error']}" for r in rows if "error" in r],
        "goal_max_ratio_met": all(r["ratio"] <= GOAL_MAX_RATIO for r in rows if "ratio" in r),
        "goal_geomean_met": bool(ratios) and geomean(ratios) <= GOAL_GEOMEAN,
    }


# ---------------------------------------------------------------- universe


def universe_members(only: set[str]) -> list[Member]:
    return [
        m
        for m in DEFAULT
        if m.kernel in UNIVERSE_KERNELS
        and m.kernel in KERNELS
        and talib_fn(m.kernel) is not None
        and (not only or m.kernel in only)
    ]


def talib_loop(members: list[Member], data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a user writes without core_rs: talib per series, into the same
    2-D arrays ``bundle.run`` returns."""
    n_series, n = data["close"].shape
    names = bundle.columns(members)
    outs = {c: np.empty((n_series, n)) for c in names}
    plan = []
    col = 0
    for m in members:
        k = len(KERNELS[m.kernel]["outputs"])
        fn = talib_fn(m.kernel)
        plan.append(
            (fn, inputs_of(m.kernel, data), dict(m.params), [outs[c] for c in names[col : col + k]])
        )
        col += k
    for i in range(n_series):
        for fn, ins, params, targets in plan:
            r = fn(*[x[i] for x in ins], **params)
            if len(targets) == 1:
                targets[0][i] = r
            else:
                for t, v in zip(targets, r, strict=True):
                    t[i] = v
    return outs


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and process-CPU seconds (all threads) of one call, and its result."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def universe(sizes: Sizes, only: set[str]) -> dict[str, Any]:
    n_series, n, reps = sizes.universe
    members = universe_members(only)
    result: dict[str, Any] = {
        "series": n_series,
        "bars": n,
        "members": [m.kernel for m in members],
        "skipped": [k for k in UNIVERSE_KERNELS if k not in [m.kernel for m in members]],
        "threads": core_rs.batch_threads(),
    }
    if not members:
        return result
    t0 = time.perf_counter()
    data = ohlcv(n_series, n, seed=2)
    result["data_gen_s"] = round(time.perf_counter() - t0, 1)
    ours_t: list[float] = []
    theirs_t: list[float] = []
    ours_c: list[float] = []
    theirs_c: list[float] = []
    for rep in range(reps):
        # One result set alive at a time (each is gigabytes at full size);
        # the last series of each is kept to check the values.
        dt, cpu, ours = _timed(lambda: bundle.run(**data, members=members))
        ours_t.append(dt)
        ours_c.append(cpu)
        ours_last = {c: v[-1].copy() for c, v in ours.items()}
        del ours
        gc.collect()
        dt, cpu, theirs = _timed(lambda: talib_loop(members, data))
        theirs_t.append(dt)
        theirs_c.append(cpu)
        if rep == 0:
            # The tests' rule: 1e-9 relative, absolute near zero (scaled
            # by the column's largest value: MACD's histogram crosses 0).
            result["matches_talib_1e-9"] = all(
                np.allclose(
                    ours_last[c],
                    theirs[c][-1],
                    rtol=1e-9,
                    atol=1e-9 * float(np.nanmax(np.abs(theirs[c][-1]))),
                    equal_nan=True,
                )
                for c in ours_last
            )
        del theirs
        gc.collect()
    ours_s, theirs_s = statistics.median(ours_t), statistics.median(theirs_t)
    result.update(
        {
            "reps": reps,
            "bundle_s": round(ours_s, 3),
            "talib_loop_s": round(theirs_s, 3),
            "speedup": round(theirs_s / ours_s, 2),
            "bundle_cpu_s": round(statistics.median(ours_c), 3),
            "talib_loop_cpu_s": round(statistics.median(theirs_c), 3),
            "cpu_ratio": round(statistics.median(theirs_c) / statistics.median(ours_c), 2),
            "ns_per_bar_per_member": round(ours_s * 1e9 / (n_series * n * len(members)), 3),
            "goal_met": theirs_s / ours_s >= GOAL_UNIVERSE_SPEEDUP,
        }
    )
    print(f"  universe bundle: {theirs_s / ours_s:.2f}x", file=sys.stderr)
    per_kernel = []
    for m in members:
        ins = inputs_of(m.kernel, data)
        a, b = [], []
        for _ in range(max(1, reps - 1)):
            dt, _, out = _timed(lambda m=m, ins=ins: core_rs.batch(m.kernel, *ins, **m.params))
            a.append(dt)
            del out
            dt, _, out = _timed(lambda m=m: talib_loop([m], data))
            b.append(dt)
            del out
            gc.collect()
        ours_s, theirs_s = statistics.median(a), statistics.median(b)
        per_kernel.append(
            {
                "kernel": m.kernel,
                "params": dict(m.params),
                "batch_s": round(ours_s, 3),
                "talib_loop_s": round(theirs_s, 3),
                "speedup": round(theirs_s / ours_s, 2),
            }
        )
        print(f"  universe batch {m.kernel}: {theirs_s / ours_s:.2f}x", file=sys.stderr)
    result["batch"] = per_kernel
    result["batch_sum_s"] = round(sum(r["batch_s"] for r in per_kernel), 3)
    return result


# ---------------------------------------------------------------- incremental


def _update_case(
    label: str, members: list[Member], n_symbols: int, warmup: int, calls: int
) -> dict[str, Any]:
    s = BundleSet(n_symbols, members)
    steps = warmup + calls
    bars = ohlcv(n_symbols, steps, seed=3)
    per_call = [{f: np.ascontiguousarray(v[:, t]) for f, v in bars.items()} for t in range(steps)]
    del bars
    ids = np.arange(n_symbols, dtype=np.int32)
    out = np.empty((n_symbols, len(s.columns)))
    for t in range(warmup):
        s.update(ids, **per_call[t])
    plain, into = [], []
    for t in range(warmup, steps):
        bar = per_call[t]
        if t % 2:
            t0 = time.perf_counter()
            s.update(ids, **bar)
            plain.append(time.perf_counter() - t0)
        else:
            t0 = time.perf_counter()
            s.update(ids, **bar, out=out)
            into.append(time.perf_counter() - t0)
    peek = []
    for t in range(warmup, min(steps, warmup + 20)):
        t0 = time.perf_counter()
        s.peek(ids, **per_call[t])
        peek.append(time.perf_counter() - t0)
    ms = statistics.median(plain) * 1e3
    return {
        "case": label,
        "members": [m.alias or m.kernel for m in members],
        "columns": len(s.columns),
        "symbols": n_symbols,
        "calls": calls,
        "update_ms": round(ms, 3),
        "update_ms_p90": round(float(np.percentile(plain, 90)) * 1e3, 3),
        "update_out_ms": round(statistics.median(into) * 1e3, 3),
        "peek_ms": round(statistics.median(peek) * 1e3, 3),
        "us_per_symbol": round(ms * 1e3 / n_symbols, 4),
        "goal_met": ms <= GOAL_CALL_MS and ms * 1e3 / n_symbols <= GOAL_US_PER_SYMBOL,
    }


def _single_update_ns(cls_name: str, n: int = 200_000) -> dict[str, Any] | None:
    cls = getattr(core_rs.incremental, cls_name, None)
    if cls is None:
        return None
    state = cls()
    xs = (100.0 + np.cumsum(np.random.default_rng(4).normal(0, 1, n))).tolist()
    for x in xs[:1000]:
        state.update(x)
    upd = state.update
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for x in xs:
            upd(x)
        best = min(best, time.perf_counter() - t0)
    return {"class": f"core_rs.incremental.{cls_name}", "ns_per_update": round(best * 1e9 / n, 1)}


def incremental(sizes: Sizes, only: set[str]) -> dict[str, Any]:
    n_symbols, warmup, calls = sizes.incremental
    mappable = {"open", "high", "low", "close", "volume", "real"}
    default = [
        m
        for m in DEFAULT
        if m.kernel in KERNELS and KERNELS[m.kernel]["has_state"] and (not only or m.kernel in only)
    ]
    every = [
        Member(n, alias=f"{n}_")
        for n in sorted(KERNELS)
        if KERNELS[n]["has_state"]
        and set(KERNELS[n]["inputs"]) <= mappable
        and (not only or n in only)
    ]
    cases = []
    if default:
        cases.append(_update_case("default bundle", default, n_symbols, warmup, calls))
    if every and [m.kernel for m in every] != [m.kernel for m in default]:
        cases.append(_update_case("every stateful kernel", every, n_symbols, warmup, calls))
    for c in cases:
        print(f"  incremental {c['case']}: {c['update_ms']} ms/call", file=sys.stderr)
    singles = [r for r in (_single_update_ns("Ema"), _single_update_ns("Rsi")) if r]
    return {
        "default_members": [m.kernel for m in default],
        "default_missing": [m.kernel for m in DEFAULT if m not in default],
        "cases": cases,
        "single_updates": singles,
    }


# ---------------------------------------------------------------- report


def summary_rows(result: dict[str, Any]) -> list[list[object]]:
    """Rows for bench.run's summary: benchmark, case, result, goal, verdict."""
    rows: list[list[object]] = []
    s = result.get("single")
    if s and s.get("rows"):
        for n, g in s["geomean_by_n"].items():
            rows.append(
                [
                    "indicators",
                    f"single series, {int(n):,} bars, {len(s['kernels'])} kernels",
                    f"geomean ours/TA-Lib {g}",
                    f"≤ {GOAL_GEOMEAN}",
                    verdict(g <= GOAL_GEOMEAN),
                ]
            )
        rows.append(
            [
                "indicators",
                "single series, worst kernel",
                f"{s['max_ratio']} ({s['max_ratio_kernel']})",
                f"≤ {GOAL_MAX_RATIO}",
                verdict(s["goal_max_ratio_met"]),
            ]
        )
    u = result.get("universe")
    if u and "speedup" in u:
        rows.append(
            [
                "indicators",
                f"universe {u['series']:,} × {u['bars']:,}, bundle {'+'.join(u['members'])}",
                f"{u['bundle_s']} s vs TA-Lib loop {u['talib_loop_s']} s: {u['speedup']}x",
                f"≥ {GOAL_UNIVERSE_SPEEDUP}x",
                verdict(u["goal_met"]),
            ]
        )
    inc = result.get("incremental")
    for c in (inc or {}).get("cases", []):
        # The goal is the signals bundle's; every-kernel is for scale only.
        graded = c["case"] == "default bundle"
        rows.append(
            [
                "indicators",
                f"BundleSet.update, {c['symbols']:,} symbols, {c['case']} ({c['columns']} columns)",
                f"{c['update_ms']} ms/call, {c['us_per_symbol']} µs/symbol",
                f"≤ {GOAL_CALL_MS} ms, ≤ {GOAL_US_PER_SYMBOL} µs" if graded else "",
                verdict(c["goal_met"]) if graded else "",
            ]
        )
    return rows


def markdown(result: dict[str, Any]) -> str:
    parts = [
        "# Indicators vs TA-Lib (`python -m bench.indicators`)",
        machine_line(result["machine"]),
    ]
    if result.get("quick"):
        parts.append("**Quick run** (small sizes): a smoke test, not the figures to quote.")
    parts.append(md_table(("benchmark", "case", "result", "goal", ""), summary_rows(result)))
    s = result.get("single")
    if s and s.get("rows"):
        sizes = sorted({r["n"] for r in s["rows"]})
        by_kernel: dict[str, dict[int, dict[str, Any]]] = {}
        for r in s["rows"]:
            by_kernel.setdefault(r["kernel"], {})[r["n"]] = r
        headers = ["kernel"]
        for n in sizes:
            headers += [
                f"ours ns/bar {short_n(n)}",
                f"TA-Lib ns/bar {short_n(n)}",
                f"ratio {short_n(n)}",
            ]
        table = []
        for k, per_n in by_kernel.items():
            row: list[object] = [k]
            for n in sizes:
                r = per_n.get(n, {})
                if "ratio" in r:
                    flag = " ⚠" if r["ratio"] > GOAL_MAX_RATIO else ""
                    row += [r["ours_ns_per_bar"], r["talib_ns_per_bar"], f"{r['ratio']}{flag}"]
                else:
                    row += ["error", "", ""]
            table.append(row)
        parts.append(
            "## Single series (median process CPU time; default parameters)\n\n"
            + md_table(headers, table)
        )
        parts.append(
            f"Geometric mean of the ratios {s['geomean']} ("
            + ", ".join(f"{short_n(int(n))}: {g}" for n, g in s["geomean_by_n"].items())
            + "); "
            f"slower than TA-Lib: {', '.join(s['slower_than_talib']) or 'none'}."
            + (f" Errors: {'; '.join(s['errors'])}." if s["errors"] else "")
        )
    u = result.get("universe")
    if u:
        text = [f"## Universe: {u['series']:,} series × {u['bars']:,} bars, {u['threads']} threads"]
        if "speedup" in u:
            text.append(
                f"Bundle {'+'.join(u['members'])} via `core_rs.bundle.run`: {u['bundle_s']} s; "
                f"Python loop over talib filling the same arrays: {u['talib_loop_s']} s; "
                f"**{u['speedup']}x** (goal ≥ {GOAL_UNIVERSE_SPEEDUP}x; "
                f"{u['ns_per_bar_per_member']} ns per bar per member; process CPU "
                f"{u['bundle_cpu_s']} s vs {u['talib_loop_cpu_s']} s, {u['cpu_ratio']}x; "
                f"values match TA-Lib to 1e-9: {u.get('matches_talib_1e-9')})."
            )
            text.append(
                md_table(
                    ("kernel", "core_rs.batch s", "talib loop s", "speedup"),
                    [
                        [r["kernel"], r["batch_s"], r["talib_loop_s"], f"{r['speedup']}x"]
                        for r in u["batch"]
                    ],
                )
            )
        if u["skipped"]:
            text.append(f"Not built yet, skipped: {', '.join(u['skipped'])}.")
        parts.append("\n\n".join(text))
    inc = result.get("incremental")
    if inc:
        rows = [
            [
                c["case"],
                c["columns"],
                c["update_ms"],
                c["update_ms_p90"],
                c["update_out_ms"],
                c["peek_ms"],
                c["us_per_symbol"],
            ]
            for c in inc["cases"]
        ]
        text = [
            "## Incremental: BundleSet.update, one closed bar per symbol per call",
            md_table(
                (
                    "bundle",
                    "columns",
                    "update ms (median)",
                    "p90 ms",
                    "with out= ms",
                    "peek ms",
                    "µs/symbol",
                ),
                rows,
            ),
        ]
        if inc["default_missing"]:
            text.append(f"Default members not built yet: {', '.join(inc['default_missing'])}.")
        if inc["single_updates"]:
            text.append(
                "One update from Python: "
                + ", ".join(
                    f"`{r['class']}` {r['ns_per_update']} ns" for r in inc["single_updates"]
                )
                + " per call (loop overhead included)."
            )
        parts.append("\n\n".join(text))
    parts.append(f"Total {result['seconds']} s.")
    return "\n\n".join(parts)


def measure(quick: bool = False, only: Sequence[str] = (), quiet_s: float = 0.0) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    wanted = set(only)
    sections = [s for s in SECTIONS if s in wanted]
    kernels = wanted - set(SECTIONS)
    unknown = kernels - set(KERNELS)
    if unknown:
        raise SystemExit(f"unknown kernel(s) {sorted(unknown)}; known: {sorted(KERNELS)}")
    if not sections:
        sections = ["single"] if kernels else list(SECTIONS)
    started = time.monotonic()
    result: dict[str, Any] = {"name": "indicators", "quick": quick, "only": sorted(wanted)}
    if quiet_s:
        result["busy_cores_before"] = wait_quiet(quiet_s)
    result["machine"] = machine_info()
    result["talib_version"] = talib.__version__
    if "single" in sections:
        result["single"] = single(sizes, common_kernels(kernels))
    if "universe" in sections:
        result["universe"] = universe(sizes, kernels)
    if "incremental" in sections:
        result["incremental"] = incremental(sizes, kernels)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def results_name(result: dict[str, Any]) -> str:
    if result.get("quick"):
        return "indicators-quick"
    return "indicators-partial" if result.get("only") else "indicators"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="NAME", help="sections and/or kernels"
    )
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    args = parser.parse_args(argv)
    result = measure(quick=args.quick, only=args.only, quiet_s=args.wait_quiet)
    json_path, md_path = write_results(results_name(result), result, markdown(result))
    print(md_table(("benchmark", "case", "result", "goal", ""), summary_rows(result)))
    print(f"\n{json_path}\n{md_path}")
    return result


if __name__ == "__main__":
    main()
