"""ComputeIndicators: any core_rs kernel over a symbol's candles.

The request's specs are checked against core_rs's kernel registry before any
candle is fetched, so a typo costs the caller nothing and the error names the
exact field (``indicators[2].name``, ``indicators[0].params.timeperiod``).

Warm-up: a kernel's first ``lookback`` outputs are NaN. The caller fetches
:func:`warmup_bars` extra candles before ``start_time`` and passes the index
of the first requested candle to :func:`compute`, which runs every kernel
over the whole array and returns only the requested part; so values from
``start_time`` on are real numbers wherever enough history exists.

Kernel inputs map onto candle fields by name as ``core_rs.bundle`` does:
``open``/``high``/``low``/``close``/``volume`` are the fields, TA-Lib's
``real`` is the close, and ``timestamp`` (vwap's session clock) is the open
time in epoch milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from core_rs import _core
from core_rs._kernels import KERNELS
from marketmesh.v1 import common_pb2, signals_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.intervals import MS_BY_ENUM
from services.common.validation import ms_to_timestamp, optional_timestamp_ms, parse_symbol
from services.signals.candles import CandleSeries

MAX_SPECS = 20


@dataclass(frozen=True)
class IndicatorQuery:
    symbol: str
    interval: int
    start_ms: int | None  # inclusive; None: the last 500 candles
    end_ms: int | None  # exclusive; None: up to the latest closed candle
    specs: list[ParsedSpec]


@dataclass(frozen=True)
class ParsedSpec:
    """One validated IndicatorSpec: every parameter bound, defaults filled in."""

    index: int
    name: str
    params: dict[str, float]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    lookback: int

    @property
    def ordered_params(self) -> list[float]:
        """Parameter values in the registry's order, as the Rust side takes them."""
        return [self.params[p["name"]] for p in KERNELS[self.name]["params"]]

    def series_names(self) -> list[str]:
        if len(self.outputs) == 1:
            return [self.name]
        return [f"{self.name}.{out}" for out in self.outputs]


def parse_indicator_request(
    request: signals_pb2.ComputeIndicatorsRequest,
    sid_by_symbol: dict[str, int] | None = None,
) -> IndicatorQuery:
    """The whole request checked; with ``sid_by_symbol`` an unknown symbol is
    NOT_FOUND. An unspecified interval means INTERVAL_1H, as in every other
    signals call."""
    symbol = parse_symbol(request.symbol)
    if sid_by_symbol is not None and symbol not in sid_by_symbol:
        raise NotFound(f"unknown symbol {symbol!r}: not in the asset universe")
    interval = request.interval or common_pb2.INTERVAL_1H
    if interval not in MS_BY_ENUM:
        raise InvalidArgument("interval", f"unknown interval value {request.interval}")
    start_ms = optional_timestamp_ms(request, "start_time")
    end_ms = optional_timestamp_ms(request, "end_time")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise InvalidArgument("start_time", "must be before end_time")
    return IndicatorQuery(symbol, interval, start_ms, end_ms, parse_specs(request))


def known_names() -> str:
    return ", ".join(sorted(KERNELS))


def parse_specs(request: signals_pb2.ComputeIndicatorsRequest) -> list[ParsedSpec]:
    """Every spec validated; all violations of the request are reported at once."""
    specs = request.indicators
    if not specs:
        raise InvalidArgument(
            "indicators", f"at least one indicator is required; known: {known_names()}"
        )
    if len(specs) > MAX_SPECS:
        raise InvalidArgument(
            "indicators", f"at most {MAX_SPECS} indicators per request; got {len(specs)}"
        )
    violations: list[tuple[str, str]] = []
    parsed: list[ParsedSpec] = []
    for i, spec in enumerate(specs):
        one = _parse_one(i, spec.name, dict(spec.params), violations)
        if one is not None:
            parsed.append(one)
    if violations:
        raise InvalidArgument.many(violations)
    return parsed


