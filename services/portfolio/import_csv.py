"""Import a CSV file of transactions into a portfolio over gRPC.

    python -m services.portfolio.import_csv FILE --portfolio ID
        [--address HOST:PORT] [--token TOKEN] [--batch 5000] [--dry-run] [--strict]

Rows are streamed to ``PortfolioService.ImportTransactions`` in messages of
``--batch`` rows (the first carries the portfolio id) with a progress bar on
stderr. On stdout: the rows that fail the local checks as they are read, then
every row the service rejected, then a summary (accepted, duplicates,
rejected, local parse errors); each problem as ``line N: field: reason``,
N being the line of the file the row starts on. Running the same file again
is safe: rows already in come back as duplicates.

Options:
  --address   the portfolio service (default ``$MM_PORTFOLIO_ADDR``, else
              127.0.0.1:50053).
  --token     the bearer token of the portfolio's owner, sent as
              ``authorization: Bearer <token>``. Prefer ``MM_TOKEN=...`` in the
              environment: a command-line argument is visible to other users
              of the machine.
  --batch     rows per stream message (default 5,000).
  --dry-run   read and check the file, send nothing.
  --strict    send nothing if any row fails the local checks.

The file (UTF-8, a byte-order mark is ignored) has a header row; column names
are case-insensitive and may come in any order; an unknown column is an error
that names it. Only ``time``, ``kind``, ``asset`` and ``quantity`` are required:

  time                   ISO 8601 with an offset or Z (2024-01-05T10:00:00Z,
                         2024-01-05 11:00:00.5+01:00), or epoch seconds
                         (1704448800, 1704448800.25)
  kind                   buy, sell, swap, spend, income, transfer, gift_in, gift_out
  asset, quantity        "BTC", "0.5"
  price, value           per unit / total in the base currency
  fee_asset, fee_amount, fee_value
  wallet, to_wallet      to_wallet: the receiving wallet of a transfer
  to_asset, to_quantity  what a swap received
  income_kind            staking, mining, airdrop, interest, other
  lots                   the lots a sale consumes: lotid:qty;lotid:qty
  note
  client_transaction_id  the row's id in the ledger; empty: derived from the row

Amounts go to the service as written (surrounding spaces stripped); it checks
them. A row without a client_transaction_id gets a stable derived id (see
:mod:`services.portfolio.csv_rows`): an unchanged row keeps its id from run to
run, identical rows get different ids, and editing a row changes only its
own id, so after fixing rejected rows a re-run imports just those. The
importer only adds: a row that was accepted and then edited in the file is
imported as a new transaction next to the old one (delete that with
DeleteTransaction).

Rows that cannot be read locally (a bad time, an unknown kind, a malformed
``lots``, a wrong number of fields) are printed with their line number and not
sent; the others are (``--strict``: nothing is). The file is read twice: once
to count rows (the progress bar's total) and find repeated rows, once to
send; only one message's rows are held in memory at a time.

Exit status: 0 when every row was accepted or already in; 1 when some rows
were rejected, by the service or by the local checks; 2 for usage errors (bad
arguments, unreadable file or header) and gRPC errors (the status code and
details are printed: UNAVAILABLE when the service is not reachable,
UNAUTHENTICATED for a missing or wrong token, NOT_FOUND for another owner's
or a missing portfolio).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import csv
import os
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from tqdm import tqdm

from marketmesh.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.common.cli import (
    EXIT_INTERRUPTED,
    TOKEN_ENV,
    address_arg,
    bearer_metadata,
    resolve_token,
)
from services.portfolio.csv_rows import HeaderError, RowError, Scan, parse_rows, scan

DEFAULT_ADDRESS = "127.0.0.1:50053"
DEFAULT_BATCH = 5_000
ADDRESS_ENV = "MM_PORTFOLIO_ADDR"
EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2


class LineMap:
    """Stream position (0-based row over all messages) -> line in the file.

    Lines run ahead of positions by the header, blank lines, multi-line cells
    and rows not sent; the offset changes only there, so only the changes are
    kept (constant memory for a clean file).
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._offsets: list[int] = []

    def add(self, row: int, line: int) -> None:
        """Record that stream row ``row`` (added in order) is file line ``line``."""
        offset = line - row
        if not self._offsets or self._offsets[-1] != offset:
            self._starts.append(row)
            self._offsets.append(offset)

    def __len__(self) -> int:
        """How many offset changes are kept."""
        return len(self._starts)

    def line(self, row: int) -> int | None:
        at = bisect.bisect_right(self._starts, row) - 1
        return None if at < 0 else row + self._offsets[at]


