"""A transaction's legs as stored: the writer's direct encoding (legs_json) is
exactly what the repository writes for the same legs as rows, and reads back
as those rows."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from bench.portfolio_ledger import LedgerSpec, generate
from services.portfolio.book import Book, TxIndex
from services.portfolio.db.repository import TransactionRow, decode_legs, encode_legs
from services.portfolio.ledger_writer import leg_rows
from services.portfolio.legs import (
    ACQUIRE,
    DISPOSE,
    MOVE,
    Leg,
    build_legs,
    legs_from_json,
    legs_json,
)

T0 = 1_546_300_800_000  # 2019-01-01
ROW = TransactionRow(
    portfolio_id="pf_x",
    seq=7,
    id="tx_" + "0" * 24,
    client_transaction_id="c",
    content_hash="h",
    kind=2,
    time_ms=1_767_225_600_000,
    asset="BTC",
    wallet="main",
    to_asset="",
    to_wallet="",
    body="{}",
    valuation="",
    record_ms=1,
)

CASES = [
    [],
    [Leg(0, ACQUIRE, "BTC", "main", Decimal("1.50"), Decimal("100.000000000000000000"))],
    [
        Leg(
            0,
            DISPOSE,
            "ETH",
            "cold wallet",
            Decimal("0.000000000000000001"),
            None,
            selections=(("tx_" + "a" * 24, Decimal("0.5")), ("tx_" + "b" * 24 + ".1", Decimal(2))),
        ),
        Leg(1, ACQUIRE, "SOL", "cold wallet", Decimal("12345678901234567890"), Decimal(0)),
        Leg(2, DISPOSE, "ETH", "cold wallet", Decimal("0.01"), Decimal("-3.5")),
    ],
    [Leg(0, MOVE, "BTC", "a", Decimal("2"), Decimal(0), 'b "quoted" é')],
]


def test_legs_json_is_the_repository_encoding_of_the_rows() -> None:
    for legs in CASES:
        rows = leg_rows(ROW, legs)
        assert legs_json(legs) == encode_legs(rows)
        assert decode_legs(ROW.portfolio_id, ROW.seq, ROW.time_ms, legs_json(legs)) == rows
        assert legs_from_json(legs_json(legs)) == tuple(legs)


def test_a_book_loaded_from_stored_rows_equals_one_built_from_its_transactions() -> None:
    """Book.load (the restart path: stored JSON, balances summed by core_rs)
    against Book.add (the write path: Leg objects, balances in Python)."""
    assets = ("BTC", "ETH", "SOL", "ADA")
    contents = list(generate(LedgerSpec(3_000, assets, T0, years=2, seed=5)))
    built, loaded = Book("pf_x"), Book("pf_x")
    entries, stored = [], []
    for seq, tx in enumerate(contents, start=1):
        legs, valuation = build_legs(tx, "USD")
        tx_id = f"tx_{seq:024x}"
        entries.append((TxIndex(seq, tx_id, tx.kind, tx.time_ms, tuple(legs)), valuation))
        stored.append((seq, tx_id, tx.kind, tx.time_ms, valuation, "", legs_json(legs)))
    built.add(entries)
    for lo in range(0, len(stored), 700):  # in chunks, as the repository yields them
        loaded.load(stored[lo : lo + 700])

    assert loaded.leg_count == built.leg_count > len(contents)
    assert {k: v for k, v in loaded.balances.items() if v} == {
        k: v for k, v in built.balances.items() if v
    }
    assert loaded.last_ms == built.last_ms
    assert [e.legs for e in loaded.txs.values()] == [e.legs for e, _ in entries]
    for method in (1, 2, 3):  # FIFO, LIFO, HIFO
        a = built.replay([(0, method)], per_wallet=False, allow_negative=False)
        b = loaded.replay([(0, method)], per_wallet=False, allow_negative=False)
        every = np.arange(a.n_matches, dtype=np.int64)
        assert a.n_matches == b.n_matches > 100
        assert a.sum_matches(every) == b.sum_matches(every)


def test_balances_are_exact_beyond_the_default_28_digits() -> None:
    """Buy 29 significant digits' worth, sell a hair less then the rest: the
    book's balances (Python's default context would round them) stay exact,
    and the last sale fits to the last digit."""
    book = Book("pf_x")
    q = Decimal("12345678901.123456789012345678")
    tiny = Decimal("0.000000000000000001")
    legs = [
        [Leg(0, ACQUIRE, "SHIB", "main", q, Decimal(1))],
        [Leg(0, DISPOSE, "SHIB", "main", Decimal("12345678901.123456789012345677"), Decimal(1))],
        [Leg(0, DISPOSE, "SHIB", "main", tiny, Decimal(0))],
    ]
    for seq, tx_legs in enumerate(legs, start=1):
        assert book.fits_in_order(tx_legs, T0 + seq) is None
        book.add([(TxIndex(seq, f"tx_{seq:024x}", 1, T0 + seq, tuple(tx_legs)), "")])
        if seq == 2:
            assert book.balances[("SHIB", "main")] == tiny
    assert book.balances[("SHIB", "main")] == 0
    over = [Leg(0, DISPOSE, "SHIB", "main", tiny, Decimal(0))]
    short = book.fits_in_order(over, T0 + 9)
    assert short is not None and short.shortfall == tiny


def test_a_book_with_named_lots_loads_the_same() -> None:
    """Stored legs naming lots (specific identification) resolve through the
    book's ids: loaded, the sale takes the lot it names, as when built."""
    first, second = "tx_" + "1" * 24, "tx_" + "2" * 24
    legs = [
        (1, first, [Leg(0, ACQUIRE, "BTC", "main", Decimal(1), Decimal(100))]),
        (2, second, [Leg(0, ACQUIRE, "BTC", "main", Decimal(1), Decimal(300))]),
        (
            3,
            "tx_" + "3" * 24,
            [
                Leg(
                    0,
                    DISPOSE,
                    "BTC",
                    "main",
                    Decimal("0.5"),
                    Decimal(500),
                    selections=((second, Decimal("0.5")),),
                )
            ],
        ),
    ]
    built, loaded = Book("pf_x"), Book("pf_x")
    built.add([(TxIndex(s, i, 1, T0 + s, tuple(g)), "") for s, i, g in legs])
    loaded.load([(s, i, 1, T0 + s, "", "", legs_json(g)) for s, i, g in legs])
    for book in (built, loaded):
        replay = book.replay([(0, 1)], per_wallet=False, allow_negative=False)  # FIFO
        every = np.arange(replay.n_matches, dtype=np.int64)
        # The named lot (cost 300 a unit), not FIFO's first (100).
        assert replay.sum_matches(every)["short"][:3] == ("500", "150", "350")
    assert loaded.balances == built.balances
