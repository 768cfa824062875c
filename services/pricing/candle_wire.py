"""Hand-assembled StreamCandlesResponse bytes (the approach of wire.py).

Each changed candle row is encoded once, as one `updates` entry (field 4,
length-delimited CandleUpdate), and the same bytes go to every subscriber and
into snapshots; a response is its header fields followed by entries.

`candle_entries` packs the fixed-width Candle fields (six doubles and
`closed`) of a whole batch with numpy; only the open time and trade count,
whose varint lengths vary, and the per-(symbol, interval) prefix are joined
per row. Fields come in a different order than SerializeToString writes and
zero values are not left out, both of which the wire format allows: the
parsed message is the same (`candle_update_entry` is the reference encoder).
"""

from collections.abc import Sequence

import numpy as np

from marketmesh.v1 import pricing_pb2
from services.pricing.wire import symbol_field, varint

_UPDATES_TAG = b"\x22"  # StreamCandlesResponse.updates: field 4, wire type 2
_INTERVAL_TAG = b"\x10"  # CandleUpdate.interval: field 2, varint
_CANDLE_TAG = b"\x1a"  # CandleUpdate.candle: field 3, wire type 2
_OPEN_TIME_TAG = b"\x0a"  # Candle.open_time: field 1, wire type 2
_SECONDS_TAG = b"\x08"
_NANOS_TAG = b"\x10"
_TRADES_TAG = b"\x38"  # Candle.trades: field 7, varint

# Candle fields 2-6 and 9 (doubles, wire type 1) and 8 (closed, varint).
_DOUBLE_FIELDS: tuple[tuple[str, int], ...] = (
    ("open", 2),
    ("high", 3),
    ("low", 4),
    ("close", 5),
    ("volume", 6),
    ("quote_volume", 9),
)
_FIXED = np.dtype(
    [item for name, _ in _DOUBLE_FIELDS for item in ((f"{name}_tag", "u1"), (name, "<f8"))]
    + [("closed_tag", "u1"), ("closed", "u1")]
)
_SMALL = [varint(i) for i in range(1 << 14)]


def _length(n: int) -> bytes:
    return _SMALL[n] if n < 16384 else varint(n)


def update_prefix(symbol: str, interval: int) -> bytes:
    """CandleUpdate.symbol and .interval as encoded bytes, computed once per
    (asset, interval)."""
    return symbol_field(symbol) + _INTERVAL_TAG + varint(interval)


def candle_update_entry(update: pricing_pb2.CandleUpdate) -> bytes:
    """A CandleUpdate encoded as one `updates` entry (the reference encoder)."""
    body = update.SerializeToString()
    return _UPDATES_TAG + varint(len(body)) + body


def candle_entries(
    rows: dict[str, np.ndarray], index: np.ndarray, prefixes: Sequence[bytes]
) -> list[bytes]:
    """`updates` entries for rows `index` of engine candle columns, each
    parsing to the CandleUpdate of that row.

    `prefixes[slot]` is `update_prefix` of the row's symbol and interval, with
    slot = symbol_id * n_intervals + interval_idx, given as `rows["slot"]`."""
    n = len(index)
    if n == 0:
        return []
    fixed = np.empty(n, dtype=_FIXED)
    for name, number in _DOUBLE_FIELDS:
        fixed[f"{name}_tag"] = (number << 3) | 1
        fixed[name] = rows[name][index]
    fixed["closed_tag"] = 8 << 3
    fixed["closed"] = rows["closed"][index]
    block = fixed.tobytes()
    width = _FIXED.itemsize

    time_fields: dict[int, bytes] = {}
    small = _SMALL
    fixed_size = width + 1  # the packed fields and the trades tag
    out = []
    for i, slot, open_ms, trades in zip(
        range(n),
        rows["slot"][index].tolist(),
        rows["open_ms"][index].tolist(),
        rows["trades"][index].tolist(),
        strict=True,
    ):
        time_field = time_fields.get(open_ms)
        if time_field is None:
            seconds, ms = divmod(open_ms, 1000)
            stamp = (_SECONDS_TAG + varint(seconds) if seconds else b"") + (
                _NANOS_TAG + varint(ms * 1_000_000) if ms else b""
            )
            time_field = time_fields[open_ms] = _OPEN_TIME_TAG + _length(len(stamp)) + stamp
        trades_field = small[trades] if 0 <= trades < 16384 else varint(trades)
        prefix = prefixes[slot]
        # Lengths by arithmetic, so each entry is one join.
        candle_size = len(time_field) + fixed_size + len(trades_field)
        candle_length = small[candle_size] if candle_size < 16384 else varint(candle_size)
        body_size = len(prefix) + 1 + len(candle_length) + candle_size
        out.append(
            b"".join(
                (
                    _UPDATES_TAG,
                    small[body_size] if body_size < 16384 else varint(body_size),
                    prefix,
                    _CANDLE_TAG,
                    candle_length,
                    time_field,
                    block[i * width : (i + 1) * width],
                    _TRADES_TAG,
                    trades_field,
                )
            )
        )
    return out


def candle_messages(
    sequence: int,
    entries: Sequence[bytes],
    max_updates: int,
    *,
    snapshot: bool = False,
    heartbeat: bool = False,
) -> list[bytes]:
    """Encoded StreamCandlesResponse messages carrying `entries`, at most
    `max_updates` each; every message but the last has more = true. No
    entries: one message (a heartbeat, or an empty snapshot)."""
    header = b"\x08" + varint(sequence) if sequence else b""
    if snapshot:
        header += b"\x10\x01"
    if heartbeat and not entries:
        header += b"\x18\x01"
    if not entries:
        return [header]
    out = []
    for start in range(0, len(entries), max_updates):
        chunk = entries[start : start + max_updates]
        more = start + max_updates < len(entries)
        out.append(b"".join((header, b"\x28\x01" if more else b"", *chunk)))
    return out
