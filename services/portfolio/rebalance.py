"""A rebalancing plan: the trades that move holdings toward target weights.

Rules
=====

- Value. The portfolio value is ``V = sum(quantity x price) + cash``; an
  asset's weight is its value / V. Cash's target is ``1 - sum(targets)``.
  Prices are held fixed for the whole plan.
- Targets. An asset held but absent from ``targets`` has target 0: it is sold
  (unless ``buy_only``). A target asset that is not held takes its price from
  ``prices``; an asset with a positive target and no positive price raises
  :class:`MissingPrice` (FAILED_PRECONDITION: retry once pricing quotes it).
  A held asset with no positive price and no target is worth 0 here and left
  alone (a note says so).
- Drift band. An asset with ``|weight - target| <= drift_band`` gets no trade.
- Sells first: they fund the buys. An asset above its target sells
  ``(value - target x V) / price`` units rounded DOWN to 18 places, never
  more than held; an asset with target 0 sells everything held. Each trade's
  value is ``quantity x price`` and its fee ``value x fee_rate``, both rounded
  half-even to 18 places; a sale brings ``value - fee`` (net proceeds), and
  ``tax_preview(asset, quantity, net proceeds)`` says what it would realize.
- Buys. An asset below its target wants ``target x V - value`` of value, plus
  the fee on top. Buys spend the cash after sells down to cash's target
  (``(1 - sum(targets)) x V``), never below it and never below 0; when that
  cannot pay for every buy with its fee, every buy is scaled down by the same
  factor (a note says so unless the gap is only the rounding of the sales).
  Buy quantities are rounded DOWN to 18 places, then lowered further if the
  half-even rounding of value and fee would push value + fee past the buy's
  budget, so cash never goes negative.
- ``buy_only``: nothing is sold; the cash above cash's target goes to the
  assets below their targets in proportion to their shortfall.
- ``max_trades`` (0: no limit): the N largest trades by value, sells and buys
  ranked together (ties: sells first, then by asset), are kept and the plan is
  recomputed with only those assets allowed to trade, so the kept buys are
  scaled to the cash the kept sells actually raise. A note names what was
  left out.
- Drift: ``sum over assets and cash of |weight - target| / 2``, before and
  after the trades (after: quantities and cash after trades and fees, at the
  same prices). Trades come sells first, then buys, each by value descending
  (ties by asset); drift rows by asset.

Everything is Decimal at 80 digits of precision; results are rounded to the
ledger's 18 places (services.portfolio.decimals).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from typing import Literal

from services.common.errors import FailedPrecondition, InvalidArgument
from services.portfolio.decimals import CONTEXT, ONE, QUANTUM, ZERO, fmt, mul, quantize

Side = Literal["BUY", "SELL"]
BUY: Side = "BUY"
SELL: Side = "SELL"


class MissingPrice(FailedPrecondition, ValueError):
    """A target asset has no price, so no trade in it can be valued.

    A FailedPrecondition (so the interceptor answers FAILED_PRECONDITION with
    no mapping in the servicer) and a ValueError, as callers may expect.
    """

    def __init__(self, asset: str, *others: str) -> None:
        self.assets: tuple[str, ...] = (asset, *others)
        self.asset = asset
        super().__init__(
            f"no current price for {', '.join(self.assets)}: a rebalancing plan needs one "
            "for every asset it targets; retry once pricing quotes it"
        )


@dataclass(frozen=True)
class Position:
    asset: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class TaxImpact:
    """What a sale would realize, split by holding period."""

    short_gain: Decimal
    long_gain: Decimal

    @property
    def gain(self) -> Decimal:
        return self.short_gain + self.long_gain


# (asset, quantity sold, net proceeds) -> what the sale would realize.
TaxPreview = Callable[[str, Decimal, Decimal], TaxImpact]


@dataclass(frozen=True)
class Trade:
    asset: str
    side: Side
    quantity: Decimal
    price: Decimal
    value: Decimal
    fee: Decimal
    tax: TaxImpact | None = None


@dataclass(frozen=True)
class Drift:
    """An asset's target and its weight before and after the plan."""

    asset: str
    target: Decimal
    before: Decimal
    after: Decimal


