"""Many series at once: ``core_rs.batch("rsi", closes, timeperiod=14)``.

Each input is a 2-D array (series x time) or a list of 1-D arrays of
different lengths. The kernel runs on every series on all cores with the GIL
released (``MM_CORE_THREADS`` caps the threads). Results are 2-D arrays of
shape (series, longest length); a shorter series is right-aligned, its row
starting with NaN, so ``out[:, -1]`` is every series' latest value.

Threads: the batch functions (and ``core_rs.bundle.run``) share one pool of
worker threads per process, built on first use with ``MM_CORE_THREADS``
threads if that is a positive integer, else one per available core; the
variable is read when the pool is built, so set it before the first call.
Calls from several Python threads are safe and share the pool.

Fork safety: a forked child (``os.fork``, ``multiprocessing`` with the
'fork' start method, gunicorn-style pre-fork servers) inherits the parent's
pool bookkeeping but none of its threads. The pool remembers the pid that
built it; the first batch call in a child sees another pid, abandons the
inherited pool without touching it (its memory is leaked, never joined) and
builds a fresh one, so the child never waits on threads that do not exist.
This holds however deep the forks nest and even when the parent was inside a
batch call on another thread at the moment of the fork. 'spawn' and
'forkserver' children simply build their own pool.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from core_rs import _core
from core_rs._kernels import bind, ordered

__all__ = ["batch", "batch_threads"]


def batch(name: str, *inputs: ArrayLike, **params: Any) -> Any:
    """Runs indicator ``name`` (a ``core_rs`` function name such as
    ``"macd"``) over many series; the keyword arguments are that function's.

    Returns one 2-D array, or a tuple of them where the indicator has several
    outputs, in the order the single-series function returns them.
    """
    values = ordered(name, bind(name, (), params))
    out = _core.run_batch(name, list(inputs), values)
    return out[0] if len(out) == 1 else out


def batch_threads() -> int:
    """The number of threads batch calls use in this process."""
    return _core.batch_threads()
