"""Hand-assembled StreamQuotesResponse bytes.

Each quote is serialised once per change and reused for every subscriber: a
protobuf message is the concatenation of its fields, so a response is its
header fields followed by pre-encoded `quotes` entries (field 4, length-
delimited). Parsing the result with StreamQuotesResponse.FromString gives
exactly the message the fields describe.

`quote_entries` encodes a whole batch of quotes from the market's columns
without building a Quote message per row (the feed re-encodes every changed
quote ten times a second, and message objects cost ~10x more). The fixed-width
fields (nine doubles and the tier) are packed for all rows at once by numpy;
only the symbol, sequence and time, whose varint lengths vary, are joined per
row. Fields are written in a different order than SerializeToString uses and
zero values are not left out, both of which the wire format allows: the parsed
message is the same (`quote_entry` is the reference encoder).
"""

from collections.abc import Iterable, Sequence

import numpy as np

from marketmesh.v1 import pricing_pb2
from services.pricing.market import QuoteColumns

_QUOTES_TAG = b"\x22"  # field 4, wire type 2
_UINT64 = (1 << 64) - 1

# Quote fields 2-8, 12, 13 (doubles, wire type 1) and 9 (tier, varint), as one
# packed record per quote: tag byte, value.
_FIXED_FIELDS: tuple[tuple[str, int], ...] = (
    ("price", 2),
    ("volume_24h", 3),
    ("change_24h_pct", 4),
    ("high_24h", 5),
    ("low_24h", 6),
    ("market_cap", 7),
    ("fdv", 8),
    ("quote_volume_24h", 12),
    ("open_24h", 13),
)
_FIXED = np.dtype(
    [item for name, _ in _FIXED_FIELDS for item in ((f"{name}_tag", "u1"), (name, "<f8"))]
    + [("tier_tag", "u1"), ("tier", "u1")]
)
_SEQUENCE_TAG = b"\x50"  # field 10, varint
_TIME_TAG = b"\x5a"  # field 11, length-delimited Timestamp
_SECONDS_TAG = b"\x08"  # Timestamp.seconds
_NANOS_TAG = b"\x10"  # Timestamp.nanos
_TIERS = 128  # tier values that fit the record's one varint byte


def varint(value: int) -> bytes:
    """Base-128 varint; negative values as their 64-bit two's complement."""
    value &= _UINT64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# Varints of the small numbers that lengths are, precomputed.
_SMALL = [varint(i) for i in range(1 << 14)]
# Timestamp.nanos of a millisecond time, by time_ms % 1000 (0 is left out).
_NANOS_FIELD = [b""] + [_NANOS_TAG + varint(ms * 1_000_000) for ms in range(1, 1000)]


def quote_entry(quote: pricing_pb2.Quote) -> bytes:
    """A Quote encoded as one `quotes` entry of StreamQuotesResponse."""
    body = quote.SerializeToString()
    return _QUOTES_TAG + varint(len(body)) + body


def symbol_field(symbol: str) -> bytes:
    """Quote.symbol (field 1) as encoded bytes, to be computed once per asset."""
    data = symbol.encode()
    return b"\x0a" + varint(len(data)) + data


def quote_entries(
    cols: QuoteColumns, rows: np.ndarray, symbol_fields: Sequence[bytes]
) -> list[bytes]:
    """`quotes` entries for `rows` of `cols`, each parsing to the same Quote as
    `quote_entry(quote_from_columns(symbol, cols, row))`.

    `symbol_fields[sid]` is `symbol_field(symbol of sid)`."""
    n = len(rows)
    if n == 0:
        return []
    tiers = cols.tier[rows]
    if tiers.min() < 0 or tiers.max() >= _TIERS:
        raise ValueError("tier out of range for the packed encoding")
    fixed = np.empty(n, dtype=_FIXED)
    for name, number in _FIXED_FIELDS:
        fixed[f"{name}_tag"] = (number << 3) | 1
        fixed[name] = getattr(cols, name)[rows]
    fixed["tier_tag"] = 9 << 3
    fixed["tier"] = tiers
    block = fixed.tobytes()
    width = _FIXED.itemsize

    seq_fields: dict[int, bytes] = {}
    second_fields: dict[int, bytes] = {}
    nanos_fields = _NANOS_FIELD
    small = _SMALL
    out = []
    for i, sid, sequence, time_ms in zip(
        range(n),
        cols.sids[rows].tolist(),
        cols.sequence[rows].tolist(),
        cols.time_ms[rows].tolist(),
        strict=True,
    ):
        seq_field = seq_fields.get(sequence)
        if seq_field is None:
            seq_field = seq_fields[sequence] = _SEQUENCE_TAG + varint(sequence)
        seconds, ms = divmod(time_ms, 1000)
        seconds_field = second_fields.get(seconds)
        if seconds_field is None:
            seconds_field = second_fields[seconds] = (
                _SECONDS_TAG + varint(seconds) if seconds else b""
            )
        nanos_field = nanos_fields[ms]
        timestamp = _TIME_TAG + small[len(seconds_field) + len(nanos_field)]
        body = b"".join(
            (
                symbol_fields[sid],
                block[i * width : (i + 1) * width],
                seq_field,
                timestamp,
                seconds_field,
                nanos_field,
            )
        )
        size = len(body)
        out.append(_QUOTES_TAG + (small[size] if size < 16384 else varint(size)) + body)
    return out


def stream_message(
    sequence: int, entries: Iterable[bytes], *, snapshot: bool = False, heartbeat: bool = False
) -> bytes:
    # The header fields as SerializeToString writes them (zero values left out).
    parts = [b"\x08" + varint(sequence)] if sequence else [b""]
    if snapshot:
        parts.append(b"\x10\x01")
    if heartbeat:
        parts.append(b"\x18\x01")
    parts.extend(entries)
    return b"".join(parts)
