"""`make loadtest`: ghz against a pricing server running in its own process.

The server is `python -m services.pricing` as deployed: simulator feed at its
default rate, default universe and log level, a backfill of 7 days (so a
100-candle 1h page is full) and 1 day of minute candles. ghz finds the methods
through the server's reflection service; no proto files are involved.

Runs (JSON output of ghz, parsed):

* GetQuote {"symbol":"BTC-USD"}: 50 concurrent calls over 5 connections, 10 s;
* GetCandles {"symbol":"BTC-USD","interval":"INTERVAL_1H","limit":100}: same;
* GetQuote at a fixed 1,000 req/s, 10 s: p99.

Goals: GetQuote >= 3,000 req/s from one server process; p99 <= 10 ms at
1,000 req/s. When the GetQuote goal is missed (or with --compare always),
three more GetQuote saturation runs show what the per-call layers cost: the
server with log level warning (no per-call log line), then also without the
interceptor's separate initial-metadata send on unary calls, and with no
interceptors at all.

Then SignalsService.GetSignal (goal >= 2,000 req/s from one process): a
`python -m services.signals` process following a pricing process whose 6,000
tokens got SIGNALS_WARM_HOURS of fast-forward history (bench.signals), GetSignal
for BTC-USD and round-robin over every symbol (a JSON array data file), at the
default log level and at warning. `--signals-only` runs just these and merges
them into the existing results; `--profile-signals PATH` profiles them.

    .venv/bin/python -m bench.loadtest --ghz bin/ghz [--seconds 10] [--compare auto]
        [--skip-signals | --signals-only | --profile-signals PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

import services  # noqa: F401  (puts the generated stubs on sys.path)
from bench.common import (
    RESULTS_DIR,
    ServerProcess,
    machine_busy_seconds,
    machine_info,
    machine_line,
    md_table,
    pricing_server,
    thread_cpu_seconds,
    thread_cpu_split,
    verdict,
    wait_quiet,
    write_results,
)
from marketmesh.v1 import pricing_pb2_grpc, signals_pb2_grpc

SERVICE = "marketmesh.v1.PricingService"
GOAL_QUOTE_RPS = 3_000
GOAL_P99_MS = 10.0
FIXED_RPS = 1_000
CONCURRENCY = 50
CONNECTIONS = 5
# Idle server (simulator feed, persister) plus a little else.
QUIET_CORES = 0.45
SERVER_ENV = {
    "MM_FEED": "simulator",
    "MM_BACKFILL_DAYS": "7",
    "MM_BACKFILL_FINE_DAYS": "1",
}
QUOTE = '{"symbol":"BTC-USD"}'
CANDLES = '{"symbol":"BTC-USD","interval":"INTERVAL_1H","limit":100}'


@dataclass(frozen=True)
class Run:
    name: str
    method: str
    data: str
    rps: int = 0  # 0: as fast as the concurrency allows
    service: str = SERVICE
    # A JSON array of requests that ghz sends round-robin, instead of data.
    data_file: str = ""


RUNS = (
    Run("GetQuote, 50 concurrent", "GetQuote", QUOTE),
    Run("GetCandles 1h×100, 50 concurrent", "GetCandles", CANDLES),
    Run(f"GetQuote at {FIXED_RPS:,} req/s", "GetQuote", QUOTE, rps=FIXED_RPS),
)


class Ghz:
    def __init__(self, binary: str, target: str) -> None:
        self.binary = binary
        self.target = target
        # services/common/reflection.py answers ghz's method-symbol lookup,
        # so no proto files or protoset are needed; a failure here is a bug.
        self.reflection_note = "ghz used server reflection directly"

    def _command(self, run: Run, seconds: float) -> list[str]:
        command = [
            self.binary,
            "--insecure",
            "--call",
            f"{run.service}.{run.method}",
            *(["--data-file", run.data_file] if run.data_file else ["--data", run.data]),
            "--concurrency",
            str(CONCURRENCY),
            "--connections",
            str(CONNECTIONS),
            "--duration",
            f"{seconds:g}s",
            "--format",
            "json",
            # Let calls in flight at the end finish instead of counting them as errors.
            "--duration-stop",
            "wait",
        ]
        if run.rps:
            command += ["--rps", str(run.rps)]
        return [*command, self.target]

    def run(self, run: Run, seconds: float) -> dict[str, Any]:
        out = subprocess.run(
            self._command(run, seconds),
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError(f"ghz failed ({out.returncode}): {out.stderr.strip()}")
        return json.loads(out.stdout)


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The figures that matter from ghz's JSON report (its times are ns)."""
    percentiles = {
        int(p["percentage"]): p["latency"] / 1e6 for p in report.get("latencyDistribution") or []
    }
    statuses = report.get("statusCodeDistribution") or {}
    return {
        "count": report.get("count", 0),
        "seconds": round(report.get("total", 0) / 1e9, 3),
        "rps": round(report.get("rps", 0.0), 1),
        "mean_ms": round(report.get("average", 0) / 1e6, 3),
        "p50_ms": round(percentiles.get(50, float("nan")), 3),
        "p90_ms": round(percentiles.get(90, float("nan")), 3),
        "p99_ms": round(percentiles.get(99, float("nan")), 3),
        "slowest_ms": round(report.get("slowest", 0) / 1e6, 3),
        "status_codes": statuses,
        "errors": report.get("errorDistribution") or {},
        "ok": int(statuses.get("OK", 0)),
    }


