"""marketmesh.v1.PortfolioService: requests in, plain functions, responses out."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import grpc

from marketmesh.v1 import portfolio_pb2
from services.common.auth import require_owner
from services.common.errors import FailedPrecondition, InvalidArgument, Unavailable
from services.common.pagination import decode_page_token, encode_page_token
from services.common.validation import ms_to_timestamp, now_ms, optional_timestamp_ms, parse_limit
from services.portfolio import gains, income, reports
from services.portfolio.app import BASE_CURRENCY, PortfolioApp, portfolio_row
from services.portfolio.book import Book
from services.portfolio.db.repository import PortfolioRow, TransactionRow
from services.portfolio.decimals import ZERO, div, fmt, parse_decimal
from services.portfolio.decisions import plan_rebalance, size_position
from services.portfolio.holdings import OpenLot, harvest, positions, value_positions
from services.portfolio.importer import Import
from services.portfolio.methods import (
    PER_WALLET,
    method_for_year,
    parse_changes,
    parse_method,
    parse_pool,
)
from services.portfolio.transactions import (
    KINDS,
    TxContent,
    from_body,
    parse_asset,
    parse_client_id,
    parse_transaction,
    parse_wallet,
    to_message,
)

NAME_MAX = 100
DEFAULT_PAGE, MAX_PAGE = 100, 1_000
DEFAULT_GAINS_PAGE, MAX_GAINS_PAGE = 1_000, 10_000


def portfolio_message(row: PortfolioRow) -> portfolio_pb2.Portfolio:
    return portfolio_pb2.Portfolio(
        id=row.id,
        name=row.name,
        base_currency=row.base_currency,
        cost_basis_method=row.cost_basis_method,  # type: ignore[arg-type]
        method_changes=[
            portfolio_pb2.MethodChange(from_year=y, method=m)  # type: ignore[arg-type]
            for y, m in row.method_changes
        ],
        pool=row.pool,  # type: ignore[arg-type]
        allow_negative_balances=row.allow_negative,
        create_time=ms_to_timestamp(row.create_ms),
        transaction_count=row.transaction_count,
    )


def transaction_message(row: TransactionRow) -> portfolio_pb2.Transaction:
    return to_message(
        from_body(row.body),
        tx_id=row.id,
        client_id=row.client_transaction_id,
        valuation=row.valuation,
        record_ms=row.record_ms,
    )


def _name(value: str, field: str = "name") -> str:
    name = value.strip()
    if not name:
        raise InvalidArgument(field, "is required")
    if len(name) > NAME_MAX or not name.isprintable():
        raise InvalidArgument(field, f"must be 1-{NAME_MAX} printable characters")
    return name


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _window(request: object) -> tuple[int | None, int | None]:
    """year, or start_time/end_time, or all time."""
    year = request.year  # type: ignore[attr-defined]
    start = optional_timestamp_ms(request, "start_time")  # type: ignore[arg-type]
    end = optional_timestamp_ms(request, "end_time")  # type: ignore[arg-type]
    if year:
        if start is not None or end is not None:
            raise InvalidArgument("year", "give a year or a time range, not both")
        if not 1970 <= year <= 9999:
            raise InvalidArgument("year", "must be from 1970 to 9999")
        return gains.year_range(year)
    if start is not None and end is not None and end <= start:
        raise InvalidArgument("end_time", "must be after start_time")
    return start, end


class PortfolioServicer:
    def __init__(self, app: PortfolioApp) -> None:
        self.app = app

    async def _portfolio(self, portfolio_id: str, *, with_count: bool = False) -> PortfolioRow:
        return await self.app.portfolio(require_owner(), portfolio_id, with_count=with_count)

    async def _parse_tx(self, msg: portfolio_pb2.Transaction, prefix: str) -> TxContent:
        known = await self.app.market.known_assets()
        return parse_transaction(
            msg,
            base_currency=BASE_CURRENCY,
            now_ms=now_ms(),
            future_skew_ms=int(self.app.settings.future_skew_s * 1000),
            known_asset=known.__contains__,
            prefix=prefix,
        )

    # -- portfolios -------------------------------------------------------------

    async def CreatePortfolio(
        self, request: portfolio_pb2.CreatePortfolioRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.CreatePortfolioResponse:
        owner = require_owner()
        name = _name(request.name)
        base = request.base_currency.strip().upper() or BASE_CURRENCY
        if base != BASE_CURRENCY:
            raise InvalidArgument(
                "base_currency", f"only {BASE_CURRENCY} is supported; got {base!r}"
            )
        row = portfolio_row(
            owner,
            name,
            parse_method(request.cost_basis_method, "cost_basis_method"),
            parse_changes(request.method_changes),
            parse_pool(request.pool),
            request.allow_negative_balances,
        )
        await self.app.create_portfolio(row)
        return portfolio_pb2.CreatePortfolioResponse(portfolio=portfolio_message(row))

    async def GetPortfolio(
        self, request: portfolio_pb2.GetPortfolioRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.GetPortfolioResponse:
        row = await self._portfolio(request.portfolio_id, with_count=True)
        return portfolio_pb2.GetPortfolioResponse(portfolio=portfolio_message(row))

    async def ListPortfolios(
        self, request: portfolio_pb2.ListPortfoliosRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.ListPortfoliosResponse:
        owner = require_owner()
        limit = parse_limit(request.page_size, "page_size", DEFAULT_PAGE, MAX_PAGE)
        after = None
        if request.page_token:
            token = decode_page_token(request.page_token)
            if token.get("k") != "portfolios" or token.get("o") != _fingerprint(owner):
                raise InvalidArgument("page_token", "belongs to another listing")
            after = str(token["a"])
        rows = await self.app.repo.list_portfolios(owner, after, limit + 1)
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = encode_page_token(
                {"k": "portfolios", "o": _fingerprint(owner), "a": rows[-1].id}
            )
        return portfolio_pb2.ListPortfoliosResponse(
            portfolios=[portfolio_message(r) for r in rows], next_page_token=next_token
        )

    async def UpdatePortfolio(
        self, request: portfolio_pb2.UpdatePortfolioRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.UpdatePortfolioResponse:
        row = await self._portfolio(request.portfolio_id)
        changes: dict[str, object] = {"update_ms": now_ms()}
        if request.HasField("name"):
            changes["name"] = _name(request.name)
        if request.set_methods:
            changes["cost_basis_method"] = parse_method(
                request.cost_basis_method, "cost_basis_method"
            )
            changes["method_changes"] = parse_changes(request.method_changes)
        elif request.cost_basis_method or request.method_changes:
            raise InvalidArgument("set_methods", "set it to true to replace the cost-basis methods")
        if request.HasField("allow_negative_balances"):
            changes["allow_negative"] = request.allow_negative_balances
            if not request.allow_negative_balances and row.allow_negative:
                state = await self.app.state(row)
                short = state.book.first_negative()
                if short is not None:
                    raise FailedPrecondition(
                        f"allow_negative_balances: wallet {short.wallet!r} is below zero in "
                        f"{short.asset} (by {fmt(short.shortfall)}) "
                        f"at {state.book.tx_id(short.seq)}"
                    )
        updated = await self.app.update_portfolio(replace(row, **changes))  # type: ignore[arg-type]
        return portfolio_pb2.UpdatePortfolioResponse(portfolio=portfolio_message(updated))

    async def DeletePortfolio(
        self, request: portfolio_pb2.DeletePortfolioRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.DeletePortfolioResponse:
        await self.app.delete_portfolio(require_owner(), request.portfolio_id)
        return portfolio_pb2.DeletePortfolioResponse()

    # -- the ledger ---------------------------------------------------------------

    async def RecordTransaction(
        self, request: portfolio_pb2.RecordTransactionRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.RecordTransactionResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        client_id = parse_client_id(request.client_transaction_id)
        if not request.HasField("transaction"):
            raise InvalidArgument("transaction", "is required")
        tx = await self._parse_tx(request.transaction, "transaction")
        outcome = await self.app.record(portfolio, client_id, tx)
        return portfolio_pb2.RecordTransactionResponse(
            transaction=transaction_message(outcome.row), created=outcome.created
        )

    async def ImportTransactions(
        self,
        request_iterator: AsyncIterator[portfolio_pb2.ImportTransactionsRequest],
        context: grpc.aio.ServicerContext,
    ) -> portfolio_pb2.ImportTransactionsResponse:
        owner = require_owner()
        importer = Import(self.app, owner)
        try:
            async for message in request_iterator:
                await importer.message(message)
            await importer.flush()
        finally:
            await importer.abandon()
        return importer.response()

    async def ListTransactions(
        self, request: portfolio_pb2.ListTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.ListTransactionsResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        limit = parse_limit(request.page_size, "page_size", DEFAULT_PAGE, MAX_PAGE)
        asset = (
            parse_asset(request.asset, "asset", BASE_CURRENCY) if request.asset.strip() else None
        )
        wallet = parse_wallet(request.wallet, "wallet", default="") or None
        kind = request.kind or None
        if kind is not None and kind not in KINDS:
            raise InvalidArgument("kind", f"unknown transaction kind {request.kind}")
        start = optional_timestamp_ms(request, "start_time")
        end = optional_timestamp_ms(request, "end_time")
        fingerprint = _fingerprint(portfolio.id, asset, wallet, kind, start, end)
        after = None
        if request.page_token:
            token = decode_page_token(request.page_token)
            if token.get("k") != "tx" or token.get("f") != fingerprint:
                raise InvalidArgument(
                    "page_token", "was issued for other filters; start without it"
                )
            after = (int(token["t"]), int(token["s"]))
        rows = await self.app.repo.list_transactions(
            portfolio.id,
            asset=asset,
            wallet=wallet,
            kind=kind,
            start_ms=start,
            end_ms=end,
            after=after,
            limit=limit + 1,
        )
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_token = encode_page_token(
                {"k": "tx", "f": fingerprint, "t": last.time_ms, "s": last.seq}
            )
        return portfolio_pb2.ListTransactionsResponse(
            transactions=[transaction_message(r) for r in rows], next_page_token=next_token
        )

    async def AmendTransaction(
        self, request: portfolio_pb2.AmendTransactionRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.AmendTransactionResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        if not request.transaction_id.strip():
            raise InvalidArgument("transaction_id", "is required")
        if not request.HasField("transaction"):
            raise InvalidArgument("transaction", "is required")
        tx = await self._parse_tx(request.transaction, "transaction")
        row = await self.app.amend(portfolio, request.transaction_id, tx)
        return portfolio_pb2.AmendTransactionResponse(transaction=transaction_message(row))

    async def DeleteTransaction(
        self, request: portfolio_pb2.DeleteTransactionRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.DeleteTransactionResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        if not request.transaction_id.strip():
            raise InvalidArgument("transaction_id", "is required")
        await self.app.delete(portfolio, request.transaction_id)
        return portfolio_pb2.DeleteTransactionResponse()

    # -- positions and gains ------------------------------------------------------------

    async def ListLots(
        self, request: portfolio_pb2.ListLotsRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.ListLotsResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        as_of = optional_timestamp_ms(request, "as_of")
        if as_of is not None and as_of >= now_ms():
            as_of = None  # the lots now: nothing after now is in the ledger
        asset = (
            parse_asset(request.asset, "asset", BASE_CURRENCY) if request.asset.strip() else None
        )
        wallet = parse_wallet(request.wallet, "wallet", default="") or None
        lots, book, _ = await reports.lots_of(
            self.app, portfolio, asset=asset, wallet=wallet, as_of_ms=as_of
        )
        return portfolio_pb2.ListLotsResponse(lots=[_lot_message(lot, book) for lot in lots])

    async def GetHoldings(
        self, request: portfolio_pb2.GetHoldingsRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.GetHoldingsResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        lots, book, replay = await reports.lots_of(self.app, portfolio)
        rows = positions(lots, book, portfolio.pool == PER_WALLET)
        assets = sorted({r.asset for r in rows})
        prices: dict[str, Decimal] = {}
        grades: dict[str, float] = {}
        unavailable: list[str] = []
        if not request.skip_market and assets:
            quotes, missing = await self.app.market.quotes(assets)
            if missing:
                raise FailedPrecondition(
                    f"pricing has no quote for {', '.join(missing)}; holdings cannot be valued "
                    "(use skip_market for quantities and cost only)"
                )
            prices = {a: q.price for a, q in quotes.items()}
            try:
                views = await self.app.market.signals_for(assets)
                grades = {a: s.grade for a, s in views.items()}
            except Unavailable as err:
                unavailable.append(f"trader_grade: {err.message}")
        valued = value_positions(rows, prices)
        total_value = sum((v.market_value for v in valued if v.market_value is not None), ZERO)
        known = [v for v in valued if not v.position.unknown_cost]
        total_cost = sum((v.position.cost_basis for v in known), ZERO)
        known_value = sum((v.market_value for v in known if v.market_value is not None), ZERO)
        unknown_assets = sorted({v.position.asset for v in valued if v.position.unknown_cost})
        if unknown_assets:
            unavailable.append(
                "cost_basis: unknown for lots of "
                + ", ".join(unknown_assets)
                + " (acquired without a price pricing could supply; ListTransactions shows "
                "valuation 'unknown'); totals leave them out"
            )
        response = portfolio_pb2.GetHoldingsResponse(
            total_cost_basis=fmt(total_cost),
            total_realized_gain=fmt(
                await asyncio.to_thread(reports.all_time_realized, book, replay)
            ),
            as_of=ms_to_timestamp(now_ms()),
            unavailable=unavailable,
        )
        if not request.skip_market:
            response.total_market_value = fmt(total_value)
            response.total_unrealized_pnl = fmt(known_value - total_cost)
        for v in valued:
            pos = v.position
            holding = portfolio_pb2.Holding(
                asset=pos.asset,
                wallet=pos.wallet,
                quantity=fmt(pos.quantity),
                cost_basis="" if pos.unknown_cost else fmt(pos.cost_basis),
                average_cost=fmt(pos.average_cost),
                price=fmt(v.price),
                market_value=fmt(v.market_value),
                unrealized_pnl=fmt(v.unrealized),
                wallet_quantities={w: fmt(q) for w, q in pos.wallet_quantities.items()},
            )
            if v.unrealized is not None and pos.cost_basis:
                holding.unrealized_pnl_pct = fmt(div(v.unrealized, pos.cost_basis))
            if v.market_value is not None and total_value:
                holding.weight = fmt(div(v.market_value, total_value))
            if pos.asset in grades:
                holding.trader_grade = grades[pos.asset]
            response.holdings.append(holding)
        return response

    async def GetRealizedGains(
        self, request: portfolio_pb2.GetRealizedGainsRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.GetRealizedGainsResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        start, end = _window(request)
        override = (
            parse_method(request.method_override, "method_override", default=0)
            if request.method_override
            else 0
        )
        asset = (
            parse_asset(request.asset, "asset", BASE_CURRENCY) if request.asset.strip() else None
        )
        limit = parse_limit(request.page_size, "page_size", DEFAULT_GAINS_PAGE, MAX_GAINS_PAGE)
        state = await self.app.state(portfolio)
        asset_id = state.book.assets.ids.get(asset, -1) if asset else None
        result = await reports.realized(
            self.app, portfolio, gains.Window(start, end, asset_id), override, "realized gains"
        )
        fingerprint = _fingerprint(portfolio.id, start, end, override, asset)
        offset = 0
        if request.page_token:
            token = decode_page_token(request.page_token)
            if token.get("k") != "gains" or token.get("f") != fingerprint:
                raise InvalidArgument(
                    "page_token", "was issued for another request; start without it"
                )
            if token.get("v") != result.book.version:
                raise FailedPrecondition(
                    "the ledger changed since the first page; start again without page_token"
                )
            offset = int(token["o"])
        short, long_, total = gains.totals(result.replay, result.idx)
        page = gains.page_slice(result.groups, offset, limit)
        rows = gains.disposal_rows(result.replay, result.arrays, result.groups, page, result.book)
        next_token = ""
        if offset + limit < len(result.groups):
            next_token = encode_page_token(
                {"k": "gains", "f": fingerprint, "v": result.book.version, "o": offset + limit}
            )
        return portfolio_pb2.GetRealizedGainsResponse(
            disposals=[gains.disposal_message(r, result.book) for r in rows],
            short_term=short,
            long_term=long_,
            total=total,
            next_page_token=next_token,
        )

    async def GetIncome(
        self, request: portfolio_pb2.GetIncomeRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.GetIncomeResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        start, end = _window(request)
        lines = await reports.income_of(self.app, portfolio, start, end)
        by_kind = income.totals_by_kind(lines)
        return portfolio_pb2.GetIncomeResponse(
            lines=[
                portfolio_pb2.IncomeLine(
                    month=line.month,
                    kind=line.kind,  # type: ignore[arg-type]
                    asset=line.asset,
                    quantity=fmt(line.quantity),
                    value=fmt(line.value),
                    count=line.count,
                )
                for line in lines
            ],
            total_by_kind={k: fmt(v) for k, v in by_kind.items()},
            total=fmt(sum(by_kind.values(), ZERO)),
        )

    async def GetTaxReport(
        self, request: portfolio_pb2.GetTaxReportRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[portfolio_pb2.GetTaxReportResponse]:
        portfolio = await self._portfolio(request.portfolio_id)
        if not 1970 <= request.year <= 9999:
            raise InvalidArgument("year", "is required: the tax year, 1970 to 9999")
        override = (
            parse_method(request.method_override, "method_override", default=0)
            if request.method_override
            else 0
        )
        start, end = gains.year_range(request.year)
        # Both checks before the first row: a report never stops half-way for a missing price.
        result = await reports.realized(
            self.app, portfolio, gains.Window(start, end), override, "the tax report"
        )
        lines = await reports.income_of(self.app, portfolio, start, end)
        csv_lines = [gains.CSV_HEADER]
        async for chunk in reports.tax_rows(result):
            for row in chunk:
                message = gains.form_8949_row(row, result.book)
                csv_lines.append(gains.csv_line(message))
                yield portfolio_pb2.GetTaxReportResponse(row=message)
        short, long_, total = gains.totals(result.replay, result.idx)
        by_kind = income.totals_by_kind(lines)
        income_total = sum(by_kind.values(), ZERO)
        csv_lines += [
            "",
            "summary,proceeds,cost_basis,gain,rows",
            f"short_term,{short.proceeds},{short.cost_basis},{short.gain},{short.count}",
            f"long_term,{long_.proceeds},{long_.cost_basis},{long_.gain},{long_.count}",
            f"total,{total.proceeds},{total.cost_basis},{total.gain},{total.count}",
            f"income,{fmt(income_total)},,,",
        ]
        method = override or method_for_year(portfolio, request.year)
        yield portfolio_pb2.GetTaxReportResponse(
            summary=portfolio_pb2.TaxReportSummary(
                year=request.year,
                short_term=short,
                long_term=long_,
                total=total,
                income_total=fmt(income_total),
                income_by_kind={k: fmt(v) for k, v in by_kind.items()},
                csv="\n".join(csv_lines) + "\n",
                method=method,  # type: ignore[arg-type]
            )
        )

    async def HarvestTaxLosses(
        self, request: portfolio_pb2.HarvestTaxLossesRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.HarvestTaxLossesResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        min_loss = (
            parse_decimal(request.min_loss, "min_loss", required=False, non_negative=True) or ZERO
        )
        lots, book, _ = await reports.lots_of(self.app, portfolio)
        quotes, _ = await self.app.market.quotes({lot.asset for lot in lots})
        now = now_ms()
        candidates = harvest(lots, {a: q.price for a, q in quotes.items()}, min_loss, now)
        return portfolio_pb2.HarvestTaxLossesResponse(
            candidates=[
                portfolio_pb2.HarvestCandidate(
                    lot=_lot_message(c.lot, book),
                    price=fmt(c.price),
                    market_value=fmt(c.market_value),
                    loss=fmt(c.loss),
                    term=gains.LONG if c.long_term else gains.SHORT,
                )
                for c in candidates
            ],
            total_loss=fmt(sum((c.loss for c in candidates), ZERO)),
            as_of=ms_to_timestamp(now),
        )

    # -- decisions --------------------------------------------------------------------------

    async def PlanRebalance(
        self, request: portfolio_pb2.PlanRebalanceRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.PlanRebalanceResponse:
        portfolio = await self._portfolio(request.portfolio_id)
        return await plan_rebalance(self.app, portfolio, request)

    async def SizePosition(
        self, request: portfolio_pb2.SizePositionRequest, context: grpc.aio.ServicerContext
    ) -> portfolio_pb2.SizePositionResponse:
        portfolio = None
        if request.portfolio_id.strip():
            portfolio = await self._portfolio(request.portfolio_id)
        return await size_position(self.app, portfolio, request)


def _lot_message(lot: OpenLot, book: Book) -> portfolio_pb2.Lot:
    return portfolio_pb2.Lot(
        id=book.tx_id(lot.lot_seq),
        asset=lot.asset,
        wallet=lot.wallet,
        acquired_time=ms_to_timestamp(lot.acquired_ms),
        quantity=fmt(lot.quantity),
        cost_basis="" if lot.unknown else fmt(lot.cost_basis),
        unit_cost="" if lot.unknown else fmt(lot.unit_cost),
        original_quantity=fmt(lot.original_quantity),
    )
