"""ImportTransactions row by row through the real service: which rows are
reported, in what order, whatever path parsed them or stage refused them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from marketmesh.v1 import portfolio_pb2 as pb
from tests.portfolio.harness import Client, D, StartPortfolio, ms, set_prices, tx
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


async def test_records_during_an_import_interleave_and_survive_a_restart(
    start_pricing_server: StartPricing, start_portfolio: StartPortfolio
) -> None:
    """RecordTransaction calls while an import's batches commit in the
    background: every write lands once, in an order the book and the
    database agree on (a fresh server rebuilds the same holdings)."""
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    await set_prices(pricing.stub, {"BTC": 100.0, "ETH": 10.0})
    portfolio = await start_portfolio(pricing_address=pricing.target, max_batch=500)
    client = Client(portfolio.stub)
    pid = await client.create("busy")
    n = 6_000
    buys = []
    for i in range(n):
        row = tx(BUY, "BTC", "0.001", ms(2024, 1, 1) + i * 1_000, price="100")
        row.client_transaction_id = f"imp-{i}"
        buys.append(row)

    async def records() -> list[str]:
        ids = []
        for j in range(40):
            # ETH buys and sales dated after every import row: never backdated.
            t = ms(2025, 1, 1) + j * 60_000
            kind, qty = (BUY, "2") if j % 2 == 0 else (SELL, "1")
            done = await client.record(pid, tx(kind, "ETH", qty, t, price="10"), f"rec-{j}")
            ids.append(done.id)
            await asyncio.sleep(0)
        return ids

    importing = portfolio.stub.ImportTransactions(messages(pid, buys, 1_000), metadata=client.md)
    response, recorded = await asyncio.gather(importing, records())
    assert (response.accepted, response.rejected) == (n, 0)
    assert response.batches == n // 500  # MM_PORTFOLIO_MAX_BATCH, not the message size
    assert len(set(recorded)) == 40

    want = {"BTC": D("6"), "ETH": D("20")}
    before = await client.holdings(pid, skip_market=True)
    assert {h.asset: D(h.quantity) for h in before.holdings} == want
    restarted = await start_portfolio(pricing_address=pricing.target)
    after = await Client(restarted.stub).holdings(pid, skip_market=True)
    assert {h.asset: D(h.quantity) for h in after.holdings} == want
    assert [(h.asset, h.cost_basis) for h in after.holdings] == [
        (h.asset, h.cost_basis) for h in before.holdings
    ]
