"""core_rs.portfolio_rows.parse_import against the Python import path.

A differential test: every row of a generated ImportTransactionsRequest also
goes through services/portfolio's own functions (parse_client_id,
parse_transaction, build_legs, encode). A fast row must equal Python's result
field for field (decimals as fmt strings and as Decimal values, hash and body
byte for byte, legs); a row Python refuses, or that names lots or needs a
market price, must be slow. Plus hand-worked rows, malformed messages and the
benchmark's import corpus (at least 95% fast).
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core_rs.portfolio_rows import parse_import
from marketmesh.v1 import portfolio_pb2
from services.common.errors import InvalidArgument
from services.portfolio.decimals import fmt
from services.portfolio.legs import build_legs, market_needs
from services.portfolio.transactions import encode, parse_client_id, parse_transaction

BASE = "USD"
NOW_MS = 1_764_000_000_000  # 2025-11-24
SKEW_MS = 300_000
KNOWN = frozenset({"BTC", "ETH", "SOL", "A1", "X" * 20})


@dataclass
class Expected:
    """Python's verdict on one row."""

    status: str  # "rejected", "market", "lots" or "ok"
    row: tuple[Any, ...] | None = None


def python_row(
    position: int, msg: portfolio_pb2.Transaction, known: frozenset[str], now_ms: int
) -> Expected:
    try:
        client_id = parse_client_id(msg.client_transaction_id)
        tx = parse_transaction(
            msg,
            base_currency=BASE,
            now_ms=now_ms,
            future_skew_ms=SKEW_MS,
            known_asset=known.__contains__,
        )
    except InvalidArgument:
        return Expected("rejected")
    if market_needs(tx, BASE):
        return Expected("market")
    if tx.lots:
        return Expected("lots")
    legs, valuation = build_legs(tx, BASE)
    digest, body = encode(tx)
    row = (
        position,
        client_id,
        tx.kind,
        tx.time_ms,
        tx.asset,
        tx.quantity,
        tx.price,
        tx.value,
        tx.fee_asset,
        tx.fee_amount,
        tx.fee_value,
        tx.wallet,
        tx.to_wallet,
        tx.to_asset,
        tx.to_quantity,
        tx.income_kind,
        tx.note,
        digest,
        body,
        valuation,
        [(g.leg, g.kind, g.asset, g.wallet, g.qty, g.amount, g.to_wallet) for g in legs],
    )
    return Expected("ok", row)


DECIMAL_FIELDS = (5, 6, 7, 9, 10, 14)


def assert_same(fast: tuple[Any, ...], want: tuple[Any, ...]) -> None:
    assert len(fast) == 21
    for i, (got, exp) in enumerate(zip(fast[:20], want[:20], strict=True)):
        if i in DECIMAL_FIELDS:
            assert got == fmt(exp), (i, got, exp)
            assert (Decimal(got) if got else None) == exp, (i, got, exp)
        else:
            assert got == exp, (i, got, exp)
            assert type(got) is type(exp), (i, got, exp)
    assert len(fast[20]) == len(want[20])
    for got, exp in zip(fast[20], want[20], strict=True):
        assert got[:4] == exp[:4] and got[6] == exp[6], (got, exp)
        assert got[4] == fmt(exp[4]) and Decimal(got[4]) == exp[4], (got, exp)
        assert exp[5] is not None
        assert got[5] == fmt(exp[5]) and Decimal(got[5]) == exp[5], (got, exp)


def check_message(
    request: portfolio_pb2.ImportTransactionsRequest,
    known: frozenset[str] = KNOWN,
    now_ms: int = NOW_MS,
    *,
    events: bool = True,
) -> tuple[int, int]:
    """Checks every row of ``request``; (fast, python-accepted simple) counts."""
    portfolio_id, fast, slow = parse_import(
        request.SerializeToString(), BASE, now_ms, SKEW_MS, set(known)
    )
    assert portfolio_id == request.portfolio_id
    positions = [row[0] for row in fast]
    assert positions == sorted(positions)
    assert sorted(positions + slow) == list(range(len(request.transactions)))
    by_position = {row[0]: row for row in fast}
    simple = 0
    for position, msg in enumerate(request.transactions):
        want = python_row(position, msg, known, now_ms)
        if events:
            path = "fast" if position in by_position else "slow"
            event(f"python: {want.status}, rust: {path}")
        if want.status != "ok":
            assert position in slow, (want.status, msg)
            continue
        simple += 1
        if position in by_position:
            assert want.row is not None
            assert_same(by_position[position], want.row)
    return len(fast), simple


