"""CSV rows -> ``Transaction`` messages for ``PortfolioService.ImportTransactions``.

Pure functions over lines of text (no I/O, no gRPC): the command-line importer
(:mod:`services.portfolio.import_csv`) reads the file and streams what these
return. The format is documented there.

Locally only what cannot be put in a message is refused: a time that is not
a time, a kind or income kind that does not exist, a ``lots`` cell that is
not ``lotid:qty;...``, a row with the wrong number of fields. Amounts are
passed through as written (surrounding spaces stripped), so the service
validates them once, with the same rules as for every other caller.

Rows without a ``client_transaction_id`` get a stable derived one, so that
running the same file again skips the rows already in: ``"csv:"`` and the
first 32 hex digits of ``sha256(content + "#" + n)``, where ``content`` is
the row's normalised content (:func:`row_content`) and ``n`` the number of
rows with the same content earlier in the file. Identical rows (two equal
buys on one day) therefore get different ids, and editing a row gives it a
new id while every other row keeps an id the ledger already has for the same
content (among identical copies the later ones shift down by one), so a
re-run after a fix sends everything but the edited rows back as duplicates.
"""

from __future__ import annotations

import csv
import hashlib
import re
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from marketmesh.v1 import portfolio_pb2

# Also the order of the normalised content that derived ids hash: changing
# it (or adding a column anywhere but at the end) changes every derived id,
# and a re-run of an old file would then import everything twice.
COLUMNS: tuple[str, ...] = (
    "time",
    "kind",
    "asset",
    "quantity",
    "price",
    "value",
    "fee_asset",
    "fee_amount",
    "fee_value",
    "wallet",
    "to_wallet",
    "to_asset",
    "to_quantity",
    "income_kind",
    "lots",
    "note",
    "client_transaction_id",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("time", "kind", "asset", "quantity")

KINDS: Mapping[str, int] = {
    "buy": portfolio_pb2.TRANSACTION_KIND_BUY,
    "sell": portfolio_pb2.TRANSACTION_KIND_SELL,
    "swap": portfolio_pb2.TRANSACTION_KIND_SWAP,
    "spend": portfolio_pb2.TRANSACTION_KIND_SPEND,
    "income": portfolio_pb2.TRANSACTION_KIND_INCOME,
    "transfer": portfolio_pb2.TRANSACTION_KIND_TRANSFER,
    "gift_in": portfolio_pb2.TRANSACTION_KIND_GIFT_IN,
    "gift_out": portfolio_pb2.TRANSACTION_KIND_GIFT_OUT,
}
INCOME_KINDS: Mapping[str, int] = {
    "staking": portfolio_pb2.INCOME_KIND_STAKING,
    "mining": portfolio_pb2.INCOME_KIND_MINING,
    "airdrop": portfolio_pb2.INCOME_KIND_AIRDROP,
    "interest": portfolio_pb2.INCOME_KIND_INTEREST,
    "other": portfolio_pb2.INCOME_KIND_OTHER,
}
# Enumerations are case-insensitive, so their case is not part of a row's content.
_CASE_FREE = frozenset({"kind", "income_kind"})

ID_PREFIX = "csv:"
ID_HEX_DIGITS = 32

# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_SECONDS = re.compile(r"[+-]?\d+(?:\.\d+)?")
# A fraction of a second, only after a full hh:mm:ss (basic or extended form):
# it is read here to the nanosecond, since datetime keeps only microseconds.
_SECOND_FRACTION = re.compile(r"(\d{2}:?\d{2}:?\d{2})[.,](\d+)")
_NANOS_PER_SECOND = 1_000_000_000


class HeaderError(ValueError):
    """The header row is missing or names columns the format does not have."""


@dataclass(frozen=True)
class RowError:
    """A row that cannot be sent: its 1-based line in the file, the column, why."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class RawRow:
    """One CSV record: the line it starts on and its cells by column (stripped)."""

    line: int
    values: Mapping[str, str]


@dataclass(frozen=True)
class ParsedRow:
    line: int
    transaction: portfolio_pb2.Transaction


class _CellError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def read_header(cells: Sequence[str]) -> tuple[str, ...]:
    """The header's column names, normalised (stripped, lower case).

    Unknown, repeated and missing required columns are a HeaderError naming
    them all: a misspelt column would otherwise be dropped from every row.
    """
    names = tuple(cell.strip().lower() for cell in cells)
    problems: list[str] = []
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        problems.append(
            f"unknown column(s) {', '.join(repr(n) for n in unknown)} (known: {', '.join(COLUMNS)})"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repr(n) for n in repeated)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    if problems:
        raise HeaderError("; ".join(problems))
    return names


def read_rows(lines: Iterable[str]) -> Iterator[RawRow | RowError]:
    """The records of a CSV text (header first), in file order.

    ``lines`` as from ``open(path, newline="")``. Blank lines are not rows. A
    record with more or fewer cells than the header is a RowError (a shifted
    cell would put a quantity in the price). Raises HeaderError for a bad or
    missing header.
    """
    reader = csv.reader(lines)
    header: tuple[str, ...] | None = None
    while header is None:
        cells = next(reader, None)
        if cells is None:
            raise HeaderError("the file is empty: a header row is required")
        if any(cell.strip() for cell in cells):
            header = read_header(cells)
    width = len(header)
    end = reader.line_num
    for cells in reader:
        # A quoted cell may span lines: the record starts after the previous one ended.
        line, end = end + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            yield RowError(line, "row", f"has {len(cells)} fields; the header has {width}")
            continue
        yield RawRow(line, {name: cell.strip() for name, cell in zip(header, cells, strict=True)})


def row_content(values: Mapping[str, str]) -> str:
    """A row's normalised content: every column in :data:`COLUMNS` order, cells
    stripped, an absent column as "", ``kind`` and ``income_kind`` in lower
    case, as a compact JSON array of strings (``json.dumps(cells,
    ensure_ascii=False, separators=(",", ":"))``). The order of the file's
    columns and the case of its header do not change it."""
    cells = []
    for name in COLUMNS:
        cell = values.get(name, "").strip()
        # encode_basestring is the per-string step of that json.dumps, in C.
        cells.append(encode_basestring(cell.lower() if name in _CASE_FREE else cell))
    return "[" + ",".join(cells) + "]"


def _digest(content: str, seen_before: int) -> bytes:
    return hashlib.sha256(f"{content}#{seen_before}".encode()).digest()


def content_key(values: Mapping[str, str]) -> bytes:
    """What "identical rows" compares: the digest behind the id of the first
    row with this content (one hash per row serves both)."""
    return _digest(row_content(values), 0)


def _key_prefix(key: bytes) -> int:
    return int.from_bytes(key[:8], "little")


def _id(digest: bytes) -> str:
    return ID_PREFIX + digest.hex()[:ID_HEX_DIGITS]


def derived_id(content: str, seen_before: int) -> str:
    """``csv:`` + 32 hex digits of sha256(content + "#" + seen_before)."""
    return _id(_digest(content, seen_before))


class IdAssigner:
    """Derived ids in file order, counting identical rows seen so far.

    ``repeated`` (from :func:`scan`) lists the 64-bit key prefixes that occur
    more than once in the file; only those rows are counted, so memory grows
    with the repeated rows rather than with the file. None counts every row.
    """

    def __init__(self, repeated: Collection[int] | None = None) -> None:
        self._repeated = repeated
        self._seen: Counter[bytes] = Counter()

    def assign(self, values: Mapping[str, str]) -> str:
        content = row_content(values)
        key = _digest(content, 0)
        if self._repeated is not None and _key_prefix(key) not in self._repeated:
            return _id(key)
        seen_before = self._seen[key]
        self._seen[key] = seen_before + 1
        return _id(key) if seen_before == 0 else derived_id(content, seen_before)


def parse_time(text: str) -> Timestamp:
    """ISO 8601 with a UTC offset or Z (``2024-01-05T10:00:00Z``,
    ``2024-01-05 11:00:00.5+01:00``), or epoch seconds (``1704448800``,
    ``1704448800.25``), to the nanosecond. Raises ValueError with the reason."""
    raw = text.strip()
    if not raw:
        raise ValueError("is required")
    if _EPOCH_SECONDS.fullmatch(raw):
        total_nanos = Decimal(raw) * _NANOS_PER_SECOND
        if total_nanos != total_nanos.to_integral_value():
            raise ValueError(f"{text!r} has more than 9 digits after the point")
        seconds, nanos = divmod(int(total_nanos), _NANOS_PER_SECOND)
        if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
            raise ValueError(
                f"{text!r} is out of range for epoch seconds (milliseconds? divide by 1000)"
            )
        return Timestamp(seconds=seconds, nanos=nanos)
    nanos = 0
    fraction = _SECOND_FRACTION.search(raw)
    if fraction is not None:
        digits = fraction.group(2)
        if len(digits) > 9:
            raise ValueError(f"{text!r} has more than 9 fractional digits of a second")
        nanos = int(digits.ljust(9, "0"))
        raw = raw[: fraction.end(1)] + raw[fraction.end(2) :]
    if raw.endswith("z"):
        raw = raw[:-1] + "Z"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time with an offset "
            "(2024-01-05T10:00:00Z, 2024-01-05T11:00:00+01:00) or epoch seconds"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +hh:mm)")
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise ValueError(f"{text!r} is out of range")
    return Timestamp(seconds=seconds, nanos=nanos)


def parse_lots(text: str) -> list[portfolio_pb2.LotSelection]:
    """``"lotid:qty;lotid:qty"`` -> LotSelections; "" is none. The last colon
    splits, so a lot id may contain colons; quantities pass through."""
    lots = []
    for raw_entry in text.split(";"):
        entry = raw_entry.strip()
        if not entry:
            continue
        lot_id, colon, quantity = entry.rpartition(":")
        if not colon or not lot_id.strip() or not quantity.strip():
            raise ValueError(f"{entry!r} is not lotid:quantity (entries separated by ';')")
        lots.append(portfolio_pb2.LotSelection(lot_id=lot_id.strip(), quantity=quantity.strip()))
    return lots


def _enum(values: Mapping[str, str], name: str, choices: Mapping[str, int]) -> int:
    cell = values.get(name, "").lower()
    if not cell:
        return 0
    if cell not in choices:
        raise _CellError(name, f"{cell!r} is not one of {', '.join(choices)}")
    return choices[cell]


def to_transaction(
    values: Mapping[str, str], client_transaction_id: str
) -> portfolio_pb2.Transaction:
    """One row's cells (normalised names, stripped) as a Transaction.

    Raises _CellError naming the column for what cannot be represented.
    """
    try:
        time = parse_time(values.get("time", ""))
    except ValueError as exc:
        raise _CellError("time", str(exc)) from None
    if not values.get("kind", ""):
        raise _CellError("kind", f"is required (one of {', '.join(KINDS)})")
    try:
        lots = parse_lots(values.get("lots", ""))
    except ValueError as exc:
        raise _CellError("lots", str(exc)) from None
    transaction = portfolio_pb2.Transaction(
        kind=_enum(values, "kind", KINDS),  # type: ignore[arg-type]
        time=time,
        asset=values.get("asset", ""),
        quantity=values.get("quantity", ""),
        price=values.get("price", ""),
        value=values.get("value", ""),
        wallet=values.get("wallet", ""),
        to_wallet=values.get("to_wallet", ""),
        to_asset=values.get("to_asset", ""),
        to_quantity=values.get("to_quantity", ""),
        income_kind=_enum(values, "income_kind", INCOME_KINDS),  # type: ignore[arg-type]
        lots=lots,
        note=values.get("note", ""),
        client_transaction_id=client_transaction_id,
    )
    fee = portfolio_pb2.Fee(
        asset=values.get("fee_asset", ""),
        amount=values.get("fee_amount", ""),
        value=values.get("fee_value", ""),
    )
    if fee.asset or fee.amount or fee.value:
        transaction.fee.CopyFrom(fee)
    return transaction


def parse_rows(
    lines: Iterable[str], repeated: Collection[int] | None = None
) -> Iterator[ParsedRow | RowError]:
    """Every record of the file as a ParsedRow, or a RowError, in file order.

    ``repeated`` is :attr:`Scan.repeated` of the same file (see IdAssigner).
    Raises HeaderError for a bad header.
    """
    ids = IdAssigner(repeated)
    for row in read_rows(lines):
        if isinstance(row, RowError):
            yield row
            continue
        # Every row takes its place in the count, even one that fails to parse,
        # so fixing a broken row later does not change its identical successors' ids.
        derived = ids.assign(row.values)
        try:
            transaction = to_transaction(
                row.values, row.values.get("client_transaction_id", "") or derived
            )
        except _CellError as exc:
            yield RowError(row.line, exc.field, exc.reason)
            continue
        yield ParsedRow(row.line, transaction)


@dataclass(frozen=True)
class Scan:
    """A first pass over a file: its row count and the keys that repeat."""

    rows: int
    repeated: frozenset[int]
    errors: list[RowError] = field(default_factory=list)


def scan(lines: Iterable[str], *, validate: bool = False) -> Scan:
    """Count the rows (records, including those that will fail) and find the
    content keys that occur more than once, holding 8 bytes per row.

    With ``validate`` every row is also parsed and the RowErrors collected.
    """
    prefixes = array("Q")
    errors: list[RowError] = []
    rows = 0
    for row in read_rows(lines):
        rows += 1
        if isinstance(row, RowError):
            if validate:
                errors.append(row)
            continue
        prefixes.append(_key_prefix(content_key(row.values)))
        if validate:
            try:
                to_transaction(row.values, "")
            except _CellError as exc:
                errors.append(RowError(row.line, exc.field, exc.reason))
    ordered = np.sort(np.frombuffer(prefixes, dtype=np.uint64)) if prefixes else np.empty(0)
    again = ordered[1:][ordered[1:] == ordered[:-1]]
    return Scan(rows=rows, repeated=frozenset(int(p) for p in np.unique(again)), errors=errors)