def _parse_one(
    i: int, raw_name: str, raw_params: dict[str, float], violations: list[tuple[str, str]]
) -> ParsedSpec | None:
    name = raw_name.strip().lower()
    kernel = KERNELS.get(name)
    if kernel is None:
        what = "is required" if not name else f"unknown indicator {raw_name!r}"
        violations.append((f"indicators[{i}].name", f"{what}; known: {known_names()}"))
        return None
    before = len(violations)
    params: dict[str, float] = {}
    by_name = {p["name"]: p for p in kernel["params"]}
    # Sorted: a proto map has no order, and errors should read the same every time.
    for key, value in sorted(raw_params.items()):
        field = f"indicators[{i}].params.{key}"
        p = by_name.get(key)
        if p is None:
            have = ", ".join(by_name) if by_name else "none"
            violations.append((field, f"{name} has no parameter {key!r}; its parameters: {have}"))
            continue
        reason = _check_param(p["integer"], p["min"], p["max"], value)
        if reason is not None:
            violations.append((field, reason))
            continue
        params[key] = float(value)
    for p in kernel["params"]:
        params.setdefault(p["name"], float(p["default"]))
    if len(violations) > before:
        return None
    ordered = [params[p["name"]] for p in kernel["params"]]
    try:
        lookback = max(int(_core.lookback(name, ordered)), _shifted_warmup(name, params))
    except ValueError as err:
        # Parameters valid alone but not together.
        violations.append((f"indicators[{i}].params", str(err)))
        return None
    return ParsedSpec(
        index=i,
        name=name,
        params=params,
        inputs=tuple(kernel["inputs"]),
        outputs=tuple(kernel["outputs"]),
        lookback=lookback,
    )


def _shifted_warmup(name: str, params: dict[str, float]) -> int:
    """Leading NaNs of outputs shifted forward, which core_rs's lookback
    (the first output's) does not count: Ichimoku's cloud is computed
    ``displacement`` bars before it is plotted (see ``core_rs.ichimoku``).
    Its chikou, a later close, is NaN at the END and no history fixes that."""
    if name != "ichimoku":
        return 0
    shift = int(params["displacement"])
    widest = max(params["tenkan_period"], params["kijun_period"], params["senkou_b_period"])
    return int(widest) - 1 + shift


def _check_param(integer: bool, lo: float, hi: float, value: float) -> str | None:
    allowed = f"{'an integer' if integer else 'a number'} from {lo:g} to {hi:g}"
    if not math.isfinite(value):
        return f"must be {allowed}; got {value}"
    if integer and value != math.floor(value):
        return f"must be {allowed}; got {value:g}"
    if not lo <= value <= hi:
        return f"must be {allowed}; got {value:g}"
    return None


def warmup_bars(specs: Sequence[ParsedSpec]) -> int:
    """Candles to fetch before the first requested one so every spec is warm."""
    return max((s.lookback for s in specs), default=0)


def kernel_inputs(names: Sequence[str], candles: CandleSeries) -> list[NDArray[np.float64]]:
    """The candle columns a kernel reads, in its input order."""
    return [_field(candles, name) for name in names]


def _field(c: CandleSeries, name: str) -> NDArray[np.float64]:
    if name == "real":
        return np.asarray(c.close, dtype=np.float64)
    if name == "timestamp":
        return np.asarray(c.open_ms, dtype=np.int64).astype(np.float64)
    if name in ("open", "high", "low", "close", "volume"):
        return np.asarray(getattr(c, name), dtype=np.float64)
    raise ValueError(f"no candle field for kernel input {name!r}")


def compute(
    specs: Sequence[ParsedSpec], candles: CandleSeries, first_index: int
) -> list[signals_pb2.IndicatorSeries]:
    """One IndicatorSeries per output of each spec, values from ``first_index`` on."""
    out: list[signals_pb2.IndicatorSeries] = []
    for spec in specs:
        try:
            values = _core.run(spec.name, kernel_inputs(spec.inputs, candles), spec.ordered_params)
        except ValueError as err:
            raise InvalidArgument(f"indicators[{spec.index}]", f"{spec.name}: {err}") from None
        for series_name, arr in zip(spec.series_names(), values, strict=True):
            out.append(
                signals_pb2.IndicatorSeries(
                    name=series_name,
                    spec_index=spec.index,
                    values=np.asarray(arr[first_index:], dtype=np.float64).tolist(),
                )
            )
    return out


def build_response(
    symbol: str,
    interval: int,
    specs: Sequence[ParsedSpec],
    candles: CandleSeries,
    first_index: int,
) -> signals_pb2.ComputeIndicatorsResponse:
    """The response over ``candles[first_index:]`` (earlier candles are warm-up)."""
    return signals_pb2.ComputeIndicatorsResponse(
        symbol=symbol,
        interval=interval,
        open_times=[ms_to_timestamp(ms) for ms in candles.open_ms[first_index:].tolist()],
        series=compute(specs, candles, first_index),
    )
