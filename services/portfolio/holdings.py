"""Open lots, grouped: holdings, lot listings and loss-harvesting candidates.

Everything here is exact: quantities and costs come from core_rs as decimal
strings, market prices (doubles in the market-data contract) become Decimals
once in services/portfolio/market.py, and values are rounded half-even to
18 places only where a product is formed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

import core_rs
from services.portfolio.book import Book
from services.portfolio.decimals import ZERO, div, mul

DAY_MS = 86_400_000


@dataclass(frozen=True)
class OpenLot:
    lot_seq: int
    asset: str
    wallet: str  # "" for a universal pool
    acquired_ms: int
    quantity: Decimal
    cost_basis: Decimal
    original_quantity: Decimal
    unknown: bool

    @property
    def unit_cost(self) -> Decimal:
        return div(self.cost_basis, self.quantity) if self.quantity else ZERO


def open_lots(
    replay: core_rs.Replay,
    book: Book,
    *,
    asset: str | None = None,
    wallet: str | None = None,
) -> list[OpenLot]:
    arrays = replay.lot_arrays()
    mask = np.ones(arrays["lot_tx"].shape[0], dtype=bool)
    if asset is not None:
        asset_id = book.assets.ids.get(asset)
        if asset_id is None:
            return []
        mask &= arrays["asset"] == asset_id
    if wallet is not None:
        wallet_id = book.wallets.ids.get(wallet)
        if wallet_id is None:
            return []
        mask &= arrays["wallet"] == wallet_id
    idx = np.flatnonzero(mask).astype(np.int64)
    if idx.size == 0:
        return []
    qty, cost, original = replay.lot_amounts(idx)
    lots = []
    for pos, i in enumerate(idx.tolist()):
        unknown = bool(arrays["unknown"][i])
        lots.append(
            OpenLot(
                lot_seq=int(arrays["lot_tx"][i]),
                asset=book.assets.name(int(arrays["asset"][i])),
                wallet=book.wallets.name(int(arrays["wallet"][i])),
                acquired_ms=int(arrays["acquired_ms"][i]),
                quantity=Decimal(qty[pos]),
                cost_basis=ZERO if unknown or not cost[pos] else Decimal(cost[pos]),  # see unknown
                original_quantity=Decimal(original[pos]),
                unknown=unknown,
            )
        )
    return lots


@dataclass
class Position:
    """One holdings row: an asset in a pool."""

    asset: str
    wallet: str
    quantity: Decimal = ZERO
    cost_basis: Decimal = ZERO
    unknown_cost: bool = False
    wallet_quantities: dict[str, Decimal] = field(default_factory=dict)

    @property
    def average_cost(self) -> Decimal | None:
        if self.unknown_cost or not self.quantity:
            return None
        return div(self.cost_basis, self.quantity)


def positions(lots: list[OpenLot], book: Book, per_wallet: bool) -> list[Position]:
    rows: dict[tuple[str, str], Position] = {}
    for lot in lots:
        key = (lot.asset, lot.wallet)
        pos = rows.get(key)
        if pos is None:
            pos = rows[key] = Position(lot.asset, lot.wallet)
        pos.quantity += lot.quantity
        pos.cost_basis += lot.cost_basis
        pos.unknown_cost |= lot.unknown
    if not per_wallet:
        by_asset: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for (asset, wallet), balance in book.balances.items():
            if balance:
                by_asset[asset][wallet] = balance
        for (asset, _), pos in rows.items():
            pos.wallet_quantities = dict(sorted(by_asset.get(asset, {}).items()))
    return sorted(rows.values(), key=lambda p: (p.asset, p.wallet))


@dataclass(frozen=True)
class Valued:
    position: Position
    price: Decimal | None
    market_value: Decimal | None
    unrealized: Decimal | None


def value_positions(rows: list[Position], prices: Mapping[str, Decimal]) -> list[Valued]:
    out = []
    for pos in rows:
        price = prices.get(pos.asset)
        value = mul(pos.quantity, price) if price is not None else None
        unrealized = None
        if value is not None and not pos.unknown_cost:
            unrealized = value - pos.cost_basis
        out.append(Valued(pos, price, value, unrealized))
    return out


@dataclass(frozen=True)
class Candidate:
    lot: OpenLot
    price: Decimal
    market_value: Decimal
    loss: Decimal
    long_term: bool


def harvest(
    lots: list[OpenLot], prices: Mapping[str, Decimal], min_loss: Decimal, now_ms: int
) -> list[Candidate]:
    """Lots whose sale now would realize a loss of at least ``min_loss``, largest first."""
    out = []
    for lot in lots:
        price = prices.get(lot.asset)
        if price is None or lot.unknown:
            continue
        value = mul(lot.quantity, price)
        loss = lot.cost_basis - value
        if loss > 0 and loss >= min_loss:
            long_term = (now_ms // DAY_MS - lot.acquired_ms // DAY_MS) > 365
            out.append(Candidate(lot, price, value, loss, long_term))
    out.sort(key=lambda c: (-c.loss, c.lot.acquired_ms, c.lot.lot_seq))
    return out