def _measure_run(ghz: Ghz, server: ServerProcess, run: Run, seconds: float) -> dict[str, Any]:
    threads0 = thread_cpu_seconds(server.pid)
    cpu0 = server.cpu_seconds()
    ghz0 = _children_cpu_seconds()
    busy0, own0 = machine_busy_seconds(), time.process_time()
    wall0 = time.perf_counter()
    row = {"run": run.name, "method": run.method, "target_rps": run.rps}
    row |= summarize(ghz.run(run, seconds))
    wall = time.perf_counter() - wall0
    # ghz shares the machine with the server: how much of it ghz took.
    ghz_cpu = _children_cpu_seconds() - ghz0
    row["ghz_cpu_share"] = round(ghz_cpu / wall, 3)
    server_cpu = server.cpu_seconds() - cpu0
    # Everything else the machine did meanwhile (other people's work): cores.
    others = machine_busy_seconds() - busy0 - server_cpu - ghz_cpu
    others -= time.process_time() - own0
    row["other_load_cores"] = round(max(others, 0.0) / wall, 2)
    row["server_cpu_share"] = round(server_cpu / wall, 3)
    row["server_threads"] = thread_cpu_split(server.pid, threads0, thread_cpu_seconds(server.pid))
    # Server CPU per call: the throughput one fully busy core could give.
    row["server_cpu_ms_per_call"] = round(server_cpu / max(row["count"], 1) * 1000, 3)
    return row


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _session(
    ghz_binary: str,
    runs: tuple[Run, ...],
    seconds: float,
    *,
    quiet_s: float = 0.0,
    **server_options: Any,
) -> tuple[list[dict[str, Any]], str, float]:
    with pricing_server(SERVER_ENV | server_options.pop("env", {}), **server_options) as server:
        ghz = Ghz(ghz_binary, server.target)
        ghz.run(runs[0], 2.0)  # warm-up: connections, caches, reflection
        rows = []
        for run in runs:
            busy = None
            if quiet_s:
                # The server's own feed and simulator are part of what is seen.
                busy = wait_quiet(quiet_s, max_busy_cores=QUIET_CORES)
            rows.append(_measure_run(ghz, server, run, seconds) | {"busy_cores_before": busy})
        return rows, ghz.reflection_note, server.startup_s


