"""A transaction's legs as stored: the writer's direct encoding (legs_json) is
exactly what the repository writes for the same legs as rows, and reads back
as those rows."""

from __future__ import annotations

from decimal import Decimal

from services.portfolio.db.repository import TransactionRow, decode_legs, encode_legs
from services.portfolio.ledger_writer import leg_rows, legs_json
from services.portfolio.legs import ACQUIRE, DISPOSE, MOVE, Leg

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
