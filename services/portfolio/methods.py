"""Cost-basis methods and pools: the portfolio's schedule as core_rs reads it.

The CostBasisMethod numbers of the contract are the codes core_rs uses
(1 FIFO, 2 LIFO, 3 HIFO, 4 AVERAGE_COST, 5 SPECIFIC_LOT), so nothing is
translated twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketmesh.v1 import portfolio_pb2
from services.common.errors import InvalidArgument
from services.portfolio.db.repository import PortfolioRow

METHODS = frozenset(portfolio_pb2.CostBasisMethod.values()) - {0}
FIFO = portfolio_pb2.COST_BASIS_METHOD_FIFO
UNIVERSAL = portfolio_pb2.LOT_POOL_UNIVERSAL
PER_WALLET = portfolio_pb2.LOT_POOL_PER_WALLET
FIRST_YEAR = -(2**31)
MIN_YEAR, MAX_YEAR = 1970, 9999


def method_name(code: int) -> str:
    return portfolio_pb2.CostBasisMethod.Name(code).removeprefix("COST_BASIS_METHOD_")


def parse_method(value: int, field: str, *, default: int = FIFO) -> int:
    if value == 0:
        return default
    if value not in METHODS:
        raise InvalidArgument(field, f"unknown cost-basis method {value}")
    return value


def parse_pool(value: int, field: str = "pool") -> int:
    if value == 0:
        return UNIVERSAL
    if value not in (UNIVERSAL, PER_WALLET):
        raise InvalidArgument(field, f"unknown lot pool {value}")
    return value


def parse_changes(
    changes: Sequence[portfolio_pb2.MethodChange], field: str = "method_changes"
) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    seen: set[int] = set()
    for i, change in enumerate(changes):
        if not MIN_YEAR <= change.from_year <= MAX_YEAR:
            raise InvalidArgument(
                f"{field}[{i}].from_year", f"must be a year from {MIN_YEAR} to {MAX_YEAR}"
            )
        if change.from_year in seen:
            raise InvalidArgument(f"{field}[{i}].from_year", f"{change.from_year} is listed twice")
        seen.add(change.from_year)
        if change.method not in METHODS:
            raise InvalidArgument(
                f"{field}[{i}].method",
                "is required (FIFO, LIFO, HIFO, AVERAGE_COST or SPECIFIC_LOT)",
            )
        out.append((change.from_year, change.method))
    return tuple(sorted(out))


def replay_methods(portfolio: PortfolioRow, override: int = 0) -> list[tuple[int, int]]:
    """[(from_year, method)] from the beginning of time, as core_rs's replay takes it."""
    if override:
        return [(FIRST_YEAR, override)]
    return [(FIRST_YEAR, portfolio.cost_basis_method), *portfolio.method_changes]


def method_for_year(portfolio: PortfolioRow, year: int, override: int = 0) -> int:
    method = portfolio.cost_basis_method
    for from_year, change in replay_methods(portfolio, override):
        if from_year <= year:
            method = change
    return method
