"""Position sizing for a long entry: risk a fixed share of equity, scaled by the grade.

- ``grade_scale``: 0 for a trader grade below 50 (no position); grade / 100
  from 50 (half size) to 100 (full size).
- Risk: ``risk_amount = equity x risk_per_trade x grade_scale`` is what the
  position loses if the stop is hit, so ``quantity = risk_amount / (entry -
  stop)`` rounded DOWN to 18 places (never risk more than the budget) and
  ``value = quantity x entry``.
- Cap: a tight stop can ask for a position worth more than equity allows; when
  ``value > max_fraction x equity`` the quantity is cut to ``max_fraction x
  equity / entry`` (rounded down), ``capped`` is set and ``risk_amount``
  becomes ``quantity x (entry - stop)``, the smaller loss the cut position
  risks.
- ATR stop: ``entry - multiple x ATR``.

Money is Decimal throughout (services.portfolio.decimals); the grade and the
ATR come from signals as floats and are converted once with
``Decimal(repr(x))`` by the servicer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, localcontext

from services.common.errors import InvalidArgument
from services.portfolio.decimals import CONTEXT, ONE, QUANTUM, ZERO, div, fmt, mul, quantize

MIN_GRADE = Decimal(50)
MAX_GRADE = Decimal(100)


@dataclass(frozen=True)
class Sizing:
    quantity: Decimal
    value: Decimal
    entry_price: Decimal
    stop_price: Decimal
    risk_amount: Decimal
    grade_scale: Decimal
    capped: bool
    equity: Decimal
    notes: list[str] = field(default_factory=list)


def grade_scale(grade: Decimal) -> Decimal:
    """0 below 50 (and for no grade); grade / 100 from 50 to 100; 1 above 100."""
    if not grade.is_finite() or grade < MIN_GRADE:
        return ZERO
    return div(min(grade, MAX_GRADE), MAX_GRADE)


def atr_stop(entry: Decimal, atr: Decimal, multiple: Decimal) -> Decimal:
    """``entry - multiple x atr``; InvalidArgument("atr_multiple") when that is no usable stop."""
    if not (multiple.is_finite() and multiple > 0):
        raise InvalidArgument("atr_multiple", f"must be greater than zero; got {multiple}")
    if not (atr.is_finite() and atr > 0):
        raise InvalidArgument(
            "atr_multiple",
            f"the ATR is {atr}, so it gives no stop below the entry; send stop_price instead",
        )
    stop = quantize(CONTEXT.subtract(entry, CONTEXT.multiply(multiple, atr)))
    if stop <= 0:
        raise InvalidArgument(
            "atr_multiple",
            f"{fmt(multiple)} x ATR {fmt(quantize(atr))} puts the stop at {fmt(stop)}, at or "
            f"below zero for an entry of {fmt(entry)}; use a smaller multiple or a stop_price",
        )
    return stop


def size_position(
    equity: Decimal,
    entry: Decimal,
    stop: Decimal,
    *,
    risk_per_trade: Decimal,
    grade: Decimal,
    max_fraction: Decimal,
) -> Sizing:
    """The quantity of a long entry at ``entry`` with a stop at ``stop`` (see the module doc)."""
    _check(equity, entry, stop, risk_per_trade, max_fraction)
    scale = grade_scale(grade)
    notes: list[str] = []
    if scale == 0:
        why = f"trader grade {fmt(grade)} is below 50" if grade.is_finite() else "no trader grade"
        notes.append(f"{why}: grade scale 0, no position")
        return Sizing(ZERO, ZERO, entry, stop, ZERO, ZERO, False, equity, notes)

    with localcontext(CONTEXT):
        per_unit = entry - stop
        risk_amount = quantize(equity * risk_per_trade * scale)
        quantity = _round_down(risk_amount / per_unit)
        if scale < ONE:
            notes.append(f"trader grade {fmt(grade)}: risk scaled by {fmt(scale)}")
        cap = max_fraction * equity
        capped = quantity * entry > cap
        if capped:
            quantity = _round_down(cap / entry)
            risk_amount = mul(quantity, per_unit)
            notes.append(
                f"value cut to {fmt(_percent(max_fraction))}% of equity ({fmt(quantize(cap))}); "
                f"the position now risks {fmt(risk_amount)}"
            )
        return Sizing(
            quantity=quantity,
            value=mul(quantity, entry),
            entry_price=entry,
            stop_price=stop,
            risk_amount=risk_amount,
            grade_scale=scale,
            capped=capped,
            equity=equity,
            notes=notes,
        )


def _check(
    equity: Decimal, entry: Decimal, stop: Decimal, risk_per_trade: Decimal, max_fraction: Decimal
) -> None:
    bad: list[tuple[str, str]] = []
    if equity <= 0:
        bad.append(("equity", f"must be greater than zero; got {fmt(equity)}"))
    if not ZERO < risk_per_trade <= ONE:
        got = fmt(risk_per_trade)
        bad.append(("risk_per_trade", f"must be above 0 and at most 1 (0.01 = 1%); got {got}"))
    if entry <= 0:
        bad.append(("entry_price", f"must be greater than zero; got {fmt(entry)}"))
    elif stop >= entry:
        bad.append(
            (
                "stop_price",
                f"{fmt(stop)} is not below the entry {fmt(entry)}; only long positions are sized",
            )
        )
    elif stop <= 0:
        bad.append(("stop_price", f"must be greater than zero; got {fmt(stop)}"))
    if bad:
        raise InvalidArgument.many(bad)
    # The cap is configuration, validated at start-up: a bad one is a bug here.
    if not ZERO < max_fraction <= ONE:
        raise ValueError(f"max_fraction must be above 0 and at most 1; got {max_fraction}")


def _round_down(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_DOWN)


def _percent(fraction: Decimal) -> Decimal:
    return (fraction * 100).normalize()
