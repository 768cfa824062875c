"""Shared benchmark plumbing: a pricing server in its own process, the facts
about the machine a figure was measured on, and the result files.

The server runs as `python -m services.pricing` on a free port with a
throw-away data directory, exactly as deployed, so client and server never
share a GIL and the figures include the real start-up configuration.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
# A short backfill keeps start-up to seconds. (Deeper history makes each
# commit dearer: bench.ingest --history-days shows by how much.)
SHORT_BACKFILL = {"MM_BACKFILL_DAYS": "2", "MM_BACKFILL_FINE_DAYS": "1"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields after the command name start at "state" (field 3): utime is 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


# cProfile on thread CPU time: the event loop's waits in epoll cost nothing,
# so the profile shows where its CPU goes.
# A service under cProfile (argv: stats path, module): CPU time of the
# event-loop thread only.
_PROFILED_SERVER = """
import cProfile, runpy, sys, time
out, module = sys.argv[1], sys.argv[2]
sys.argv = [module]
profile = cProfile.Profile(time.thread_time)
profile.enable()
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profile.disable()
    profile.dump_stats(out)
"""


def service_command(module: str, profile_to: Path | None = None) -> list[str]:
    """The python arguments that run `module` (under cProfile when profile_to)."""
    if profile_to is None:
        return ["-m", module]
    return ["-c", _PROFILED_SERVER, str(profile_to), module]


def children_cpu_seconds() -> float:
    """CPU seconds used by this process's finished children (ghz runs, say)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user/nice
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def wait_quiet(timeout_s: float, *, max_busy_cores: float = 0.3) -> float:
    """Wait (up to timeout_s) until the machine is nearly idle: other work on
    a 2-core box skews every wall-clock figure. Returns the busy cores last seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        t0, busy0 = time.monotonic(), machine_busy_seconds()
        time.sleep(2.0)
        busy = (machine_busy_seconds() - busy0) / (time.monotonic() - t0)
        if busy <= max_busy_cores or time.monotonic() >= deadline:
            return round(busy, 2)


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds per thread of a process, by thread id (the main thread's is pid)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return out


def thread_cpu_split(
    pid: int, before: dict[int, float], after: dict[int, float]
) -> dict[str, float]:
    """Where a process's CPU went between two readings: its main thread (the
    event loop), its busiest other thread, and the rest."""
    delta = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    main = delta.pop(pid, 0.0)
    busiest = max(delta.values(), default=0.0)
    return {
        "main_thread_cpu_s": round(main, 3),
        "busiest_other_thread_cpu_s": round(busiest, 3),
        "remaining_threads_cpu_s": round(sum(delta.values()) - busiest, 3),
    }


# The same server with another interceptor stack: what the request-id / log /
# metrics / error-mapping layer costs per call, by comparison. argv[1] is
# "none" (no interceptors) or "no-unary-header" (the stack without the
# separate initial-metadata send on unary calls).
_VARIANT_SERVER = """
import sys
import services.common.server as common_server
import services.pricing.server as pricing_server
from services.common.interceptors import default_interceptors
variant = sys.argv[1]
sys.argv = sys.argv[:1]
start = common_server.start_server
async def start_variant(**kwargs):
    if variant == "none":
        kwargs["interceptors"] = []
    else:
        kwargs["interceptors"] = default_interceptors(kwargs["service"], unary_header=False)
    return await start(**kwargs)
pricing_server.start_server = start_variant
sys.exit(pricing_server.main())
"""


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    startup_s: float

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_serving(target: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"pricing server exited with status {process.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass  # not bound yet
            time.sleep(0.1)
    raise RuntimeError(f"pricing server not SERVING after {timeout_s:.0f} s")


def _stop(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextmanager
def pricing_server(
    env: Mapping[str, str] | None = None,
    *,
    startup_timeout_s: float = 180.0,
    profile_to: Path | None = None,
    interceptors: str = "default",
    repo: Path = REPO,
) -> Iterator[ServerProcess]:
    """Start `python -m services.pricing` on a free port with a temporary data
    directory, wait for health SERVING, and stop it (SIGTERM) afterwards.

    `env` overrides the defaults here (feed none, short backfill, no metrics
    port, JSON logs to a file); the log's tail is printed if start-up fails.
    `profile_to` runs the server under cProfile and writes the stats there
    when it stops: CPU time of the event-loop thread only (the store's writer
    thread and grpc's threads are not in it). `interceptors` "none" starts it
    without the common interceptor stack, "no-unary-header" with the stack
    but no separate initial metadata on unary calls. `repo` runs another checkout's
    services package (before/after comparisons)."""
    with tempfile.TemporaryDirectory(prefix="mm-bench-") as tmp:
        tmp_dir = Path(tmp)
        port = free_port()
        full_env = {
            **os.environ,
            "MM_PRICING_ADDR": f"127.0.0.1:{port}",
            "MM_DATA_DIR": str(tmp_dir / "var"),
            "MM_PRICING_METRICS_PORT": "0",
            "MM_LOG_FORMAT": "json",
            "MM_FEED": "none",
            **SHORT_BACKFILL,
            **(env or {}),
        }
        command = service_command("services.pricing", profile_to)
        if profile_to is None and interceptors != "default":
            command = ["-c", _VARIANT_SERVER, interceptors]
        with server_process(
            command, full_env, port, tmp_dir, startup_timeout_s, cwd=repo
        ) as server:
            yield server


@contextmanager
def server_process(
    command: list[str],
    env: Mapping[str, str],
    port: int,
    tmp_dir: Path,
    startup_timeout_s: float,
    *,
    cwd: Path = REPO,
) -> Iterator[ServerProcess]:
    """`python <command>` with `env`, its log in tmp_dir/server.log, until
    health on `port` is SERVING (the log's tail is printed if it never is);
    stopped with SIGTERM afterwards."""
    log_path = tmp_dir / "server.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *command], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = ServerProcess(process, port, tmp_dir / "var", log_path, 0.0)
    try:
        try:
            _wait_serving(server.target, process, startup_timeout_s)
        except RuntimeError:
            print(server.log_tail(), file=sys.stderr)
            raise
        server.startup_s = time.monotonic() - started
        yield server
    finally:
        _stop(process)


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Where and on what a result was measured."""
    import numpy as np  # noqa: PLC0415  (only here, to report its version)

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "numpy": np.__version__,
        # Other work on the machine skews wall-clock figures: say how busy it was.
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted changes are part of what was measured.
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def machine_line(machine: Mapping[str, Any]) -> str:
    dirty = " (with uncommitted changes)" if machine.get("git_dirty") else ""
    return (
        f"{machine['date']} · {machine['nproc']} × {machine['cpu_model']} · "
        f"Python {machine['python']}, grpcio {machine['grpcio']} · "
        f"commit {str(machine['git_commit'])[:12]}{dirty} · "
        f"load average {machine['loadavg_1m']} at start"
    )


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def write_results(name: str, payload: Mapping[str, Any], markdown: str) -> tuple[Path, Path]:
    """bench/results/<name>.json and <name>.md."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{name}.json"
    md_path = RESULTS_DIR / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path