@dataclass(frozen=True)
class Plan:
    trades: list[Trade]
    drift: list[Drift]
    drift_before: Decimal
    drift_after: Decimal
    total_fees: Decimal
    realized_gain: Decimal
    portfolio_value: Decimal
    notes: list[str]


@dataclass(frozen=True)
class _Line:
    """One asset of the book: what is held, at what price, and its target."""

    asset: str
    quantity: Decimal
    price: Decimal  # 0 when unpriced (only for an asset without a target)
    target: Decimal

    @property
    def value(self) -> Decimal:
        return self.quantity * self.price


def plan_rebalance(
    positions: Sequence[Position],
    cash: Decimal,
    targets: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    *,
    drift_band: Decimal = ZERO,
    buy_only: bool = False,
    max_trades: int = 0,
    fee_rate: Decimal = ZERO,
    tax_preview: TaxPreview | None = None,
) -> Plan:
    """The trades that bring ``positions`` and ``cash`` to ``targets`` (see the module doc)."""
    with localcontext(CONTEXT):
        _check(cash, targets, drift_band, max_trades, fee_rate)
        lines, notes = _book(positions, targets, prices)
        total = cash + sum((line.value for line in lines), ZERO)
        cash_target = ONE - sum(targets.values(), ZERO)
        if total <= 0:
            return _empty(lines, cash, cash_target, total, [*notes, _NO_VALUE])

        planner = _Planner(lines, cash, total, cash_target, drift_band, buy_only, fee_rate)
        trades, trade_notes = planner.trades(allowed=None)
        if 0 < max_trades < len(trades):
            ranked = sorted(trades, key=lambda t: (-t.value, t.side != SELL, t.asset))
            kept, dropped = ranked[:max_trades], ranked[max_trades:]
            trades, trade_notes = planner.trades(allowed={t.asset for t in kept})
            trade_notes.append(
                f"max_trades {max_trades}: left out "
                + ", ".join(f"{t.side} {t.asset} (value {fmt(t.value)})" for t in dropped)
            )
        notes.extend(trade_notes)
        if tax_preview is not None:
            trades = [
                replace(t, tax=tax_preview(t.asset, t.quantity, t.value - t.fee))
                if t.side == SELL
                else t
                for t in trades
            ]
        return _result(lines, cash, total, cash_target, trades, notes)


_NO_VALUE = "the portfolio is worth nothing at current prices: nothing to rebalance"


def _check(
    cash: Decimal,
    targets: Mapping[str, Decimal],
    drift_band: Decimal,
    max_trades: int,
    fee_rate: Decimal,
) -> None:
    """Every bad parameter at once, each naming its request field."""
    bad: list[tuple[str, str]] = []
    if cash < 0:
        bad.append(("cash", f"must not be negative; got {fmt(cash)}"))
    if not ZERO <= drift_band < ONE:
        bad.append(("drift_band", f"must be at least 0 and below 1; got {fmt(drift_band)}"))
    if max_trades < 0:
        bad.append(("max_trades", f"must not be negative (0: no limit); got {max_trades}"))
    if not ZERO <= fee_rate < ONE:
        bad.append(("fee_rate", f"must be at least 0 and below 1; got {fmt(fee_rate)}"))
    out_of_range = sorted(a for a, w in targets.items() if not ZERO <= w <= ONE)
    if out_of_range:
        bad.append(("targets", f"weights must be between 0 and 1: {', '.join(out_of_range)}"))
    elif (weight_sum := sum(targets.values(), ZERO)) > ONE:
        bad.append(("targets", f"weights sum to {fmt(weight_sum)}; at most 1"))
    if bad:
        raise InvalidArgument.many(bad)