def measure(
    ghz_binary: str, seconds: float = 10.0, *, compare: str = "auto", quiet_s: float = 0.0
) -> dict[str, Any]:
    """compare: "always", "never", or "auto" (when the GetQuote goal is missed);
    quiet_s: wait up to this long for an idle machine before each run."""
    machine = machine_info()
    rows, note, startup_s = _session(ghz_binary, RUNS, seconds, quiet_s=quiet_s)
    comparisons: list[dict[str, Any]] = []
    if compare == "always" or (compare == "auto" and rows[0]["rps"] < GOAL_QUOTE_RPS):
        saturate = RUNS[:1]
        for label, options in (
            ("log level warning (no per-call log line)", {"env": {"MM_LOG_LEVEL": "warning"}}),
            (
                "log level warning, interceptor without the unary initial-metadata send",
                {"env": {"MM_LOG_LEVEL": "warning"}, "interceptors": "no-unary-header"},
            ),
            (
                "no interceptors, log level warning",
                {"env": {"MM_LOG_LEVEL": "warning"}, "interceptors": "none"},
            ),
        ):
            more, _, _ = _session(ghz_binary, saturate, seconds, quiet_s=quiet_s, **options)
            comparisons += [{"server": label, **row} for row in more]
    quote, _, fixed = rows
    return {
        "name": "loadtest",
        "machine": machine,
        "setup": {
            "server": "python -m services.pricing (separate process), default log level",
            "server_env": SERVER_ENV,
            "server_startup_s": round(startup_s, 2),
            "ghz": ghz_binary,
            "ghz_version": _ghz_version(ghz_binary),
            "concurrency": CONCURRENCY,
            "connections": CONNECTIONS,
            "seconds_per_run": seconds,
            "reflection": note,
        },
        "goals": {"get_quote_rps": GOAL_QUOTE_RPS, "p99_ms_at_1000_rps": GOAL_P99_MS},
        "results": rows,
        "comparisons": comparisons,
        "goal_met": {
            "get_quote_rps": quote["rps"] >= GOAL_QUOTE_RPS and not quote["errors"],
            "p99_ms_at_1000_rps": fixed["p99_ms"] <= GOAL_P99_MS
            and fixed["rps"] >= 0.95 * FIXED_RPS
            and not fixed["errors"],
        },
    }


# ----- signals: GetSignal --------------------------------------------------------------

SIGNALS_SERVICE = "marketmesh.v1.SignalsService"
GOAL_SIGNAL_RPS = 2_000
# Hours of fast-forward history every token gets before the runs (enough for
# full grades; bench.signals uses 240 for the latency figures).
SIGNALS_WARM_HOURS = 72
SIGNALS_SERVERS = (
    ("default log level", {}),
    ("MM_LOG_LEVEL=warning", {"MM_LOG_LEVEL": "warning"}),
)


def _signal_runs(data_file: Path) -> tuple[Run, ...]:
    return (
        Run(
            "GetSignal BTC-USD, 50 concurrent",
            "GetSignal",
            '{"symbol":"BTC-USD"}',
            service=SIGNALS_SERVICE,
        ),
        Run(
            "GetSignal round-robin over all 6,000 symbols, 50 concurrent",
            "GetSignal",
            "",
            service=SIGNALS_SERVICE,
            data_file=str(data_file),
        ),
    )


