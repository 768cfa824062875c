"""GetHoldings' grades, SizePosition and PlanRebalance through real pricing, signals and portfolio.

Pricing gets ~300 hours of hourly ticks per token ending half a day ago and then
one tick now at a round price; signals grades what pricing has; portfolio asks
both over gRPC. Every expected number is worked out by hand in the comments
from the rules (sizing.py, rebalance.py, target_weights.py) and from inputs
read from pricing and signals (a grade, an ATR, a market cap): never from the
portfolio answer under test. SQLite only: the database is not what is tested.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

import grpc
import pytest

from marketmesh.v1 import common_pb2, portfolio_pb2, pricing_pb2, signals_pb2
from services.common.validation import now_ms
from tests.portfolio.harness import (
    ALICE_MD,
    DAY_MS,
    Client,
    D,
    PortfolioHarness,
    StartPortfolio,
    set_prices,
    tx,
)
from tests.pricing.conftest import PricingHarness, StartPricing
from tests.signals import conftest as signals_conftest
from tests.signals.api_helpers import day_floor, expect_failure, walk
from tests.signals.conftest import HOUR_MS, SignalsHarness, StartSignals, hourly_ticks, publish

P = portfolio_pb2
BUY, SELL = P.TRANSACTION_KIND_BUY, P.TRANSACTION_KIND_SELL
TARGETS, EQUAL, CAP, GRADED = (
    P.REBALANCE_STRATEGY_TARGETS,
    P.REBALANCE_STRATEGY_EQUAL_WEIGHT,
    P.REBALANCE_STRATEGY_MARKET_CAP,
    P.REBALANCE_STRATEGY_GRADE_WEIGHTED,
)
H1 = common_pb2.INTERVAL_1H
# The signals tests' server factory, as a fixture of this module too.
start_signals_server = signals_conftest.start_signals_server
N = 300
Q = Decimal("1e-18")
# Current prices, round so the hand-worked numbers stay readable.
PRICE = {"BTC": Decimal(50_000), "ETH": Decimal(2_000), "SOL": Decimal(100), "USDC": Decimal(1)}
# Hourly drift per token: up, up, down (the noise of walk() is 0.2%).
TRENDS = {"BTC": (0.003, 1), "ETH": (0.002, 2), "SOL": (-0.004, 3)}
BEAR_TRENDS = {"BTC": (-0.003, 4), "ETH": (-0.004, 5), "SOL": (-0.005, 6)}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here (overrides the sqlite/postgresql parametrized fixture)."""
    return f"sqlite:///{tmp_path / 'portfolio.sqlite3'}"


def q18(x: Decimal) -> Decimal:
    return x.quantize(Q, rounding=ROUND_HALF_EVEN)


def down18(x: Decimal) -> Decimal:
    return x.quantize(Q, rounding=ROUND_DOWN)


def dec(x: float) -> Decimal:
    # How a double crosses into portfolio's Decimals: through its shortest repr.
    return Decimal(repr(x))


@dataclass
class Market:
    pricing: PricingHarness
    signals: SignalsHarness | None
    portfolio: PortfolioHarness
    client: Client


async def drive_market(pricing: PricingHarness, trends: dict[str, tuple[float, int]]) -> None:
    """~300 past hourly ticks per token ending at its round price, then one tick now."""
    start = day_floor(now_ms()) - 13 * DAY_MS
    ticks = []
    for asset, (step, seed) in trends.items():
        path = walk(100.0, N, step, seed)
        end = float(PRICE[asset])
        path = [p * end / path[-1] for p in path[:-1]] + [end]
        ticks += hourly_ticks(f"{asset}-USD", start, path)
    ticks.sort(key=lambda t: (t.time.seconds, t.symbol))
    await publish(pricing.stub, ticks)
    await set_prices(pricing.stub, {a: float(p) for a, p in PRICE.items()})


