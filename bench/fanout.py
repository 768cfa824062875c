"""StreamQuotes fan-out benchmark: many unfiltered subscribers, one pricing server.

Goal (from the issue): 1,000 subscribers to a 500-asset universe that updates
~10 times a second; >= 500k quote updates/s delivered in total and every
subscriber less than 250 ms behind.

Method: the pricing server runs as a subprocess (`python -m services.pricing`)
with the simulator feed fast enough that nearly every asset changes in every
100 ms batch. The subscribers are one Go process (bench/fanout_client) that
spreads the calls over several HTTP/2 connections and only skims the frames it
receives (sequence, flags, per-quote sequence and time), so the client costs
the shared two cores as little as possible and the figure measures the server.
Each scenario gets a fresh server process (same data directory, so history is
backfilled once); a 0-subscriber scenario shows what the feed and simulator
cost on their own. Server CPU comes from /proc, sampled every 0.25 s and
interpolated to the client's steady window, split into the Python main thread
(event loop, GIL) and gRPC's C-core threads.

    .venv/bin/python -m bench.fanout          # 0, 100, 1000 (8 conns), 1000x1000 (1 conn each)
    .venv/bin/python -m bench.fanout --subscribers 1000 --duration 10 --no-write
    .venv/bin/python -m bench.fanout --server-root /path/to/other/checkout --no-write  # A/B
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIR = ROOT / "bench" / "fanout_client"
RESULTS_DIR = ROOT / "bench" / "results"
GOAL_SUBSCRIBERS = 1000
GOAL_QUOTES_PER_S = 500_000
GOAL_LAG_MS = 250.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scenario:
    subscribers: int
    connections: int | None = None  # None: --connections

    @classmethod
    def parse(cls, text: str) -> Scenario:
        """'1000' or '1000x1000' (subscribers x HTTP/2 connections)."""
        count, _, conns = text.partition("x")
        try:
            scenario = cls(int(count), int(conns) if conns else None)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected N or NxC, got {text!r}") from None
        if scenario.subscribers < 0 or (
            scenario.connections is not None and scenario.connections < 1
        ):
            raise argparse.ArgumentTypeError(f"expected N >= 0 and C >= 1, got {text!r}")
        return scenario

    def __str__(self) -> str:
        return (
            f"{self.subscribers}x{self.connections}" if self.connections else str(self.subscribers)
        )


# -- server process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, port: int, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MM_DATA_DIR=str(data_dir),
        MM_PRICING_ADDR=f"127.0.0.1:{port}",
        MM_PRICING_METRICS_PORT="0",
        MM_UNIVERSE_SIZE=str(args.universe),
        MM_BACKFILL_DAYS="2",
        MM_BACKFILL_FINE_DAYS="1",
        MM_SIM_TICKS_PER_SECOND=str(args.ticks_per_second),
        MM_STREAM_BATCH_MS=str(args.batch_ms),
        MM_LOG_LEVEL="warning",
        MM_LOG_FORMAT="json",
    )
    return env


def wait_serving(address: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"pricing server exited with {proc.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"pricing at {address} not SERVING after {timeout_s:.0f} s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- CPU sampling ---------------------------------------------------------------------


def _thread_ticks(pid: int) -> dict[str, int]:
    """CPU ticks (user + system) per thread group: 'main' is the Python thread."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        key = "main" if int(task.name) == pid else name
        out[key] = out.get(key, 0) + ticks
    return out


def _machine_busy_ticks() -> int:
    """CPU ticks every process on the machine spent busy (not idle or iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


@dataclass
class CpuSampler:
    """Samples a process's per-thread CPU every `period` seconds in a thread."""

    pid: int
    period: float = 0.25
    samples: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ticks = _thread_ticks(self.pid)
                ticks["@machine"] = _machine_busy_ticks()
                self.samples.append((time.time_ns(), ticks))
            except OSError:
                return
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def cores_between(self, start_ns: int, end_ns: int) -> dict[str, float]:
        """Cores used per thread group over [start_ns, end_ns] (nearest samples inside)."""
        inside = [s for s in self.samples if start_ns <= s[0] <= end_ns]
        if len(inside) < 2:
            return {}
        (t0, a), (t1, b) = inside[0], inside[-1]
        seconds = (t1 - t0) / 1e9
        cores = {k: round((b.get(k, 0) - a.get(k, 0)) / CLK_TCK / seconds, 3) for k in b}
        machine = cores.pop("@machine")
        cores = {k: v for k, v in cores.items() if v > 0 or k == "main"}
        cores["total"] = round(sum(v for k, v in cores.items()), 3)
        cores = dict(sorted(cores.items(), key=lambda kv: -kv[1]))
        # Everything busy on the box, server and client included: other load
        # on a shared machine shows up as machine - server - client.
        cores["@machine"] = machine
        return cores


