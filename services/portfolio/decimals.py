"""Exact money and quantities: the one place decimal strings are read and written.

Every amount in the ledger is a ``decimal.Decimal`` parsed from the caller's
string, never a float. The precision is fixed and documented in
portfolio.proto: at most 18 digits after the point and 20 before it, which is
what core_rs's fixed-point (i128 scaled by 10^18) holds exactly. Input with
more digits is refused rather than rounded, so nothing a caller sends is
silently changed; values the service derives (a share of a lot's cost, an
average) are rounded half-even to 18 places by :func:`quantize`.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal

from services.common.errors import InvalidArgument

SCALE_DIGITS = 18
MAX_INTEGER_DIGITS = 20
QUANTUM = Decimal(1).scaleb(-SCALE_DIGITS)
ZERO = Decimal(0)
ONE = Decimal(1)
# Enough digits for any product or quotient of two in-range amounts before
# rounding back to 18 places.
CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)

# Plain notation only: a sign, digits, an optional fraction. No exponent, no
# "NaN"/"Infinity", no separators: what a ledger export writes.
_DECIMAL = re.compile(r"[+-]?(\d+)(?:\.(\d*))?|[+-]?\.(\d+)")
_FORMAT = (
    f"a decimal string such as '0.00012345' (at most {MAX_INTEGER_DIGITS} digits before "
    f"the point and {SCALE_DIGITS} after it, no exponent)"
)


def parse_decimal(
    text: str,
    field: str,
    *,
    required: bool = True,
    positive: bool = False,
    non_negative: bool = False,
) -> Decimal | None:
    """``text`` as a Decimal, or InvalidArgument naming ``field``.

    Empty text is None when not ``required``. ``positive`` refuses zero and
    below; ``non_negative`` refuses below zero.
    """
    raw = text.strip()
    if not raw:
        if required:
            raise InvalidArgument(field, "is required")
        return None
    match = _DECIMAL.fullmatch(raw)
    if match is None or not raw.isascii():
        raise InvalidArgument(field, f"{text!r} is not {_FORMAT}")
    integer = (match.group(1) or "").lstrip("0")
    fraction = (match.group(2) or match.group(3) or "").rstrip("0")
    if len(integer) > MAX_INTEGER_DIGITS:
        raise InvalidArgument(
            field, f"{text!r} has more than {MAX_INTEGER_DIGITS} digits before the point"
        )
    if len(fraction) > SCALE_DIGITS:
        raise InvalidArgument(
            field,
            f"{text!r} has more than {SCALE_DIGITS} digits after the point; "
            "round it before sending (nothing is rounded silently)",
        )
    value = Decimal(raw)
    if positive and value <= 0:
        raise InvalidArgument(field, f"must be greater than zero; got {text!r}")
    if non_negative and value < 0:
        raise InvalidArgument(field, f"must not be negative; got {text!r}")
    return value


def require_decimal(text: str, field: str, **checks: bool) -> Decimal:
    """:func:`parse_decimal` for a field that must be present."""
    value = parse_decimal(text, field, required=True, **checks)
    assert value is not None
    return value


def quantize(value: Decimal) -> Decimal:
    """Round half-even to the ledger's 18 places (derived values only)."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """a x b rounded to 18 places."""
    return quantize(CONTEXT.multiply(a, b))


def div(a: Decimal, b: Decimal) -> Decimal:
    """a / b rounded to 18 places; b must not be zero."""
    return quantize(CONTEXT.divide(a, b))


def fmt(value: Decimal | None) -> str:
    """Plain notation without trailing zeros ("1.5", "0", "-0.000001"); None is ""."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
