"""Cost basis through the real service, on hand-worked ledgers (SQLite and PostgreSQL).

Every expected number below is worked out by hand in the comments; none is
read back from the code under test.
"""

from __future__ import annotations

import grpc
import pytest

from marketmesh.v1 import portfolio_pb2 as pb
from tests.portfolio.harness import Client, D, StartPortfolio, ms, set_prices, tx
from tests.pricing.conftest import StartPricing
from tests.signals.api_helpers import expect_failure

BUY, SELL, SWAP, INCOME, TRANSFER = (
    pb.TRANSACTION_KIND_BUY,
    pb.TRANSACTION_KIND_SELL,
    pb.TRANSACTION_KIND_SWAP,
    pb.TRANSACTION_KIND_INCOME,
    pb.TRANSACTION_KIND_TRANSFER,
)
GIFT_IN, GIFT_OUT, SPEND = (
    pb.TRANSACTION_KIND_GIFT_IN,
    pb.TRANSACTION_KIND_GIFT_OUT,
    pb.TRANSACTION_KIND_SPEND,
)
FIFO, LIFO, HIFO, AVG, SPECIFIC = (
    pb.COST_BASIS_METHOD_FIFO,
    pb.COST_BASIS_METHOD_LIFO,
    pb.COST_BASIS_METHOD_HIFO,
    pb.COST_BASIS_METHOD_AVERAGE_COST,
    pb.COST_BASIS_METHOD_SPECIFIC_LOT,
)
SHORT, LONG = pb.GAIN_TERM_SHORT, pb.GAIN_TERM_LONG


@pytest.fixture
async def service(start_pricing_server: StartPricing, start_portfolio: StartPortfolio):  # type: ignore[no-untyped-def]
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    portfolio = await start_portfolio(pricing_address=pricing.target)
    return pricing, portfolio


async def three_buys_and_a_sale(client: Client, pid: str) -> None:
    # A: 1 @ 100 (cost 100); B: 2 @ 130 (cost 260, unit 130); C: 1 @ 110 (cost 110).
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 10), price="100"))
    await client.record(pid, tx(BUY, "BTC", "2", ms(2024, 2, 10), price="130"))
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 3, 10), price="110"))
    # Sell 2.5 @ 150: proceeds 375.
    await client.record(pid, tx(SELL, "BTC", "2.5", ms(2024, 6, 10), price="150"))


# method -> (basis of the sale, gain, cost left in the open lots)
#   FIFO: A 1 (100) + B 1.5 (260 x 1.5/2 = 195) = 295; gain 80; left B 0.5 (65) + C (110) = 175
#   LIFO: C 1 (110) + B 1.5 (195) = 305; gain 70; left A (100) + B 0.5 (65) = 165
#   HIFO: B 2 (260) + C 0.5 (55) = 315; gain 60; left A (100) + C 0.5 (55) = 155
#   AVG: 470 / 4 = 117.5 a unit; 2.5 x 117.5 = 293.75; gain 81.25; left 1.5 x 117.5 = 176.25
EXPECTED = {
    FIFO: ("295", "80", "175"),
    LIFO: ("305", "70", "165"),
    HIFO: ("315", "60", "155"),
    AVG: ("293.75", "81.25", "176.25"),
}


@pytest.mark.parametrize("method", [FIFO, LIFO, HIFO, AVG])
async def test_each_method_on_a_hand_worked_ledger(service, method: int) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create(cost_basis_method=method)
    await three_buys_and_a_sale(client, pid)
    basis, gain, left = EXPECTED[method]
    gains = await client.gains(pid, year=2024)
    assert len(gains.disposals) == 1
    d = gains.disposals[0]
    assert (D(d.proceeds), D(d.cost_basis), D(d.gain)) == (D("375"), D(basis), D(gain))
    assert d.term == SHORT and D(d.quantity) == D("2.5")
    assert D(gains.short_term.gain) == D(gain) and D(gains.long_term.gain) == 0
    assert sum(D(lot.quantity) for lot in d.lots) == D("2.5")
    assert sum(D(lot.cost_basis) for lot in d.lots) == D(basis)
    holdings = await client.holdings(pid, skip_market=True)
    assert [(h.asset, D(h.quantity), D(h.cost_basis)) for h in holdings.holdings] == [
        ("BTC", D("1.5"), D(left))
    ]
    assert D(holdings.total_realized_gain) == D(gain)
    # Asked again: the same. Selling what is left (1.5 @ 200 = 300, against
    # the cost still open, whatever the method) moves the total.
    again = await client.holdings(pid, skip_market=True)
    assert D(again.total_realized_gain) == D(gain)
    await client.record(pid, tx(SELL, "BTC", "1.5", ms(2024, 7, 10), price="200"))
    final = await client.holdings(pid, skip_market=True)
    assert D(final.total_realized_gain) == D(gain) + D("300") - D(left)


