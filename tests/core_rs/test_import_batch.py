"""core_rs.portfolio_rows.decide_import on hand-worked batches.

tests/portfolio/test_bulk_import.py checks it end to end against the general
write path, row for row; these pin its own contract: what it writes for the
taken rows (insert tuples, book rows, stored legs byte-equal to
legs.legs_json), the outcome of every row, and the batches it leaves to the
general path.
"""

from __future__ import annotations

import gc
import re
from decimal import Decimal
from typing import Any

from core_rs.portfolio_rows import (
    ImportRows,
    UncommittedIds,
    decide_import,
    parse_import,
    parse_import_rows,
)
from marketmesh.v1 import portfolio_pb2
from services.portfolio.db.repository import INSERT_FIELDS
from services.portfolio.legs import Leg, legs_json
from tests.core_rs.test_portfolio_rows import BASE, KNOWN, NOW_MS, SKEW_MS, buy, request, ts

SELL = portfolio_pb2.TRANSACTION_KIND_SELL
TRANSFER = portfolio_pb2.TRANSACTION_KIND_TRANSFER
CLOCK_MS = 0x123_4567_89AB


def rows_of(*txs: portfolio_pb2.Transaction, first: int = 0) -> list[tuple[int, Any]]:
    _, fast, slow = parse_import(request(*txs), BASE, NOW_MS, SKEW_MS, KNOWN)
    assert slow == []
    return [(first + r[0], r) for r in fast]


def decide(
    rows: list[tuple[int, Any]],
    *,
    existing: dict[str, tuple[str, str]] | None = None,
    uncommitted: dict[str, tuple[str, str]] | None = None,
    balances: dict[tuple[str, str], Decimal] | None = None,
    last_ms: dict[tuple[str, str], int] | None = None,
    check: bool = True,
    show: int = 1_000,
) -> Any:
    """decide_import's result as (written, rejected, insert tuples, book
    rows, accepted, changed), ``accepted`` what UncommittedIds holds of the
    taken rows once added; its counts are checked against ``written``."""
    pending = UncommittedIds()
    for cid, (content_hash, tx_id) in (uncommitted or {}).items():
        pending.insert(cid, content_hash, tx_id)
    batch = ImportRows.from_tuples(rows)
    decided = decide_import(
        batch,
        existing or {},
        pending,
        balances or {},
        last_ms or {},
        check,
        "pf_1",
        10,
        CLOCK_MS,
        42,
        NOW_MS,
        show,
    )
    if decided is None:
        assert len(batch) == len(rows)  # left as it was, for the general path
        return None
    assert len(batch) == 0  # consumed
    written, created, duplicates, rejected, inserts, book_rows, changed = decided
    before = len(pending)
    pending.add(inserts)
    assert len(pending) == before + len(inserts)
    accepted = {cid: pending.get(cid) for cid in inserts.client_ids()}
    pending.remove(inserts)
    assert len(pending) == before and not any(cid in pending for cid in accepted)
    if show >= len(rows):
        assert created == sum(1 for w in written if w[3])
        assert duplicates == sum(1 for w in written if not w[3])
    assert len(inserts) == len(book_rows)
    return written, rejected, inserts.tuples(), book_rows.tuples(), accepted, changed


def sell(**fields: Any) -> portfolio_pb2.Transaction:
    return buy(kind=SELL, **fields)


def test_taken_rows_are_written_in_time_order() -> None:
    rows = rows_of(
        sell(client_transaction_id="s", quantity="0.4", time=ts(1_700_000_100)),
        buy(client_transaction_id="b", quantity="1.5", time=ts(1_700_000_000), wallet="w"),
        buy(client_transaction_id="b2", quantity="1", time=ts(1_700_000_000)),
        first=100,
    )
    written, rejected, inserts, book_rows, accepted, changed = decide(rows)
    assert rejected == []
    # Seqs from 10 in (time, row) order; the ids tx_ + the clock + 13 hex digits.
    by_cid = {row[3]: row for row in inserts}
    assert [row[3] for row in inserts] == ["b", "b2", "s"]
    assert [row[1] for row in inserts] == [10, 11, 12]
    assert all(re.fullmatch(r"tx_123456789ab[0-9a-f]{13}", row[2]) for row in inserts)
    assert len({row[2] for row in inserts}) == 3
    assert written == [
        (100, "s", by_cid["s"][2], True),
        (101, "b", by_cid["b"][2], True),
        (102, "b2", by_cid["b2"][2], True),
    ]
    assert accepted == {cid: (row[4], row[2]) for cid, row in by_cid.items()}
    for (_, r), cid in zip(rows, ["s", "b", "b2"], strict=True):
        insert = by_cid[cid]
        assert len(insert) == len(INSERT_FIELDS)
        values = dict(zip(INSERT_FIELDS, insert, strict=True))
        assert values["portfolio_id"] == "pf_1"
        assert values["client_transaction_id"] == r[1]
        assert values["content_hash"] == r[17]
        assert (values["kind"], values["time_ms"], values["asset"]) == (r[2], r[3], r[4])
        assert (values["wallet"], values["to_asset"], values["to_wallet"]) == (r[11], r[13], r[12])
        assert (values["body"], values["valuation"], values["record_ms"]) == (r[18], "", NOW_MS)
        # The stored legs are what legs_json writes for the same legs.
        legs = [Leg(g[0], g[1], g[2], g[3], Decimal(g[4]), Decimal(g[5]), g[6]) for g in r[20]]
        assert insert[-1] == legs_json(legs)
    assert [b[:5] for b in book_rows] == [(i[1], i[2], i[5], i[6], "") for i in inserts]
    assert [b[6] for b in book_rows] == [i[-1] for i in inserts]
    assert [b[5] for b in book_rows] == ["", "", ""]  # bodies are the book's for INCOME only
    # 1.5 bought into w; 1 bought and 0.4 sold from the default wallet.
    assert changed == [
        (("BTC", "default"), "0.6", 1_700_000_100_000),
        (("BTC", "w"), "1.5", 1_700_000_000_000),
    ]
    for item in written:
        assert not gc.is_tracked(item)