def ts(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def buy(**fields: Any) -> portfolio_pb2.Transaction:
    base: dict[str, Any] = {
        "kind": portfolio_pb2.TRANSACTION_KIND_BUY,
        "time": ts(1_700_000_000),
        "asset": "BTC",
        "quantity": "1",
        "price": "100",
        "client_transaction_id": "r",
    }
    return portfolio_pb2.Transaction(**(base | fields))


def request(*txs: portfolio_pb2.Transaction, pid: str = "pf_1") -> bytes:
    return portfolio_pb2.ImportTransactionsRequest(
        portfolio_id=pid, transactions=list(txs)
    ).SerializeToString()


def run(*txs: portfolio_pb2.Transaction) -> tuple[str, list[tuple[Any, ...]], list[int]]:
    return parse_import(request(*txs), BASE, NOW_MS, SKEW_MS, KNOWN)


# ----- hand-worked rows ------------------------------------------------------------------


def test_hand_worked_buy_with_crypto_fee() -> None:
    msg = buy(
        asset=" btc ",
        quantity="0.50",
        price="30000.10",
        time=ts(1_700_000_000, 123_999_999),
        wallet=" cold ",
        note='caf\u00e9 "x"\n\U0001f600',
        client_transaction_id=" row-7 ",
    )
    msg.fee.asset = "eth"
    msg.fee.amount = "0.001"
    msg.fee.value = "2.5"
    pid, fast, slow = run(msg)
    assert (pid, slow, len(fast)) == ("pf_1", [], 1)
    row = fast[0]
    # 0.5 x 30000.1 = 15000.05, the BUY's cost; the fee leg disposes of 0.001 ETH for 2.5.
    canonical = (
        '{"asset":"BTC","fee_amount":"0.001","fee_asset":"ETH","fee_value":"2.5",'
        '"income_kind":0,"kind":1,"lots":[],"note":"caf\\u00e9 \\"x\\"\\n\\ud83d\\ude00",'
        '"price":"30000.1","quantity":"0.5","time_ms":1700000000123,"to_asset":"",'
        '"to_quantity":"","to_wallet":"","value":"","wallet":"cold"}'
    )
    assert row[:17] == (
        0,
        "row-7",
        1,
        1_700_000_000_123,
        "BTC",
        "0.5",
        "30000.1",
        "",
        "ETH",
        "0.001",
        "2.5",
        "cold",
        "",
        "",
        "",
        0,
        'caf\u00e9 "x"\n\U0001f600',
    )
    assert row[17] == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    assert row[18] == canonical[:-1] + ',"market":{}}'
    assert row[19] == ""
    assert row[20] == (
        (0, 1, "BTC", "cold", "0.5", "15002.55", ""),
        (1, 2, "ETH", "cold", "0.001", "2.5", ""),
    )


def test_hand_worked_sell_swap_transfer_gift_income() -> None:
    sell = buy(kind=portfolio_pb2.TRANSACTION_KIND_SELL, quantity="2", price="0.000000001")
    swap = buy(
        kind=portfolio_pb2.TRANSACTION_KIND_SWAP,
        price="",
        value="50",
        to_asset="eth",
        to_quantity="3",
        wallet="hot",
    )
    swap.fee.asset = "SOL"
    swap.fee.amount = "1"
    swap.fee.value = "60"
    transfer = buy(
        kind=portfolio_pb2.TRANSACTION_KIND_TRANSFER, price="", to_wallet="hot", quantity="4"
    )
    gift_out = buy(kind=portfolio_pb2.TRANSACTION_KIND_GIFT_OUT, price="")
    income = buy(kind=portfolio_pb2.TRANSACTION_KIND_INCOME, price="", value="7.25")
    _, fast, slow = run(sell, swap, transfer, gift_out, income)
    assert slow == []
    legs = [list(row[20]) for row in fast]
    assert legs == [
        [(0, 2, "BTC", "default", "2", "0.000000002", "")],
        # Proceeds 50 - 60 are negative; the fee is its own disposal.
        [
            (0, 2, "BTC", "hot", "1", "-10", ""),
            (1, 1, "ETH", "hot", "3", "50", ""),
            (2, 2, "SOL", "hot", "1", "60", ""),
        ],
        [(0, 4, "BTC", "default", "4", "0", "hot")],
        [(0, 3, "BTC", "default", "1", "0", "")],
        [(0, 1, "BTC", "default", "1", "7.25", "")],
    ]
    assert fast[4][15] == portfolio_pb2.INCOME_KIND_OTHER


def test_mul_rounds_half_even() -> None:
    # 0.000000001 x 0.0000000015 = 1.5e-18 -> 2e-18; x 0.0000000025 = 2.5e-18 -> 2e-18.
    _, fast, _ = run(
        buy(quantity="0.000000001", price="0.0000000015"),
        buy(quantity="0.000000001", price="0.0000000025"),
    )
    assert [row[20][0][5] for row in fast] == ["0.000000000000000002"] * 2


def test_slow_rows() -> None:
    no_fee_value = buy()
    no_fee_value.fee.asset, no_fee_value.fee.amount = "ETH", "1"
    lots = buy(kind=portfolio_pb2.TRANSACTION_KIND_SELL)
    lots.lots.add(lot_id="tx_" + "0" * 24, quantity="1")
    big = "99999999999999999999.999999999999999999"
    rows = [
        buy(client_transaction_id=""),
        buy(kind=portfolio_pb2.TRANSACTION_KIND_SPEND, price=""),  # valued at market
        no_fee_value,
        lots,
        buy(id="tx_1"),
        buy(valuation="market"),
        buy(record_time=ts(1)),
        buy(asset="\u017fol"),  # Python upper-cases it to SOL: left to Python
        buy(quantity=big, price=big),  # the product overflows
        buy(time=ts(NOW_MS // 1000 + SKEW_MS // 1000, 1_000_000)),  # 1 ms too late
    ]
    _, fast, slow = run(*rows)
    assert (fast, slow) == ([], list(range(len(rows))))


def test_amounts_beyond_28_digits_stay_exact() -> None:
    """build_legs adds and subtracts in the ledger's 80-digit context (not
    Python's default 28 digits, which would round these): the fast path's
    amounts are the same exact ones. A fee in USD needs no market price."""
    d29 = "12345678901.123456789012345678"
    d38 = "12345678901234567890.123456789012345678"
    sell = portfolio_pb2.TRANSACTION_KIND_SELL
    fee_usd = buy(kind=sell, price="", value=d38)
    fee_usd.fee.amount = "0.000000000000000001"
    rows = [
        buy(kind=sell, price="", value=d29),
        fee_usd,
        buy(quantity="1234567890.123456789", price="1234567890.123456789"),
    ]
    tx = parse_transaction(
        rows[1], base_currency=BASE, now_ms=NOW_MS, future_skew_ms=SKEW_MS,
        known_asset=KNOWN.__contains__,
    )  # fmt: skip
    assert market_needs(tx, BASE) == []
    proceeds = Decimal("12345678901234567890.123456789012345677")
    assert build_legs(tx, BASE)[0][0].amount == proceeds
    _, fast, slow = run(*rows)
    assert (len(fast), slow) == (3, [])
    assert [row[20][0][5] for row in fast[:2]] == [d29, str(proceeds)]
    check_message(portfolio_pb2.ImportTransactionsRequest(transactions=rows), events=False)


def test_unknown_and_repeated_fields_are_slow() -> None:
    plain = buy().SerializeToString()
    unknown = plain + bytes([0xF8, 0x06, 0x01])  # field 111, varint 1
    repeated = plain + bytes([0x22, 0x03]) + b"ETH"  # asset again: the last one wins
    group = bytes([0x93, 0x03, 0x08, 0x05, 0x94, 0x03])  # field 50 as a group {1: 5}
    message = b"".join(
        bytes([0x12, len(tx)]) + tx for tx in (plain, unknown, repeated, plain + group)
    )
    message += group  # an unknown group in the request itself
    parsed = portfolio_pb2.ImportTransactionsRequest.FromString(message)
    assert parsed.transactions[2].asset == "ETH"
    assert len(parsed.transactions) == 4
    _, fast, slow = parse_import(message, BASE, NOW_MS, SKEW_MS, KNOWN)
    assert ([row[0] for row in fast], slow) == ([0], [1, 2, 3])


def test_malformed_messages_are_value_errors() -> None:
    good = request(buy())
    bad_utf8 = bytes([0x12, 0x04, 0x22, 0x02, 0xFF, 0xFE])  # asset is not UTF-8
    for message in (good[:-1], bad_utf8, b"\x12"):
        with pytest.raises(DecodeError):
            portfolio_pb2.ImportTransactionsRequest.FromString(message)
        with pytest.raises(ValueError, match=r"protobuf|UTF-8"):
            parse_import(message, BASE, NOW_MS, SKEW_MS, KNOWN)
    assert parse_import(b"", BASE, NOW_MS, SKEW_MS, KNOWN) == ("", [], [])


def test_rows_are_left_out_of_the_cyclic_gc() -> None:
    """Rows hold str, int and tuples only, and are untracked from the start:
    rows waiting for their batch would otherwise be scanned and promoted by
    collection after collection (and bring on full ones). The GC itself is
    left alone."""
    _, fast, _ = run(buy(), buy(client_transaction_id="r2", quantity="2"))
    assert len(fast) == 2
    for row in fast:
        assert not gc.is_tracked(row)
        assert isinstance(row[20], tuple) and not gc.is_tracked(row[20])
        assert not any(gc.is_tracked(leg) for leg in row[20])
    assert gc.isenabled()
    with pytest.raises(ValueError):
        parse_import(b"\x12", BASE, NOW_MS, SKEW_MS, KNOWN)
    assert gc.isenabled()


def test_batches_keep_positions() -> None:
    """Rows are parsed in batches; positions run over the whole message."""
    txs = [buy(client_transaction_id=f"r{i}") for i in range(600)]
    for i in range(0, 600, 7):
        txs[i].kind = 0  # Python refuses a row without a kind
    _, fast, slow = run(*txs)
    assert slow == list(range(0, 600, 7))
    assert [row[0] for row in fast] == [i for i in range(600) if i % 7]
    assert all(row[1] == f"r{row[0]}" for row in fast)


# ----- generated rows --------------------------------------------------------------------


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


VALID_DECIMALS = st.one_of(
    st.builds(
        lambda i, f: i + ("." + f if f else ""),
        st.integers(0, 20).flatmap(_digits),
        st.integers(0, 18).flatmap(_digits),
    ),
    st.sampled_from(["1", "0.5", "100", "30000.10", "0.00000001", "7.", ".25", "+.5", "+2"]),
)
EDGE_DECIMALS = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-0",
        "0.000",
        "-1",
        "-0.5",
        "1e5",
        "1.2.3",
        " 1.5 ",
        "\t2\n",
        "+.5",
        ".",
        "+",
        "NaN",
        "1_000",
        "0x10",
        "1." + "1" * 19,
        "1." + "1" * 18 + "000",
        "1" * 21,
        "0" * 5 + "1" * 20,
        "99999999999999999999.999999999999999999",
        "12345678901234567890.123456789012345678",
        "\u0661",  # Arabic-Indic one: Python's \d would match, isascii refuses
        "1\u00a0",
    ]
)
DECIMALS = st.one_of(VALID_DECIMALS, EDGE_DECIMALS)
ASSETS = st.sampled_from(
    ["BTC", "btc", " eth ", "Sol", "A1", "X" * 20, "X" * 21, "usd", "USD", "DOGE", "", " ",
     "B-T", "\u017fol", "\uff22TC", "BT C", "\tBTC\x1f"]
)  # fmt: skip
WALLETS = st.sampled_from(
    ["", " ", "default", " cold ", "hot/1", "a:b@c.d-e_f", "-bad", "a#b", "w" * 64, "w" * 65,
     "x\u00a0", "\u3000hot", "caf\u00e9", "hot", "HOT"]
)  # fmt: skip
CLIENT_IDS = st.one_of(
    st.sampled_from(["r1", " r2 ", "", " ", "a\tb", "x" * 128, "x" * 129, "\u00e9", "\x1fr\x1f",
                     "a\x7fb", "ok id/1"]),
    st.text(st.characters(codec="ascii"), max_size=10),
)  # fmt: skip
NOTES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "x" * 1000, "x" * 1001, "\u00e9" * 1000, "\U0001f600" * 1001,
                     'q"\\/\b\f\n\r\t\x00\x1f\x7f\u2028', "\ud7ff\ue000\uffff"]),
)  # fmt: skip


