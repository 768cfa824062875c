"""core_rs.batch: one kernel over many series on the fork-safe pool.

Generic over the registry (every kernel is checked against its
single-series function, bitwise), plus the input forms, the errors,
MM_CORE_THREADS and fork safety (os.fork and a multiprocessing 'fork' pool
after the pool has started in the parent)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import core_rs
from core_rs._kernels import KERNELS, call, ordered
from tests.core_rs.indicator_data import ohlcv

FORK_TIMEOUT_S = 60.0


def field_data(names: list[str], n: int, seed: int) -> list[np.ndarray]:
    """One series per kernel input: bar fields by name, the close for
    ``real`` and any other input name, hourly times for ``timestamp``,
    whole numbers 2..21 for ``periods``."""
    bars = ohlcv(n, seed)
    bars["real"] = bars["close"]
    bars["real0"] = bars["close"]
    bars["real1"] = bars["open"]
    bars["timestamp"] = 1.7e12 + 3.6e6 * np.arange(n)
    bars["periods"] = (np.arange(n) % 20 + 2).astype(np.float64)  # MAVP's periods
    return [bars.get(name, bars["close"]) for name in names]


def many(name: str, n_series: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """Per kernel input, a 2-D array (series x time)."""
    rows = [field_data(KERNELS[name]["inputs"], n, seed + i) for i in range(n_series)]
    return [np.stack([r[k] for r in rows]) for k in range(len(KERNELS[name]["inputs"]))]


def as_tuple(out: object) -> tuple[np.ndarray, ...]:
    return out if isinstance(out, tuple) else (out,)


def assert_same(a: np.ndarray, b: np.ndarray, what: str = "") -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: {a.shape} != {b.shape}"
    assert np.array_equal(a.view(np.int64), b.view(np.int64)), what


def single(name: str, inputs: list[np.ndarray], **params: float) -> tuple[np.ndarray, ...]:
    values = ordered(name, {**{p["name"]: p["default"] for p in KERNELS[name]["params"]}, **params})
    return as_tuple(call(name, inputs, values))


# ------------------------------------------------------------- equality


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_kernel_equals_its_single_series_function_row_by_row(name: str) -> None:
    inputs = many(name, 5, 300, seed=len(name))
    inputs[0][2, 40] = np.nan  # a gap in one series
    try:
        want = [single(name, [x[i] for x in inputs]) for i in range(5)]
    except ValueError:
        with pytest.raises(ValueError):
            core_rs.batch(name, *inputs)
        return
    got = as_tuple(core_rs.batch(name, *inputs))
    assert len(got) == len(KERNELS[name]["outputs"])
    for k, out in enumerate(got):
        assert out.shape == (5, 300)
        assert out.dtype == np.float64
        for i in range(5):
            assert_same(out[i], want[i][k], f"{name} output {k} series {i}")


def test_params_by_keyword() -> None:
    c = many("sma", 3, 100)[0]
    assert_same(core_rs.batch("sma", c, timeperiod=7), np.stack([core_rs.sma(r, 7) for r in c]))
    assert_same(core_rs.batch("ema", c, timeperiod=3), np.stack([core_rs.ema(r, 3) for r in c]))
    assert_same(core_rs.batch("sma", c), np.stack([core_rs.sma(r) for r in c]))
    h, lo, cl = many("atr", 3, 100)
    assert_same(
        core_rs.batch("atr", h, lo, cl, timeperiod=5),
        np.stack([core_rs.atr(h[i], lo[i], cl[i], timeperiod=5) for i in range(3)]),
    )


def test_multi_output_kernels_return_tuples() -> None:
    multi = [n for n, k in KERNELS.items() if len(k["outputs"]) > 1]
    assert {"macd", "bbands", "stoch"} <= set(multi)
    for name in multi:
        out = core_rs.batch(name, *many(name, 2, 80))
        assert isinstance(out, tuple) and len(out) == len(KERNELS[name]["outputs"])


# ------------------------------------------------------------- input forms


def test_list_of_ragged_arrays_is_right_aligned() -> None:
    lengths = [50, 0, 1, 29, 30, 31, 49]
    series = [ohlcv(n, i) for i, n in enumerate(lengths)]
    out = core_rs.batch("sma", [s["close"] for s in series], timeperiod=30)
    assert out.shape == (len(lengths), 50)
    for i, s in enumerate(series):
        n = len(s["close"])
        assert np.isnan(out[i, : 50 - n]).all()
        assert_same(out[i, 50 - n :], core_rs.sma(s["close"], 30), f"series {i}")
    # Several inputs, each a list; tuples work as lists.
    h, lo, c = ([s[f] for s in series] for f in ("high", "low", "close"))
    atr = core_rs.batch("atr", tuple(h), lo, c, timeperiod=3)
    for i, s in enumerate(series):
        n = len(s["close"])
        assert_same(atr[i, 50 - n :], core_rs.atr(s["high"], s["low"], s["close"], 3))


def test_list_and_matrix_inputs_agree() -> None:
    h, lo, c = many("atr", 4, 60)
    want = core_rs.batch("atr", h, lo, c)
    assert_same(core_rs.batch("atr", list(h), lo, list(c)), want)


def test_non_contiguous_and_int_inputs() -> None:
    (c,) = many("ema", 4, 120)
    want = core_rs.batch("ema", c, timeperiod=10)
    strided = np.repeat(c, 3, axis=1)[:, ::3]
    assert not strided.flags.c_contiguous
    assert_same(core_rs.batch("ema", strided, timeperiod=10), want)
    fortran = np.asfortranarray(c)
    assert_same(core_rs.batch("ema", fortran, timeperiod=10), want)
    assert_same(core_rs.batch("ema", c[::-1], timeperiod=10), want[::-1])
    rows = [np.repeat(r, 2)[::2] for r in c]  # non-contiguous 1-D rows
    assert_same(core_rs.batch("ema", rows, timeperiod=10), want)
    ints = (np.arange(4 * 60).reshape(4, 60) % 17 + 100).astype(np.int64)
    assert_same(
        core_rs.batch("sma", ints, timeperiod=5), core_rs.batch("sma", ints * 1.0, timeperiod=5)
    )
    assert_same(
        core_rs.batch("sma", ints.astype(np.int32), timeperiod=5),
        core_rs.batch("sma", ints.astype(np.float64), timeperiod=5),
    )
    f32 = c.astype(np.float32)
    assert_same(core_rs.batch("sma", f32), core_rs.batch("sma", f32.astype(np.float64)))
    nested = [list(r) for r in c]  # plain Python lists
    assert_same(core_rs.batch("ema", nested, timeperiod=10), want)


def test_edge_shapes() -> None:
    assert core_rs.batch("sma", np.empty((0, 10))).shape == (0, 0)
    assert core_rs.batch("sma", np.empty((3, 0))).shape == (3, 0)
    assert core_rs.batch("sma", []).shape == (0, 0)
    short = core_rs.batch("sma", np.ones((2, 5)), timeperiod=30)
    assert short.shape == (2, 5) and np.isnan(short).all()


# ------------------------------------------------------------- errors


def test_mismatched_shapes_raise() -> None:
    h, lo, c = many("atr", 3, 40)
    with pytest.raises(ValueError, match="low has 2 series but high has 3"):
        core_rs.batch("atr", h, lo[:2], c)
    with pytest.raises(ValueError, match="series 1: close has 39 values but high has 40"):
        core_rs.batch("atr", list(h), list(lo), [c[0], c[1][:-1], c[2]])
    with pytest.raises(ValueError, match="2-D"):
        core_rs.batch("sma", c[0])
    with pytest.raises(ValueError, match="2-D"):
        core_rs.batch("sma", c[None])
    with pytest.raises(ValueError, match="takes 3 input arrays"):
        core_rs.batch("atr", h, lo)
    with pytest.raises(ValueError, match="real numbers"):
        core_rs.batch("sma", np.array([["a", "b"]]))
    with pytest.raises(ValueError):
        core_rs.batch("sma", [np.ones((2, 2))])


def test_bad_names_and_params_raise() -> None:
    c = np.ones((2, 40))
    with pytest.raises(ValueError, match="no indicator named 'nope'"):
        core_rs.batch("nope", c)
    with pytest.raises(ValueError, match="no parameter 'period'"):
        core_rs.batch("sma", c, period=3)
    with pytest.raises(ValueError, match="timeperiod"):
        core_rs.batch("sma", c, timeperiod=0)
    with pytest.raises(ValueError, match="timeperiod"):
        core_rs.batch("sma", c, timeperiod=2.5)
    with pytest.raises(ValueError, match="timeperiod must be a number"):
        core_rs.batch("sma", c, timeperiod="x")


# ------------------------------------------------------------- threads


def test_releases_the_gil_and_runs_from_many_threads() -> None:
    (c,) = many("ema", 16, 20_000)
    want = core_rs.batch("ema", c)
    results: list[np.ndarray] = []
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    def work() -> None:
        for _ in range(3):
            results.append(core_rs.batch("ema", c))

    counter = threading.Thread(target=count)
    counter.start()
    workers = [threading.Thread(target=work) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    counter.join()
    assert len(results) == 9
    for r in results:
        assert_same(r, want)
    assert ticks > 100


def run_pythons(code: str, envs: list[dict[str, str]]) -> list[str]:
    """Runs ``code`` once per environment, all at once; their outputs."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env in envs
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    return outs