async def test_fifo_pieces_and_method_override(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create(cost_basis_method=FIFO)
    await three_buys_and_a_sale(client, pid)
    d = (await client.gains(pid)).disposals[0]
    # FIFO pieces: A 1 (basis 100) and B 1.5 (basis 195).
    assert [(D(p.quantity), D(p.cost_basis)) for p in d.lots] == [
        (D("1"), D("100")),
        (D("1.5"), D("195")),
    ]
    assert d.acquired_various and d.method == FIFO
    # The same ledger replayed with HIFO on request, without changing the portfolio.
    assert D((await client.gains(pid, method_override=HIFO)).disposals[0].gain) == D("60")
    assert D((await client.gains(pid)).total.gain) == D("80")


async def test_short_and_long_term_at_365_and_366_days(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    await client.record(pid, tx(BUY, "ETH", "2", ms(2023, 1, 1), price="1000"))
    # 2023 has 365 days: 2024-01-01 is exactly 365 days later -> short; 2024-01-02 is 366 -> long.
    await client.record(pid, tx(SELL, "ETH", "1", ms(2024, 1, 1, 12), price="1500"))
    await client.record(pid, tx(SELL, "ETH", "1", ms(2024, 1, 2, 12), price="1600"))
    gains = await client.gains(pid, year=2024)
    assert [(d.term, D(d.gain)) for d in gains.disposals] == [(SHORT, D("500")), (LONG, D("600"))]
    assert D(gains.short_term.gain) == D("500") and D(gains.long_term.gain) == D("600")
    assert D(gains.total.gain) == D("1100") and gains.total.count == 2


async def test_method_changes_per_tax_year(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create(
        cost_basis_method=FIFO, method_changes=[pb.MethodChange(from_year=2025, method=LIFO)]
    )
    for month, price in ((1, "100"), (6, "200"), (9, "300")):
        await client.record(pid, tx(BUY, "SOL", "1", ms(2023, month, 1), price=price))
    await client.record(pid, tx(SELL, "SOL", "1", ms(2024, 3, 1), price="250"))  # FIFO: 100 -> +150
    await client.record(pid, tx(SELL, "SOL", "1", ms(2025, 3, 1), price="250"))  # LIFO: 300 -> -50
    g2024, g2025 = await client.gains(pid, year=2024), await client.gains(pid, year=2025)
    assert D(g2024.total.gain) == D("150") and g2024.disposals[0].method == FIFO
    assert D(g2025.total.gain) == D("-50") and g2025.disposals[0].method == LIFO
    # FIFO for every year instead: the 2025 sale takes the 200 lot -> +50.
    assert D((await client.gains(pid, year=2025, method_override=FIFO)).total.gain) == D("50")
    lots = await client.lots(pid)
    assert [(D(lot.quantity), D(lot.cost_basis)) for lot in lots] == [(D("1"), D("200"))]


@pytest.mark.parametrize(
    ("pool", "gain"), [(pb.LOT_POOL_PER_WALLET, "100"), (pb.LOT_POOL_UNIVERSAL, "200")]
)
async def test_per_wallet_and_universal_pools(service, pool: int, gain: str) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create(pool=pool)
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="100", wallet="a"))
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 2, 1), price="200", wallet="b"))
    # Sold from b: its own lot (200) per wallet; the oldest anywhere (100) universally.
    await client.record(pid, tx(SELL, "BTC", "1", ms(2024, 3, 1), price="300", wallet="b"))
    assert D((await client.gains(pid)).total.gain) == D(gain)
    holdings = await client.holdings(pid, skip_market=True)
    if pool == pb.LOT_POOL_PER_WALLET:
        assert [(h.wallet, D(h.quantity)) for h in holdings.holdings] == [("a", D("1"))]
    else:
        (row,) = holdings.holdings
        assert (
            row.wallet == "" and D(row.quantity) == 1 and dict(row.wallet_quantities) == {"a": "1"}
        )