# -- client -----------------------------------------------------------------------------


def build_client(out_dir: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the fan-out client needs Go (https://go.dev) on PATH")
    binary = out_dir / "fanout_client"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=CLIENT_DIR, check=True)
    return binary


def wait_quiet(max_busy_cores: float, timeout_s: float) -> float:
    """Wait until the rest of the machine is nearly idle (other sessions'
    benchmarks and tests share it); returns the busy cores last seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        t0, b0 = time.monotonic(), _machine_busy_ticks()
        time.sleep(3.0)
        busy = (_machine_busy_ticks() - b0) / CLK_TCK / (time.monotonic() - t0)
        if busy <= max_busy_cores or time.monotonic() >= deadline:
            return round(busy, 3)


def run_scenario(
    scenario: Scenario, client: Path, data_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    subscribers = scenario.subscribers
    port = free_port()
    address = f"127.0.0.1:{port}"
    log_path = data_dir / f"server-{scenario}.log"
    with log_path.open("wb") as log:
        launcher = ["-m", "services.pricing"]
        if args.server_launcher:
            launcher = [str(args.server_launcher)]
        proc = subprocess.Popen(
            [sys.executable, *launcher],
            cwd=args.server_root,
            env=server_env(data_dir, port, args),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sampler = CpuSampler(proc.pid)
    try:
        wait_serving(address, args.start_timeout, proc)
        time.sleep(1.0)  # let the feed settle past start-up
        sampler.start()
        connections = max(1, min(scenario.connections or args.connections, subscribers))
        profiler = start_profiler(proc.pid, scenario, args)
        run = subprocess.run(
            [
                str(client),
                f"-target={address}",
                f"-subscribers={subscribers}",
                f"-connections={connections}",
                f"-warmup={args.warmup}s",
                f"-duration={args.duration}s",
                f"-parse-every={args.parse_every}",
            ],
            capture_output=True,
            check=False,
            text=True,
            timeout=args.duration + args.warmup + 180,
        )
        if run.returncode != 0:
            raise RuntimeError(f"fanout_client failed: {run.stderr.strip()}")
        result: dict[str, Any] = json.loads(run.stdout)
        sampler.stop()
        cores = sampler.cores_between(result["window_start_unix_ns"], result["window_end_unix_ns"])
        machine = cores.pop("@machine", 0.0)
        result["server_cpu_cores"] = cores
        result["machine_busy_cores"] = machine
        result["other_load_cores"] = round(
            max(0.0, machine - cores.get("total", 0.0) - result["client_cpu_cores"]), 3
        )
        if profiler is not None:
            profiler.wait(timeout=60)
        if run.stderr.strip():
            result["client_stderr"] = run.stderr.strip()[-2000:]
        return result
    finally:
        sampler.stop()
        stop_process(proc)


def start_profiler(
    pid: int, scenario: Scenario, args: argparse.Namespace
) -> subprocess.Popen[bytes] | None:
    """py-spy over the server's steady window (approximately: from after the
    snapshots plus warm-up), as collapsed stacks for later aggregation."""
    if not args.py_spy or not scenario.subscribers:
        return None
    out = args.profile_dir / f"fanout-{scenario}.collapsed"
    out.parent.mkdir(parents=True, exist_ok=True)
    delay = args.warmup + 2.0 + scenario.subscribers / 500
    cmd = (
        f"sleep {delay}; exec {args.py_spy} record --pid {pid} --duration {int(args.duration) - 2}"
        f" --rate 200 --format raw --nonblocking --output {out}"
    )
    return subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- report ------------------------------------------------------------------------------


def verdict(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "quotes_per_second_goal": GOAL_QUOTES_PER_S,
        "quotes_per_second_met": run["quotes_per_second"] >= GOAL_QUOTES_PER_S,
        "lag_goal_ms": GOAL_LAG_MS,
        "every_subscriber_under_lag_goal": (
            run["failed"] == 0 and run["subscriber_max_lag_ms"]["max"] < GOAL_LAG_MS
        ),
    }


def label(run: dict[str, Any]) -> str:
    if not run["subscribers"]:
        return "0 (feed alone)"
    return f"{run['subscribers']:,} x {run['connections']:,}"


def per_message_us(run: dict[str, Any], key: str) -> float | None:
    """Server CPU (one thread group, or 'total') per delivered message, in µs."""
    messages = run["messages_per_second"]
    return round(run["server_cpu_cores"].get(key, 0.0) / messages * 1e6, 1) if messages else None


# Everything from this line on in fanout.md is kept when the table is rewritten.
ANALYSIS_MARKER = "<!-- analysis: kept when bench.fanout rewrites the table above -->"


def markdown(result: dict[str, Any], kept: str = "") -> str:
    cfg = result["config"]
    lines = [
        "# StreamQuotes fan-out",
        "",
        f"Measured {result['measured_at']} on {result['machine']['cpus']} CPUs "
        f"({result['machine']['platform']}), server and client on the same box. "
        f"Universe {cfg['universe']} assets, simulator {cfg['ticks_per_second']:,} ticks/s, "
        f"batches every {cfg['batch_ms']} ms, {cfg['duration_s']:g} s steady window after "
        f"{cfg['warmup_s']:g} s warm-up. Goal: >= {GOAL_QUOTES_PER_S:,} quote updates/s in "
        f"total with 1,000 subscribers, every subscriber < {GOAL_LAG_MS:.0f} ms behind.",
        "",
        "Lag = receive time - time of the newest quote in the message (so it includes up to "
        "one 50 ms simulator step between that tick and the batch cut). Spread = receive "
        "time - first receipt of the same batch by any subscriber. CPU in cores (1.0 = one "
        "core busy); `main` is the server's event-loop thread, which holds the GIL.",
        "",
        "| subscribers x connections | quotes/s | msgs/s | MB/s | quotes/msg "
        "| lag p50 / p99 / max ms | worst subscriber's max lag ms | spread p50 / p99 ms "
        "| msgs/s per subscriber min / p50 | conflated msgs | server CPU main / total "
        "| server main µs/msg | client CPU | rest of machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        lag, spread = run["lag_ms"], run["fanout_spread_ms"]
        per_sub = run["subscriber_messages_per_second"]
        cpu = run["server_cpu_cores"]
        us = per_message_us(run, "main")
        lines.append(
            f"| {label(run)} "
            f"| {run['quotes_per_second']:,.0f} "
            f"| {run['messages_per_second']:,.0f} | {run['megabytes_per_second']:,.1f} "
            f"| {run['quotes_per_message']:,.0f} "
            f"| {lag['p50']:.0f} / {lag['p99']:.0f} / {lag['max']:.0f} "
            f"| {run['subscriber_max_lag_ms']['max']:.0f} "
            f"| {spread['p50']:.0f} / {spread['p99']:.0f} "
            f"| {per_sub['min']:.1f} / {per_sub['p50']:.1f} "
            f"| {run['conflated_messages']:,} "
            f"| {cpu.get('main', 0):.2f} / {cpu.get('total', 0):.2f} "
            f"| {'-' if us is None else f'{us:.0f}'} "
            f"| {run['client_cpu_cores']:.2f} | {run['other_load_cores']:.2f} |"
        )
    lines.append("")
    for run in result["runs"]:
        if not run["subscribers"]:
            continue
        v = run.get("verdict")
        goals = (
            f"throughput goal {'met' if v['quotes_per_second_met'] else 'NOT met'}, "
            f"lag goal {'met' if v['every_subscriber_under_lag_goal'] else 'NOT met'}; "
            if v
            else ""
        )
        lines.append(
            f"- {run['subscribers']:,} subscribers over {run['connections']:,} connections: "
            f"{goals}{run['failed']} failed calls, {run['violation_count']} contract violations "
            f"(checked by {run['parsing_subscribers']} quote-reading subscribers)."
        )
    lines += ["", "Server CPU by thread (cores):", ""]
    for run in result["runs"]:
        threads = ", ".join(f"{k} {v:.2f}" for k, v in run["server_cpu_cores"].items())
        lines.append(f"- {label(run)}: {threads}")
    notes = result.get("notes")
    if notes:
        lines += ["", notes]
    text = "\n".join(lines) + "\n"
    if kept:
        text += "\n" + kept
    return text


def write_results(result: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "fanout.json").write_text(json.dumps(result, indent=2) + "\n")
    md = RESULTS_DIR / "fanout.md"
    kept = ""
    if md.exists():
        old = md.read_text()
        if ANALYSIS_MARKER in old:
            kept = old[old.index(ANALYSIS_MARKER) :]
    md.write_text(markdown(result, kept))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    p.add_argument(
        "--subscribers",
        type=Scenario.parse,
        nargs="+",
        default=[Scenario(0), Scenario(100), Scenario(1000), Scenario(1000, 1000)],
        help="scenarios, N subscribers or NxC (over C connections); 0 = feed cost alone",
    )
    p.add_argument("--connections", type=int, default=8, help="HTTP/2 connections per scenario")
    p.add_argument(
        "--parse-every",
        type=int,
        default=10,
        help="every Nth subscriber reads each quote; the others only count them",
    )
    p.add_argument("--universe", type=int, default=500)
    # The simulator spreads a fifth of its ticks round-robin: 25k ticks/s cycles
    # through 500 assets every 100 ms, so nearly every asset is in every batch.
    p.add_argument("--ticks-per-second", type=int, default=25_000)
    p.add_argument("--batch-ms", type=int, default=100)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--start-timeout", type=float, default=180.0)
    p.add_argument("--data-dir", type=Path, help="reuse this data directory (default: a temp dir)")
    p.add_argument("--no-write", action="store_true", help="do not write bench/results/fanout.*")
    p.add_argument("--notes", default="", help="free text appended to fanout.md")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for an idle machine before each scenario",
    )
    p.add_argument("--quiet-cores", type=float, default=0.25, help="what counts as idle")
    p.add_argument(
        "--server-root",
        type=Path,
        default=ROOT,
        help="run the server from this checkout (A/B runs of two versions)",
    )
    p.add_argument(
        "--server-launcher",
        type=Path,
        help="a Python script that runs the server instead of -m services.pricing (profilers)",
    )
    p.add_argument("--py-spy", help="path to py-spy: profile the server during each window")
    p.add_argument("--profile-dir", type=Path, default=Path("/tmp/mm-fanout-profiles"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mm-fanout-") as tmp:
        client = build_client(Path(tmp))
        data_dir = args.data_dir or Path(tmp) / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        runs = []
        for scenario in args.subscribers:
            busy_before = None
            if args.wait_quiet:
                busy_before = wait_quiet(args.quiet_cores, args.wait_quiet)
            print(f"fanout: {scenario} subscribers ...", file=sys.stderr, flush=True)
            run = run_scenario(scenario, client, data_dir, args)
            run["machine_busy_cores_before"] = busy_before
            run["server_main_us_per_message"] = per_message_us(run, "main")
            run["server_total_us_per_message"] = per_message_us(run, "total")
            if scenario.subscribers >= GOAL_SUBSCRIBERS:
                run["verdict"] = verdict(run)
            runs.append(run)
            print(
                f"fanout: {scenario} subscribers: {run['quotes_per_second']:,.0f} quotes/s, "
                f"lag p99 {run['lag_ms']['p99']:.0f} ms, max {run['lag_ms']['max']:.0f} ms, "
                f"server CPU {run['server_cpu_cores'].get('total', 0):.2f} cores",
                file=sys.stderr,
                flush=True,
            )
    result: dict[str, Any] = {
        "benchmark": "fanout",
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
        },
        "config": {
            "universe": args.universe,
            "ticks_per_second": args.ticks_per_second,
            "batch_ms": args.batch_ms,
            "default_connections": args.connections,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "parse_every": args.parse_every,
            "server_root": str(args.server_root),
        },
        "goal": {
            "subscribers": GOAL_SUBSCRIBERS,
            "quotes_per_second": GOAL_QUOTES_PER_S,
            "lag_ms": GOAL_LAG_MS,
        },
        "runs": runs,
        "notes": args.notes,
    }
    if not args.no_write:
        write_results(result)
    return result


if __name__ == "__main__":
    main()
