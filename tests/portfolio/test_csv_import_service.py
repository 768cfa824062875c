"""The CSV importer's command line (services.portfolio.import_csv.main) against a real
portfolio server: every kind of row, a row the service rejects (reported by its CSV
line and field), re-runs that add nothing, a fixed row that adds just itself, and the
holdings, gains and income the file describes, worked out by hand below.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from marketmesh.v1 import portfolio_pb2
from services.portfolio import import_csv
from tests.portfolio.harness import ALICE, ALICE_MD, Client, D, PortfolioHarness, StartPortfolio
from tests.pricing.conftest import StartPricing

P = portfolio_pb2

HEADER = "time,kind,asset,quantity,price,value,fee_asset,fee_amount,wallet,to_wallet,to_asset,to_quantity,income_kind,note\n"  # noqa: E501
# Line numbers on the right; the stream row (0-based, what the service sees) after them.
# Every row is priced or valued (or needs no value), so no market lookup is involved.
BAD = "2025-10-10T00:00:00Z,buy,BTC,-1,30000,,,,coinbase,,,,,\n"
FIXED = "2025-10-10T00:00:00Z,buy,BTC,1,30000,,,,coinbase,,,,,\n"
ROWS = (
    # 2 (row 0): lot 2 BTC, cost 2 x 30,000 + 10 USD fee = 60,010 (15,002.5 per 0.5).
    "2025-01-10T00:00:00Z,buy,BTC,2,30000,,USD,10,coinbase,,,,,\n"
    # 3 (row 1): lot 10 ETH, cost 20,000.
    "2025-02-10T00:00:00Z,buy,ETH,10,2000,,,,coinbase,,,,,\n"
    # 4 (row 2): 0.5 BTC for 20,000; cost 15,002.5; gain 4,997.5. BTC left 1.5 (45,007.5).
    "2025-03-10T00:00:00Z,sell,BTC,0.5,40000,,,,coinbase,,,,,\n"
    # 5-6 (row 3): 2 ETH (cost 4,000) for 50 SOL, worth 5,000: gain 1,000; SOL lot 50 at
    # 100 a unit. The note runs over two lines. ETH left 8 (16,000).
    '2025-04-10T00:00:00Z,swap,ETH,2,,5000,,,coinbase,,SOL,50,,"into\nSOL"\n'
    # 7 (row 4): 1 ETH spent, worth 2,500; cost 2,000; gain 500. ETH left 7 (14,000).
    "2025-05-10T00:00:00Z,spend,ETH,1,,2500,,,coinbase,,,,,\n"
    # 8 (row 5): staking income, 5 SOL worth 600: a lot at 600. SOL 55 (5,600).
    "2025-06-10T00:00:00Z,income,SOL,5,,600,,,coinbase,,,,staking,\n"
    # 9 (row 6): 1 BTC from coinbase to ledger: no disposal. coinbase 0.5, ledger 1.
    "2025-07-10T00:00:00Z,transfer,BTC,1,,,,,coinbase,ledger,,,,\n"
    # 10 (row 7): 3 ETH received as a gift, donor's basis 3,000, into wallet cold.
    "2025-08-10T00:00:00Z,gift_in,ETH,3,,3000,,,cold,,,,,\n"
    # 11 (row 8): 10 SOL given away, FIFO from the swap lot (10 x 100 = 1,000 of cost
    # leaves, no proceeds). SOL left 45 (4,600).
    "2025-09-10T00:00:00Z,gift_out,SOL,10,,,,,coinbase,,,,,\n"
)
# 12 (row 9): the bad row (a negative quantity), or once fixed a buy of 1 BTC at 30,000.


@pytest.fixture
async def portfolio(
    start_pricing_server: StartPricing, start_portfolio: StartPortfolio
) -> PortfolioHarness:
    # Pricing only tells the portfolio which assets exist: no prices are needed.
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    return await start_portfolio(pricing_address=pricing.target)


async def run(harness: PortfolioHarness, path: Path, pid: str, *extra: str) -> int:
    argv = [
        str(path),
        "--portfolio",
        pid,
        "--address",
        f"127.0.0.1:{harness.running.port}",
        "--token",
        ALICE,
        *extra,
    ]
    # main() runs its own event loop: a thread keeps this one serving.
    return await asyncio.to_thread(import_csv.main, argv)


def summary(out: str) -> str:
    return out.strip().splitlines()[-1].split(": ", 1)[1]


async def test_every_kind_a_rejected_line_and_reruns(
    portfolio: PortfolioHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = Client(portfolio.stub)
    pid = await client.create("csv", cost_basis_method=P.COST_BASIS_METHOD_FIFO)
    path = tmp_path / "ledger.csv"
    path.write_text(HEADER + ROWS + BAD, encoding="utf-8")

    assert await run(portfolio, path, pid, "--batch", "4") == 1
    out = capsys.readouterr().out
    rejected = [line for line in out.splitlines() if line.startswith("line ")]
    assert len(rejected) == 1, out
    assert rejected[0].startswith("line 12: transactions[9].quantity: "), rejected
    assert summary(out) == (
        "10 rows: 9 accepted, 0 duplicates, 1 rejected, 0 local parse errors (not sent)"
    )

    # Again, unchanged: nothing new; the bad row is still bad.
    assert await run(portfolio, path, pid) == 1
    out = capsys.readouterr().out
    assert summary(out) == (
        "10 rows: 0 accepted, 9 duplicates, 1 rejected, 0 local parse errors (not sent)"
    )

    # The bad row fixed: only it goes in (the others keep their derived ids).
    path.write_text(HEADER + ROWS + FIXED, encoding="utf-8")
    assert await run(portfolio, path, pid, "--batch", "3") == 0
    out = capsys.readouterr().out
    assert summary(out) == (
        "10 rows: 1 accepted, 9 duplicates, 0 rejected, 0 local parse errors (not sent)"
    )
    assert await run(portfolio, path, pid) == 0
    out = capsys.readouterr().out
    assert summary(out) == (
        "10 rows: 0 accepted, 10 duplicates, 0 rejected, 0 local parse errors (not sent)"
    )
    got = await portfolio.stub.GetPortfolio(
        P.GetPortfolioRequest(portfolio_id=pid), metadata=ALICE_MD
    )
    assert got.portfolio.transaction_count == 10

    # Holdings by hand (the fixed row adds 1 BTC at 30,000 in coinbase):
    #   BTC 1.5 + 1 = 2.5, cost 45,007.5 + 30,000 = 75,007.5; coinbase 1.5, ledger 1
    #   ETH 7 + 3 = 10, cost 14,000 + 3,000 = 17,000; coinbase 7, cold 3
    #   SOL 45, cost 40 x 100 + 600 = 4,600; coinbase 45
    holdings = await client.holdings(pid, skip_market=True)
    assert {
        h.asset: (
            D(h.quantity),
            D(h.cost_basis),
            {w: D(q) for w, q in h.wallet_quantities.items()},
        )
        for h in holdings.holdings
    } == {
        "BTC": (D("2.5"), D("75007.5"), {"coinbase": D("1.5"), "ledger": D("1")}),
        "ETH": (D("10"), D("17000"), {"coinbase": D("7"), "cold": D("3")}),
        "SOL": (D("45"), D("4600"), {"coinbase": D("45")}),
    }
    # Realized: 4,997.5 (sell) + 1,000 (swap) + 500 (spend) = 6,497.5 on proceeds
    # 20,000 + 5,000 + 2,500 = 27,500 and cost 15,002.5 + 4,000 + 2,000 = 21,002.5.
    gains = await client.gains(pid, year=2025)
    assert (
        D(gains.total.proceeds),
        D(gains.total.cost_basis),
        D(gains.total.gain),
        gains.total.count,
    ) == (D("27500"), D("21002.5"), D("6497.5"), 3)
    assert D(holdings.total_realized_gain) == D("6497.5")
    income = await portfolio.stub.GetIncome(
        P.GetIncomeRequest(portfolio_id=pid, year=2025), metadata=ALICE_MD
    )
    assert D(income.total) == D("600")
    # The two-line note arrived whole.
    listed = await portfolio.stub.ListTransactions(
        P.ListTransactionsRequest(portfolio_id=pid, kind=P.TRANSACTION_KIND_SWAP),
        metadata=ALICE_MD,
    )
    assert [t.note for t in listed.transactions] == ["into\nSOL"]
