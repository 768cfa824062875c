"""The ledger's contract through the real service: idempotency, oversells, owners,
bad input named by field, amend/delete recomputation, missing prices."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from marketmesh.v1 import portfolio_pb2 as pb
from services.common.validation import now_ms
from tests.portfolio.harness import BOB_MD, Client, D, StartPortfolio, ms, set_prices, tx
from tests.pricing.conftest import StartPricing
from tests.signals.api_helpers import expect_failure

BUY, SELL, INCOME, SWAP = (
    pb.TRANSACTION_KIND_BUY,
    pb.TRANSACTION_KIND_SELL,
    pb.TRANSACTION_KIND_INCOME,
    pb.TRANSACTION_KIND_SWAP,
)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def service(start_pricing_server: StartPricing, start_portfolio: StartPortfolio):  # type: ignore[no-untyped-def]
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    portfolio = await start_portfolio(pricing_address=pricing.target)
    return pricing, portfolio


async def test_retries_return_the_original_and_conflicts_are_already_exists(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    buy = tx(BUY, "BTC", "1.50", ms(2024, 1, 1), price="100")
    request = pb.RecordTransactionRequest(
        portfolio_id=pid, client_transaction_id="order-1", transaction=buy
    )
    first = await portfolio.stub.RecordTransaction(request, metadata=client.md)
    assert first.created and first.transaction.id.startswith("tx_")
    # The same content (1.5 written as 1.50 or 1.5 is the same amount) -> the original.
    again = tx(BUY, "BTC", "1.5", ms(2024, 1, 1), price="100.0")
    retry = await portfolio.stub.RecordTransaction(
        pb.RecordTransactionRequest(
            portfolio_id=pid, client_transaction_id="order-1", transaction=again
        ),
        metadata=client.md,
    )
    assert not retry.created and retry.transaction.id == first.transaction.id
    # Concurrent retries: still one transaction.
    results = await asyncio.gather(
        *(portfolio.stub.RecordTransaction(request, metadata=client.md) for _ in range(20))
    )
    assert {r.transaction.id for r in results} == {first.transaction.id}
    # Other content under the same id.
    failure = await expect_failure(
        portfolio.stub.RecordTransaction(
            pb.RecordTransactionRequest(
                portfolio_id=pid,
                client_transaction_id="order-1",
                transaction=tx(BUY, "BTC", "2", ms(2024, 1, 1), price="100"),
            ),
            metadata=client.md,
        )
    )
    assert failure.code == grpc.StatusCode.ALREADY_EXISTS and "order-1" in failure.message
    h = await client.holdings(pid, skip_market=True)
    assert [D(r.quantity) for r in h.holdings] == [D("1.5")]


async def test_oversell_names_asset_wallet_and_shortfall(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    await client.record(pid, tx(BUY, "ETH", "2", ms(2024, 1, 1), price="100", wallet="ledger"))
    failure = await expect_failure(
        client.record(pid, tx(SELL, "ETH", "2.5", ms(2024, 2, 1), price="120", wallet="ledger"))
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        "ETH" in failure.message
        and "'ledger'" in failure.message
        and "short by 0.5" in failure.message
    )
    # Another wallet holds nothing.
    failure = await expect_failure(
        client.record(pid, tx(SELL, "ETH", "1", ms(2024, 2, 1), price="120"))
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and "'default'" in failure.message
    # A backdated sale before the purchase is an oversell at its time too.
    failure = await expect_failure(
        client.record(pid, tx(SELL, "ETH", "1", ms(2023, 12, 1), price="120", wallet="ledger"))
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and "short by 1" in failure.message
    # Allowed explicitly: recorded, the excess has zero basis.
    loose = await client.create("loose", allow_negative_balances=True)
    await client.record(loose, tx(SELL, "ETH", "1", ms(2024, 2, 1), price="120"))
    gains = await client.gains(loose)
    assert D(gains.total.gain) == D("120")


async def test_owners_do_not_see_each_others_portfolios(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    alice, bob = Client(portfolio.stub), Client(portfolio.stub, BOB_MD)
    pid = await alice.create("alice's")
    await alice.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="100"))
    for call in (
        bob.stub.GetPortfolio(pb.GetPortfolioRequest(portfolio_id=pid), metadata=bob.md),
        bob.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="100")),
        bob.holdings(pid, skip_market=True),
        bob.gains(pid),
        bob.stub.DeletePortfolio(pb.DeletePortfolioRequest(portfolio_id=pid), metadata=bob.md),
    ):
        failure = await expect_failure(call)
        assert failure.code == grpc.StatusCode.NOT_FOUND and pid in failure.message
    missing = await expect_failure(
        bob.stub.GetPortfolio(
            pb.GetPortfolioRequest(portfolio_id="pf_" + "0" * 24), metadata=bob.md
        )
    )
    assert missing.message.replace("pf_" + "0" * 24, pid) == failure.message.replace(
        "pf_" + "0" * 24, pid
    )
    listed = await bob.stub.ListPortfolios(pb.ListPortfoliosRequest(), metadata=bob.md)
    assert list(listed.portfolios) == []
    anonymous = await expect_failure(portfolio.stub.ListPortfolios(pb.ListPortfoliosRequest()))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED
    got = await alice.stub.GetPortfolio(pb.GetPortfolioRequest(portfolio_id=pid), metadata=alice.md)
    assert got.portfolio.transaction_count == 1


BAD_INPUT = [
    ({"quantity": "1e3"}, "transaction.quantity"),
    ({"quantity": "abc"}, "transaction.quantity"),
    ({"quantity": "-1"}, "transaction.quantity"),
    ({"quantity": "0"}, "transaction.quantity"),
    ({"quantity": "0.1234567890123456789"}, "transaction.quantity"),
    ({"price": "1,000"}, "transaction.price"),
    ({"price": "-5"}, "transaction.price"),
    ({"price": ""}, "transaction.price"),
    ({"asset": "NOPE"}, "transaction.asset"),
    ({"asset": "btc-usd"}, "transaction.asset"),
    ({"asset": "USD"}, "transaction.asset"),
    ({"kind": 0}, "transaction.kind"),
    ({"time_ms": None}, "transaction.time"),
    ({"future": True}, "transaction.time"),
    ({"fee": ("USD", "x")}, "transaction.fee.amount"),
    ({"fee": ("DOGGY", "1")}, "transaction.fee.asset"),
    ({"wallet": "bad\nwallet"}, "transaction.wallet"),
    ({"kind": SELL, "lots": [("not-a-lot", "1")]}, "transaction.lots[0].lot_id"),
    ({"kind": SELL, "lots": [("tx_" + "a" * 24, "1")]}, "transaction.lots[0].lot_id"),
    ({"kind": SELL, "lots": [("tx_" + "a" * 24, "0.5")]}, "transaction.lots"),
    ({"to_asset": "ETH"}, "transaction.to_asset"),
    ({"kind": SWAP}, "transaction.to_asset"),
]


@pytest.mark.parametrize(("change", "field"), BAD_INPUT)
async def test_bad_input_names_the_field(service, change: dict, field: str) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    await client.record(pid, tx(BUY, "BTC", "5", ms(2024, 1, 1), price="100"))
    fields = {
        "kind": BUY,
        "asset": "BTC",
        "quantity": "1",
        "time_ms": ms(2024, 2, 1),
        "price": "100",
    }
    fields.update(
        {k: v for k, v in change.items() if k not in ("future", "fee", "lots", "to_asset")}
    )
    if change.get("future"):
        fields["time_ms"] = now_ms() + 86_400_000
    message = tx(
        fields["kind"],
        fields["asset"],
        fields["quantity"],
        fields["time_ms"] or 0,
        price=fields["price"],
        fee=change.get("fee"),
        lots=change.get("lots"),
        wallet=change.get("wallet", ""),
        to_asset=change.get("to_asset", ""),
    )
    if fields["time_ms"] is None:
        message.ClearField("time")
    failure = await expect_failure(client.record(pid, message))
    assert failure.code == INVALID, failure
    assert field in failure.fields, failure
    assert "Traceback" not in failure.message


async def test_request_level_errors(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    cases = [
        (
            portfolio.stub.RecordTransaction(
                pb.RecordTransactionRequest(
                    portfolio_id=pid, transaction=tx(BUY, "BTC", "1", ms(2024, 1, 1), price="1")
                ),
                metadata=client.md,
            ),
            "client_transaction_id",
        ),
        (
            portfolio.stub.RecordTransaction(
                pb.RecordTransactionRequest(portfolio_id=pid, client_transaction_id="x"),
                metadata=client.md,
            ),
            "transaction",
        ),
        (
            portfolio.stub.CreatePortfolio(pb.CreatePortfolioRequest(name=""), metadata=client.md),
            "name",
        ),
        (
            portfolio.stub.CreatePortfolio(
                pb.CreatePortfolioRequest(name="x", base_currency="EUR"), metadata=client.md
            ),
            "base_currency",
        ),
        (
            portfolio.stub.CreatePortfolio(
                pb.CreatePortfolioRequest(name="x", cost_basis_method=99), metadata=client.md
            ),
            "cost_basis_method",
        ),  # type: ignore[arg-type]
        (
            portfolio.stub.CreatePortfolio(
                pb.CreatePortfolioRequest(
                    name="x", method_changes=[pb.MethodChange(from_year=1800, method=1)]
                ),
                metadata=client.md,
            ),
            "method_changes[0].from_year",
        ),  # type: ignore[arg-type]
        (client.gains(pid, year=2024, start_time=pb.Transaction().time), "year"),
        (client.gains(pid, page_token="garbage"), "page_token"),
        (
            portfolio.stub.GetTaxReport(
                pb.GetTaxReportRequest(portfolio_id=pid), metadata=client.md
            ).read(),
            "year",
        ),
        (
            portfolio.stub.HarvestTaxLosses(
                pb.HarvestTaxLossesRequest(portfolio_id=pid, min_loss="-1"), metadata=client.md
            ),
            "min_loss",
        ),
        (
            portfolio.stub.ListTransactions(
                pb.ListTransactionsRequest(portfolio_id=pid, page_size=-1), metadata=client.md
            ),
            "page_size",
        ),
        (
            portfolio.stub.GetPortfolio(
                pb.GetPortfolioRequest(portfolio_id=""), metadata=client.md
            ),
            "portfolio_id",
        ),
    ]
    for call, field in cases:
        failure = await expect_failure(call)
        assert failure.code == INVALID and field in failure.fields, (field, failure)


async def test_amend_and_delete_recompute_what_follows(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    first = await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="100"))
    second = await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 2, 1), price="200"))
    await client.record(pid, tx(SELL, "BTC", "1", ms(2024, 3, 1), price="300"))
    assert D((await client.gains(pid)).total.gain) == D("200")  # FIFO: the 100 lot
    # The first purchase was really at 150: gain 150.
    await portfolio.stub.AmendTransaction(
        pb.AmendTransactionRequest(
            portfolio_id=pid,
            transaction_id=first.id,
            transaction=tx(BUY, "BTC", "1", ms(2024, 1, 1), price="150"),
        ),
        metadata=client.md,
    )
    assert D((await client.gains(pid)).total.gain) == D("150")
    # Deleting it: the sale now takes the 200 lot: gain 100.
    await portfolio.stub.DeleteTransaction(
        pb.DeleteTransactionRequest(portfolio_id=pid, transaction_id=first.id), metadata=client.md
    )
    assert D((await client.gains(pid)).total.gain) == D("100")
    # Deleting the other purchase would leave the sale uncovered.
    failure = await expect_failure(
        portfolio.stub.DeleteTransaction(
            pb.DeleteTransactionRequest(portfolio_id=pid, transaction_id=second.id),
            metadata=client.md,
        )
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and "short by 1" in failure.message
    assert D((await client.gains(pid)).total.gain) == D("100")
    listed = await portfolio.stub.ListTransactions(
        pb.ListTransactionsRequest(portfolio_id=pid, page_size=1), metadata=client.md
    )
    assert listed.transactions[0].id == second.id and listed.next_page_token
    rest = await portfolio.stub.ListTransactions(
        pb.ListTransactionsRequest(
            portfolio_id=pid, page_size=1, page_token=listed.next_page_token
        ),
        metadata=client.md,
    )
    assert [t.kind for t in rest.transactions] == [SELL]


async def test_income_without_price_is_valued_from_history_or_fails_loudly(service) -> None:  # type: ignore[no-untyped-def]
    pricing, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    when = ms(2024, 5, 1, 12)
    await set_prices(pricing.stub, {"ETH": 2500.0}, when - 60_000)
    await set_prices(pricing.stub, {"ETH": 2600.0}, when + 2 * 3_600_000)  # closes the hour
    valued = await client.record(
        pid, tx(INCOME, "ETH", "0.2", when, income_kind=pb.INCOME_KIND_STAKING)
    )
    assert valued.valuation == "market"
    income = await portfolio.stub.GetIncome(
        pb.GetIncomeRequest(portfolio_id=pid, year=2024), metadata=client.md
    )
    assert D(income.total) == D("0.2") * D("2500")
    # No SOL price at all in 2024: recorded, but reports name it instead of counting zero.
    unknown = await client.record(
        pid, tx(INCOME, "SOL", "3", ms(2024, 6, 1), income_kind=pb.INCOME_KIND_AIRDROP)
    )
    assert unknown.valuation == "unknown"
    failure = await expect_failure(
        portfolio.stub.GetIncome(
            pb.GetIncomeRequest(portfolio_id=pid, year=2024), metadata=client.md
        )
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and unknown.id in failure.message
    await client.record(pid, tx(SELL, "SOL", "1", ms(2024, 7, 1), price="150"))
    failure = await expect_failure(client.gains(pid, year=2024))
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and unknown.id in failure.message
    stream = portfolio.stub.GetTaxReport(
        pb.GetTaxReportRequest(portfolio_id=pid, year=2024), metadata=client.md
    )
    failure = await expect_failure(stream.read())
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and unknown.id in failure.message
    # Pricing learns the price later: the next report values it and succeeds.
    await set_prices(pricing.stub, {"SOL": 10.0}, ms(2024, 6, 1) - 60_000)
    await set_prices(pricing.stub, {"SOL": 11.0}, ms(2024, 6, 1) + 2 * 3_600_000)
    income = await portfolio.stub.GetIncome(
        pb.GetIncomeRequest(portfolio_id=pid, year=2024), metadata=client.md
    )
    assert dict(income.total_by_kind) == {"AIRDROP": "30", "STAKING": "500"}


async def test_tax_report_streams_8949_rows_summary_and_csv(service) -> None:  # type: ignore[no-untyped-def]
    _, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    await client.record(pid, tx(BUY, "BTC", "1", ms(2023, 1, 1), price="100"))
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 3, 1), price="300"))
    await client.record(
        pid, tx(INCOME, "ETH", "1", ms(2024, 4, 1), value="50", income_kind=pb.INCOME_KIND_MINING)
    )
    await client.record(pid, tx(SELL, "BTC", "1.5", ms(2024, 6, 1), price="400"))
    items = [
        m
        async for m in portfolio.stub.GetTaxReport(
            pb.GetTaxReportRequest(portfolio_id=pid, year=2024), metadata=client.md
        )
    ]
    rows, summary = [m.row for m in items[:-1]], items[-1].summary
    # 1.5 BTC for 600: the 2023 lot (1 BTC, 100, long: proceeds 400 -> +300)
    # and half of the 2024 lot (0.5, 150, short: proceeds 200 -> +50).
    assert [
        (r.description, r.date_acquired, r.date_sold, r.proceeds, r.cost_basis, r.gain, r.term)
        for r in rows
    ] == [
        ("1 BTC", "2023-01-01", "2024-06-01", "400", "100", "300", pb.GAIN_TERM_LONG),
        ("0.5 BTC", "2024-03-01", "2024-06-01", "200", "150", "50", pb.GAIN_TERM_SHORT),
    ]
    assert (
        summary.short_term.gain,
        summary.long_term.gain,
        summary.total.gain,
        summary.total.proceeds,
    ) == ("50", "300", "350", "600")
    assert summary.income_total == "50" and dict(summary.income_by_kind) == {"MINING": "50"}
    lines = summary.csv.splitlines()
    assert lines[0].startswith("description,date_acquired") and lines[1].startswith(
        "1 BTC,2023-01-01,2024-06-01,400,100,300,long"
    )
    assert "total,600,250,350,2" in lines


async def test_harvest_lists_lots_at_a_loss(service) -> None:  # type: ignore[no-untyped-def]
    pricing, portfolio = service
    client = Client(portfolio.stub)
    pid = await client.create()
    await client.record(pid, tx(BUY, "ETH", "1", ms(2024, 1, 1), price="4000"))
    await client.record(pid, tx(BUY, "ETH", "2", ms(2024, 2, 1), price="2000"))
    await client.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="10000"))
    await set_prices(pricing.stub, {"ETH": 3000.0, "BTC": 9900.0})
    response = await portfolio.stub.HarvestTaxLosses(
        pb.HarvestTaxLossesRequest(portfolio_id=pid, min_loss="500"), metadata=client.md
    )
    # ETH lot 1: 4000 -> 3000 loses 1000; ETH lot 2 gains; BTC loses 100 (< 500).
    assert [(c.lot.asset, c.loss) for c in response.candidates] == [("ETH", "1000")]
    assert response.total_loss == "1000"


async def test_upstream_token_reaches_a_pricing_that_requires_auth(
    start_pricing_server: StartPricing,
    start_portfolio: StartPortfolio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pricing reads its tokens from the environment; portfolio gets its own in settings.
    monkeypatch.setenv("MM_AUTH_TOKENS", "portfolio=svc-token-0123456789abc")
    monkeypatch.setenv("MM_REQUIRE_AUTH", "1")
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    anonymous = await start_portfolio(pricing_address=pricing.target)
    client = Client(anonymous.stub)
    pid = await client.create()
    failure = await expect_failure(
        client.record(pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="1"))
    )
    assert failure.code == grpc.StatusCode.UNAVAILABLE and "UNAUTHENTICATED" in failure.message
    await anonymous.stop()
    with_token = await start_portfolio(
        pricing_address=pricing.target, upstream_token="svc-token-0123456789abc"
    )
    recorded = await Client(with_token.stub).record(
        pid, tx(BUY, "BTC", "1", ms(2024, 1, 1), price="1")
    )
    assert recorded.asset == "BTC"
