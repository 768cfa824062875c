"""The book's per-transaction index (core_rs.TxIndex, core_rs.index_stored):
entries the cyclic GC never tracks, legs parsed from their stored text on
first use, and a stored batch registered all or nothing."""

from __future__ import annotations

import gc
import json
from decimal import Decimal

import pytest

import core_rs
from services.portfolio.book import Book, TxIndex
from services.portfolio.legs import ACQUIRE, DISPOSE, Leg, legs_from_json

BUY_TEXT = '[[0,1,"BTC","main","","1.5","30000.5",null]]'
SELL_TEXT = '[[0,2,"BTC","main","","0.5","20000",null]]'
INCOME_BODY = json.dumps({"kind": 5, "income_kind": 2, "asset": "ETH"})


def stored_rows() -> list[tuple[int, str, int, int, str, str, str]]:
    # (seq, tx_id, kind, time_ms, valuation, body, legs): Repository.load_book_rows.
    return [
        (1, "tx_buy", 1, 1_000, "", "", BUY_TEXT),
        (2, "tx_income", 5, 2_000, "unknown", INCOME_BODY, '[[0,1,"ETH","main","","2",null,null]]'),
        (3, "tx_sell", 2, 3_000, "", "", SELL_TEXT),
    ]


def test_entries_are_never_tracked_by_the_cyclic_gc() -> None:
    legs = (Leg(0, ACQUIRE, "BTC", "main", Decimal("1"), Decimal("10")),)
    assert not gc.is_tracked(TxIndex(1, "tx_a", 1, 5, legs))
    assert not gc.is_tracked(TxIndex.stored(1, "tx_a", 1, 5, BUY_TEXT, 0))
    txs: dict[int, TxIndex] = {}
    core_rs.index_stored(stored_rows(), txs, {}, set())
    assert not any(gc.is_tracked(entry) for entry in txs.values())


def test_stored_legs_are_parsed_on_first_use_and_kept() -> None:
    entry = TxIndex.stored(3, "tx_sell", 2, 3_000, SELL_TEXT, 0)
    assert entry.legs == legs_from_json(SELL_TEXT)
    assert entry.legs[0].kind == DISPOSE and entry.legs[0].qty == Decimal("0.5")
    assert entry.legs is entry.legs
    assert (entry.seq, entry.tx_id, entry.kind, entry.time_ms) == (3, "tx_sell", 2, 3_000)
    other = entry.with_legs(())
    assert other.legs == () and (other.seq, other.tx_id, other.income_kind) == (3, "tx_sell", 0)
    assert entry.legs != ()
    assert repr(entry) == "TxIndex(seq=3, tx_id='tx_sell', kind=2)"


def test_a_bad_parser_is_refused() -> None:
    with pytest.raises(ValueError, match="callable"):
        TxIndex.set_legs_parser("not a function")  # type: ignore[arg-type]


def test_index_stored_registers_every_row() -> None:
    txs: dict[int, TxIndex] = {}
    seq_of: dict[str, int] = {}
    unknown: set[int] = set()
    core_rs.index_stored(stored_rows(), txs, seq_of, unknown)
    assert sorted(txs) == [1, 2, 3]
    assert seq_of == {"tx_buy": 1, "tx_income": 2, "tx_sell": 3}
    assert unknown == {2}
    # The income kind is read from the body; a row without a body has none.
    assert [txs[s].income_kind for s in (1, 2, 3)] == [0, 2, 0]
    assert [txs[s].kind for s in (1, 2, 3)] == [1, 5, 2]
    assert txs[1].legs == legs_from_json(BUY_TEXT)


def test_index_stored_takes_driver_rows_as_well_as_tuples() -> None:
    class Row:  # a database row: a sequence, not a tuple
        def __init__(self, values: tuple[object, ...]) -> None:
            self.values = values

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self.values)

    txs: dict[int, TxIndex] = {}
    core_rs.index_stored([Row(r) for r in stored_rows()], txs, {}, set())
    assert sorted(txs) == [1, 2, 3]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((4, "tx_bad", 5, 4_000, "", "{not json", "[]"), "transaction 4: body is not readable"),
        ((4, "tx_bad", 1, 4_000, ""), "7 fields, not 5"),
    ],
)
def test_index_stored_registers_nothing_when_a_row_is_bad(
    bad: tuple[object, ...], message: str
) -> None:
    txs: dict[int, TxIndex] = {}
    seq_of: dict[str, int] = {}
    unknown: set[int] = set()
    with pytest.raises(ValueError, match=message):
        core_rs.index_stored([*stored_rows(), bad], txs, seq_of, unknown)
    assert txs == {} and seq_of == {} and unknown == set()


def test_book_load_is_all_or_nothing_when_a_body_is_bad() -> None:
    book = Book("pf_x")
    bad = (4, "tx_bad", 5, 4_000, "", "{not json", '[[0,1,"ETH","main","","1","1",null]]')
    with pytest.raises(ValueError, match="body is not readable"):
        book.load([*stored_rows(), bad])
    assert book.txs == {} and book.seq_of == {} and book.leg_count == 0
    assert len(book.ledger) == 0
    book.load(stored_rows())
    assert book.leg_count == 3 and book.balances[("BTC", "main")] == Decimal("1.0")
