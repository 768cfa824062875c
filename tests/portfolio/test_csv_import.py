"""The CSV importer: rows -> Transactions (services.portfolio.csv_rows) and the
command line (services.portfolio.import_csv) against a fake PortfolioService.

The fake is a real grpc.aio server on port 0 that answers ImportTransactions
the way the contract says the real one does: a result per row (0-based over
the stream), ACCEPTED for a new client_transaction_id, DUPLICATE for one
already in with the same content, REJECTED for rows it is told to reject (by
asset) and for ids reused with other content. Expected values are worked out
by hand (epoch seconds, line numbers) or from the documented id formula.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from tqdm import tqdm

from marketmesh.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.portfolio import csv_rows, import_csv
from services.portfolio.csv_rows import HeaderError, ParsedRow, RowError

PORTFOLIO = "pf-1"
TOKEN = "tok-0123456789abcdef"
Tx = portfolio_pb2.Transaction


def parse(text: str, repeated: frozenset[int] | None = None) -> list[ParsedRow | RowError]:
    return list(csv_rows.parse_rows(text.splitlines(keepends=True), repeated))


def parsed(text: str) -> list[Tx]:
    out = []
    for item in parse(text):
        assert isinstance(item, ParsedRow), item
        out.append(item.transaction)
    return out


def ids(text: str) -> list[str]:
    return [t.client_transaction_id for t in parsed(text)]


# --- parsing ---------------------------------------------------------------


def test_every_column() -> None:
    header = (
        "time,kind,asset,quantity,price,value,fee_asset,fee_amount,fee_value,wallet,"
        "to_wallet,to_asset,to_quantity,income_kind,lots,note,client_transaction_id\n"
    )
    row = (
        "2024-03-01T12:30:45Z,swap, ETH ,1.50,3000.10,4500.15,ETH,0.001,3.0001,ledger,"
        'cold,BTC,0.07,other,L1:0.5; tx-9.2:1.0 ,"fee, paid",my-id-1\n'
    )
    [tx] = parsed(header + row)
    expected = Tx(
        kind=portfolio_pb2.TRANSACTION_KIND_SWAP,
        time=Timestamp(seconds=1_709_296_245),  # 2024-01-01 is 1704067200; + 60 days + 12:30:45
        asset="ETH",
        quantity="1.50",
        price="3000.10",
        value="4500.15",
        fee=portfolio_pb2.Fee(asset="ETH", amount="0.001", value="3.0001"),
        wallet="ledger",
        to_wallet="cold",
        to_asset="BTC",
        to_quantity="0.07",
        income_kind=portfolio_pb2.INCOME_KIND_OTHER,
        lots=[
            portfolio_pb2.LotSelection(lot_id="L1", quantity="0.5"),
            portfolio_pb2.LotSelection(lot_id="tx-9.2", quantity="1.0"),
        ],
        note="fee, paid",
        client_transaction_id="my-id-1",
    )
    assert tx == expected


def test_minimal_columns_leave_the_rest_unset() -> None:
    [tx] = parsed("time,kind,asset,quantity\n1704067200,buy,BTC,2\n")
    assert not tx.HasField("fee")
    assert (tx.price, tx.value, tx.wallet, tx.note, len(tx.lots)) == ("", "", "", "", 0)
    assert tx.income_kind == portfolio_pb2.INCOME_KIND_UNSPECIFIED


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        ("buy", portfolio_pb2.TRANSACTION_KIND_BUY),
        ("sell", portfolio_pb2.TRANSACTION_KIND_SELL),
        ("swap", portfolio_pb2.TRANSACTION_KIND_SWAP),
        ("spend", portfolio_pb2.TRANSACTION_KIND_SPEND),
        ("income", portfolio_pb2.TRANSACTION_KIND_INCOME),
        ("transfer", portfolio_pb2.TRANSACTION_KIND_TRANSFER),
        ("gift_in", portfolio_pb2.TRANSACTION_KIND_GIFT_IN),
        ("gift_out", portfolio_pb2.TRANSACTION_KIND_GIFT_OUT),
        (" GIFT_Out ", portfolio_pb2.TRANSACTION_KIND_GIFT_OUT),
    ],
)
def test_each_kind(cell: str, kind: int) -> None:
    [tx] = parsed(f"time,kind,asset,quantity\n1704067200,{cell},BTC,1\n")
    assert tx.kind == kind


@pytest.mark.parametrize(
    ("cell", "income_kind"),
    [
        ("staking", portfolio_pb2.INCOME_KIND_STAKING),
        ("Mining", portfolio_pb2.INCOME_KIND_MINING),
        ("airdrop", portfolio_pb2.INCOME_KIND_AIRDROP),
        ("interest", portfolio_pb2.INCOME_KIND_INTEREST),
        ("other", portfolio_pb2.INCOME_KIND_OTHER),
    ],
)
def test_each_income_kind(cell: str, income_kind: int) -> None:
    [tx] = parsed(f"time,kind,asset,quantity,income_kind\n1704067200,income,ETH,1,{cell}\n")
    assert tx.income_kind == income_kind


# 2024-03-01T12:30:45Z: 1704067200 (2024-01-01) + 60 days (31 + 29) * 86400 + 45045 s.
T = 1_709_296_245


@pytest.mark.parametrize(
    ("cell", "seconds", "nanos"),
    [
        ("2024-03-01T12:30:45Z", T, 0),
        ("2024-03-01T12:30:45z", T, 0),
        ("2024-03-01T12:30:45+00:00", T, 0),
        ("2024-03-01 14:30:45+02:00", T, 0),
        ("2024-03-01T07:00:45-05:30", T, 0),
        ("20240301T123045Z", T, 0),
        ("2024-03-01T12:30Z", T - 45, 0),
        ("2024-03-01T12:30:45.5Z", T, 500_000_000),
        ("2024-03-01T12:30:45,25Z", T, 250_000_000),
        ("2024-03-01T12:30:45.123456789Z", T, 123_456_789),
        (str(T), T, 0),
        (f"{T}.000000001", T, 1),
        (f"{T}.75", T, 750_000_000),
        ("0", 0, 0),
        ("-1.5", -2, 500_000_000),
    ],
)
def test_times(cell: str, seconds: int, nanos: int) -> None:
    assert csv_rows.parse_time(cell) == Timestamp(seconds=seconds, nanos=nanos)


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("", "required"),
        ("2024-03-01T12:30:45", "no UTC offset"),
        ("2024-03-01", "no UTC offset"),
        (f"{T}000", "milliseconds"),  # epoch ms
        ("yesterday", "ISO 8601"),
        ("2024-13-01T00:00:00Z", "ISO 8601"),
        ("2024-03-01T12:30:45.1234567891Z", "9 fractional digits"),
        (f"{T}.1234567891", "9 digits"),
    ],
)
def test_bad_times(cell: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        csv_rows.parse_time(cell)


def test_amounts_pass_through_as_written() -> None:
    [tx] = parsed("time,kind,asset,quantity,price\n0,buy,BTC,  0.000000000000000000001 , 1e5 \n")
    # The service validates precision and notation; nothing is rounded or refused here.
    assert (tx.quantity, tx.price) == ("0.000000000000000000001", "1e5")


def test_header_case_and_order_do_not_matter() -> None:
    a = parsed("time,kind,asset,quantity,note\n0,buy,BTC,1,x\n")
    b = parsed(" Note ,QUANTITY,Asset,Kind,TIME\nx,1,BTC,BUY,0\n")
    assert a == b


def test_unknown_columns_are_named() -> None:
    with pytest.raises(HeaderError, match=r"unknown column\(s\) 'qty', 'fees'"):
        parse("time,kind,asset,quantity,qty,fees\n0,buy,BTC,1,1,1\n")


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("time,kind,asset\n", r"missing required column\(s\) quantity"),
        ("time,kind,asset,quantity,Asset\n", r"repeated column\(s\) 'asset'"),
        ("", "empty"),
        ("\n\n", "empty"),
    ],
)
def test_bad_headers(header: str, words: str) -> None:
    with pytest.raises(HeaderError, match=words):
        parse(header)


def test_local_errors_carry_their_line_numbers() -> None:
    text = (
        "time,kind,asset,quantity,note,lots\n"  # 1
        "0,buy,BTC,1,,\n"  # 2
        "\n"  # 3: blank, not a row
        'soon,buy,BTC,1,"two\n'  # 4: bad time, a note over two lines
        'lines",\n'  # 5
        "0,borrow,BTC,1,,\n"  # 6: unknown kind
        "0,,BTC,1,,\n"  # 7: no kind
        "0,sell,BTC,1,,L1-0.5\n"  # 8: lots without a colon
        "0,sell,BTC,1\n"  # 9: too few fields
        "0,buy,BTC,1,,,extra\n"  # 10: too many
        "0,income,BTC,1,,\n"  # 11: fine
    )
    items = parse(text)
    errors = [(e.line, e.field) for e in items if isinstance(e, RowError)]
    assert errors == [(4, "time"), (6, "kind"), (7, "kind"), (8, "lots"), (9, "row"), (10, "row")]
    assert [p.line for p in items if isinstance(p, ParsedRow)] == [2, 11]
    unknown = next(e for e in items if isinstance(e, RowError) and e.line == 6)
    assert "borrow" in unknown.reason and "gift_out" in unknown.reason
    assert str(unknown).startswith("line 6: kind: ")


def test_bad_income_kind_is_a_local_error() -> None:
    [error] = parse("time,kind,asset,quantity,income_kind\n0,income,ETH,1,lottery\n")
    assert isinstance(error, RowError)
    assert (error.line, error.field) == (2, "income_kind")


# --- derived client_transaction_ids ------------------------------------------

ROW = "2024-01-01T00:00:00Z,BUY,BTC,0.5\n"
HEADER = "time,kind,asset,quantity\n"


def test_derived_id_follows_the_documented_formula() -> None:
    # Pinned by hand: a change here makes every re-run of an old file import it twice.
    content = '["2024-01-01T00:00:00Z","buy","BTC","0.5"' + ',""' * 13 + "]"
    first = "csv:" + hashlib.sha256(f"{content}#0".encode()).hexdigest()[:32]
    second = "csv:" + hashlib.sha256(f"{content}#1".encode()).hexdigest()[:32]
    assert ids(HEADER + ROW + ROW) == [first, second]


def test_derived_ids_are_stable_across_processes() -> None:
    text = HEADER + ROW + ROW + "0,sell,ETH,3\n"
    script = (
        "import sys, services\n"
        "from services.portfolio.csv_rows import parse_rows\n"
        "print(' '.join(r.transaction.client_transaction_id"
        " for r in parse_rows(sys.stdin.read().splitlines(keepends=True))))\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.split()
        for seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1] == ids(text)
    assert len(set(outputs[0])) == 3


def test_identical_rows_get_distinct_ids_and_edits_change_only_their_row() -> None:
    other = "2024-01-02T00:00:00Z,sell,BTC,0.1\n"
    before = ids(HEADER + ROW + other + ROW + ROW)
    assert len(set(before)) == 4
    assert all(i.startswith("csv:") and len(i) == 36 for i in before)
    # Edit the middle copy of ROW: the first keeps its id, the last copy is
    # now the second of its kind and takes the id the middle one had.
    edited = ids(HEADER + ROW + other + ROW.replace("0.5", "0.6") + ROW)
    assert edited[0] == before[0] and edited[1] == before[1]
    assert edited[2] not in before
    assert edited[3] == before[2]
    # Editing a row that has no copies changes nothing else.
    edited = ids(HEADER + ROW + other.replace("0.1", "0.2") + ROW + ROW)
    assert [edited[0], edited[2], edited[3]] == [before[0], before[2], before[3]]
    assert edited[1] != before[1]


def test_formatting_that_is_not_content_keeps_ids() -> None:
    a = ids(HEADER + ROW)
    b = ids("Quantity , ASSET,Kind,Time\n 0.5 ,BTC, buy ,2024-01-01T00:00:00Z \n")
    assert a == b
    # ... while the way the time is written is content.
    assert ids(HEADER + "1704067200,buy,BTC,0.5\n") != a


def test_explicit_ids_are_kept_and_empty_ones_derived() -> None:
    got = ids("time,kind,asset,quantity,client_transaction_id\n0,buy,BTC,1,abc\n0,buy,BTC,1,\n")
    assert got[0] == "abc"
    assert got[1].startswith("csv:")


def test_a_row_that_fails_still_counts_among_identical_rows() -> None:
    # Fixing the broken copy later must not change the id of the copy after it.
    broken = "2024-01-01T00:00:00Z,BUY,BTC,0.5,L1\n"
    good = "2024-01-01T00:00:00Z,BUY,BTC,0.5,\n"
    head = "time,kind,asset,quantity,lots\n"
    items = parse(head + broken + good)
    assert isinstance(items[0], RowError)
    assert isinstance(items[1], ParsedRow)
    assert items[1].transaction.client_transaction_id == ids(head + good)[0]


def test_scan_counts_rows_and_its_repeated_keys_give_the_same_ids() -> None:
    text = HEADER + ROW + "0,sell,ETH,3\n\n" + ROW + "bad,buy,BTC,1\n" + ROW + "0,buy\n"
    lines = text.splitlines(keepends=True)
    first = csv_rows.scan(lines)
    assert first.rows == 6  # the blank line is not a row; the broken ones are
    assert len(first.repeated) == 1  # ROW
    assert first.errors == []
    assert ids_of(csv_rows.parse_rows(lines, first.repeated)) == ids_of(csv_rows.parse_rows(lines))
    checked = csv_rows.scan(lines, validate=True)
    assert [(e.line, e.field) for e in checked.errors] == [(6, "time"), (8, "row")]


def ids_of(items: object) -> list[str]:
    return [i.transaction.client_transaction_id for i in items if isinstance(i, ParsedRow)]  # type: ignore[attr-defined]


def test_row_content_is_the_documented_json() -> None:
    values = {
        "time": " 2024-01-01T00:00:00Z ",
        "kind": "Gift_In",
        "asset": "BTC",
        "quantity": "1",
        "note": 'quote " backslash \\ tab \t newline \n é 🚀 \x00',
        "income_kind": "STAKING",
    }
    cells = [values.get(name, "").strip() for name in csv_rows.COLUMNS]
    cells[1], cells[13] = "gift_in", "staking"
    expected = json.dumps(cells, ensure_ascii=False, separators=(",", ":"))
    assert csv_rows.row_content(values) == expected


def test_the_send_pass_reads_at_most_one_batch_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, HEADER + "".join(f"{i},buy,BTC,1\n" for i in range(1_050)))
    parsed_so_far = 0

    def counting(*args: Any) -> Iterator[ParsedRow | RowError]:
        nonlocal parsed_so_far
        for item in csv_rows.parse_rows(*args):
            parsed_so_far += 1
            yield item

    monkeypatch.setattr(import_csv, "parse_rows", counting)
    with tqdm(total=1_050, disable=True) as bar:
        stream = import_csv._Stream(path, PORTFOLIO, 100, frozenset(), bar)
        sizes = []
        for message in stream.requests():
            sizes.append(len(message.transactions))
            assert parsed_so_far == sum(sizes)  # nothing parsed beyond this message
    assert sizes == [100] * 10 + [50]
    assert len(stream.lines) == 1  # a clean file keeps one line offset, not one per row


def test_line_map() -> None:
    lines = import_csv.LineMap()
    for row, line in enumerate([2, 3, 4, 7, 8, 12]):
        lines.add(row, line)
    assert [lines.line(r) for r in range(6)] == [2, 3, 4, 7, 8, 12]
    assert lines.line(-1) is None


# --- the command line against a fake service -------------------------------


@dataclass
class FakePortfolio(portfolio_pb2_grpc.PortfolioServiceServicer):
    """ImportTransactions as the contract describes it, recording what arrives."""

    token: str | None = None
    reject_assets: dict[str, tuple[str, str]] = field(default_factory=dict)
    messages: list[portfolio_pb2.ImportTransactionsRequest] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    ledger: dict[str, bytes] = field(default_factory=dict)

    async def ImportTransactions(
        self,
        request_iterator: AsyncIterable[portfolio_pb2.ImportTransactionsRequest],
        context: grpc.aio.ServicerContext,
    ) -> portfolio_pb2.ImportTransactionsResponse:
        metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        self.metadata.append(metadata)
        if self.token is not None and metadata.get("authorization") != f"Bearer {self.token}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "send a valid bearer token")
        response = portfolio_pb2.ImportTransactionsResponse()
        row = 0
        async for message in request_iterator:
            if not self.messages and message.portfolio_id != PORTFOLIO:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, f"no portfolio {message.portfolio_id!r}"
                )
            self.messages.append(message)
            response.batches += 1
            for tx in message.transactions:
                result = response.results.add(
                    row=row, client_transaction_id=tx.client_transaction_id
                )
                self._apply(tx, result)
                row += 1
        for result in response.results:
            if result.status == portfolio_pb2.IMPORT_ROW_STATUS_ACCEPTED:
                response.accepted += 1
            elif result.status == portfolio_pb2.IMPORT_ROW_STATUS_DUPLICATE:
                response.duplicates += 1
            else:
                response.rejected += 1
        return response

    def _apply(self, tx: Tx, result: portfolio_pb2.ImportRowResult) -> None:
        ctid = tx.client_transaction_id
        content = tx.SerializeToString(deterministic=True)
        problem = self.reject_assets.get(tx.asset)
        if not ctid:
            problem = ("client_transaction_id", "is required")
        elif ctid in self.ledger and self.ledger[ctid] != content:
            problem = ("client_transaction_id", "already used with other content")
        if problem is not None:
            result.status = portfolio_pb2.IMPORT_ROW_STATUS_REJECTED
            result.field, result.reason = problem
        elif ctid in self.ledger:
            result.status = portfolio_pb2.IMPORT_ROW_STATUS_DUPLICATE
            result.transaction_id = f"t-{ctid}"
        else:
            self.ledger[ctid] = content
            result.status = portfolio_pb2.IMPORT_ROW_STATUS_ACCEPTED
            result.transaction_id = f"t-{ctid}"

    @property
    def rows(self) -> list[Tx]:
        return [tx for m in self.messages for tx in m.transactions]


@dataclass
class Fake:
    servicer: FakePortfolio
    address: str

    async def run(self, path: Path, *extra: str) -> int:
        # main() runs its own event loop: a thread keeps this one serving.
        argv = [str(path), "--portfolio", PORTFOLIO, "--address", self.address, *extra]
        return await asyncio.to_thread(import_csv.main, argv)


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    servicer = FakePortfolio()
    server = grpc.aio.server()
    portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Fake(servicer, f"127.0.0.1:{port}")
    await server.stop(0)


def write(tmp_path: Path, text: str, name: str = "ledger.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SEVEN = "Time,Kind,Asset,Quantity,Price,Fee_Asset,Fee_Amount,Client_Transaction_Id\n" + "".join(
    f"2024-01-0{i}T00:00:00Z,buy,BTC,{i},4{i}000,USD,{i}.5,id-{i}\n" for i in range(1, 8)
)


async def test_rows_arrive_in_order_in_batches(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await fake.run(write(tmp_path, SEVEN), "--batch", "3")
    assert code == 0
    messages = fake.servicer.messages
    assert [len(m.transactions) for m in messages] == [3, 3, 1]
    assert [m.portfolio_id for m in messages] == [PORTFOLIO, "", ""]
    assert [tx.quantity for tx in fake.servicer.rows] == ["1", "2", "3", "4", "5", "6", "7"]
    fifth = fake.servicer.rows[4]
    assert fifth == Tx(
        kind=portfolio_pb2.TRANSACTION_KIND_BUY,
        time=Timestamp(seconds=1_704_067_200 + 4 * 86_400),
        asset="BTC",
        quantity="5",
        price="45000",
        fee=portfolio_pb2.Fee(asset="USD", amount="5.5"),
        client_transaction_id="id-5",
    )
    captured = capsys.readouterr()
    assert "7 rows: 7 accepted, 0 duplicates, 0 rejected, 0 local parse errors" in captured.out
    # The progress bar counts rows of the whole file, on stderr.
    assert "7/7" in captured.err and "7/7" not in captured.out


async def test_bom_and_crlf_files(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What spreadsheet programs save: a byte-order mark and CRLF line ends.
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfTime,Kind,Asset,Quantity\r\n0,buy,BTC,1\r\n0,buy,NOPE,2\r\n")
    fake.servicer.reject_assets["NOPE"] = ("asset", "unknown")
    assert await fake.run(path) == 1
    assert [tx.quantity for tx in fake.servicer.rows] == ["1", "2"]
    assert "line 3: asset: unknown" in capsys.readouterr().out


async def test_default_batch_is_5000(fake: Fake, tmp_path: Path) -> None:
    rows = "".join(f"{1_700_000_000 + i},buy,BTC,1\n" for i in range(12_001))
    assert await fake.run(write(tmp_path, HEADER + rows)) == 0
    assert [len(m.transactions) for m in fake.servicer.messages] == [5000, 5000, 2001]
    times = [tx.time.seconds for tx in fake.servicer.rows]
    assert times == list(range(1_700_000_000, 1_700_012_001))
    assert len({tx.client_transaction_id for tx in fake.servicer.rows}) == 12_001


async def test_rerun_is_all_duplicates(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Derived ids, identical rows included: the second run must match the first row for row.
    path = write(tmp_path, HEADER + ROW + ROW + "2024-01-02T00:00:00Z,sell,BTC,0.25\n" + ROW)
    assert await fake.run(path, "--batch", "2") == 0
    assert len(fake.servicer.ledger) == 4
    first = capsys.readouterr().out
    assert "4 rows: 4 accepted, 0 duplicates, 0 rejected" in first
    assert await fake.run(path) == 0
    again = capsys.readouterr().out
    assert "4 rows: 0 accepted, 4 duplicates, 0 rejected" in again
    assert len(fake.servicer.ledger) == 4


async def test_rejections_are_printed_by_line(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.servicer.reject_assets["NOPE"] = ("asset", "unknown asset 'NOPE'")
    text = (
        "time,kind,asset,quantity,note\n"  # 1
        "0,buy,BTC,1,\n"  # 2                 stream row 0
        "\n"  # 3
        '0,buy,NOPE,1,"a note\n'  # 4         stream row 1: rejected
        'over two lines"\n'  # 5
        "0,borrow,BTC,1,\n"  # 6              local error, not sent
        "0,buy,NOPE,2,\n"  # 7                stream row 2: rejected
        "0,buy,ETH,3,\n"  # 8                 stream row 3
        "0,buy,NOPE,3,\n"  # 9                stream row 4: rejected
    )
    code = await fake.run(write(tmp_path, text), "--batch", "2")
    assert code == 1
    assert len(fake.servicer.rows) == 5
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("line ")] == [
        "line 6: kind: 'borrow' is not one of buy, sell, swap, spend, income, transfer, "
        "gift_in, gift_out",
        "line 4: asset: unknown asset 'NOPE'",
        "line 7: asset: unknown asset 'NOPE'",
        "line 9: asset: unknown asset 'NOPE'",
    ]
    assert out[-1].endswith(
        "6 rows: 2 accepted, 0 duplicates, 3 rejected, 1 local parse errors (not sent)"
    )


async def test_local_errors_alone_exit_1(fake: Fake, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + ROW + "later,buy,BTC,1\n")
    assert await fake.run(path) == 1
    assert len(fake.servicer.rows) == 1


async def test_strict_sends_nothing_when_a_row_is_bad(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + ROW + "later,buy,BTC,1\n")
    assert await fake.run(path, "--strict") == 1
    assert fake.servicer.messages == [] and fake.servicer.metadata == []
    out = capsys.readouterr().out
    assert "line 3: time: " in out and "nothing sent" in out
    # Clean files go through under --strict.
    assert await fake.run(write(tmp_path, SEVEN, "clean.csv"), "--strict") == 0
    assert len(fake.servicer.rows) == 7


async def test_dry_run_sends_nothing(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await fake.run(write(tmp_path, SEVEN), "--dry-run") == 0
    assert await fake.run(write(tmp_path, HEADER + "0,loan,BTC,1\n", "bad.csv"), "--dry-run") == 1
    assert fake.servicer.metadata == []
    out = capsys.readouterr().out
    assert "7 rows: 7 to send, 0 local parse errors; nothing sent (--dry-run)" in out
    assert "line 2: kind: 'loan'" in out


async def test_auth_metadata_is_sent(
    fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, SEVEN)
    monkeypatch.delenv("MM_TOKEN", raising=False)
    assert await fake.run(path) == 0
    assert "authorization" not in fake.servicer.metadata[-1]
    assert await fake.run(path, "--token", TOKEN) == 0
    assert fake.servicer.metadata[-1]["authorization"] == f"Bearer {TOKEN}"
    monkeypatch.setenv("MM_TOKEN", "from-the-environment-1")
    assert await fake.run(path) == 0
    assert fake.servicer.metadata[-1]["authorization"] == "Bearer from-the-environment-1"


async def test_grpc_errors_exit_2_with_code_and_details(
    fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MM_TOKEN", raising=False)
    fake.servicer.token = TOKEN
    path = write(tmp_path, SEVEN)
    assert await fake.run(path, "--token", "wrong-token-0123456") == 2
    err = capsys.readouterr().err
    assert "UNAUTHENTICATED: send a valid bearer token" in err
    assert "Traceback" not in err
    argv = [str(path), "--portfolio", "other", "--address", fake.address, "--token", TOKEN]
    assert await asyncio.to_thread(import_csv.main, argv) == 2
    assert "NOT_FOUND: no portfolio 'other'" in capsys.readouterr().err
    assert fake.servicer.ledger == {}


async def test_unreachable_service_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [str(write(tmp_path, SEVEN)), "--portfolio", PORTFOLIO, "--address", f"127.0.0.1:{port}"]
    assert await asyncio.to_thread(import_csv.main, argv) == 2
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing.csv", "--portfolio", PORTFOLIO], "cannot read"),
        (["ledger.csv"], "--portfolio"),
        (["ledger.csv", "--portfolio", PORTFOLIO, "--batch", "0"], "at least 1"),
        (["ledger.csv", "--portfolio", PORTFOLIO, "--address", "nowhere"], "host:port"),
        (["unknown.csv", "--portfolio", PORTFOLIO], "unknown column(s) 'qty'"),
        (["latin1.csv", "--portfolio", PORTFOLIO], "save the file as UTF-8"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    write(tmp_path, SEVEN)
    write(tmp_path, "time,kind,asset,qty\n0,buy,BTC,1\n", "unknown.csv")
    (tmp_path / "latin1.csv").write_bytes(
        HEADER.encode() + b"0,buy,BTC,1\n" * 3 + b"0,buy,\xe9TH,1\n"
    )
    argv = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    assert import_csv.main(argv) == 2
    assert words in capsys.readouterr().err