@dataclass
class _Stream:
    """The request messages of one file, and what became of its rows on the way."""

    path: Path
    portfolio_id: str
    batch: int
    repeated: Collection[int]
    bar: tqdm
    lines: LineMap = field(default_factory=LineMap)
    sent: int = 0
    local_errors: int = 0

    def requests(self) -> Iterator[portfolio_pb2.ImportTransactionsRequest]:
        pending: list[portfolio_pb2.Transaction] = []
        first = True
        with self.path.open(newline="", encoding="utf-8-sig") as lines:
            for item in parse_rows(lines, self.repeated):
                if isinstance(item, RowError):
                    self.local_errors += 1
                    self.bar.write(str(item), file=sys.stdout)
                    continue
                self.lines.add(self.sent + len(pending), item.line)
                pending.append(item.transaction)
                if len(pending) == self.batch:
                    yield self._message(pending, first)
                    first = False
                    pending = []
        if pending or first:
            # An empty first message still names the portfolio, so a file with
            # no sendable row checks the portfolio and the token all the same.
            yield self._message(pending, first)
        self.bar.update(self.bar.total - self.bar.n)

    def _message(
        self, rows: list[portfolio_pb2.Transaction], first: bool
    ) -> portfolio_pb2.ImportTransactionsRequest:
        self.sent += len(rows)
        self.bar.update(self.sent + self.local_errors - self.bar.n)
        return portfolio_pb2.ImportTransactionsRequest(
            portfolio_id=self.portfolio_id if first else "", transactions=rows
        )


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.portfolio.import_csv",
        description="Import a CSV file of transactions into a portfolio (safe to re-run).",
        epilog="The file format is in the module's docstring "
        "(python -c 'import services.portfolio.import_csv as m; help(m)').",
    )
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument("--portfolio", required=True, help="the portfolio id")
    parser.add_argument(
        "--address",
        type=address_arg,
        default=os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS,
        help=f"portfolio service host:port (default ${ADDRESS_ENV} or {DEFAULT_ADDRESS})",
    )
    parser.add_argument("--token", help=f"bearer token (default ${TOKEN_ENV}; prefer the variable)")
    parser.add_argument(
        "--batch",
        type=_batch_size,
        default=DEFAULT_BATCH,
        help=f"rows per stream message (default {DEFAULT_BATCH})",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the file, send nothing")
    parser.add_argument(
        "--strict", action="store_true", help="send nothing if any row fails the local checks"
    )
    return parser


def _print_local_errors(errors: Sequence[RowError]) -> None:
    for error in errors:
        print(error)


async def _send(args: argparse.Namespace, token: str, first_pass: Scan) -> int:
    metadata = bearer_metadata(token)
    with tqdm(total=first_pass.rows, unit="row", desc=args.file.name, file=sys.stderr) as bar:
        stream = _Stream(args.file, args.portfolio, args.batch, first_pass.repeated, bar)
        async with grpc.aio.insecure_channel(args.address) as channel:
            stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)
            try:
                response = await stub.ImportTransactions(stream.requests(), metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                bar.close()
                print(f"{args.file}: {exc.code().name}: {exc.details()}", file=sys.stderr)
                return EXIT_ERROR
    rejected = sorted(
        (r for r in response.results if r.status == portfolio_pb2.IMPORT_ROW_STATUS_REJECTED),
        key=lambda r: r.row,
    )
    for result in rejected:
        line = stream.lines.line(result.row)
        where = f"line {line}" if line is not None else f"row {result.row}"
        print(
            f"{where}: {result.field}: {result.reason}"
            if result.field
            else f"{where}: {result.reason}"
        )
    print(
        f"{args.file}: {first_pass.rows} rows: {response.accepted} accepted, "
        f"{response.duplicates} duplicates, {response.rejected} rejected, "
        f"{stream.local_errors} local parse errors (not sent)"
    )
    return EXIT_REJECTED if response.rejected or stream.local_errors else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (or --help)
        return int(exc.code or 0)
    token = resolve_token(args.token)
    try:
        with args.file.open(newline="", encoding="utf-8-sig") as lines:
            first_pass = scan(lines, validate=args.strict or args.dry_run)
    except HeaderError as exc:
        print(f"{args.file}: header: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except UnicodeDecodeError as exc:
        print(f"{args.file}: cannot read: {exc} (save the file as UTF-8)", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, csv.Error) as exc:
        print(f"{args.file}: cannot read: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.dry_run or (args.strict and first_pass.errors):
        _print_local_errors(first_pass.errors)
        errors = len(first_pass.errors)
        print(
            f"{args.file}: {first_pass.rows} rows: {first_pass.rows - errors} to send, "
            f"{errors} local parse errors; nothing sent"
            + (" (--dry-run)" if args.dry_run else " (--strict)")
        )
        return EXIT_REJECTED if errors else EXIT_OK
    try:
        return asyncio.run(_send(args, token, first_pass))
    except KeyboardInterrupt:
        print(
            f"{args.file}: interrupted; a re-run skips the rows already in",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
