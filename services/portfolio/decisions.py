"""PlanRebalance and SizePosition: fetch what the rules need, then apply them.

The rules themselves are plain Decimal functions (target_weights.py,
rebalance.py, sizing.py); this module validates the request, gathers
holdings from the book, quotes and market caps from pricing, grades, ATR
and the market regime from signals (each UNAVAILABLE when its service is
down), and turns the result into the response.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from marketmesh.v1 import portfolio_pb2, signals_pb2
from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.validation import now_ms, parse_symbol
from services.portfolio import reports, sizing, target_weights
from services.portfolio.app import BASE_CURRENCY, PortfolioApp
from services.portfolio.db.repository import PortfolioRow
from services.portfolio.decimals import ONE, ZERO, fmt, mul, parse_decimal
from services.portfolio.market import to_decimal
from services.portfolio.methods import PER_WALLET, method_for_year
from services.portfolio.rebalance import MissingPrice, Position, TaxImpact
from services.portfolio.rebalance import plan_rebalance as plan
from services.portfolio.transactions import BUY, SELL, parse_asset

S = portfolio_pb2.RebalanceStrategy
DEFAULT_STABLECOIN = "USDC"
DEFAULT_MAX_WEIGHT = Decimal("0.25")
DEFAULT_MIN_GRADE = 60.0
DEFAULT_RISK = Decimal("0.01")
DEFAULT_ATR_MULTIPLE = Decimal(2)
MAX_FEE_RATE = Decimal("0.1")


def _fraction(text: str, field: str, default: Decimal, *, allow_zero: bool = True) -> Decimal:
    value = parse_decimal(text, field, required=False, non_negative=True)
    if value is None:
        return default
    if value > ONE or (not allow_zero and value == 0):
        raise InvalidArgument(
            field,
            f"must be a fraction {'above 0' if not allow_zero else 'from 0'} up to 1; got {text!r}",
        )
    return value


async def plan_rebalance(
    app: PortfolioApp, portfolio: PortfolioRow, request: portfolio_pb2.PlanRebalanceRequest
) -> portfolio_pb2.PlanRebalanceResponse:
    strategy = request.strategy or (S.REBALANCE_STRATEGY_TARGETS if request.targets else 0)
    if strategy not in S.values() or strategy == 0:
        raise InvalidArgument(
            "strategy",
            "is required: TARGETS (with targets), EQUAL_WEIGHT, MARKET_CAP or GRADE_WEIGHTED",
        )
    if strategy != S.REBALANCE_STRATEGY_TARGETS and request.targets:
        raise InvalidArgument("targets", "are only for the TARGETS strategy")
    drift_band = _fraction(request.drift_band, "drift_band", ZERO)
    fee_rate = _fraction(request.fee_rate, "fee_rate", ZERO)
    if fee_rate > MAX_FEE_RATE:
        raise InvalidArgument(
            "fee_rate", f"must be at most {MAX_FEE_RATE} (10%); got {request.fee_rate!r}"
        )
    cash = parse_decimal(request.cash, "cash", required=False, non_negative=True) or ZERO
    max_weight = _fraction(request.max_weight, "max_weight", DEFAULT_MAX_WEIGHT, allow_zero=False)
    if request.max_trades < 0:
        raise InvalidArgument("max_trades", "must not be negative (0: no limit)")
    min_grade = request.min_grade or DEFAULT_MIN_GRADE
    if not 0 <= min_grade <= 100:
        raise InvalidArgument("min_grade", "must be from 0 to 100")
    stablecoin_text = request.stablecoin.strip().upper() or DEFAULT_STABLECOIN
    stablecoin = (
        None
        if stablecoin_text == "-"
        else parse_asset(stablecoin_text, "stablecoin", BASE_CURRENCY)
    )
    universe = [
        parse_asset(a, f"universe[{i}]", BASE_CURRENCY) for i, a in enumerate(request.universe)
    ]
    explicit = (
        target_weights.validate_targets([(t.asset, t.weight) for t in request.targets])
        if strategy == S.REBALANCE_STRATEGY_TARGETS
        else {}
    )
    if strategy == S.REBALANCE_STRATEGY_TARGETS and not explicit:
        raise InvalidArgument("targets", "are required for the TARGETS strategy")

    lots, book, replay = await reports.lots_of(app, portfolio)
    held: dict[str, Decimal] = defaultdict(Decimal)
    by_wallet: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for lot in lots:
        held[lot.asset] += lot.quantity
        by_wallet[lot.asset][lot.wallet] += lot.quantity
    known = await app.market.known_assets()
    for i, asset in enumerate(universe):
        if asset not in known:
            raise InvalidArgument(f"universe[{i}]", f"unknown asset {asset}")
    candidates = sorted(set(universe) or set(held))
    notes: list[str] = []
    defensive = False

    if strategy == S.REBALANCE_STRATEGY_TARGETS:
        targets = explicit
    elif not candidates:
        raise FailedPrecondition(
            "the portfolio holds nothing and no universe was given: nothing to weigh"
        )
    elif strategy == S.REBALANCE_STRATEGY_EQUAL_WEIGHT:
        weights = target_weights.equal_weight(candidates)
        targets, notes = weights.weights, [*notes, *weights.notes]
    elif strategy == S.REBALANCE_STRATEGY_MARKET_CAP:
        quotes, missing = await app.market.quotes(candidates)
        if missing:
            notes.append(f"no market cap for {', '.join(missing)}: left out")
        weights = target_weights.market_cap_weight(
            {a: q.market_cap for a, q in quotes.items()}, max_weight
        )
        targets, notes = weights.weights, [*notes, *weights.notes]
    else:
        regime = await app.market.regime()
        if stablecoin is not None and regime == signals_pb2.REGIME_BEAR:
            weights = target_weights.defensive(stablecoin)
            defensive = True
            notes.append(f"market regime is BEAR: moving to {stablecoin}")
        else:
            views = await app.market.signals_for(candidates)
            ungraded = [a for a in candidates if a not in views]
            if ungraded:
                notes.append(f"signals has no grade for {', '.join(ungraded)}: left out")
            weights = target_weights.grade_weight(
                {a: to_decimal(v.grade) for a, v in views.items()}, to_decimal(min_grade)
            )
        targets, notes = weights.weights, [*notes, *weights.notes]

    wanted = sorted(set(held) | set(targets))
    quotes, missing = await app.market.quotes(wanted)
    prices = {a: q.price for a, q in quotes.items()}
    unpriced_held = [a for a in held if a not in prices]
    if unpriced_held:
        raise FailedPrecondition(
            f"pricing has no quote for {', '.join(unpriced_held)}; cannot value the portfolio"
        )
    per_wallet = portfolio.pool == PER_WALLET
    now = now_ms()
    method = method_for_year(portfolio, _year(now))

    def preview(asset: str, qty: Decimal, proceeds: Decimal) -> TaxImpact:
        asset_id = book.assets.ids[asset]
        wallet_id = 0
        if per_wallet:
            wallet = max(by_wallet[asset].items(), key=lambda kv: kv[1])[0]
            wallet_id = book.wallets.ids[wallet]
        result = replay.preview_disposal(asset_id, wallet_id, fmt(qty), fmt(proceeds), now, method)
        return TaxImpact(Decimal(result["short_gain"]), Decimal(result["long_gain"]))

    try:
        result = plan(
            [Position(a, q, prices[a]) for a, q in sorted(held.items()) if q],
            cash,
            targets,
            prices,
            drift_band=drift_band,
            buy_only=request.buy_only,
            max_trades=request.max_trades,
            fee_rate=fee_rate,
            tax_preview=preview,
        )
    except MissingPrice as err:
        raise FailedPrecondition(
            f"pricing has no quote for {err}; cannot plan a trade in it"
        ) from None
    if per_wallet and any(t.side == "SELL" for t in result.trades):
        notes.append(
            "per-wallet pools: each sale's tax impact is for the wallet holding most of the asset"
        )
    response = portfolio_pb2.PlanRebalanceResponse(
        drift_before=fmt(result.drift_before),
        drift_after=fmt(result.drift_after),
        total_fees=fmt(result.total_fees),
        realized_gain=fmt(result.realized_gain),
        defensive=defensive,
        portfolio_value=fmt(result.portfolio_value),
        notes=[*notes, *result.notes],
    )
    for t in result.trades:
        trade = portfolio_pb2.RebalanceTrade(
            asset=t.asset,
            side=BUY if t.side == "BUY" else SELL,
            quantity=fmt(t.quantity),
            price=fmt(t.price),
            value=fmt(t.value),
            fee=fmt(t.fee),
        )
        if t.tax is not None:
            trade.short_term_gain = fmt(t.tax.short_gain)
            trade.long_term_gain = fmt(t.tax.long_gain)
            trade.realized_gain = fmt(t.tax.short_gain + t.tax.long_gain)
        response.trades.append(trade)
    for d in result.drift:
        response.drift.append(
            portfolio_pb2.AssetDrift(
                asset=d.asset,
                target_weight=fmt(d.target),
                weight_before=fmt(d.before),
                weight_after=fmt(d.after),
            )
        )
    return response


def _year(ms: int) -> int:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).year


def _asset_of_symbol(text: str) -> str:
    raw = text.strip().upper()
    if not raw:
        raise InvalidArgument("symbol", "is required")
    if "-" in raw:
        symbol = parse_symbol(raw)
        base, quote = symbol.split("-", 1)
        if quote != BASE_CURRENCY:
            raise InvalidArgument("symbol", f"must be quoted in {BASE_CURRENCY}; got {symbol}")
        return base
    return parse_asset(raw, "symbol", BASE_CURRENCY)


async def size_position(
    app: PortfolioApp, portfolio: PortfolioRow | None, request: portfolio_pb2.SizePositionRequest
) -> portfolio_pb2.SizePositionResponse:
    asset = _asset_of_symbol(request.symbol)
    equity_given = parse_decimal(request.equity, "equity", required=False, positive=True)
    if portfolio is None and equity_given is None:
        raise InvalidArgument("equity", "give portfolio_id or equity")
    if portfolio is not None and equity_given is not None:
        raise InvalidArgument("equity", "give portfolio_id or equity, not both")
    risk = _fraction(request.risk_per_trade, "risk_per_trade", DEFAULT_RISK, allow_zero=False)
    stop_given = parse_decimal(request.stop_price, "stop_price", required=False, positive=True)
    if request.atr_multiple < 0 or request.atr_multiple != request.atr_multiple:
        raise InvalidArgument("atr_multiple", "must be a positive number")
    if stop_given is not None and request.atr_multiple:
        raise InvalidArgument("atr_multiple", "give stop_price or atr_multiple, not both")
    entry = parse_decimal(request.entry_price, "entry_price", required=False, positive=True)

    notes: list[str] = []
    view = await app.market.signal(asset)
    if view is None:
        raise FailedPrecondition(
            f"signals has no trader grade for {asset}-{BASE_CURRENCY}; cannot size by grade"
        )
    if entry is None:
        quotes, _ = await app.market.quotes([asset])
        if asset not in quotes:
            raise FailedPrecondition(f"pricing has no quote for {asset}; give entry_price")
        entry = quotes[asset].price
    if stop_given is not None:
        stop = stop_given
    else:
        multiple = (
            to_decimal(request.atr_multiple) if request.atr_multiple else DEFAULT_ATR_MULTIPLE
        )
        if not request.atr_multiple:
            notes.append(f"no stop given: {multiple} x ATR(14) below the entry")
        if view.atr is None:
            raise FailedPrecondition(f"signals has no ATR for {asset} yet; give stop_price")
        stop = sizing.atr_stop(entry, to_decimal(view.atr), multiple)

    if equity_given is not None:
        equity = equity_given
    else:
        assert portfolio is not None
        lots, _, _ = await reports.lots_of(app, portfolio)
        held: dict[str, Decimal] = defaultdict(Decimal)
        for lot in lots:
            held[lot.asset] += lot.quantity
        quotes, missing = await app.market.quotes(held)
        if missing:
            raise FailedPrecondition(
                f"pricing has no quote for {', '.join(missing)}; cannot value the portfolio"
            )
        equity = sum((mul(q, quotes[a].price) for a, q in held.items()), ZERO)
        if equity <= 0:
            raise FailedPrecondition("the portfolio's market value is zero: give equity instead")
    result = sizing.size_position(
        equity,
        entry,
        stop,
        risk_per_trade=risk,
        grade=to_decimal(view.grade),
        max_fraction=app.settings.max_position_fraction,
    )
    return portfolio_pb2.SizePositionResponse(
        quantity=fmt(result.quantity),
        value=fmt(result.value),
        entry_price=fmt(result.entry_price),
        stop_price=fmt(result.stop_price),
        risk_amount=fmt(result.risk_amount),
        trader_grade=view.grade,
        grade_scale=fmt(result.grade_scale),
        capped=result.capped,
        equity=fmt(result.equity),
        notes=[*notes, *result.notes],
    )