async def wait_graded(signals: SignalsHarness, assets: list[str]) -> None:
    """Until signals grades every token on the current tick, and the grades hold still.

    The live grade settles a moment after the price shows (a regrade pass runs
    after the tick), so two equal reads in a row are asked for.
    """
    last: list[float] = []
    for _ in range(300):
        try:
            now = [await signal(signals, a) for a in assets]
        except grpc.aio.AioRpcError:
            now = []
        grades = [s.trader_grade for s in now]
        if now and all(s.price == float(PRICE[a]) for s, a in zip(now, assets, strict=True)):
            if grades == last:
                return
            last = grades
        await asyncio.sleep(0.3)
    raise AssertionError(f"signals never graded {assets} steadily on the current tick")


async def clear_of_the_hour() -> None:
    """Wait out the last seconds of an hour: the forming candle closing would move grades."""
    into_hour = now_ms() % HOUR_MS
    if into_hour > HOUR_MS - 20_000:
        await asyncio.sleep((HOUR_MS - into_hour) / 1000 + 8)


async def signal(signals: SignalsHarness, asset: str) -> signals_pb2.Signal:
    response = await signals.stub.GetSignal(
        signals_pb2.GetSignalRequest(symbol=f"{asset}-USD", interval=H1)
    )
    return response.signal


async def start_market(
    start_pricing_server: StartPricing,
    start_signals_server: StartSignals,
    start_portfolio: StartPortfolio,
    trends: dict[str, tuple[float, int]],
) -> Market:
    await clear_of_the_hour()
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    signals = await start_signals_server(pricing.target)
    await drive_market(pricing, trends)
    await wait_graded(signals, list(trends))
    portfolio = await start_portfolio(
        pricing_address=pricing.target,
        signals_address=f"127.0.0.1:{signals.running.port}",
    )
    return Market(pricing, signals, portfolio, Client(portfolio.stub))


@pytest.fixture
async def market(
    start_pricing_server: StartPricing,
    start_signals_server: StartSignals,
    start_portfolio: StartPortfolio,
) -> Market:
    return await start_market(start_pricing_server, start_signals_server, start_portfolio, TRENDS)


async def sixty_forty(client: Client) -> str:
    """BTC 1.2 x 50,000 = 60,000 (60%) and ETH 20 x 2,000 = 40,000 (40%): 100,000.

    BTC lots, FIFO: A 0.1 @ 40,000 bought over a year ago (long term), B 1.1 @
    45,000 bought 30 days ago (short term). ETH: one lot of 20 @ 1,500.
    """
    pid = await client.create(cost_basis_method=P.COST_BASIS_METHOD_FIFO)
    now = now_ms()
    await client.record(pid, tx(BUY, "BTC", "0.1", now - 500 * DAY_MS, price="40000"))
    await client.record(pid, tx(BUY, "BTC", "1.1", now - 30 * DAY_MS, price="45000"))
    await client.record(pid, tx(BUY, "ETH", "20", now - 20 * DAY_MS, price="1500"))
    return pid


async def size(market: Market, **fields: object) -> P.SizePositionResponse:
    return await market.portfolio.stub.SizePosition(
        P.SizePositionRequest(**fields),  # type: ignore[arg-type]
        metadata=ALICE_MD,
    )


async def plan(market: Market, pid: str, **fields: object) -> P.PlanRebalanceResponse:
    return await market.portfolio.stub.PlanRebalance(
        P.PlanRebalanceRequest(portfolio_id=pid, **fields),  # type: ignore[arg-type]
        metadata=ALICE_MD,
    )


def targets_of(response: P.PlanRebalanceResponse) -> dict[str, Decimal]:
    return {d.asset: D(d.target_weight) for d in response.drift}


# -- holdings ----------------------------------------------------------------------------


