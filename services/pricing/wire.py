"""Hand-assembled StreamQuotesResponse bytes.

Each quote is serialised once per change and reused for every subscriber: a
protobuf message is the concatenation of its fields, so a response is its
header fields followed by pre-encoded `quotes` entries (field 4, length-
delimited). Parsing the result with StreamQuotesResponse.FromString gives
exactly the message the fields describe.
"""

from collections.abc import Iterable

from marketmesh.v1 import pricing_pb2

_QUOTES_TAG = b"\x22"  # field 4, wire type 2


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def quote_entry(quote: pricing_pb2.Quote) -> bytes:
    """A Quote encoded as one `quotes` entry of StreamQuotesResponse."""
    body = quote.SerializeToString()
    return _QUOTES_TAG + varint(len(body)) + body


def stream_message(
    sequence: int, entries: Iterable[bytes], *, snapshot: bool = False, heartbeat: bool = False
) -> bytes:
    header = pricing_pb2.StreamQuotesResponse(
        sequence=sequence, snapshot=snapshot, heartbeat=heartbeat
    ).SerializeToString()
    return header + b"".join(entries)
