"""A transaction as the legs the lot engine replays.

Every transaction becomes one to three legs, each one movement of one asset:

============  ==========================================================
ACQUIRE       a new lot: asset, wallet, quantity, cost basis
DISPOSE       a taxable disposal: quantity, net proceeds
REMOVE        lots leave without a sale (a gift out)
MOVE          a transfer between the owner's wallets (basis and dates kept)
============  ==========================================================

The rules, per kind (V is the value: the caller's ``value``, else
quantity x ``price``, else quantity x the market price at the time; F is
the fee's value: the amount when paid in the base currency, else its market
value):

* BUY: ACQUIRE at V + F.  SELL: DISPOSE for V - F.
* SWAP: DISPOSE ``asset`` for V - F, ACQUIRE ``to_asset`` at V (V from the
  caller, else the market value of what was given, else of what was received).
* SPEND: DISPOSE for V - F.  INCOME: ACQUIRE at V (the income).
* TRANSFER: MOVE; a fee is not added to anything.
* GIFT_IN: ACQUIRE at V (the donor's basis).  GIFT_OUT: REMOVE.
* A fee paid in a crypto asset is also a DISPOSE of that asset for its
  market value, as the last leg (so a fee paid out of what was just bought
  comes out of the new lot).

A transaction has at most one ACQUIRE leg, so its lot id is its
transaction id. Amounts the market must supply and cannot are None
("unknown"): the transaction is still recorded, and any report that needs
the amount fails naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from services.portfolio.decimals import CONTEXT, ZERO, fmt, mul
from services.portfolio.transactions import (
    BUY,
    GIFT_IN,
    GIFT_OUT,
    INCOME,
    SELL,
    SPEND,
    SWAP,
    TRANSFER,
    TxContent,
)

ACQUIRE, DISPOSE, REMOVE, MOVE = 1, 2, 3, 4
VALUATION_OWN, VALUATION_MARKET, VALUATION_UNKNOWN = "", "market", "unknown"


class Leg(NamedTuple):
    # A NamedTuple: a million of these are built when a book loads.
    leg: int
    kind: int
    asset: str
    wallet: str
    qty: Decimal
    amount: Decimal | None
    to_wallet: str = ""
    # (lot id, quantity) named by the caller.
    selections: tuple[tuple[str, Decimal], ...] = ()

    def deltas(self) -> list[tuple[tuple[str, str], Decimal]]:
        """Balance changes per (asset, wallet)."""
        if self.kind == ACQUIRE:
            return [((self.asset, self.wallet), self.qty)]
        # copy_negate: exact (unary minus rounds to the context's 28 digits).
        if self.kind == MOVE:
            return [
                ((self.asset, self.wallet), self.qty.copy_negate()),
                ((self.asset, self.to_wallet), self.qty),
            ]
        return [((self.asset, self.wallet), self.qty.copy_negate())]


def market_needs(tx: TxContent, base_currency: str) -> list[tuple[str, str]]:
    """(key, asset) pairs whose market price at ``tx.time_ms`` the legs need
    (a fee in the base currency needs none: it is its own value)."""
    needs: list[tuple[str, str]] = []
    if tx.value is None and tx.price is None:
        if tx.kind == SWAP:
            needs += [("asset", tx.asset), ("to_asset", tx.to_asset)]
        elif tx.kind in (SPEND, INCOME):
            needs.append(("asset", tx.asset))
    if tx.has_crypto_fee and tx.fee_value is None and tx.fee_asset != base_currency:
        needs.append(("fee", tx.fee_asset))
    return needs


def _sum(*parts: Decimal | None) -> Decimal | None:
    # In the ledger's 80-digit context: the default 28 digits would round
    # amounts of up to 38 (20 before the point, 18 after).
    total = ZERO
    for p in parts:
        if p is None:
            return None
        total = CONTEXT.add(total, p)
    return total


def build_legs(tx: TxContent, base_currency: str) -> tuple[list[Leg], str]:
    """The legs of ``tx`` and its valuation ("", "market" or "unknown")."""
    used_market = False

    def market(key: str) -> Decimal | None:
        nonlocal used_market
        price = tx.market.get(key)
        if price is not None:
            used_market = True
        return price

    value: Decimal | None
    if tx.value is not None:
        value = tx.value
    elif tx.price is not None:
        value = mul(tx.quantity, tx.price)
    elif tx.kind == SWAP:
        given, received = market("asset"), None
        if given is None:
            received = market("to_asset")
        if given is not None:
            value = mul(tx.quantity, given)
        elif received is not None and tx.to_quantity is not None:
            value = mul(tx.to_quantity, received)
        else:
            value = None
    elif tx.kind in (SPEND, INCOME):
        price = market("asset")
        value = mul(tx.quantity, price) if price is not None else None
    else:
        value = ZERO  # TRANSFER, GIFT_OUT: no value involved

    fee_leg: Leg | None = None
    fee: Decimal | None = ZERO
    if tx.fee_asset == base_currency and tx.fee_amount is not None:
        fee = tx.fee_amount
    elif tx.has_crypto_fee:
        assert tx.fee_amount is not None
        if tx.fee_value is not None:
            fee = tx.fee_value
        else:
            price = market("fee")
            fee = mul(tx.fee_amount, price) if price is not None else None
        fee_leg = Leg(0, DISPOSE, tx.fee_asset, tx.wallet, tx.fee_amount, fee)

    kind, lots = tx.kind, tx.lots
    legs: list[Leg] = []
    if kind == BUY:
        legs.append(Leg(0, ACQUIRE, tx.asset, tx.wallet, tx.quantity, _sum(value, fee)))
    elif kind in (SELL, SPEND):
        proceeds = None if value is None or fee is None else CONTEXT.subtract(value, fee)
        legs.append(Leg(0, DISPOSE, tx.asset, tx.wallet, tx.quantity, proceeds, selections=lots))
    elif kind == SWAP:
        proceeds = None if value is None or fee is None else CONTEXT.subtract(value, fee)
        assert tx.to_quantity is not None
        legs.append(Leg(0, DISPOSE, tx.asset, tx.wallet, tx.quantity, proceeds, selections=lots))
        legs.append(Leg(1, ACQUIRE, tx.to_asset, tx.wallet, tx.to_quantity, value))
    elif kind in (INCOME, GIFT_IN):
        legs.append(Leg(0, ACQUIRE, tx.asset, tx.wallet, tx.quantity, value))
    elif kind == TRANSFER:
        legs.append(
            Leg(0, MOVE, tx.asset, tx.wallet, tx.quantity, ZERO, tx.to_wallet, selections=lots)
        )
    elif kind == GIFT_OUT:
        legs.append(Leg(0, REMOVE, tx.asset, tx.wallet, tx.quantity, ZERO, selections=lots))
    else:  # pragma: no cover - parse_transaction admits only the kinds above
        raise ValueError(f"unknown transaction kind {kind}")
    if fee_leg is not None:
        legs.append(
            Leg(len(legs), DISPOSE, fee_leg.asset, fee_leg.wallet, fee_leg.qty, fee_leg.amount)
        )

    if any(leg.amount is None for leg in legs):
        valuation = VALUATION_UNKNOWN
    elif used_market:
        valuation = VALUATION_MARKET
    else:
        valuation = VALUATION_OWN
    return legs, valuation


def acquire_leg(legs: Sequence[Leg]) -> int | None:
    """Index of the transaction's lot-creating leg, if any."""
    for leg in legs:
        if leg.kind == ACQUIRE:
            return leg.leg
    return None