async def test_holdings_carry_the_signals_grade(market: Market) -> None:
    client = market.client
    assert market.signals is not None
    pid = await client.create()
    now = now_ms()
    for asset, qty, price in (("BTC", "0.5", "40000"), ("ETH", "3", "1800"), ("SOL", "10", "150")):
        await client.record(pid, tx(BUY, asset, qty, now - 10 * DAY_MS, price=price))
    h = await client.holdings(pid)
    assert list(h.unavailable) == []
    grades = {a: (await signal(market.signals, a)).trader_grade for a in TRENDS}
    assert {x.asset: x.trader_grade for x in h.holdings} == grades
    # The two uptrends grade above the downtrend (the market was built that way).
    assert min(grades["BTC"], grades["ETH"]) > 50 > grades["SOL"]
    # Values at the current prices: 25,000 + 6,000 + 1,000 = 32,000.
    assert {x.asset: D(x.market_value) for x in h.holdings} == {
        "BTC": D("25000"),
        "ETH": D("6000"),
        "SOL": D("1000"),
    }
    assert D(h.total_market_value) == D("32000")
    # Cost 20,000 + 5,400 + 1,500 = 26,900; unrealized 5,100.
    assert D(h.total_cost_basis) == D("26900") and D(h.total_unrealized_pnl) == D("5100")


# -- SizePosition --------------------------------------------------------------------------


async def test_size_position_by_grade_stop_and_cap(market: Market) -> None:
    assert market.signals is not None
    btc = await signal(market.signals, "BTC")
    sol = await signal(market.signals, "SOL")
    g = dec(btc.trader_grade)
    assert 50 <= g <= 100
    scale = q18(g / 100)

    # entry 50,000, stop 45,000: risk 10,000 x 1% x g/100 over 5,000 a unit.
    r = await size(
        market, equity="10000", symbol="BTC", risk_per_trade="0.01",
        entry_price="50000", stop_price="45000",
    )  # fmt: skip
    risk = q18(Decimal(10000) * Decimal("0.01") * scale)
    qty = down18(risk / 5000)
    assert (D(r.quantity), D(r.risk_amount), D(r.grade_scale)) == (qty, risk, scale)
    # Value q x 50,000 = 1,000 x g/100 <= 1,000: under the cap of 20% x 10,000.
    assert D(r.value) == qty * 50000 and not r.capped
    assert r.trader_grade == btc.trader_grade
    assert (D(r.entry_price), D(r.stop_price), D(r.equity)) == (D(50000), D(45000), D(10000))

    # A grade below 50: no position, and a note says why.
    r = await size(market, equity="10000", symbol="SOL-USD", entry_price="100", stop_price="90")
    assert sol.trader_grade < 50
    assert D(r.quantity) == 0 and D(r.grade_scale) == 0 and D(r.risk_amount) == 0
    assert any("below 50" in n for n in r.notes), r.notes

    # Stop 100 below entry: g/100 x 100 / 100 = g/100 BTC, worth 50,000 x g/100 >= 25,000,
    # far over 20% x 10,000 = 2,000: cut to 2,000 / 50,000 = 0.04 BTC risking 0.04 x 100 = 4.
    r = await size(market, equity="10000", symbol="BTC", entry_price="50000", stop_price="49900")
    assert r.capped
    assert (D(r.quantity), D(r.value), D(r.risk_amount)) == (D("0.04"), D("2000"), D("4"))
    assert any("20%" in n for n in r.notes), r.notes