def test_duplicates_twins_conflicts_and_oversells() -> None:
    rows = rows_of(
        buy(client_transaction_id="old"),
        buy(client_transaction_id="pending", quantity="3"),
        buy(client_transaction_id="new", quantity="2"),
        buy(client_transaction_id="new", quantity="2"),  # the same again
        buy(client_transaction_id="new", quantity="5"),  # other content
        sell(client_transaction_id="big", quantity="9", time=ts(1_700_000_050)),
        sell(client_transaction_id="big", quantity="9", time=ts(1_700_000_050)),
    )
    old_hash = rows[0][1][17]
    written, rejected, inserts, _, accepted, _ = decide(
        rows,
        existing={"old": (old_hash, "tx_old")},
        uncommitted={"pending": ("another hash", "tx_pending")},
    )
    new_id = accepted["new"][1]
    assert [i[3] for i in inserts] == ["new"]
    assert written == [
        (0, "old", "tx_old", False),
        (2, "new", new_id, True),
        (3, "new", new_id, False),
    ]
    # (row, client id, the row the message names, shortfall or None for a conflict).
    assert rejected == [
        (1, "pending", 1, None),
        (4, "new", 4, None),
        (5, "big", 5, ("BTC", "default", 1_700_000_050_000, "7")),
        (6, "big", 5, ("BTC", "default", 1_700_000_050_000, "7")),
    ]
    # Allowed to go negative, the sale goes in (its twin is a duplicate of it).
    written, rejected, inserts, *_ = decide(rows[5:], check=False)
    assert rejected == [] and [i[3] for i in inserts] == ["big"]
    assert [w[3] for w in written] == [True, False]


def test_a_move_changes_both_wallets() -> None:
    rows = rows_of(
        buy(
            kind=TRANSFER,
            price="",
            quantity="0.25",
            wallet="a",
            to_wallet="b",
            client_transaction_id="t",
        )
    )
    _, rejected, inserts, _, _, changed = decide(
        rows, balances={("BTC", "a"): Decimal("1.000")}, last_ms={("BTC", "a"): 5}
    )
    assert rejected == [] and len(inserts) == 1
    assert changed == [
        (("BTC", "a"), "0.75", 1_700_000_000_000),
        (("BTC", "b"), "0.25", 1_700_000_000_000),
    ]


def test_batches_left_to_the_general_path() -> None:
    rows = rows_of(buy())
    # Dated before the latest transaction of its wallet.
    assert decide(rows, last_ms={("BTC", "default"): 1_700_000_000_001}) is None
    assert decide(rows, last_ms={("BTC", "default"): 1_700_000_000_000}) is not None
    # A balance beyond the ledger's fixed point (20 digits before the point, 18 after).
    assert decide(rows, balances={("BTC", "default"): Decimal("1e21")}) is None
    assert decide(rows, balances={("BTC", "default"): Decimal("0.0000000000000000001")}) is None
    # Written with an exponent by str(): still read exactly.
    assert decide(rows, balances={("BTC", "default"): Decimal("1E+2")})[5] == [
        (("BTC", "default"), "101", 1_700_000_000_000)
    ]


def test_only_the_rows_asked_for_are_listed_but_all_are_counted() -> None:
    rows = rows_of(
        buy(client_transaction_id="old"),
        buy(client_transaction_id="a", time=ts(1_700_000_100)),
        buy(client_transaction_id="a", time=ts(1_700_000_100)),
        buy(client_transaction_id="b", time=ts(1_700_000_200)),
    )
    existing = {"old": (rows[0][1][17], "tx_old")}
    decided = decide_import(
        ImportRows.from_tuples(rows),
        existing,
        UncommittedIds(),
        {},
        {},
        True,
        "pf_1",
        1,
        CLOCK_MS,
        1,
        0,
        2,
    )
    assert decided is not None
    written, created, duplicates, rejected, inserts, *_ = decided
    assert (created, duplicates, rejected, len(inserts)) == (2, 2, [], 2)
    assert [(w[0], w[1], w[3]) for w in written] == [(0, "old", False), (1, "a", True)]
    assert written[0][2] == "tx_old"


def test_rows_kept_in_rust_are_the_rows_parse_import_hands_out() -> None:
    message = request(
        buy(client_transaction_id="a"),
        buy(client_transaction_id="bad", quantity="-1"),
        sell(client_transaction_id="s", quantity="0.25", time=ts(1_700_000_100)),
    )
    pid, fast, slow = parse_import(message, BASE, NOW_MS, SKEW_MS, KNOWN)
    pid2, count, rows, slow2 = parse_import_rows(message, BASE, NOW_MS, SKEW_MS, KNOWN, 100)
    assert (pid2, count, slow2) == (pid, 3, slow) and slow == [1]
    assert rows.tuples() == [(100 + r[0], r) for r in fast]
    assert rows.client_ids() == ["a", "s"]
    again = ImportRows.from_tuples(rows.tuples())
    assert again.tuples() == rows.tuples()
    first = rows.take(1)
    assert (len(first), len(rows)) == (1, 1)
    assert first.client_ids() == ["a"] and rows.client_ids() == ["s"]
    first.extend(rows)
    assert (len(first), len(rows)) == (2, 0)
    assert first.tuples() == again.tuples()
    assert len(first.take(10)) == 2 and len(first) == 0
