"""A throwaway PostgreSQL cluster for tests: initdb into a temp directory, a
free loopback port, fsync off, stopped and deleted at the end.

Uses the newest server under /usr/lib/postgresql/*/bin; installs the distro's
``postgresql`` package first when none is there and we are root. When it
cannot, the PostgreSQL cases fail (the issue asks for both databases):
set MM_TEST_SKIP_POSTGRES=1 to skip them on purpose instead.
As root, initdb and postgres refuse to run, so both run as the ``postgres``
user (``runuser``) in a directory it owns: pytest's tmp_path sits under a
root-only directory, so the cluster lives in a fresh directory of its own
under the system temp dir instead of ``tmp_dir`` (``tmp_dir`` is used when not root).

Password authentication over TCP (scram), so URLs carry a password just as a
deployment's do; the local socket trusts the superuser for set-up.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

USER = "marketmesh"
PASSWORD = "mm-test-secret"
DATABASE = "marketmesh"
_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def find_bin_dir() -> Path | None:
    """The bin directory of the newest installed PostgreSQL with initdb and pg_ctl."""
    found = [
        path
        for path in Path("/").glob(_BIN_GLOB.lstrip("/"))
        if (path / "initdb").exists() and (path / "pg_ctl").exists()
    ]
    if not found:
        return None

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    return max(found, key=version)


def _unavailable(reason: str) -> NoReturn:
    # Missing PostgreSQL is a failure, not a silent skip: half the storage
    # tests would stop running unnoticed. Opting out is explicit.
    if os.environ.get("MM_TEST_SKIP_POSTGRES", "").strip() in ("1", "true", "yes"):
        pytest.skip(reason + " (MM_TEST_SKIP_POSTGRES is set)")
    pytest.fail(reason + "; install PostgreSQL, or set MM_TEST_SKIP_POSTGRES=1 to skip these")


def _install() -> Path:
    if os.geteuid() != 0:
        _unavailable("PostgreSQL is not installed and installing it needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            _unavailable(f"cannot install PostgreSQL ({' '.join(command)}): {done.stderr[-500:]}")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable("apt-get installed postgresql but no initdb under " + _BIN_GLOB)
    return bin_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    """Start a cluster; (``postgresql://marketmesh:...@127.0.0.1:PORT/marketmesh``, stop)."""
    bin_dir = find_bin_dir() or _install()
    as_root = os.geteuid() == 0
    if as_root:
        base = Path(tempfile.mkdtemp(prefix="mm-postgres-"))
        shutil.chown(base, "postgres", "postgres")
    else:
        base = Path(tmp_dir) / "postgres"
        base.mkdir(parents=True)

    def run(args: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, check=False, **kwargs
        )  # type: ignore[call-overload]

    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    pwfile = base / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if as_root:
        shutil.chown(pwfile, "postgres", "postgres")
    for directory in (sockets,):
        directory.mkdir()
        if as_root:
            shutil.chown(directory, "postgres", "postgres")

    def fail(step: str, done: subprocess.CompletedProcess[str]) -> None:
        tail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL {step} failed: {done.stdout}{done.stderr}\n{tail}")

    done = run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    if done.returncode != 0:
        fail("initdb", done)
    port = free_port()
    options = " ".join(
        [
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={sockets}",
            # Durability is not under test here; speed is.
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c max_connections=200",
        ]
    )
    done = run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    if done.returncode != 0:
        fail("start", done)

    def stop() -> None:
        if not data.exists():
            return
        run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)

    # A run that dies before its fixture teardown still stops the server
    # (short of SIGKILL, which leaves a /tmp/mm-postgres-* to delete by hand).
    atexit.register(stop)

    done = run(
        [
            str(bin_dir / "psql"),
            "-h",
            str(sockets),
            "-p",
            str(port),
            "-U",
            USER,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"CREATE DATABASE {DATABASE}",
        ]
    )
    if done.returncode != 0:
        with contextlib.suppress(Exception):
            stop()
        fail("CREATE DATABASE", done)
    return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}", stop