async def test_size_position_atr_stop_and_portfolio_equity(market: Market) -> None:
    assert market.signals is not None
    btc = await signal(market.signals, "BTC")
    g, atr = dec(btc.trader_grade), dec(btc.indicators["atr_14"])
    assert atr > 0
    scale = q18(g / 100)

    def expected(equity: Decimal, entry: Decimal, stop: Decimal) -> tuple[Decimal, Decimal, bool]:
        """(quantity, risk amount, capped) by sizing.py's rules."""
        risk = q18(equity * Decimal("0.01") * scale)
        qty = down18(risk / (entry - stop))
        if qty * entry > Decimal("0.2") * equity:
            qty = down18(Decimal("0.2") * equity / entry)
            return qty, q18(qty * (entry - stop)), True
        return qty, risk, False

    # Stop 2 x ATR(14) below the entry.
    r = await size(market, equity="10000", symbol="BTC", entry_price="50000", atr_multiple=2.0)
    assert r.trader_grade == btc.trader_grade
    stop = q18(50000 - 2 * atr)
    assert D(r.stop_price) == stop
    assert (D(r.quantity), D(r.risk_amount), r.capped) == expected(D(10000), D(50000), stop)
    # No stop at all: 2 x ATR by default, said in a note.
    r2 = await size(market, equity="10000", symbol="BTC", entry_price="50000")
    assert D(r2.stop_price) == stop and D(r2.quantity) == D(r.quantity)
    assert any("ATR" in n for n in r2.notes), r2.notes
    # A wide stop (40 x ATR) sizes under the cap: the ATR shows in the quantity.
    wide = q18(50000 - 40 * atr)
    r = await size(market, equity="10000", symbol="BTC", entry_price="50000", atr_multiple=40.0)
    assert D(r.stop_price) == wide
    assert (D(r.quantity), D(r.risk_amount), r.capped) == expected(D(10000), D(50000), wide)

    # Equity from the portfolio: 1.2 x 50,000 + 20 x 2,000 = 100,000. Entry empty: the
    # current quote, 50,000. Stop 45,000: risk 100,000 x 1% x g/100 = 1,000 g/100 over
    # 5,000 a unit; worth at most 10,000, under the cap of 20,000.
    pid = await sixty_forty(market.client)
    r = await size(market, portfolio_id=pid, symbol="BTC", stop_price="45000")
    assert D(r.equity) == D(100000) and D(r.entry_price) == D(50000)
    assert (D(r.quantity), D(r.risk_amount), r.capped) == expected(D(100000), D(50000), D(45000))


async def test_size_position_names_bad_inputs(market: Market) -> None:
    pid = await market.client.create()
    ok = {"symbol": "BTC", "entry_price": "50000", "stop_price": "45000"}
    cases: list[tuple[dict[str, object], str]] = [
        ({**ok, "equity": "10000", "portfolio_id": pid}, "equity"),
        (ok, "equity"),
        ({**ok, "equity": "10000", "stop_price": "51000"}, "stop_price"),
        ({**ok, "equity": "10000", "atr_multiple": 2.0}, "atr_multiple"),
        ({**ok, "equity": "10000", "atr_multiple": -1.0, "stop_price": ""}, "atr_multiple"),
        ({**ok, "equity": "10000", "risk_per_trade": "0"}, "risk_per_trade"),
        ({**ok, "equity": "10000", "risk_per_trade": "1.5"}, "risk_per_trade"),
        ({**ok, "equity": "-5"}, "equity"),
        ({**ok, "equity": "10000", "symbol": "BTC-EUR"}, "symbol"),
        ({**ok, "equity": "10000", "symbol": ""}, "symbol"),
        ({**ok, "equity": "10000", "entry_price": "abc"}, "entry_price"),
    ]
    for fields, field in cases:
        failure = await expect_failure(size(market, **fields))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT, (fields, failure)
        assert field in failure.fields, (fields, failure)
    # The portfolio holds nothing: its value cannot be the equity.
    failure = await expect_failure(size(market, portfolio_id=pid, **ok))
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION, failure
    failure = await expect_failure(size(market, portfolio_id="pf_nope", **ok))
    assert failure.code == grpc.StatusCode.NOT_FOUND, failure


# -- PlanRebalance -----------------------------------------------------------------------


