"""Income (staking, mining, airdrops, interest) by month, kind and asset.

Income is counted at its market value on receipt: the cost basis of the lot
an INCOME transaction creates. An income whose value is still unknown makes
the report fail naming it, never count as zero.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from marketmesh.v1 import portfolio_pb2
from services.portfolio.book import Book
from services.portfolio.decimals import ZERO
from services.portfolio.transactions import INCOME


@dataclass(frozen=True)
class IncomeLine:
    month: str
    kind: int
    asset: str
    quantity: Decimal
    value: Decimal
    count: int


def income_kind_name(kind: int) -> str:
    return portfolio_pb2.IncomeKind.Name(kind).removeprefix("INCOME_KIND_")


def unknown_income(book: Book, start_ms: int | None, end_ms: int | None) -> list[int]:
    return sorted(
        seq
        for seq in book.unknown
        if book.txs[seq].kind == INCOME and _inside(book.txs[seq].time_ms, start_ms, end_ms)
    )


def _inside(t: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or t >= start_ms) and (end_ms is None or t < end_ms)


def income_lines(book: Book, start_ms: int | None, end_ms: int | None) -> list[IncomeLine]:
    """Callers check :func:`unknown_income` first."""
    sums: dict[tuple[str, int, str], list[Decimal | int]] = defaultdict(lambda: [ZERO, ZERO, 0])
    for entry in book.txs.values():
        if entry.kind != INCOME or not _inside(entry.time_ms, start_ms, end_ms):
            continue
        leg = entry.legs[0]
        assert leg.amount is not None, "unknown income must be refused before"
        month = dt.datetime.fromtimestamp(entry.time_ms / 1000, tz=dt.UTC).strftime("%Y-%m")
        acc = sums[(month, entry.income_kind, leg.asset)]
        acc[0] += leg.qty  # type: ignore[operator]
        acc[1] += leg.amount  # type: ignore[operator]
        acc[2] += 1  # type: ignore[operator]
    return [
        IncomeLine(month, kind, asset, acc[0], acc[1], acc[2])  # type: ignore[arg-type]
        for (month, kind, asset), acc in sorted(sums.items())
    ]


def totals_by_kind(lines: list[IncomeLine]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        out[income_kind_name(line.kind)] += line.value
    return dict(sorted(out.items()))
