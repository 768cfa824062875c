"""A synthetic portfolio ledger for the portfolio benchmarks, and a reference matcher.

:func:`generate` yields real :class:`~services.portfolio.transactions.TxContent`
values (buys, sells that never oversell a wallet, income with its value,
transfers paying a fee in the asset, swaps), times increasing over the span;
quantities are whole units of 1e-8, tracked as integers so the balances are
exact without Decimal arithmetic. :func:`ledger_rows` turns them into the
rows and legs the service itself would store (the same functions as
ledger_writer), and :func:`write_ledger` writes them straight into a database
through ``Repository.write_batch``. :func:`fifo_reference` is the
straightforward pure-Python FIFO the service's replay is compared with.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from services.portfolio.app import portfolio_row
from services.portfolio.db.repository import LegRow, PortfolioRow, Repository, TransactionRow
from services.portfolio.decimals import fmt, mul
from services.portfolio.ledger_writer import leg_rows, new_tx_id
from services.portfolio.legs import ACQUIRE, DISPOSE, build_legs
from services.portfolio.transactions import (
    BUY,
    INCOME,
    SELL,
    SWAP,
    TRANSFER,
    TxContent,
    content_hash,
    to_body,
)

UNIT = 10**8  # quantities have up to 8 decimals
DAY_MS = 86_400_000
STAKING = 2  # IncomeKind: any non-zero kind will do
WALLETS = ("exchange", "cold", "hot")
# Cumulative shares of the kinds: 45% buy, 40% sell, 5% income, 5% transfer, 5% swap.
_MIX = ((0.45, BUY), (0.85, SELL), (0.90, INCOME), (0.95, TRANSFER), (1.0, SWAP))


@dataclass(frozen=True)
class LedgerSpec:
    transactions: int
    assets: tuple[str, ...]
    start_ms: int
    years: int = 6
    seed: int = 7
    wallets: tuple[str, ...] = WALLETS

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.years * 365 * DAY_MS

    def time_of(self, i: int) -> int:
        return self.start_ms + (i * (self.end_ms - self.start_ms)) // self.transactions


def _units(value: int) -> Decimal:
    return Decimal(value).scaleb(-8)


def _price_text(price: float) -> Decimal:
    return Decimal(f"{price:.2f}" if price >= 100 else f"{price:.6g}")


class _Holdings:
    """Positive balances per (asset, wallet) in units, with O(1) random choice."""

    def __init__(self) -> None:
        self.units: dict[tuple[str, str], int] = {}
        self.keys: list[tuple[str, str]] = []
        self.where: dict[tuple[str, str], int] = {}

    def add(self, key: tuple[str, str], units: int) -> None:
        total = self.units.get(key, 0) + units
        assert total >= 0, (key, total)
        self.units[key] = total
        if total > 0 and key not in self.where:
            self.where[key] = len(self.keys)
            self.keys.append(key)
        elif total == 0 and key in self.where:
            i = self.where.pop(key)
            last = self.keys.pop()
            if last != key:
                self.keys[i] = last
                self.where[last] = i

    def pick(self, rng: random.Random) -> tuple[str, str] | None:
        return self.keys[rng.randrange(len(self.keys))] if self.keys else None


def generate(spec: LedgerSpec) -> Iterator[TxContent]:
    """spec.transactions transactions in time order (see the module docstring)."""
    rng = random.Random(spec.seed)
    prices = {a: math.exp(rng.uniform(math.log(0.05), math.log(50_000.0))) for a in spec.assets}
    held = _Holdings()
    for i in range(spec.transactions):
        time_ms = spec.time_of(i)
        r = rng.random()
        kind = next(k for share, k in _MIX if r < share)
        source = held.pick(rng) if kind in (SELL, TRANSFER, SWAP) else None
        if source is not None and held.units[source] < 3:
            source = None
        if source is None:
            kind = BUY if kind != INCOME else INCOME
        asset = source[0] if source else rng.choice(spec.assets)
        wallet = source[1] if source else rng.choice(spec.wallets)
        prices[asset] *= math.exp(rng.gauss(0.0, 0.01))
        price = _price_text(prices[asset])
        if kind in (BUY, INCOME):
            usd = rng.uniform(1.0, 100.0) if kind == INCOME else 10 ** rng.uniform(1.0, 4.0)
            units = max(1, int(usd / float(price) * UNIT))
            held.add((asset, wallet), units)
            qty = _units(units)
            if kind == BUY:
                yield TxContent(BUY, time_ms, asset, qty, price=price, wallet=wallet)
            else:
                value = mul(qty, price).quantize(Decimal("0.01"))
                yield TxContent(
                    INCOME, time_ms, asset, qty, value=value, wallet=wallet, income_kind=STAKING
                )
            continue
        assert source is not None
        balance = held.units[source]
        share = 1.0 if rng.random() < 0.2 else rng.uniform(0.05, 1.0)
        if kind == SELL:
            units = max(1, int(balance * share))
            held.add(source, -units)
            yield TxContent(SELL, time_ms, asset, _units(units), price=price, wallet=wallet)
        elif kind == TRANSFER:
            fee = max(1, balance // 1000)
            units = max(1, int((balance - fee) * share))
            to_wallet = rng.choice([w for w in spec.wallets if w != wallet])
            held.add(source, -(units + fee))
            held.add((asset, to_wallet), units)
            fee_qty = _units(fee)
            yield TxContent(
                TRANSFER,
                time_ms,
                asset,
                _units(units),
                fee_asset=asset,
                fee_amount=fee_qty,
                fee_value=mul(fee_qty, price).quantize(Decimal("0.01")),
                wallet=wallet,
                to_wallet=to_wallet,
            )
        else:
            units = max(1, int(balance * share))
            to_asset = rng.choice([a for a in spec.assets if a != asset])
            prices[to_asset] *= math.exp(rng.gauss(0.0, 0.01))
            value = mul(_units(units), price).quantize(Decimal("0.01"))
            to_units = max(1, int(float(value) / prices[to_asset] * UNIT))
            held.add(source, -units)
            held.add((to_asset, wallet), to_units)
            yield TxContent(
                SWAP,
                time_ms,
                asset,
                _units(units),
                value=value,
                wallet=wallet,
                to_asset=to_asset,
                to_quantity=_units(to_units),
            )


def ledger_rows(
    portfolio_id: str, contents: Sequence[TxContent], first_seq: int, record_ms: int
) -> list[tuple[TransactionRow, list[LegRow]]]:
    """Rows and legs as LedgerWriter builds them (ids, hashes, bodies, valuations)."""
    out = []
    for offset, tx in enumerate(contents):
        legs, valuation = build_legs(tx, "USD")
        seq = first_seq + offset
        row = TransactionRow(
            portfolio_id=portfolio_id,
            seq=seq,
            id=new_tx_id(),
            client_transaction_id=f"gen-{seq}",
            content_hash=content_hash(tx),
            kind=tx.kind,
            time_ms=tx.time_ms,
            asset=tx.asset,
            wallet=tx.wallet,
            to_asset=tx.to_asset,
            to_wallet=tx.to_wallet,
            body=to_body(tx),
            valuation=valuation,
            record_ms=record_ms,
        )
        out.append((row, leg_rows(row, legs)))
    return out


async def write_ledger(
    url: str,
    spec: LedgerSpec,
    owner: str,
    *,
    method: int,
    changes: tuple[tuple[int, int], ...] = (),
    batch: int = 50_000,
) -> PortfolioRow:
    """A new portfolio of ``owner`` holding the whole generated ledger."""
    repo = await Repository.open(url)
    try:
        portfolio = portfolio_row(owner, "bench ledger", method, changes, 1, False)
        await repo.create_portfolio(portfolio)
        record_ms = spec.end_ms
        contents: list[TxContent] = []
        seq = 1
        for tx in generate(spec):
            contents.append(tx)
            if len(contents) == batch:
                rows = ledger_rows(portfolio.id, contents, seq, record_ms)
                seq += len(rows)
                await repo.write_batch(portfolio.id, seq, rows)
                contents = []
        if contents:
            rows = ledger_rows(portfolio.id, contents, seq, record_ms)
            seq += len(rows)
            await repo.write_batch(portfolio.id, seq, rows)
        return portfolio
    finally:
        await repo.close()


# ----- the reference ---------------------------------------------------------------------

RefLeg = tuple[int, int, str, Decimal, Decimal]  # time_ms, kind, asset, qty, amount


def read_legs(db_path: Path, portfolio_id: str) -> list[RefLeg]:
    """The portfolio's legs in replay order, parsed (outside any timing)."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT time_ms, legs FROM transactions WHERE portfolio_id = ? ORDER BY time_ms, seq",
            (portfolio_id,),
        ).fetchall()
    # Each row's legs: [leg, kind, asset, wallet, to_wallet, qty, amount, selections].
    return [
        (t, g[1], g[2], Decimal(g[5]), Decimal(g[6] or "0"))
        for t, legs in rows
        for g in json.loads(legs)
    ]