async def test_targets_plan_with_fees_and_fifo_tax(market: Market) -> None:
    client = market.client
    pid = await sixty_forty(client)
    lots = await client.lots(pid, asset="BTC")
    assert [(D(x.quantity), D(x.cost_basis)) for x in lots] == [
        (D("0.1"), D("4000")),
        (D("1.1"), D("49500")),
    ]
    r = await plan(
        market, pid, strategy=TARGETS, fee_rate="0.001",
        targets=[P.TargetWeight(asset=a, weight="0.5") for a in ("BTC", "ETH")],
    )  # fmt: skip
    # V = 100,000. Sell BTC down to 50,000: 10,000 / 50,000 = 0.2 BTC, value 10,000,
    # fee 10, net proceeds 9,990.
    # Buy ETH: wants 10,000 x 1.001 = 10,010 > 9,990 available, so the budget is 9,990:
    # quantity = 9,990 / (2,000 x 1.001) = 4.990009990009990009|99... rounded down.
    eth_qty = down18(Decimal(9990) / Decimal(2002))
    assert eth_qty == D("4.990009990009990009")
    eth_value = eth_qty * 2000  # 9,980.019980019980018
    eth_fee = q18(eth_value * Decimal("0.001"))  # 9.980019980019980018
    assert [(t.asset, t.side, D(t.quantity), D(t.value), D(t.fee)) for t in r.trades] == [
        ("BTC", SELL, D("0.2"), D("10000"), D("10")),
        ("ETH", BUY, eth_qty, eth_value, eth_fee),
    ]
    assert D(r.total_fees) == 10 + eth_fee
    assert any("scaled down" in n for n in r.notes), r.notes
    # Tax, FIFO: 0.1 from lot A (cost 4,000, long) and 0.1 from lot B (cost 4,500,
    # short); the net proceeds 9,990 split by quantity: 4,995 each.
    # Long: 4,995 - 4,000 = 995; short: 4,995 - 4,500 = 495; total 1,490.
    sale = r.trades[0]
    assert (D(sale.long_term_gain), D(sale.short_term_gain)) == (D(995), D(495))
    assert D(sale.realized_gain) == D(1490) and D(r.realized_gain) == D(1490)
    # Drift before: (|0.6 - 0.5| + |0.4 - 0.5| + |0 - 0|) / 2 = 0.1.
    assert D(r.drift_before) == D("0.1") and D(r.portfolio_value) == D(100000)
    # After: BTC 1.0 x 50,000; ETH 24.99... x 2,000; cash 9,990 - value - fee.
    with localcontext() as ctx:
        ctx.prec = 80
        btc_after = Decimal(50000)
        eth_after = (20 + eth_qty) * 2000
        cash_after = Decimal(9990) - eth_value - eth_fee
        total = btc_after + eth_after + cash_after
        gap = (abs(btc_after / total - D("0.5")) + abs(eth_after / total - D("0.5"))) + abs(
            cash_after / total
        )
        drift_after = q18(gap / 2)
    assert D(r.drift_after) == drift_after
    assert {d.asset: (D(d.weight_before), D(d.weight_after)) for d in r.drift} == {
        "BTC": (D("0.6"), q18(btc_after / total)),
        "ETH": (D("0.4"), q18(eth_after / total)),
    }
    # Planning changes nothing in the ledger.
    assert len(await client.lots(pid, asset="BTC")) == 2
    # Doing the planned sale (0.2 at 50,000, 10 USD fee) realizes what the plan said.
    await client.record(pid, tx(SELL, "BTC", "0.2", now_ms(), price="50000", fee=("USD", "10")))
    gains = await client.gains(pid)
    assert (D(gains.long_term.gain), D(gains.short_term.gain)) == (D(995), D(495))
    assert (D(gains.total.proceeds), D(gains.total.cost_basis)) == (D(9990), D(8500))


