"""Several indicators at once per series: ``core_rs.bundle.run(...)`` over
many series, ``core_rs.bundle.BundleSet`` bar by bar for many symbols.

A bundle is a list of members, each a kernel with parameters by name, an
optional alias and optional input overrides::

    from core_rs.bundle import Member, run
    members = [
        Member("rsi", {"timeperiod": 14}),
        Member("macd", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
        Member("sma", {"timeperiod": 20}, alias="vol_sma", inputs={"real": "volume"}),
    ]
    out = run(close=closes, volume=volumes, members=members)
    out["rsi"], out["macdhist"], out["vol_sma"]   # 2-D arrays, series x time

A member may also be written as a kernel name (``"obv"``) or a tuple
``(kernel, params[, alias[, inputs]])``.

Inputs are the bar fields ``open``, ``high``, ``low``, ``close`` and
``volume``; a kernel's inputs map onto them by name, TA-Lib's ``real``
being the close (``inputs={"real": "volume"}`` overrides that). A field a
member needs but that was not given is a ValueError naming it and the
members that read it; fields no member needs are ignored.

Columns are named after the kernels' outputs: a kernel with one output gives
one column named after the member's alias, or the kernel (``"rsi"``); one
with several outputs gives a column per output under TA-Lib's output names
(``"macd"``, ``"macdsignal"``, ``"macdhist"``), prefixed with ``alias_`` when
the member has an alias. Two columns with one name are a ValueError: give
one of the members an alias.

Each member's values are exactly (bitwise) what its function computes alone
on the same series, NaN policy included (see ``core_rs``).

``DEFAULT`` is the signals set: RSI(14), MACD(12, 26, 9), BBANDS(20, 2, 2),
ATR(14) and OBV. It is plain data, checked when a bundle is built, so this
module imports whichever kernels exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core_rs import _core
from core_rs._kernels import bind, spec

__all__ = ["DEFAULT", "FIELDS", "BundleSet", "Member", "MemberLike", "columns", "run"]

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Member:
    """One indicator of a bundle: ``kernel`` is a ``core_rs`` function name,
    ``params`` its keyword arguments (defaults fill the rest), ``alias``
    names its column(s), ``inputs`` maps kernel inputs to bar fields where
    the default (same name; ``real`` = close) is not wanted."""

    kernel: str
    params: Mapping[str, float] = field(default_factory=dict)
    alias: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [repr(self.kernel)]
        if self.params:
            parts.append(repr(dict(self.params)))
        if self.alias is not None:
            parts.append(f"alias={self.alias!r}")
        if self.inputs:
            parts.append(f"inputs={dict(self.inputs)!r}")
        return f"Member({', '.join(parts)})"


MemberLike = Member | str | tuple[Any, ...]

DEFAULT: tuple[Member, ...] = (
    Member("rsi", {"timeperiod": 14}),
    Member("macd", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
    Member("bbands", {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0}),
    Member("atr", {"timeperiod": 14}),
    Member("obv"),
)

_Tuple = tuple[str, list[tuple[str, float]], str | None, list[tuple[str, str]]]


def _member(m: MemberLike) -> Member:
    if isinstance(m, Member):
        return m
    if isinstance(m, str):
        return Member(m)
    if isinstance(m, tuple) and 1 <= len(m) <= 4:
        return Member(*m)
    raise ValueError(
        f"a bundle member is a Member, a kernel name or a tuple "
        f"(kernel, params[, alias[, inputs]]), got {m!r}"
    )


def _tuples(members: Iterable[MemberLike]) -> list[_Tuple]:
    """Members as the extension takes them, parameters checked by name
    (positional parameters are not accepted: say which is which)."""
    if isinstance(members, str | Member):
        members = [members]
    out: list[_Tuple] = []
    for raw in members:
        m = _member(raw)
        spec(m.kernel)  # a clear error naming the known kernels
        if not isinstance(m.params, Mapping):
            raise ValueError(f"{m.kernel}: params must be a mapping of name to value")
        bound = bind(m.kernel, (), m.params)
        params = []
        for name, value in bound.items():
            try:
                params.append((name, float(value)))
            except (TypeError, ValueError):
                raise ValueError(f"{m.kernel}: {name} must be a number, got {value!r}") from None
        out.append((m.kernel, params, m.alias, list(dict(m.inputs).items())))
    return out


def columns(members: Iterable[MemberLike] = DEFAULT) -> list[str]:
    """The column names a bundle of these members produces, in order."""
    return _core.bundle_columns(_tuples(members))


def run(
    open: ArrayLike | None = None,
    high: ArrayLike | None = None,
    low: ArrayLike | None = None,
    close: ArrayLike | None = None,
    volume: ArrayLike | None = None,
    members: Iterable[MemberLike] = DEFAULT,
) -> dict[str, NDArray[np.float64]]:
    """Every member over many series; returns ``{column: 2-D array}``.

    Each field is a 2-D array (series x time) or a list of 1-D arrays of
    different lengths, as for ``core_rs.batch``; every field given must hold
    the same number of series, and within a series the fields a member reads
    must have one length. Results have shape (series, longest length); a
    shorter series is right-aligned, its rows starting with NaN, so
    ``out[c][:, -1]`` is every series' latest value.

    All members of one series run in one task (the series stays in cache),
    the series spread over the batch pool (``MM_CORE_THREADS``; fork-safe,
    see ``core_rs.batch``) with the GIL released.
    """
    return _core.bundle_run(_tuples(members), open, high, low, close, volume)


def _restore(cls: type[BundleSet], data: bytes) -> BundleSet:
    return cls.from_bytes(data)


class BundleSet(_core.BundleSet):
    """Incremental states of a bundle for symbols with dense ids
    ``0..n_symbols-1`` (``add_symbols(n)`` appends more).

    - ``update(ids, open=None, high=None, low=None, close=None, volume=None,
      out=None)``: one closed bar per listed id (1-D arrays, one value per
      id; an id listed twice takes two bars in order). Returns a float64
      array of shape (len(ids), len(columns)); ``out=`` (C-contiguous,
      that shape) is filled and returned instead of a new array. Row i
      equals the last values of the batch functions over that symbol's bars.
    - ``peek(...)``: the same without changing any state (the forming bar).
    - ``reset(ids)``: those symbols start over.
    - ``columns``, ``members``, ``n_symbols``; ``to_bytes()``,
      ``BundleSet.from_bytes(data)`` and pickling keep every state.

    A bar where a member's inputs are not all finite gives NaN for that
    member and restarts it, as the batch kernels restart after a gap. Bad
    ids or lengths raise ValueError and change nothing. The loop runs with
    the GIL released; every member needs an incremental form.
    """

    def __new__(cls, n_symbols: int = 0, members: Iterable[MemberLike] = DEFAULT) -> BundleSet:
        return super().__new__(cls, _tuples(members), n_symbols)

    @classmethod
    def from_bytes(cls, data: bytes) -> BundleSet:
        """The set saved by ``to_bytes``: members, symbols and states."""
        obj = _core.BundleSet.__new__(cls, [], 0)
        obj._restore(bytes(data))
        return obj

    @property
    def members(self) -> tuple[Member, ...]:
        """The members with every parameter spelled out."""
        out = []
        for kernel, params, alias, inputs in self._members:
            integer = {p["name"]: p["integer"] for p in spec(kernel)["params"]}
            values = {k: int(v) if integer.get(k) else v for k, v in params}
            out.append(Member(kernel, values, alias, dict(inputs)))
        return tuple(out)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.to_bytes()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_symbols={self.n_symbols}, columns={self.columns})"