# -- the stored form ----------------------------------------------------------------
# A transaction's legs are stored in its row as JSON (db/repository.py
# encode_legs): [[leg, kind, asset, wallet, to_wallet, qty, amount, selections], ...]
# with amount null while unknown and selections null or the JSON text
# [[lot_id, qty], ...]. These two write and read it straight from Legs.


def selections_text(leg: Leg) -> str | None:
    return json.dumps([[lot, fmt(q)] for lot, q in leg.selections]) if leg.selections else None


def legs_json(legs: Sequence[Leg]) -> str:
    """The stored legs of a transaction (what encode_legs makes of its LegRows)."""
    return json.dumps(
        [
            [
                leg.leg,
                leg.kind,
                leg.asset,
                leg.wallet,
                leg.to_wallet,
                fmt(leg.qty),
                None if leg.amount is None else fmt(leg.amount),
                selections_text(leg),
            ]
            for leg in legs
        ],
        separators=(",", ":"),
    )


def legs_from_json(text: str) -> tuple[Leg, ...]:
    return tuple(
        Leg(
            leg,
            kind,
            asset,
            wallet,
            Decimal(qty),
            None if amount is None else Decimal(amount),
            to_wallet or "",
            tuple((lot, Decimal(q)) for lot, q in json.loads(selections)) if selections else (),
        )
        for leg, kind, asset, wallet, to_wallet, qty, amount, selections in json.loads(text)
    )