async def test_equal_weight_market_cap_and_grade_weighted(market: Market) -> None:
    assert market.signals is not None
    client = market.client
    pid = await sixty_forty(client)
    universe = ["BTC", "ETH", "SOL"]

    # EQUAL_WEIGHT over three: 1/3 = 0.333333333333333333 each, the last (SOL) takes
    # the remainder 0.333333333333333334. No fee. BTC's target value is
    # 0.333333333333333333 x 100,000 = 33,333.3333333333333: sell (60,000 - that) / 50,000
    # = 26,666.6666666666667 / 50,000 = 0.533333333333333334; ETH: 6,666.6666666666667 /
    # 2,000 = 3.33333333333333335. Both exact at 18 places.
    third = D("0.333333333333333333")
    r = await plan(market, pid, strategy=EQUAL, universe=universe)
    assert targets_of(r) == {"BTC": third, "ETH": third, "SOL": D("0.333333333333333334")}
    sells = {t.asset: D(t.quantity) for t in r.trades if t.side == SELL}
    assert sells == {"BTC": D("0.533333333333333334"), "ETH": D("3.33333333333333335")}
    # SOL wants 0.333333333333333334 x 100,000 = 33,333.3333333333334; the sales raise
    # 26,666.6666666666667 + 6,666.6666666666667 = the same: 333.333333333333334 SOL.
    buys = {t.asset: D(t.quantity) for t in r.trades if t.side == BUY}
    assert buys == {"SOL": D("333.333333333333334")}
    # Only held assets when no universe is given: BTC and ETH, 0.5 each.
    r = await plan(market, pid, strategy=EQUAL)
    assert targets_of(r) == {"BTC": D("0.5"), "ETH": D("0.5")}

    # MARKET_CAP with max_weight 0.5 over caps read from pricing's quotes.
    caps: dict[str, Decimal] = {}
    for a in universe:
        quote = await market.pricing.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol=f"{a}-USD"))
        caps[a] = dec(quote.quote.market_cap)
    # Supplies in pricing's asset file: BTC 19.89M, ETH 120.7M, SOL 530M.
    assert caps["BTC"] == pytest.approx(Decimal(50_000 * 19_890_000))
    assert caps["ETH"] == pytest.approx(Decimal(2_000 * 120_700_000))
    # BTC's share 994.5 / 1,288.9 > 0.5: capped at 0.5; ETH and SOL share the other 0.5
    # in proportion to their caps (ETH 241.4 : SOL 53), both under the cap.
    r = await plan(market, pid, strategy=CAP, universe=universe, max_weight="0.5")
    got = targets_of(r)
    with localcontext() as ctx:
        ctx.prec = 80
        rest = caps["ETH"] + caps["SOL"]
        want = {"BTC": D("0.5"), "ETH": caps["ETH"] / rest / 2, "SOL": caps["SOL"] / rest / 2}
    assert got["BTC"] == D("0.5") and sum(got.values()) == 1
    assert all(abs(got[a] - want[a]) <= Q for a in universe), (got, want)
    assert any("capped" in n for n in r.notes), r.notes

    # GRADE_WEIGHTED with min_grade 50: SOL (a downtrend) is left out; BTC and ETH
    # weigh grade / (sum of both grades), as GetSignal grades them.
    grades = {a: dec((await signal(market.signals, a)).trader_grade) for a in universe}
    r = await plan(market, pid, strategy=GRADED, universe=universe, min_grade=50.0)
    assert not r.defensive
    got = targets_of(r)
    with localcontext() as ctx:
        ctx.prec = 80
        both = grades["BTC"] + grades["ETH"]
        want = {"BTC": grades["BTC"] / both, "ETH": grades["ETH"] / both, "SOL": Decimal(0)}
    # SOL is neither held nor targeted: no drift row.
    assert set(got) == {"BTC", "ETH"}
    assert all(abs(got.get(a, 0) - want[a]) <= Q for a in universe), (got, want)
    assert sum(got.values()) == 1
    assert any("SOL" in n and "below" in n for n in r.notes), r.notes
    # A threshold above every grade: everything to cash (all sold).
    r = await plan(market, pid, strategy=GRADED, universe=universe, min_grade=99.99)
    assert all(t.side == SELL for t in r.trades)
    assert {t.asset: D(t.quantity) for t in r.trades} == {"BTC": D("1.2"), "ETH": D("20")}


