"""Calling the Rust kernel registry: parameter binding shared by the
TA-Lib-style functions, ``core_rs.batch`` and ``core_rs.incremental``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core_rs import _core

Array = NDArray[np.float64]


class ParamSpec(TypedDict):
    name: str
    default: float
    min: float
    max: float
    integer: bool


class KernelSpec(TypedDict):
    name: str
    inputs: list[str]
    outputs: list[str]
    params: list[ParamSpec]
    has_state: bool


KERNELS: dict[str, KernelSpec] = {k["name"]: k for k in _core.kernels()}


def spec(name: str) -> KernelSpec:
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(
            f"no indicator named {name!r}; known: {', '.join(sorted(KERNELS))}"
        ) from None


def call(name: str, inputs: Sequence[ArrayLike], params: Sequence[float]) -> Any:
    """Runs one kernel over one series per input: an array, or a tuple of
    arrays when the kernel has several outputs (as in ``talib``)."""
    out = _core.run(name, list(inputs), [float(p) for p in params])
    return out[0] if len(out) == 1 else out


def bind(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters by name, from positional and keyword arguments, defaults
    filled in from the registry; a ValueError names a stray argument."""
    params = spec(name)["params"]
    names = [p["name"] for p in params]
    if len(args) > len(names):
        raise ValueError(f"{name} takes at most {len(names)} parameters ({', '.join(names)})")
    bound: dict[str, Any] = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise ValueError(f"{name} has no parameter {key!r}; its parameters are {names}")
        if key in bound:
            raise ValueError(f"{name}: {key} given twice")
        bound[key] = value
    for p in params:
        if p["name"] not in bound:
            default = p["default"]
            bound[p["name"]] = int(default) if p["integer"] else default
    return bound


def ordered(name: str, bound: Mapping[str, Any]) -> list[float]:
    """Bound parameters in the registry's order, as the Rust side takes them."""
    out = []
    for p in spec(name)["params"]:
        value = bound[p["name"]]
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            raise ValueError(f"{p['name']} must be a number, got {value!r}") from None
    return out