async def test_transfer_with_fee_keeps_basis_and_dates(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create(pool=pb.LOT_POOL_PER_WALLET)
    buy = await client.record(
        pid, tx(BUY, "BTC", "2", ms(2024, 1, 1), price="100", wallet="exchange")
    )
    # 1 BTC to cold storage, 0.01 BTC fee worth 1.5: the fee is a disposal of
    # 0.01 from the exchange lot (basis 0.01 x 100 = 1): gain 0.5.
    await client.record(
        pid,
        tx(
            TRANSFER,
            "BTC",
            "1",
            ms(2024, 2, 1),
            wallet="exchange",
            to_wallet="cold",
            fee=("BTC", "0.01", "1.5"),
        ),
    )
    lots = {lot.wallet: lot for lot in await client.lots(pid)}
    assert (D(lots["cold"].quantity), D(lots["cold"].cost_basis)) == (D("1"), D("100"))
    assert (D(lots["exchange"].quantity), D(lots["exchange"].cost_basis)) == (D("0.99"), D("99"))
    assert lots["cold"].id == buy.id == lots["exchange"].id
    assert lots["cold"].acquired_time.seconds == ms(2024, 1, 1) // 1000
    # 0.5 from cold more than 365 days after the purchase: long term, basis 50.
    await client.record(pid, tx(SELL, "BTC", "0.5", ms(2025, 1, 5), price="400", wallet="cold"))
    g2024, g2025 = await client.gains(pid, year=2024), await client.gains(pid, year=2025)
    assert [(D(d.quantity), D(d.proceeds), D(d.gain), d.term) for d in g2024.disposals] == [
        (D("0.01"), D("1.5"), D("0.5"), SHORT)
    ]
    assert [(D(d.proceeds), D(d.cost_basis), d.term) for d in g2025.disposals] == [
        (D("200"), D("50"), LONG)
    ]


async def test_swap_income_fees_and_gifts(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    # Buy 1 ETH at 2000 with a 10 USD fee: cost 2010.
    await client.record(pid, tx(BUY, "ETH", "1", ms(2024, 1, 1), price="2000", fee=("USD", "10")))
    # Swap 0.5 ETH for 0.02 BTC worth 1500: ETH disposal 1500 - 1005 = 495; BTC lot at 1500.
    await client.record(
        pid,
        tx(SWAP, "ETH", "0.5", ms(2024, 3, 1), value="1500", to_asset="BTC", to_quantity="0.02"),
    )
    # Staking: 0.1 ETH worth 300 (income, and a lot at 300).
    await client.record(
        pid,
        tx(INCOME, "ETH", "0.1", ms(2024, 4, 1), value="300", income_kind=pb.INCOME_KIND_STAKING),
    )
    # Sell the BTC at 80,000 with a 5 USD fee: 1600 - 5 = 1595 proceeds, basis 1500: +95.
    await client.record(
        pid, tx(SELL, "BTC", "0.02", ms(2024, 5, 1), price="80000", fee=("USD", "5"))
    )
    # A gift in at the donor's basis 50, then a gift out of 0.05 ETH: no gain.
    await client.record(pid, tx(GIFT_IN, "SOL", "1", ms(2024, 6, 1), value="50"))
    await client.record(pid, tx(GIFT_OUT, "ETH", "0.05", ms(2024, 7, 1)))
    gains = await client.gains(pid, year=2024)
    assert [(d.asset, D(d.proceeds), D(d.cost_basis), D(d.gain)) for d in gains.disposals] == [
        ("ETH", D("1500"), D("1005"), D("495")),
        ("BTC", D("1595"), D("1500"), D("95")),
    ]
    income = await portfolio.stub.GetIncome(
        pb.GetIncomeRequest(portfolio_id=pid, year=2024), metadata=client.md
    )
    assert [(line.month, line.kind, line.asset, D(line.value)) for line in income.lines] == [
        ("2024-04", pb.INCOME_KIND_STAKING, "ETH", D("300"))
    ]
    assert dict(income.total_by_kind) == {"STAKING": "300"} and D(income.total) == D("300")
    # Left: ETH 0.5 (1005) + 0.1 (300) - gift out 0.05 FIFO from the first lot
    # (1005 x 0.05/0.5 = 100.5): 0.55 ETH at 1204.5; SOL 1 at 50.
    holdings = await client.holdings(pid, skip_market=True)
    assert {(h.asset, D(h.quantity), D(h.cost_basis)) for h in holdings.holdings} == {
        ("ETH", D("0.55"), D("1204.5")),
        ("SOL", D("1"), D("50")),
    }


async def test_specific_lots_and_average_cost_after_partial_sales(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create(cost_basis_method=SPECIFIC)
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="100"))
    lot_b = await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 2, 1), price="200"))
    await client.record(
        pid, tx(SELL, "BTC", "1", ms(2024, 3, 1), price="250", lots=[(lot_b.id, "1")])
    )
    d = (await client.gains(pid)).disposals[0]
    assert D(d.gain) == D("50") and [p.lot_id for p in d.lots] == [lot_b.id]
    # Without named lots a SPECIFIC_LOT portfolio matches FIFO: the 100 lot.
    await client.record(pid, tx(SELL, "BTC", "0.5", ms(2024, 4, 1), price="300"))
    assert D((await client.gains(pid)).disposals[1].gain) == D("100")

    avg = await client.create("avg", cost_basis_method=AVG)
    # 1 @ 100 + 1 @ 200: average 150. Sell 0.5 @ 300: basis 75, gain 75.
    # Left 1.5 at 225; buy 1 @ 400: 2.5 at 625 (average 250). Sell 1 @ 300: basis 250, gain 50.
    await client.record(avg, tx(BUY, "ETH", "1", ms(2024, 1, 1), price="100"))
    await client.record(avg, tx(BUY, "ETH", "1", ms(2024, 2, 1), price="200"))
    await client.record(avg, tx(SELL, "ETH", "0.5", ms(2024, 3, 1), price="300"))
    await client.record(avg, tx(BUY, "ETH", "1", ms(2024, 4, 1), price="400"))
    await client.record(avg, tx(SELL, "ETH", "1", ms(2024, 5, 1), price="300"))
    gains = await client.gains(avg)
    assert [(D(d.cost_basis), D(d.gain)) for d in gains.disposals] == [
        (D("75"), D("75")),
        (D("250"), D("50")),
    ]
    (row,) = (await client.holdings(avg, skip_market=True)).holdings
    assert (D(row.quantity), D(row.cost_basis), D(row.average_cost)) == (
        D("1.5"),
        D("375"),
        D("250"),
    )


