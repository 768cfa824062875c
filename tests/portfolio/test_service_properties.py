"""Random ledgers through the real service: what every method must conserve.

For each seed a random ledger (buys, sales, swaps, income, transfers with
fees, across wallets) is recorded once, then replayed under every method:

* quantity: what was acquired minus what was disposed is what the open lots hold;
* money: realized gains + unrealized P&L = market value + proceeds - total cost,
  exactly (Decimal), where total cost counts every acquisition's basis.

The expected sides are computed here from the transactions sent, not from
the service's answers.
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal

import pytest

from marketmesh.v1 import portfolio_pb2 as pb
from tests.portfolio.harness import Client, StartPortfolio, ms, set_prices, tx
from tests.pricing.conftest import StartPricing

ASSETS = ("BTC", "ETH", "SOL")
PRICES = {"BTC": Decimal("60000.5"), "ETH": Decimal("2999.25"), "SOL": Decimal("150.125")}
WALLETS = ("hot", "cold")
METHODS = (
    pb.COST_BASIS_METHOD_FIFO,
    pb.COST_BASIS_METHOD_LIFO,
    pb.COST_BASIS_METHOD_HIFO,
    pb.COST_BASIS_METHOD_AVERAGE_COST,
)


def q(rng: random.Random, places: int = 8) -> Decimal:
    return Decimal(rng.randint(1, 10**places)) / Decimal(10**places) * rng.choice((1, 3, 7))


def random_ledger(
    seed: int, n: int
) -> tuple[list[pb.Transaction], dict[str, Decimal], Decimal, Decimal]:
    """Transactions, and the expected net quantity per asset, total cost, total proceeds."""
    rng = random.Random(seed)
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    net: dict[str, Decimal] = defaultdict(Decimal)
    cost = proceeds = Decimal(0)
    out: list[pb.Transaction] = []
    t = ms(2022, 1, 1)
    for _ in range(n):
        t += rng.randint(1, 20) * 86_400_000 // 4
        asset, wallet = rng.choice(ASSETS), rng.choice(WALLETS)
        roll = rng.random()
        have = held[(asset, wallet)]
        if roll < 0.4 or have == 0:
            qty, price = q(rng), Decimal(rng.randint(100, 90_000)) / 100
            fee = Decimal(rng.randint(0, 500)) / 100
            out.append(
                tx(
                    pb.TRANSACTION_KIND_BUY,
                    asset,
                    str(qty),
                    t,
                    price=str(price),
                    fee=("USD", str(fee)),
                    wallet=wallet,
                )
            )
            held[(asset, wallet)] += qty
            net[asset] += qty
            cost += qty * price + fee
        elif roll < 0.55:
            qty, value = q(rng, 6), Decimal(rng.randint(1, 10_000)) / 10
            out.append(
                tx(
                    pb.TRANSACTION_KIND_INCOME,
                    asset,
                    str(qty),
                    t,
                    value=str(value),
                    wallet=wallet,
                    income_kind=pb.INCOME_KIND_STAKING,
                )
            )
            held[(asset, wallet)] += qty
            net[asset] += qty
            cost += value
        elif roll < 0.8:
            qty = min(have, q(rng))
            price = Decimal(rng.randint(100, 90_000)) / 100
            out.append(
                tx(pb.TRANSACTION_KIND_SELL, asset, str(qty), t, price=str(price), wallet=wallet)
            )
            held[(asset, wallet)] -= qty
            net[asset] -= qty
            proceeds += qty * price
        elif roll < 0.9:
            other = next(a for a in ASSETS if a != asset)
            qty, got, value = min(have, q(rng)), q(rng), Decimal(rng.randint(1, 100_000)) / 10
            out.append(
                tx(
                    pb.TRANSACTION_KIND_SWAP,
                    asset,
                    str(qty),
                    t,
                    value=str(value),
                    to_asset=other,
                    to_quantity=str(got),
                    wallet=wallet,
                )
            )
            held[(asset, wallet)] -= qty
            held[(other, wallet)] += got
            net[asset] -= qty
            net[other] += got
            proceeds += value
            cost += value
        else:
            to = next(w for w in WALLETS if w != wallet)
            fee = min(have / 10, Decimal("0.001"))
            qty = min(have - fee, q(rng))
            if qty <= 0 or fee <= 0:
                continue
            fee_value = Decimal(rng.randint(1, 1000)) / 100
            out.append(
                tx(
                    pb.TRANSACTION_KIND_TRANSFER,
                    asset,
                    str(qty),
                    t,
                    wallet=wallet,
                    to_wallet=to,
                    fee=(asset, str(fee), str(fee_value)),
                )
            )
            held[(asset, wallet)] -= qty + fee
            held[(asset, to)] += qty
            net[asset] -= fee
            proceeds += fee_value
    return out, dict(net), cost, proceeds


@pytest.mark.parametrize("pool", [pb.LOT_POOL_UNIVERSAL, pb.LOT_POOL_PER_WALLET])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_method_conserves_quantity_and_money(
    start_pricing_server: StartPricing, start_portfolio: StartPortfolio, seed: int, pool: int
) -> None:
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    portfolio = await start_portfolio(pricing_address=pricing.target)
    await set_prices(pricing.stub, {a: float(p) for a, p in PRICES.items()})
    client = Client(portfolio.stub)
    transactions, net, cost, proceeds = random_ledger(seed, 120)
    for method in METHODS:
        pid = await client.create(f"m{method}", cost_basis_method=method, pool=pool)
        response = await portfolio.stub.ImportTransactions(
            iter_requests(pid, transactions), metadata=client.md
        )
        assert response.rejected == 0, list(response.results)[:3]
        holdings = await client.holdings(pid)
        quantities: dict[str, Decimal] = defaultdict(Decimal)
        for h in holdings.holdings:
            quantities[h.asset] += Decimal(h.quantity)
        assert {a: v for a, v in quantities.items() if v} == {a: v for a, v in net.items() if v}
        market_value = sum(
            (Decimal(h.quantity) * PRICES[h.asset] for h in holdings.holdings), Decimal(0)
        )
        unrealized = Decimal(holdings.total_unrealized_pnl)
        gains = await client.gains(pid, page_size=1)
        realized = Decimal(gains.total.gain)
        assert Decimal(gains.total.proceeds) == proceeds
        # Exact: the service rounds only products (quantity x price), each to 18 places.
        assert abs(Decimal(holdings.total_market_value) - market_value) <= Decimal("1e-15")
        assert realized + unrealized == Decimal(holdings.total_market_value) + proceeds - cost


async def iter_requests(pid: str, transactions: list[pb.Transaction]):  # type: ignore[no-untyped-def]
    for i in range(0, len(transactions), 50):
        batch = []
        for j, original in enumerate(transactions[i : i + 50]):
            row = pb.Transaction.FromString(original.SerializeToString())
            row.client_transaction_id = f"r{i + j}"
            batch.append(row)
        yield pb.ImportTransactionsRequest(portfolio_id=pid, transactions=batch)