def _book(
    positions: Sequence[Position], targets: Mapping[str, Decimal], prices: Mapping[str, Decimal]
) -> tuple[list[_Line], list[str]]:
    """One line per asset held or targeted, sorted by asset; MissingPrice if one cannot be valued.

    Positions of one asset (say, from several wallets) are added up; they
    must carry the same price.
    """
    held: dict[str, Decimal] = {}
    held_price: dict[str, Decimal] = {}
    for p in positions:
        if p.asset in held_price and held_price[p.asset] != p.price:
            raise ValueError(f"positions of {p.asset} carry different prices")
        held[p.asset] = held.get(p.asset, ZERO) + p.quantity
        held_price[p.asset] = p.price
    lines: list[_Line] = []
    missing: list[str] = []
    unpriced: list[str] = []
    for asset in sorted(held.keys() | targets.keys()):
        target = targets.get(asset, ZERO)
        price = held_price.get(asset, prices.get(asset))
        if price is None or not price.is_finite() or price <= 0:
            if target > 0:
                missing.append(asset)
            elif held.get(asset, ZERO) != 0:
                unpriced.append(asset)
            price = ZERO
        lines.append(_Line(asset, held.get(asset, ZERO), price, target))
    if missing:
        raise MissingPrice(*missing)
    notes = []
    if unpriced:
        notes.append(f"no price, counted as worth 0 and left alone: {', '.join(unpriced)}")
    return lines, notes


class _Planner:
    """The fixed inputs of one plan; :meth:`trades` may run twice (max_trades)."""

    def __init__(
        self,
        lines: list[_Line],
        cash: Decimal,
        total: Decimal,
        cash_target: Decimal,
        drift_band: Decimal,
        buy_only: bool,
        fee_rate: Decimal,
    ) -> None:
        self.lines = lines
        self.cash = cash
        self.total = total
        self.cash_target_value = cash_target * total
        self.band = drift_band
        self.buy_only = buy_only
        self.fee_rate = fee_rate

    def trades(self, allowed: set[str] | None) -> tuple[list[Trade], list[str]]:
        """Sells then buys, each by value descending, and the notes they call for."""
        notes: list[str] = []
        in_band: list[str] = []
        over: list[_Line] = []
        under: list[_Line] = []
        for line in self.lines:
            target_value = line.target * self.total
            if line.price == 0 or line.value == target_value:
                continue
            if abs(line.value / self.total - line.target) <= self.band:
                in_band.append(line.asset)
            elif allowed is not None and line.asset not in allowed:
                continue
            elif line.value > target_value:
                over.append(line)
            else:
                under.append(line)
        if in_band:
            listed = ", ".join(in_band)
            notes.append(f"within the drift band of {fmt(self.band)}, no trade: {listed}")

        sells: list[Trade] = []
        if self.buy_only:
            if over:
                listed = ", ".join(line.asset for line in over)
                notes.append(f"buy_only: above target but not sold: {listed}")
        else:
            sells = [t for t in map(self._sell, over) if t is not None]
        buys = self._buys(under, sells, notes)
        return _by_value(sells) + _by_value(buys), notes

    def _sell(self, line: _Line) -> Trade | None:
        if line.quantity <= 0:
            return None
        if line.target == 0:
            quantity = line.quantity
        else:
            excess = line.value - line.target * self.total
            quantity = min(line.quantity, _round_down(excess / line.price))
        if quantity <= 0:
            return None
        value = mul(quantity, line.price)
        return Trade(line.asset, SELL, quantity, line.price, value, mul(value, self.fee_rate))

    def _buys(self, under: list[_Line], sells: list[Trade], notes: list[str]) -> list[Trade]:
        if not under:
            return []
        proceeds = sum((t.value - t.fee for t in sells), ZERO)
        budget = max(ZERO, self.cash + proceeds - self.cash_target_value)
        with_fee = ONE + self.fee_rate
        wants = {line.asset: (line.target * self.total - line.value) * with_fee for line in under}
        need = sum(wants.values(), ZERO)
        if need > budget:
            scale = budget / need
            # Multiply before dividing: w x budget / need is exact when the
            # ratio is (a scale of 1/3 would lose a quantum to its 80th digit).
            budgets = {a: _round_down(w * budget / need) for a, w in wants.items()}
            # A partial sale rounds its quantity down (and its value half-even),
            # so it raises up to a price quantum less than the buys assumed; a
            # gap that small is no news.
            slack = sum((t.price * QUANTUM + QUANTUM for t in sells), ZERO)
            if need - budget > slack:
                reserve = quantize(self.cash_target_value)
                notes.append(
                    f"buys scaled down to {fmt(_percent(scale))}% of what the targets call for: "
                    f"they need {fmt(quantize(need))} with fees and "
                    f"{fmt(quantize(budget))} is available after sells"
                    + (f" while keeping cash at its target of {fmt(reserve)}" if reserve else "")
                )
        else:
            budgets = wants
        buys = [self._buy(line, budgets[line.asset]) for line in under]
        return [t for t in buys if t is not None]

    def _buy(self, line: _Line, budget: Decimal) -> Trade | None:
        unit_cost = line.price * (ONE + self.fee_rate)
        quantity = _round_down(budget / unit_cost)
        while quantity > 0:
            value = mul(quantity, line.price)
            fee = mul(value, self.fee_rate)
            overshoot = value + fee - budget
            if overshoot <= 0:
                return Trade(line.asset, BUY, quantity, line.price, value, fee)
            # Half-even rounding of value and fee can add a fraction of a
            # quantum each: give back enough units to cover it (at a tiny
            # price one quantity quantum moves the value by far less than one).
            quantity -= max(QUANTUM, _round_up(overshoot / unit_cost))
        return None