@st.composite
def times(draw: st.DrawFn) -> Timestamp | None:
    choice = draw(st.integers(0, 6))
    limit_s, limit_ns = divmod(NOW_MS + SKEW_MS, 1000)
    if choice == 0:
        return None
    if choice == 1:  # at or just past the skew boundary
        return ts(limit_s, limit_ns * 1_000_000 + draw(st.sampled_from([0, 999_999, 1_000_000])))
    if choice == 2:  # out of range
        return ts(
            draw(
                st.sampled_from(
                    [-62_135_596_801, 253_402_300_800, 253_402_300_799, -62_135_596_800]
                )
            ),
            draw(st.sampled_from([0, -1, 1_000_000_000, 999_999_999])),
        )
    if choice == 3:  # before 1970
        return ts(draw(st.integers(-(10**10), -1)), draw(st.integers(0, 999_999_999)))
    return ts(draw(st.integers(0, NOW_MS // 1000)), draw(st.integers(0, 999_999_999)))


def _pick(draw: st.DrawFn, valid: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]) -> Any:
    """Mostly a value Python accepts, one time in six anything."""
    return draw(wild if draw(st.integers(0, 5)) == 0 else valid)


SMALL_DECIMALS = st.one_of(
    st.sampled_from(["1", "0.5", "100", "30000.10", "0.00000001", "7.", ".25", "+.5", "2.000"]),
    st.builds(
        lambda i, f: i + ("." + f if f else ""),
        st.integers(1, 6).flatmap(_digits),
        st.integers(0, 10).flatmap(_digits),
    ),
)
OK_ASSETS = st.sampled_from(["BTC", "btc", " eth ", "Sol", "A1", "X" * 20, "\tBTC\x1f"])
OK_WALLETS = st.sampled_from(["", "default", " cold ", "hot/1", "a:b@c.d-e_f", "w" * 64, "HOT"])
OK_CLIENT_IDS = st.one_of(
    st.sampled_from(["r1", " r2 ", "x" * 128, "ok id/1", "\x1fr\x1f"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12),
)
PRICED = {1: "price|value", 2: "price|value", 3: "value", 4: "price|value", 5: "price|value",
          6: "", 7: "price|value", 8: ""}  # fmt: skip


@st.composite
def transactions(draw: st.DrawFn) -> portfolio_pb2.Transaction:
    kind = _pick(draw, st.integers(1, 8), st.sampled_from([0, 9, -1]))
    msg = portfolio_pb2.Transaction(kind=kind)
    t = _pick(
        draw, st.builds(ts, st.integers(0, NOW_MS // 1000 - 1), st.integers(0, 10**9 - 1)), times()
    )
    if t is not None:
        msg.time.CopyFrom(t)
    msg.asset = _pick(draw, OK_ASSETS, ASSETS)
    msg.quantity = _pick(draw, SMALL_DECIMALS, DECIMALS)
    options = [o for o in PRICED.get(kind, "").split("|") if o]
    priced = _pick(
        draw,
        st.sampled_from(options) if options else st.just("none"),
        st.sampled_from(["price", "value", "none", "both"]),
    )
    if priced in ("price", "both"):
        msg.price = _pick(draw, SMALL_DECIMALS, DECIMALS)
    if priced in ("value", "both"):
        msg.value = _pick(draw, SMALL_DECIMALS, DECIMALS)
    fee = draw(
        st.sampled_from(["none", "none", "crypto", "crypto", "usd", "amount", "zero", "odd"])
    )
    if fee == "crypto":
        msg.fee.asset = _pick(draw, OK_ASSETS, ASSETS)
        msg.fee.amount = _pick(draw, SMALL_DECIMALS, DECIMALS)
        msg.fee.value = _pick(draw, SMALL_DECIMALS, DECIMALS)
    elif fee == "usd":
        msg.fee.asset = draw(st.sampled_from(["USD", " usd "]))
        msg.fee.amount = draw(DECIMALS)
        msg.fee.value = draw(st.sampled_from(["", "1"]))
    elif fee == "amount":
        msg.fee.amount = draw(DECIMALS)
    elif fee == "zero":
        msg.fee.asset = draw(st.sampled_from(["", "ETH", "USD", "NOPE"]))
        msg.fee.amount = draw(st.sampled_from(["0", "-0", "0.00"]))
        msg.fee.value = draw(st.sampled_from(["", "5", "bad"]))
    elif fee == "odd":
        msg.fee.value = draw(DECIMALS)
    msg.wallet = _pick(draw, OK_WALLETS, WALLETS)
    if kind == portfolio_pb2.TRANSACTION_KIND_TRANSFER or draw(st.integers(0, 9)) == 0:
        msg.to_wallet = _pick(draw, OK_WALLETS, WALLETS)
    if kind == portfolio_pb2.TRANSACTION_KIND_SWAP or draw(st.integers(0, 9)) == 0:
        msg.to_asset = _pick(draw, OK_ASSETS, ASSETS)
        msg.to_quantity = _pick(draw, SMALL_DECIMALS, DECIMALS)
    if kind == portfolio_pb2.TRANSACTION_KIND_INCOME or draw(st.integers(0, 9)) == 0:
        msg.income_kind = _pick(draw, st.integers(0, 5), st.sampled_from([6, -1, 1]))  # type: ignore[assignment]
    if draw(st.integers(0, 19)) == 0:
        msg.lots.add(lot_id="tx_" + "a" * 24, quantity=msg.quantity)
    msg.note = draw(NOTES)
    msg.client_transaction_id = _pick(draw, OK_CLIENT_IDS, CLIENT_IDS)
    extra = draw(st.integers(0, 29))
    if extra == 0:
        msg.id = "tx_x"
    elif extra == 1:
        msg.valuation = "market"
    elif extra == 2:
        msg.record_time.CopyFrom(ts(5))
    return msg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(transactions(), min_size=1, max_size=6), st.sampled_from(["", "pf_9"]))
def test_generated_rows_match_python(txs: list[portfolio_pb2.Transaction], pid: str) -> None:
    check_message(portfolio_pb2.ImportTransactionsRequest(portfolio_id=pid, transactions=txs))


def test_generated_corpus_reaches_the_fast_path() -> None:
    """The generator is not vacuous: a fixed sample has fast rows of every kind."""
    kinds: set[int] = set()

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(st.lists(transactions(), min_size=1, max_size=6))
    def collect(txs: list[portfolio_pb2.Transaction]) -> None:
        msg = portfolio_pb2.ImportTransactionsRequest(transactions=txs)
        _, fast, _ = parse_import(msg.SerializeToString(), BASE, NOW_MS, SKEW_MS, KNOWN)
        kinds.update(row[2] for row in fast)

    collect()
    assert kinds == set(range(1, 9))


# ----- the benchmark's import corpus -----------------------------------------------------


def _bench_messages(
    n: int, per: int
) -> tuple[list[portfolio_pb2.ImportTransactionsRequest], frozenset[str]]:
    from bench.portfolio_ledger import LedgerSpec, generate, transaction_messages  # noqa: PLC0415

    assets = tuple(f"T{i:02d}" for i in range(50))
    start = int(dt.datetime(2019, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    contents = list(generate(LedgerSpec(n, assets, start, years=6, seed=11)))
    txs: Sequence[Any] = transaction_messages(contents, "import")
    messages = [
        portfolio_pb2.ImportTransactionsRequest(
            portfolio_id="pf_bench" if lo == 0 else "", transactions=txs[lo : lo + per]
        )
        for lo in range(0, len(txs), per)
    ]
    return messages, frozenset(assets)


def test_bench_corpus_is_fast_and_equal() -> None:
    messages, known = _bench_messages(6_000, 2_500)
    now = time.time_ns() // 1_000_000
    fast = simple = total = 0
    for msg in messages:
        f, s = check_message(msg, known, now, events=False)
        fast, simple, total = fast + f, simple + s, total + len(msg.transactions)
    assert simple == total  # every row is valid and own-priced
    assert fast >= 0.95 * total, (fast, total)