# Prints the pool size, the number of core_rs worker threads that exist and
# a digest of a result.
_THREADS_CODE = """
import os, time, numpy as np, core_rs
x = np.random.default_rng(0).random((16, 5000)) + 1
out = core_rs.batch("sma", x, timeperiod=10)
tasks = f"/proc/{os.getpid()}/task"
# A worker names itself when it first runs, which can lag its creation.
for _ in range(200):
    comm = [open(f"{tasks}/{t}/comm").read().strip() for t in os.listdir(tasks)]
    named = sum(c.startswith("core_rs-") for c in comm)
    if named == core_rs.batch_threads():
        break
    time.sleep(0.01)
print(core_rs.batch_threads(), named, float(np.nansum(out)).hex())
"""


def test_mm_core_threads_is_respected_in_a_subprocess() -> None:
    settings = ["3", "1", "0", "junk", ""]
    three, one, *defaults = (
        out.split()
        for out in run_pythons(_THREADS_CODE, [{"MM_CORE_THREADS": v} for v in settings])
    )
    assert three[:2] == ["3", "3"]
    assert one[:2] == ["1", "1"]
    assert three[2] == one[2]  # the same values whatever the threads
    for default in defaults:  # not a positive integer: one thread per core
        assert int(default[0]) >= 1
        assert default[2] == one[2]


