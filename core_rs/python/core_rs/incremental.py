"""Per-bar indicator state: ``core_rs.incremental.Rsi(timeperiod=14)``.

Each class takes its indicator's parameters (as the function of the same
name in ``core_rs``) and offers:

- ``update(*bar)``: feed one closed bar (one number per input, e.g.
  ``update(high, low, close)`` for ATR) and get the new value, or a tuple for
  several outputs. O(1). The values equal the batch kernel's over the same
  bars, NaN warm-up included.
- ``peek(*bar)``: the value(s) if this bar closed now, state unchanged: for
  the forming candle.
- ``reset()``, ``to_bytes()`` and pickling, so a restarted service resumes.

A bar with a NaN or infinite input returns NaN and restarts the indicator,
as the batch kernels restart after a gap.
"""

from __future__ import annotations

import inspect
from typing import Any

from core_rs import _core
from core_rs._kernels import KERNELS, bind, ordered

__all__ = ["Indicator", "class_name"]


def _restore(cls: type[Indicator], params: dict[str, Any], data: bytes) -> Indicator:
    obj = cls(**params)
    obj._restore(data)
    return obj


class Indicator(_core.Incremental):
    """Base of the per-indicator classes; ``kernel`` names the indicator."""

    kernel: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Indicator:
        bound = bind(cls.kernel, args, kwargs)
        obj = super().__new__(cls, cls.kernel, ordered(cls.kernel, bound))
        obj._kwargs = bound
        return obj

    _kwargs: dict[str, Any]

    @property
    def kwargs(self) -> dict[str, Any]:
        """The parameters by name, defaults included."""
        return dict(self._kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.kwargs, self.to_bytes()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"


def class_name(kernel: str) -> str:
    """``plus_di`` -> ``PlusDi``: the class name of a kernel's state."""
    return "".join(part.capitalize() for part in kernel.split("_"))


def _make(kernel: str) -> type[Indicator]:
    spec = KERNELS[kernel]
    params = [
        inspect.Parameter(
            p["name"],
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=int(p["default"]) if p["integer"] else p["default"],
        )
        for p in spec["params"]
    ]
    doc = (
        f"Incremental ``core_rs.{kernel}``: update({', '.join(spec['inputs'])}) -> "
        f"{', '.join(spec['outputs'])}."
    )
    cls = type(class_name(kernel), (Indicator,), {"kernel": kernel, "__doc__": doc})
    cls.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    cls.__module__ = __name__
    return cls


for _name, _spec in KERNELS.items():
    if _spec["has_state"]:
        _cls = _make(_name)
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)
