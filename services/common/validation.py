"""Request-field parsers that raise InvalidArgument naming the field.

Servicers call these first thing, so every service words the same mistakes
the same way and the caller learns which field to fix.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import message as protobuf_message
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import InvalidArgument

_SYMBOL = re.compile(r"[A-Z0-9]{1,20}-[A-Z0-9]{1,10}")
# Timestamp's valid range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def parse_symbol(value: str, field: str = "symbol") -> str:
    """``btc-usd `` -> ``BTC-USD``; BASE 1-20 and QUOTE 1-10 letters or digits."""
    symbol = value.strip().upper()
    if not symbol:
        raise InvalidArgument(field, "is required")
    if not symbol.isascii() or not _SYMBOL.fullmatch(symbol):
        raise InvalidArgument(
            field,
            f"{value!r} is not a BASE-QUOTE symbol such as BTC-USD "
            "(1-20 and 1-10 letters or digits)",
        )
    return symbol


def parse_limit(value: int, field: str, default: int, maximum: int) -> int:
    """Page size or count: 0 means ``default``; 1..``maximum`` as given."""
    if value == 0:
        return default
    if value < 0 or value > maximum:
        raise InvalidArgument(
            field, f"must be between 1 and {maximum:,} (0 means {default:,}); got {value:,}"
        )
    return value


def timestamp_to_ms(ts: Timestamp, field: str = "time") -> int:
    """Milliseconds since the epoch, rounded toward the past."""
    if not 0 <= ts.nanos <= 999_999_999 or not _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS:
        raise InvalidArgument(field, "is not a valid timestamp (years 1-9999, nanos 0-999999999)")
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def optional_timestamp_ms(msg: protobuf_message.Message, field_name: str) -> int | None:
    """``msg.<field_name>`` in milliseconds, or None when the field is unset.

    proto3 message fields read as the epoch when unset; only HasField tells an
    absent bound from 1970-01-01.
    """
    if not msg.HasField(field_name):
        return None
    return timestamp_to_ms(getattr(msg, field_name), field_name)


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds, the unit every service uses."""
    return time.time_ns() // 1_000_000


def ms_to_timestamp(ms: int) -> Timestamp:
    # Floor division keeps nanos in 0..999_999_999 for times before 1970 too.
    seconds, millis = divmod(ms, 1000)
    return Timestamp(seconds=seconds, nanos=millis * 1_000_000)


@dataclass
class Violations:
    """Every violation of one request, so the caller can fix them in one go:
    parsers run under :meth:`guard`, checks :meth:`check`, and
    :meth:`raise_any` raises one InvalidArgument listing them all."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, reason: str) -> None:
        self.items.append((name, reason))

    def check(self, ok: bool, name: str, reason: str) -> None:
        if not ok:
            self.add(name, reason)

    def guard(self, parse: Callable[[], Any], fallback: Any = None) -> Any:
        """``parse()``, or ``fallback`` with its violations recorded."""
        try:
            return parse()
        except InvalidArgument as err:
            self.items.extend(err.violations)
            return fallback

    def has(self, *names: str) -> bool:
        return any(name in names for name, _ in self.items)

    def raise_any(self) -> None:
        if self.items:
            raise InvalidArgument.many(self.items)