# ------------------------------------------------------------- fork


def _fixture() -> tuple[np.ndarray, np.ndarray]:
    (c,) = many("ema", 32, 5_000, seed=3)
    return c, core_rs.batch("ema", c, timeperiod=20)


def _wait(pid: int, timeout_s: float = FORK_TIMEOUT_S) -> int:
    """The child's exit status; a child still running after the timeout
    is killed and the test fails (a hang in the child is the bug)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"forked child {pid} hung for {timeout_s:.0f} s in core_rs.batch")


def _child_checks(c: np.ndarray, want: np.ndarray, depth: int) -> int:
    """Runs in a forked child: batch must work and be right; the child may
    fork again. Returns the exit code."""
    got = core_rs.batch("ema", c, timeperiod=20)
    if not np.array_equal(got, want, equal_nan=True):
        return 3
    if core_rs.batch_threads() < 1:
        return 4
    if depth > 0:
        pid = os.fork()
        if pid == 0:
            os._exit(_child_checks(c, want, depth - 1))
        deadline = time.monotonic() + FORK_TIMEOUT_S
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        return 5
    return 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_batch_works_in_a_forked_child() -> None:
    c, want = _fixture()
    # The pool exists (and its threads run) in the parent before the fork.
    assert_same(core_rs.batch("ema", c, timeperiod=20), want)
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = _child_checks(c, want, depth=1)
        finally:
            os._exit(code)
    assert _wait(pid) == 0
    # The parent's pool still works after the fork.
    assert_same(core_rs.batch("ema", c, timeperiod=20), want)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_during_a_batch_call_in_another_thread() -> None:
    """A fork while the pool is busy in the parent: the child still works."""
    c, want = _fixture()
    big = np.repeat(c, 8, axis=0)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            core_rs.batch("ema", big, timeperiod=20)

    t = threading.Thread(target=busy)
    t.start()
    try:
        time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child_checks(c, want, depth=0)
            finally:
                os._exit(code)
        assert _wait(pid) == 0
    finally:
        stop.set()
        t.join()


def _pool_task(seed: int) -> tuple[int, bytes]:
    (c,) = many("ema", 8, 2_000, seed=seed)
    out = core_rs.batch("ema", c, timeperiod=10)
    return os.getpid(), out.tobytes()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_multiprocessing_fork_pool() -> None:
    _fixture()  # the pool exists in the parent
    want = {seed: _pool_task(seed)[1] for seed in range(6)}
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        result = pool.map_async(_pool_task, range(6))
        got = result.get(timeout=FORK_TIMEOUT_S)  # a hang raises TimeoutError
    assert {pid for pid, _ in got} - {os.getpid()}, "ran in the workers"
    for seed, (_, data) in enumerate(got):
        assert data == want[seed]