async def test_an_ungraded_asset_is_left_out_not_unavailable(market: Market) -> None:
    """USDC has a price (one tick) but too few candles for a grade: signals answers
    FAILED_PRECONDITION for it, which is "no grade", not "signals is down"."""
    client = market.client
    pid = await client.create()
    await client.record(pid, tx(BUY, "BTC", "1", now_ms() - DAY_MS, price="40000"))
    await client.record(pid, tx(BUY, "USDC", "1000", now_ms() - DAY_MS, price="1"))
    h = await client.holdings(pid)
    assert list(h.unavailable) == []
    assert {x.asset: x.HasField("trader_grade") for x in h.holdings} == {
        "BTC": True,
        "USDC": False,
    }
    r = await plan(market, pid, strategy=GRADED, min_grade=1.0)
    assert set(targets_of(r)) == {"BTC", "USDC"} and targets_of(r)["BTC"] == 1
    assert any("no grade for USDC" in n for n in r.notes), r.notes
    failure = await expect_failure(
        size(market, equity="1000", symbol="USDC", entry_price="1", stop_price="0.9")
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION, failure


async def test_bear_market_moves_to_the_stablecoin(
    start_pricing_server: StartPricing,
    start_signals_server: StartSignals,
    start_portfolio: StartPortfolio,
) -> None:
    market = await start_market(
        start_pricing_server, start_signals_server, start_portfolio, BEAR_TRENDS
    )
    assert market.signals is not None
    breadth = await market.signals.stub.GetMarketBreadth(
        signals_pb2.GetMarketBreadthRequest(interval=H1)
    )
    assert breadth.market.regime == signals_pb2.REGIME_BEAR
    assert breadth.market.bullish_share == 0
    pid = await sixty_forty(market.client)
    r = await plan(market, pid, strategy=GRADED, universe=["BTC", "ETH", "SOL"], fee_rate="0.001")
    assert r.defensive
    assert targets_of(r) == {"BTC": 0, "ETH": 0, "USDC": 1}
    # Everything sold: 60,000 and 40,000, fees 60 and 40, net 99,900 -> USDC at 1 with
    # a fee of 0.1%: 99,900 / 1.001 = 99,800.199800199800199800|19... units (down).
    usdc = down18(Decimal(99900) / Decimal("1.001"))
    assert [(t.asset, t.side, D(t.quantity)) for t in r.trades] == [
        ("BTC", SELL, D("1.2")),
        ("ETH", SELL, D("20")),
        ("USDC", BUY, usdc),
    ]
    assert any("BEAR" in n for n in r.notes), r.notes
    # "-" never goes defensive: grades decide, and every token grades low.
    r = await plan(market, pid, strategy=GRADED, stablecoin="-", min_grade=50.0)
    assert not r.defensive and "USDC" not in targets_of(r)


# -- dependencies down ----------------------------------------------------------------------


async def test_signals_down(
    start_pricing_server: StartPricing, start_portfolio: StartPortfolio
) -> None:
    # Signals never started: the harness points portfolio at a closed port.
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    await set_prices(pricing.stub, {"BTC": 50_000.0, "ETH": 2_000.0})
    portfolio = await start_portfolio(pricing_address=pricing.target)
    market = Market(pricing, None, portfolio, Client(portfolio.stub))
    pid = await sixty_forty(market.client)
    h = await market.client.holdings(pid)
    # Prices and values still come back; the grade is unset and the reason given.
    assert D(h.total_market_value) == D(100000)
    assert not any(x.HasField("trader_grade") for x in h.holdings)
    assert len(h.unavailable) == 1 and "signals" in h.unavailable[0], h.unavailable
    failure = await expect_failure(
        size(market, equity="10000", symbol="BTC", entry_price="50000", stop_price="45000")
    )
    assert failure.code == grpc.StatusCode.UNAVAILABLE and "signals" in failure.message
    failure = await expect_failure(plan(market, pid, strategy=GRADED))
    assert failure.code == grpc.StatusCode.UNAVAILABLE and "signals" in failure.message
    # Strategies that need no signals still plan.
    r = await plan(market, pid, strategy=EQUAL)
    assert targets_of(r) == {"BTC": D("0.5"), "ETH": D("0.5")}

    # Pricing goes down too: holdings cannot be valued, but quantities and cost can.
    await pricing.stop()
    failure = await expect_failure(market.client.holdings(pid))
    assert failure.code == grpc.StatusCode.UNAVAILABLE and "pricing" in failure.message
    h = await market.client.holdings(pid, skip_market=True)
    assert {x.asset: (D(x.quantity), D(x.cost_basis)) for x in h.holdings} == {
        "BTC": (D("1.2"), D("53500")),
        "ETH": (D("20"), D("30000")),
    }
    assert h.total_market_value == "" and list(h.unavailable) == []