async def test_holdings_valued_at_pricing_quotes(service) -> None:  # type: ignore[no-untyped-def]
    pricing, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    await client.record(pid, tx(BUY, "BTC", "0.5", ms(2024, 1, 1), price="40000"))
    await client.record(pid, tx(BUY, "ETH", "2", ms(2024, 1, 1), price="2000"))
    await set_prices(pricing.stub, {"BTC": 60000.0, "ETH": 1500.0})
    h = await client.holdings(pid)
    rows = {r.asset: r for r in h.holdings}
    # BTC 0.5 x 60000 = 30000 (cost 20000: +10000, +50%);
    # ETH 2 x 1500 = 3000 (cost 4000: -1000, -25%).
    assert (
        D(rows["BTC"].market_value),
        D(rows["BTC"].unrealized_pnl),
        D(rows["BTC"].unrealized_pnl_pct),
    ) == (
        D("30000"),
        D("10000"),
        D("0.5"),
    )
    assert (D(rows["ETH"].market_value), D(rows["ETH"].unrealized_pnl)) == (D("3000"), D("-1000"))
    assert D(h.total_market_value) == D("33000") and D(h.total_unrealized_pnl) == D("9000")
    assert D(rows["BTC"].weight) + D(rows["ETH"].weight) == 1
    assert D(rows["ETH"].weight) == D(3000) / D(33000) or abs(
        D(rows["ETH"].weight) - D(3000) / D(33000)
    ) < D("1e-18")
    # Signals is down in this test: no grade, and the response says why.
    assert not rows["BTC"].HasField("trader_grade")
    assert len(h.unavailable) == 1 and h.unavailable[0].startswith("trader_grade: signals at")


