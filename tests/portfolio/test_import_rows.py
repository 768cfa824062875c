"""ImportTransactions row by row through the real service: which rows are
reported, in what order, whatever path parsed them or stage refused them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from marketmesh.v1 import portfolio_pb2 as pb
from tests.portfolio.harness import Client, StartPortfolio, ms, set_prices, tx
from tests.pricing.conftest import StartPricing

BUY, SELL = pb.TRANSACTION_KIND_BUY, pb.TRANSACTION_KIND_SELL
REJECTED = pb.IMPORT_ROW_STATUS_REJECTED


def mixed_row(i: int) -> pb.Transaction:
    """Every third row unparseable, every third an oversell (refused only when
    written), every third a small buy."""
    t = ms(2024, 1, 1) + i * 1_000
    if i % 3 == 0:
        row = tx(BUY, "BTC", "1e5", t, price="100")
    elif i % 3 == 1:
        row = tx(SELL, "BTC", "1000", t, price="100")
    else:
        row = tx(BUY, "BTC", "0.001", t, price="100")
    row.client_transaction_id = f"row-{i}"
    return row


async def messages(pid: str, rows: list[pb.Transaction], size: int) -> AsyncIterator[object]:
    for lo in range(0, len(rows), size):
        yield pb.ImportTransactionsRequest(portfolio_id=pid, transactions=rows[lo : lo + size])


async def test_the_rejections_shown_are_the_first_10000_rows_in_order(
    start_pricing_server: StartPricing, start_portfolio: StartPortfolio
) -> None:
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    await set_prices(pricing.stub, {"BTC": 100.0})
    # Small batches: messages are parsed while earlier batches are written, so
    # parse-time and write-time rejections arrive interleaved.
    portfolio = await start_portfolio(pricing_address=pricing.target, max_batch=700)
    client = Client(portfolio.stub)
    pid = await client.create("mixed")
    n = 16_500
    response = await portfolio.stub.ImportTransactions(
        messages(pid, [mixed_row(i) for i in range(n)], 2_000), metadata=client.md
    )

    accepted_rows = [i for i in range(n) if i % 3 == 2]
    rejected_rows = [i for i in range(n) if i % 3 != 2]
    assert (response.accepted, response.duplicates, response.rejected) == (
        len(accepted_rows),
        0,
        len(rejected_rows),
    )
    shown_rejected = [r for r in response.results if r.status == REJECTED]
    assert [r.row for r in shown_rejected] == rejected_rows[:10_000]
    assert {r.field for r in shown_rejected if r.row % 3 == 0} == {
        f"transactions[{r.row}].quantity" for r in shown_rejected if r.row % 3 == 0
    }
    oversold = [r for r in shown_rejected if r.row % 3 == 1]
    assert all("short by" in r.reason and r.client_transaction_id for r in oversold)
    shown_accepted = [r for r in response.results if r.status != REJECTED]
    assert [r.row for r in shown_accepted] == accepted_rows[:1_000]
    assert [r.client_transaction_id for r in shown_accepted[:2]] == ["row-2", "row-5"]
    assert [r.row for r in response.results] == sorted(r.row for r in response.results)