def _result(
    lines: list[_Line],
    cash: Decimal,
    total: Decimal,
    cash_target: Decimal,
    trades: list[Trade],
    notes: list[str],
) -> Plan:
    delta: dict[str, Decimal] = {}
    cash_after = cash
    for t in trades:
        if t.side == SELL:
            delta[t.asset] = -t.quantity
            cash_after += t.value - t.fee
        else:
            delta[t.asset] = t.quantity
            cash_after -= t.value + t.fee
    after = {
        line.asset: (line.quantity + delta.get(line.asset, ZERO)) * line.price for line in lines
    }
    total_after = cash_after + sum(after.values(), ZERO)
    drift = [
        Drift(
            line.asset,
            line.target,
            quantize(line.value / total),
            quantize(after[line.asset] / total_after) if total_after > 0 else ZERO,
        )
        for line in lines
    ]
    before_gap = _gap([(line.value, line.target) for line in lines], cash, cash_target, total)
    after_pairs = [(after[line.asset], line.target) for line in lines]
    after_gap = _gap(after_pairs, cash_after, cash_target, total_after)
    return Plan(
        trades=trades,
        drift=drift,
        drift_before=before_gap,
        drift_after=after_gap,
        total_fees=sum((t.fee for t in trades), ZERO),
        realized_gain=sum((t.tax.gain for t in trades if t.tax is not None), ZERO),
        portfolio_value=quantize(total),
        notes=notes,
    )


def _empty(
    lines: list[_Line], cash: Decimal, cash_target: Decimal, total: Decimal, notes: list[str]
) -> Plan:
    """The plan of a portfolio worth nothing: no trades, every weight 0."""
    gap = _gap(((ZERO, line.target) for line in lines), ZERO, cash_target, ONE)
    drift = [Drift(line.asset, line.target, ZERO, ZERO) for line in lines]
    return Plan([], drift, gap, gap, ZERO, ZERO, quantize(total), notes)


def _gap(
    values: Iterable[tuple[Decimal, Decimal]], cash: Decimal, cash_target: Decimal, total: Decimal
) -> Decimal:
    """sum(|weight - target|) / 2 over assets and cash, rounded to 18 places.

    A portfolio worth nothing (or less than the smallest amount, after
    rounding) has every weight 0, as its weight rows say.
    """
    if total <= 0:
        gap = cash_target + sum((target for _, target in values), ZERO)
        return quantize(gap / 2)
    gap = abs(cash / total - cash_target)
    for value, target in values:
        gap += abs(value / total - target)
    return quantize(gap / 2)


def _by_value(trades: list[Trade]) -> list[Trade]:
    return sorted(trades, key=lambda t: (-t.value, t.asset))


def _round_down(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_DOWN)


def _round_up(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_UP)


def _percent(fraction: Decimal) -> Decimal:
    return (fraction * 100).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
