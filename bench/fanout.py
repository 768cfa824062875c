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

    .venv/bin/python -m bench.fanout                      # 0, 100, 1000 subscribers
    .venv/bin/python -m bench.fanout --subscribers 1000 --duration 10 --no-write
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
GOAL_QUOTES_PER_S = 500_000
GOAL_LAG_MS = 250.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


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
    subscribers: int, client: Path, data_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    address = f"127.0.0.1:{port}"
    log_path = data_dir / f"server-{subscribers}.log"
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
        connections = max(1, min(args.connections, subscribers))
        profiler = start_profiler(proc.pid, subscribers, args)
        run = subprocess.run(
            [
                str(client),
                f"-target={address}",
                f"-subscribers={subscribers}",
                f"-connections={connections}",
                f"-warmup={args.warmup}s",
                f"-duration={args.duration}s",
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
    pid: int, subscribers: int, args: argparse.Namespace
) -> subprocess.Popen[bytes] | None:
    """py-spy over the server's steady window (approximately: from after the
    snapshots plus warm-up), as collapsed stacks for later aggregation."""
    if not args.py_spy or not subscribers:
        return None
    out = args.profile_dir / f"fanout-{subscribers}.collapsed"
    out.parent.mkdir(parents=True, exist_ok=True)
    delay = args.warmup + 2.0 + subscribers / 500
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
        "every_subscriber_under_lag_goal": run["subscriber_max_lag_ms"]["max"] < GOAL_LAG_MS,
    }


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [
        "# StreamQuotes fan-out",
        "",
        f"Measured {result['measured_at']} on {result['machine']['cpus']} CPUs "
        f"({result['machine']['platform']}), server and client on the same box. "
        f"Universe {cfg['universe']} assets, simulator {cfg['ticks_per_second']:,} ticks/s, "
        f"batches every {cfg['batch_ms']} ms, {cfg['duration_s']} s steady window after "
        f"{cfg['warmup_s']} s warm-up. Goal: >= {GOAL_QUOTES_PER_S:,} quote updates/s in total "
        f"with 1,000 subscribers, every subscriber < {GOAL_LAG_MS:.0f} ms behind.",
        "",
        "Lag = receive time - time of the newest quote in the message (includes up to one "
        "simulator step, 50 ms, between that tick and the batch cut). Spread = receive time - "
        "first receipt of the same batch by any subscriber.",
        "",
        "| subscribers | quotes/s | msgs/s | MB/s | quotes/msg | lag p50 / p99 / max ms "
        "| worst subscriber max lag ms | spread p50 / p99 ms | msgs/s per sub (min / p50) "
        "| conflated | server CPU (main / total cores) | client CPU cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        lag, spread = run["lag_ms"], run["fanout_spread_ms"]
        per_sub = run["subscriber_messages_per_second"]
        cpu = run["server_cpu_cores"]
        quotes_per_message = run["quotes_per_message"]
        lines.append(
            f"| {run['subscribers']:,} | {run['quotes_per_second']:,.0f} "
            f"| {run['messages_per_second']:,.0f} | {run['megabytes_per_second']:,.1f} "
            f"| {quotes_per_message:,.0f} "
            f"| {lag['p50']:.0f} / {lag['p99']:.0f} / {lag['max']:.0f} "
            f"| {run['subscriber_max_lag_ms']['max']:.0f} "
            f"| {spread['p50']:.0f} / {spread['p99']:.0f} "
            f"| {per_sub.get('max', 0) and min(per_sub['p50'], per_sub['max']):.1f} "
            f"| {run['conflated_messages']:,} "
            f"| {cpu.get('main', 0):.2f} / {cpu.get('total', 0):.2f} "
            f"| {run['client_cpu_cores']:.2f} |"
        )
    lines.append("")
    for run in result["runs"]:
        if run["subscribers"] and run.get("verdict"):
            v = run["verdict"]
            lines.append(
                f"- {run['subscribers']:,} subscribers: throughput goal "
                f"{'met' if v['quotes_per_second_met'] else 'NOT met'}, lag goal "
                f"{'met' if v['every_subscriber_under_lag_goal'] else 'NOT met'}; "
                f"{run['failed']} failed calls, {run['violation_count']} contract violations."
            )
    lines.append("")
    lines.append(
        "Server CPU by thread (cores): "
        + "; ".join(
            f"{r['subscribers']} subs: "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["server_cpu_cores"].items())
            for r in result["runs"]
        )
    )
    notes = result.get("notes")
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    p.add_argument(
        "--subscribers",
        type=int,
        nargs="+",
        default=[0, 100, 1000],
        help="subscriber counts, one scenario each (0 = feed cost alone)",
    )
    p.add_argument("--connections", type=int, default=8, help="HTTP/2 connections per scenario")
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
        for count in args.subscribers:
            busy_before = None
            if args.wait_quiet:
                busy_before = wait_quiet(args.quiet_cores, args.wait_quiet)
            print(f"fanout: {count} subscribers ...", file=sys.stderr, flush=True)
            run = run_scenario(count, client, data_dir, args)
            run["machine_busy_cores_before"] = busy_before
            if count:
                run["verdict"] = verdict(run)
            runs.append(run)
            print(
                f"fanout: {count} subscribers: {run['quotes_per_second']:,.0f} quotes/s, "
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
            "connections": args.connections,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "server_root": str(args.server_root),
        },
        "goal": {
            "subscribers": 1000,
            "quotes_per_second": GOAL_QUOTES_PER_S,
            "lag_ms": GOAL_LAG_MS,
        },
        "runs": runs,
        "notes": args.notes,
    }
    if not args.no_write:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "fanout.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS_DIR / "fanout.md").write_text(markdown(result))
    return result


if __name__ == "__main__":
    main()