@dataclass(frozen=True)
class ReferenceTotals:
    disposals: int
    proceeds: Decimal
    cost_basis: Decimal
    gain: Decimal


def fifo_reference(legs: Sequence[RefLeg], start_ms: int, end_ms: int) -> ReferenceTotals:
    """FIFO over one pool per asset (the universal pool: transfers move nothing),
    a deque of [quantity, cost] lots per asset; the gains of the disposals
    inside [start_ms, end_ms). Cost shares are rounded to 18 places as the
    ledger does."""
    quantum = Decimal(1).scaleb(-18)
    lots: dict[str, deque[list[Decimal]]] = {}
    count, proceeds, cost_total = 0, Decimal(0), Decimal(0)
    for time_ms, kind, asset, qty, amount in legs:
        if kind == ACQUIRE:
            lots.setdefault(asset, deque()).append([qty, amount])
            continue
        if kind != DISPOSE:
            continue  # MOVE between wallets of one pool
        pool = lots[asset]
        left, cost = qty, Decimal(0)
        while left > 0:
            lot = pool[0]
            if lot[0] <= left:
                left -= lot[0]
                cost += lot[1]
                pool.popleft()
            else:
                share = (lot[1] * left / lot[0]).quantize(quantum)
                lot[0] -= left
                lot[1] -= share
                cost += share
                left = Decimal(0)
        if start_ms <= time_ms < end_ms:
            count += 1
            proceeds += amount
            cost_total += cost
    return ReferenceTotals(count, proceeds, cost_total, proceeds - cost_total)


def transaction_messages(contents: Sequence[TxContent], prefix: str) -> list[object]:
    """The contents as Transaction messages a client would send (own client ids)."""
    from marketmesh.v1 import portfolio_pb2  # noqa: PLC0415
    from services.common.validation import ms_to_timestamp  # noqa: PLC0415

    out = []
    for i, tx in enumerate(contents):
        msg = portfolio_pb2.Transaction(
            kind=tx.kind,  # type: ignore[arg-type]
            time=ms_to_timestamp(tx.time_ms),
            asset=tx.asset,
            quantity=fmt(tx.quantity),
            price=fmt(tx.price),
            value=fmt(tx.value),
            wallet=tx.wallet,
            to_wallet=tx.to_wallet,
            to_asset=tx.to_asset,
            to_quantity=fmt(tx.to_quantity),
            income_kind=tx.income_kind,  # type: ignore[arg-type]
            client_transaction_id=f"{prefix}-{i}",
        )
        if tx.fee_asset:
            msg.fee.asset = tx.fee_asset
            msg.fee.amount = fmt(tx.fee_amount)
            msg.fee.value = fmt(tx.fee_value)
        out.append(msg)
    return out
