"""`make bench`: the pricing benchmarks in one go, with a summary.

Runs bench.ingest (in-process ingest), bench.publish_ticks (PublishTicks over
gRPC into a server process), when present bench.fanout (StreamQuotes
fan-out), bench.indicators (core_rs indicator kernels against TA-Lib),
bench.signals (the signals service's regrade, tick-to-event and screen goals)
bench.portfolio (realized gains on a 1M-transaction ledger, RecordTransaction
under ghz, ImportTransactions) and bench.backtest (one 87,600-bar backtest
against backtesting.py, a 1,000-combination sweep),
each writing its own bench/results/<name>.json and .md, then prints
a summary table and writes bench/results/bench.json and bench.md.

    .venv/bin/python -m bench.run [--skip NAME ...] [--fanout-args "..."]
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
import traceback
from typing import Any

from bench import ingest, publish_ticks
from bench.common import fmt_rate, machine_info, machine_line, md_table, verdict, write_results

# A shorter fan-out run than its own default keeps `make bench` under ~3 min.
FANOUT_ARGS = "--subscribers 0 1000 --duration 10 --warmup 2"


def _run_fanout(argv: list[str]) -> dict[str, Any] | None:
    try:
        fanout = importlib.import_module("bench.fanout")
    except ModuleNotFoundError:
        return None
    try:
        return fanout.main(argv)
    except SystemExit as exc:  # its options changed: run it as it is by default
        print(f"bench.fanout rejected {argv} ({exc}); running its defaults", file=sys.stderr)
        return fanout.main([])


def _ingest_summary(result: dict[str, Any]) -> list[list[object]]:
    rows = []
    for r in result["results"]:
        if r["case"] == "mapped":
            continue
        goal = "" if r["case"] == "engine" else verdict(ingest._meets(r))
        rate = fmt_rate(r["ticks_per_s"]) + " ticks/s"
        if r["case"] == "feed":
            rate = f"kept up with 300k ticks/s: {r['kept_up']} (CPU {r['cpu_share'] * 100:.0f}%)"
        rows.append(
            [
                "ingest",
                f"{ingest.TEXT[r['case']]}, batch {r['batch']:,}",
                rate,
                "≥ 300k ticks/s" if goal else "",
                goal,
            ]
        )
    return rows


def _publish_summary(result: dict[str, Any]) -> list[list[object]]:
    return [
        [
            "PublishTicks",
            f"{r['streams']} streams × {r['ticks_per_call']:,} ticks per call "
            f"({r.get('commits', '?')} commits)",
            f"{fmt_rate(r['ticks_per_s'])} ticks/s, call p99 {r['call_ms_p99']} ms",
            "≥ 100k ticks/s",
            verdict(r["ticks_per_s"] >= publish_ticks.GOAL_TICKS_PER_S),
        ]
        for r in result["results"]
    ]


def _fanout_summary(result: dict[str, Any]) -> list[list[object]]:
    rows = []
    for run in result.get("runs", []):
        subscribers = run.get("subscribers", "?")
        qps = run.get("quotes_per_second")
        lag = run.get("lag_ms", {})
        checks = run.get("verdict") or {}
        flags = [v for v in checks.values() if isinstance(v, bool)]
        ok = all(flags) if flags else None
        if subscribers:
            result_text = (f"{fmt_rate(qps)} quotes/s" if qps is not None else "") + (
                f", lag p99 {lag.get('p99', float('nan')):.0f} ms" if lag else ""
            )
        else:
            cores = (run.get("server_cpu_cores") or {}).get("total")
            result_text = "feed alone" + (f": server CPU {cores:.2f} cores" if cores else "")
        rows.append(
            [
                "StreamQuotes fan-out",
                f"{subscribers} subscribers",
                result_text,
                "≥ 500k quotes/s, lag < 250 ms" if subscribers else "",
                "" if ok is None else verdict(bool(ok)),
            ]
        )
    return rows


def _indicators() -> Any:
    """bench.indicators, imported when used (it needs core_rs and talib)."""
    return importlib.import_module("bench.indicators")


def _signals() -> Any:
    """bench.signals, imported when used (it needs core_rs)."""
    return importlib.import_module("bench.signals")


def _portfolio() -> Any:
    """bench.portfolio, imported when used (it needs core_rs)."""
    return importlib.import_module("bench.portfolio")


def _backtest() -> Any:
    """bench.backtest, imported when used (it needs core_rs and backtesting)."""
    return importlib.import_module("bench.backtest")


HEADERS = ("benchmark", "case", "result", "goal", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=[
            "ingest",
            "publish_ticks",
            "fanout",
            "indicators",
            "signals",
            "portfolio",
            "backtest",
        ],
    )
    parser.add_argument("--fanout-args", default=FANOUT_ARGS)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each measurement wait up to S seconds for the machine to go idle",
    )
    args = parser.parse_args()
    started = time.monotonic()
    machine = machine_info()
    sections: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    failures: dict[str, str] = {}
    steps = {
        "ingest": lambda: ingest.measure(quiet_s=args.wait_quiet),
        "publish_ticks": lambda: publish_ticks.measure(quiet_s=args.wait_quiet),
        "fanout": lambda: _run_fanout(
            shlex.split(args.fanout_args)
            + (["--wait-quiet", str(args.wait_quiet)] if args.wait_quiet else [])
        ),
        "indicators": lambda: _indicators().measure(quiet_s=args.wait_quiet),
        "signals": lambda: _signals().measure(_signals().BENCH_PLAN, quiet_s=args.wait_quiet),
        "portfolio": lambda: _portfolio().measure(quiet_s=args.wait_quiet),
        "backtest": lambda: _backtest().measure(),
    }
    for name, step in steps.items():
        if name in args.skip:
            continue
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            result = step()
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            failures[name] = repr(exc)
            continue
        finally:
            seconds[name] = round(time.monotonic() - t0, 1)
        if result is None:
            continue  # bench.fanout not there (yet)
        sections[name] = result
        if name == "ingest":
            write_results("ingest", result, ingest.markdown(result))
        elif name == "publish_ticks":
            write_results("publish_ticks", result, publish_ticks.markdown(result))
        elif name == "indicators":
            write_results("indicators", result, _indicators().markdown(result))
        elif name == "signals":
            write_results("signals", result, _signals().markdown(result))
        elif name == "portfolio":
            write_results("portfolio", result, _portfolio().markdown(result))
        elif name == "backtest":
            write_results("backtest", result, _backtest().markdown(result))
        # bench.fanout writes its own files.

    rows: list[list[object]] = []
    if "ingest" in sections:
        rows += _ingest_summary(sections["ingest"])
    if "publish_ticks" in sections:
        rows += _publish_summary(sections["publish_ticks"])
    if "fanout" in sections:
        rows += _fanout_summary(sections["fanout"])
    if "indicators" in sections:
        rows += _indicators().summary_rows(sections["indicators"])
    if "signals" in sections:
        rows += _signals().summary_rows(sections["signals"])
    if "portfolio" in sections:
        rows += _portfolio().summary_rows(sections["portfolio"])
    if "backtest" in sections:
        rows += _backtest().summary_rows(sections["backtest"])
    table = md_table(HEADERS, rows)
    total = round(time.monotonic() - started, 1)
    print(table)
    print(f"\nbench: {total} s ({', '.join(f'{k} {v} s' for k, v in seconds.items())})")
    for name, error in failures.items():
        print(f"bench: {name} FAILED: {error}", file=sys.stderr)

    details = [f"See {name}.md for the full table." for name in sections if name != "fanout"] + (
        ["See fanout.md (written by bench.fanout)."] if "fanout" in sections else []
    )
    markdown = "\n\n".join(
        [
            "# Benchmarks (`make bench`)",
            machine_line(machine),
            md_table(HEADERS, rows),
            " ".join(details)
            + f" Total {total} s."
            + (f" Failed: {', '.join(failures)}." if failures else ""),
        ]
    )
    write_results(
        "bench",
        {
            "name": "bench",
            "machine": machine,
            "seconds": seconds,
            "total_seconds": total,
            "failures": failures,
            "summary": [
                dict(zip(("benchmark", "case", "result", "goal", "verdict"), r, strict=True))
                for r in rows
            ],
            "results": sections,
        },
        markdown,
    )
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