async def _signals_market(pricing_target: str) -> list[str]:
    """The 6,000-token market's history published into pricing; its symbols."""
    from bench import signals as sigbench  # noqa: PLC0415  (core_rs, numpy: only here)

    async with grpc.aio.insecure_channel(pricing_target) as channel:
        stub = pricing_pb2_grpc.PricingServiceStub(channel)
        symbols = await sigbench._list_symbols(stub)
        market = sigbench.build_market(symbols, SIGNALS_WARM_HOURS, n_flippers=50)
        today = int(time.time() * 1000) // sigbench.DAY_MS * sigbench.DAY_MS
        start = today - (SIGNALS_WARM_HOURS // 24 + 1) * sigbench.DAY_MS
        await sigbench.publish_history(stub, market, start, SIGNALS_WARM_HOURS)
        return symbols, start + SIGNALS_WARM_HOURS * sigbench.HOUR_MS


async def _signals_graded(target: str, symbols: list[str], until_ms: int) -> None:
    from bench import signals as sigbench  # noqa: PLC0415

    async with grpc.aio.insecure_channel(target) as channel:
        stub = signals_pb2_grpc.SignalsServiceStub(channel)
        await sigbench.wait_graded(stub, symbols, until_ms, 300.0)


def measure_signals(
    ghz_binary: str,
    seconds: float = 10.0,
    *,
    quiet_s: float = 0.0,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """GetSignal saturation runs against `python -m services.signals` (its own
    process) following a pricing process whose 6,000 tokens have
    SIGNALS_WARM_HOURS of history: once per entry of SIGNALS_SERVERS (only
    the first, under cProfile, with profile_to)."""
    from bench import signals as sigbench  # noqa: PLC0415

    machine = machine_info()
    rows: list[dict[str, Any]] = []
    startup: dict[str, float] = {}
    idle: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="mm-loadtest-") as tmp,
        pricing_server(sigbench.PRICING_ENV) as pricing,
    ):
        symbols, until_ms = asyncio.run(_signals_market(pricing.target))
        data_file = Path(tmp) / "symbols.json"
        data_file.write_text(json.dumps([{"symbol": s} for s in symbols]))
        runs = _signal_runs(data_file)
        servers = SIGNALS_SERVERS[:1] if profile_to else SIGNALS_SERVERS
        for label, env in servers:
            with sigbench.signals_process(pricing.target, env, profile_to=profile_to) as server:
                asyncio.run(_signals_graded(server.target, symbols, until_ms))
                # Pricing persists the history's candles for a while after
                # PublishTicks returned: measure on a machine without that.
                idle[label] = asyncio.run(sigbench.wait_idle([pricing.pid, server.pid], 180.0))
                startup[label] = round(server.startup_s, 2)
                ghz = Ghz(ghz_binary, server.target)
                ghz.run(runs[0], 2.0)  # warm-up: connections, caches, reflection
                for run in runs:
                    busy = wait_quiet(quiet_s, max_busy_cores=0.3) if quiet_s else None
                    row = _measure_run(ghz, server, run, seconds)
                    rows.append(row | {"server": label, "busy_cores_before": busy})
    return {
        "machine": machine,
        "setup": {
            "server": "python -m services.signals (separate process), MM_SIGNALS_INTERVALS=1h, "
            "following python -m services.pricing (MM_FEED=none, 6,000 tokens, "
            f"{SIGNALS_WARM_HOURS} h of fast-forward history published by bench.signals)",
            "server_startup_s": startup,
            "warm_hours": SIGNALS_WARM_HOURS,
            # Cores pricing + signals still used just before the runs.
            "servers_cores_before": idle,
        },
        "goal_rps": GOAL_SIGNAL_RPS,
        "results": rows,
        "goal_met": all(
            r["rps"] >= GOAL_SIGNAL_RPS and not r["errors"]
            for r in rows
            if r["server"] == SIGNALS_SERVERS[0][0]
        ),
    }


def _ghz_version(binary: str) -> str:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return (out.stdout or out.stderr).strip()


HEADERS = (
    "run",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "server CPU (loop / other)",
    "server CPU ms/call",
    "ghz CPU",
    "other load",
    "goal",
)


def _goal_text(row: dict[str, Any]) -> str:
    if row["target_rps"]:
        return f"p99 ≤ {GOAL_P99_MS:g} ms: {verdict(row['p99_ms'] <= GOAL_P99_MS)}"
    if row["method"] == "GetQuote":
        return f"≥ {GOAL_QUOTE_RPS:,} req/s: {verdict(row['rps'] >= GOAL_QUOTE_RPS)}"
    if row["method"] == "GetSignal":
        return f"≥ {GOAL_SIGNAL_RPS:,} req/s: {verdict(row['rps'] >= GOAL_SIGNAL_RPS)}"
    return ""


def _row(row: dict[str, Any], name: str) -> list[object]:
    threads = row["server_threads"]
    total = threads["main_thread_cpu_s"] + threads["busiest_other_thread_cpu_s"]
    total += threads["remaining_threads_cpu_s"]
    loop_share = threads["main_thread_cpu_s"] / total if total else 0.0
    cpu = row["server_cpu_share"] * 100
    return [
        name,
        f"{row['rps']:,.0f}",
        row["p50_ms"],
        row["p99_ms"],
        sum(row["errors"].values()) if row["errors"] else 0,
        f"{cpu:.0f}% ({cpu * loop_share:.0f}% / {cpu * (1 - loop_share):.0f}%)",
        row["server_cpu_ms_per_call"],
        f"{row['ghz_cpu_share'] * 100:.0f}%",
        f"{row['other_load_cores']:.2f} cores",
        _goal_text(row),
    ]


def table_rows(result: dict[str, Any]) -> list[list[object]]:
    out = [_row(r, r["run"]) for r in result["results"]]
    out += [_row(r, f"{r['run']}; {r['server']}") for r in result["comparisons"]]
    return out


def signals_table_rows(result: dict[str, Any]) -> list[list[object]]:
    return [_row(r, f"{r['run']}; {r['server']}") for r in result.get("results", [])]


def markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    return "\n\n".join(
        [  # noqa: RUF005
            "# Load test (ghz)",
            machine_line(result["machine"]),
            f"Server: {setup['server']}, env {setup['server_env']}. ghz "
            f"{setup['ghz_version'] or ''}: {setup['concurrency']} concurrent calls over "
            f"{setup['connections']} connections, {setup['seconds_per_run']:g} s per run; "
            f"{setup['reflection']}. Server CPU is the share of one core the server process "
            "used (event-loop thread / other threads); ghz ran on the same machine; "
            "'other load' is what the rest of the machine (other work) used meanwhile, "
            "in cores.",
            md_table(HEADERS, table_rows(result)),
        ]
        + _signals_markdown(result.get("signals"))
    )


def _signals_markdown(signals: dict[str, Any] | None) -> list[str]:
    if not signals:
        return []
    if "error" in signals:
        return ["## SignalsService.GetSignal", f"Failed: {signals['error']}"]
    return [
        "## SignalsService.GetSignal",
        machine_line(signals["machine"]) if "machine" in signals else "",
        f"Server: {signals['setup']['server']}; start-up {signals['setup']['server_startup_s']} s; "
        "runs start once pricing and signals are idle (cores they used just before: "
        f"{signals['setup'].get('servers_cores_before')}). "
        "Same ghz settings; the round-robin run sends a JSON array of one request per "
        "symbol (ghz cycles through it). Goal ≥ "
        f"{GOAL_SIGNAL_RPS:,} req/s from one process at the default log level.",
        md_table(HEADERS, signals_table_rows(signals)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ghz", default="bin/ghz", help="path to the ghz binary")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--compare",
        choices=["auto", "always", "never"],
        default="auto",
        help="GetQuote runs against lighter per-call layers (auto: when its goal is missed)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each run wait up to S seconds for the rest of the machine to go idle",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="only the GetQuote saturation run, server under cProfile (event-loop thread CPU); "
        "prints the top entries, writes no results",
    )
    parser.add_argument("--skip-signals", action="store_true", help="pricing's runs only")
    parser.add_argument(
        "--signals-only",
        action="store_true",
        help="only the GetSignal runs, merged into the existing loadtest results",
    )
    parser.add_argument(
        "--profile-signals",
        type=Path,
        help="only the GetSignal runs, signals under cProfile (event-loop thread CPU); "
        "prints the top entries, writes no results",
    )
    args = parser.parse_args()
    binary = shutil.which(args.ghz) or args.ghz
    if not Path(binary).is_file():
        sys.exit(f"ghz not found at {args.ghz}: run `make tools` (or pass --ghz PATH)")
    if args.profile:
        rows, _, _ = _session(binary, RUNS[:1], args.seconds, profile_to=args.profile)
        print(md_table(HEADERS, [_row(r, r["run"] + " (profiled)") for r in rows]))
        stats = pstats.Stats(str(args.profile))
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        return
    if args.profile_signals:
        signals = measure_signals(binary, args.seconds, profile_to=args.profile_signals)
        print(md_table(HEADERS, [_row(r, r["run"] + " (profiled)") for r in signals["results"]]))
        stats = pstats.Stats(str(args.profile_signals))
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        return
    result: dict[str, Any] = {"signals": {}}
    if not args.signals_only:
        result = measure(binary, args.seconds, compare=args.compare, quiet_s=args.wait_quiet)
    if not args.skip_signals:
        try:
            result["signals"] = measure_signals(binary, args.seconds, quiet_s=args.wait_quiet)
        except Exception as exc:  # pricing's figures stand on their own
            traceback.print_exc()
            result["signals"] = {"error": repr(exc)}
    if args.signals_only:
        _merge_signals(result["signals"])
        return
    print(md_table(HEADERS, table_rows(result) + signals_table_rows(result.get("signals", {}))))
    write_results("loadtest", result, markdown(result))


def _merge_signals(signals: dict[str, Any]) -> None:
    """Replaces the signals section of bench/results/loadtest.* (pricing's
    runs there stay as they were measured)."""
    path = RESULTS_DIR / "loadtest.json"
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        result = None
    print(md_table(HEADERS, signals_table_rows(signals)))
    if not result or "setup" not in result:
        write_results(
            "loadtest",
            {"name": "loadtest", "signals": signals},
            "\n\n".join(["# Load test (ghz)", *_signals_markdown(signals)]),
        )
        return
    result["signals"] = signals
    write_results("loadtest", result, markdown(result))


if __name__ == "__main__":
    main()