async def test_a_restart_rebuilds_the_same_book_from_the_database(
    start_pricing_server: StartPricing, start_portfolio: StartPortfolio
) -> None:
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    first = await start_portfolio(pricing_address=pricing.target)
    client = Client(first.stub)
    pid = await client.create(pool=pb.LOT_POOL_PER_WALLET, cost_basis_method=SPECIFIC)
    lot = await client.record(pid, tx(BUY, "BTC", "2", ms(2024, 1, 1), price="100", wallet="a"))
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 2, 1), price="300", wallet="a"))
    await client.record(
        pid, tx(SELL, "BTC", "1.5", ms(2024, 3, 1), price="400", wallet="a", lots=[(lot.id, "1.5")])
    )
    await client.record(
        pid,
        tx(
            TRANSFER,
            "BTC",
            "1",
            ms(2024, 4, 1),
            wallet="a",
            to_wallet="b",
            fee=("BTC", "0.1", "40"),
        ),
    )
    await client.record(
        pid, tx(INCOME, "ETH", "1", ms(2024, 5, 1), value="2000", income_kind=pb.INCOME_KIND_MINING)
    )
    unknown = await client.record(
        pid, tx(INCOME, "SOL", "2", ms(2024, 6, 1), income_kind=pb.INCOME_KIND_AIRDROP)
    )
    assert unknown.valuation == "unknown"

    async def snapshot(c: Client) -> tuple:
        gains = await c.gains(pid, year=2024)
        lots = await c.lots(pid)
        holdings = await c.holdings(pid, skip_market=True)
        return (
            [
                (d.transaction_id, d.proceeds, d.cost_basis, [p.lot_id for p in d.lots])
                for d in gains.disposals
            ],
            [(x.id, x.wallet, x.quantity, x.cost_basis) for x in lots],
            [(h.asset, h.wallet, h.quantity, h.cost_basis) for h in holdings.holdings],
        )

    before = await snapshot(client)
    await first.stop()
    second = await start_portfolio(pricing_address=pricing.target)
    again = Client(second.stub)
    assert await snapshot(again) == before
    # The restarted book still knows lots, balances and the unknown valuation.
    failure = await expect_failure(
        again.record(
            pid, tx(SELL, "BTC", "5", ms(2024, 7, 1), price="1", wallet="b"), client_id="late"
        )
    )
    assert (
        failure.code == grpc.StatusCode.FAILED_PRECONDITION and "short by 4 BTC" in failure.message
    )
    failure = await expect_failure(
        second.stub.GetIncome(pb.GetIncomeRequest(portfolio_id=pid, year=2024), metadata=again.md)
    )
    assert unknown.id in failure.message
    # By hand: the sale took 1.5 of lot A (2 @ 100), leaving A 0.5 (50) in a.
    # The transfer moved 1 FIFO from a: A 0.5 (50) and B 0.5 (150) to b; the
    # 0.1 fee then came out of B's 0.5 left in a (basis 30): B 0.4 (120).
    btc = sorted((w, q, c) for _, w, q, c in before[1] if (w, q, c) != ("default", "1", "2000"))
    assert [x for x in btc if x[2]] == [
        ("a", "0.4", "120"),
        ("b", "0.5", "150"),
        ("b", "0.5", "50"),
    ]


async def test_lots_as_of_a_past_time(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create(cost_basis_method=FIFO)
    await three_buys_and_a_sale(client, pid)

    def shown(lots: list[pb.Lot]) -> list[tuple[str, str, str]]:
        return [
            (lot.acquired_time.ToJsonString()[:10], lot.quantity, lot.cost_basis) for lot in lots
        ]

    # Before anything: no lots. After the second buy: A (1, 100) and B (2, 260).
    assert await client.lots(pid, as_of_ms=ms(2024, 1, 1)) == []
    assert shown(await client.lots(pid, as_of_ms=ms(2024, 2, 20))) == [
        ("2024-01-10", "1", "100"),
        ("2024-02-10", "2", "260"),
    ]
    # The day of the sale counts (the sale is at midnight): FIFO took A and 1.5 of
    # B, leaving B 0.5 (260 x 0.5 / 2 = 65) and C (1, 110); the same as now.
    after = shown(await client.lots(pid, as_of_ms=ms(2024, 6, 10)))
    assert after == [("2024-02-10", "0.5", "65"), ("2024-03-10", "1", "110")]
    assert shown(await client.lots(pid)) == after
    # A time in the future is now.
    assert shown(await client.lots(pid, as_of_ms=ms(2100))) == after
