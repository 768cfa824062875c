"""Realized gains: the replay's matched pieces as disposals, pages and totals.

core_rs returns one row per (disposal, consumed lot piece). A disposal is
reported per term: the pieces of one disposal held more than 365 days form
its long-term row, the others its short-term row, as Form 8949 wants one
term per line. Amounts stay in core_rs until a page is formatted; totals are
summed there exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

import core_rs
from marketmesh.v1 import portfolio_pb2
from services.common.validation import ms_to_timestamp
from services.portfolio.book import Book
from services.portfolio.decimals import ZERO, fmt
from services.portfolio.legs import DISPOSE

SHORT, LONG = portfolio_pb2.GAIN_TERM_SHORT, portfolio_pb2.GAIN_TERM_LONG
DAY_MS = 86_400_000


def year_range(year: int) -> tuple[int, int]:
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def day_text(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Window:
    start_ms: int | None = None
    end_ms: int | None = None
    asset_id: int | None = None


def taxable_rows(arrays: dict[str, np.ndarray], window: Window) -> np.ndarray:
    """Indexes of the taxable pieces disposed inside the window, in replay order."""
    mask = arrays["kind"] == DISPOSE
    if window.start_ms is not None:
        mask &= arrays["disposed_ms"] >= window.start_ms
    if window.end_ms is not None:
        mask &= arrays["disposed_ms"] < window.end_ms
    if window.asset_id is not None:
        mask &= arrays["asset"] == window.asset_id
    return np.flatnonzero(mask).astype(np.int64)


def unknown_seqs(arrays: dict[str, np.ndarray], idx: np.ndarray, book: Book) -> list[int]:
    """Transactions whose unknown value makes some of these rows unknown."""
    rows = idx[arrays["unknown"][idx]]
    if rows.size == 0:
        return []
    seqs = set(arrays["tx"][rows].tolist()) | set(arrays["lot_tx"][rows].tolist())
    found = sorted(s for s in seqs if s in book.unknown)
    if not found:
        # An averaged pool holding an unknown lot taints every piece of it.
        assets = {book.assets.name(a) for a in arrays["asset"][rows].tolist()}
        found = sorted(
            s for s in book.unknown if any(leg.asset in assets for leg in book.txs[s].legs)
        )
    return found


@dataclass(frozen=True)
class Groups:
    """Disposal rows (one per disposal leg and term), in replay order."""

    order: np.ndarray  # group numbers in report order
    of_row: np.ndarray  # group number of each selected row
    rows: np.ndarray  # the selected rows (indexes into the match arrays)

    def __len__(self) -> int:
        return int(self.order.size)

    def rows_of(self, groups: np.ndarray) -> np.ndarray:
        return self.rows[np.isin(self.of_row, groups)]


def group_disposals(arrays: dict[str, np.ndarray], idx: np.ndarray) -> Groups:
    if idx.size == 0:
        empty = np.empty(0, np.int64)
        return Groups(empty, empty, empty)
    key = (
        arrays["tx"][idx].astype(np.int64) * 512
        + arrays["leg"][idx].astype(np.int64) * 2
        + arrays["long_term"][idx].astype(np.int64)
    )
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    return Groups(order.astype(np.int64), inverse.astype(np.int64), idx)


def gain_totals(sums: tuple[str, str, str, int]) -> portfolio_pb2.GainTotals:
    proceeds, basis, gain, count = sums
    return portfolio_pb2.GainTotals(
        proceeds=proceeds or "0", cost_basis=basis or "0", gain=gain or "0", count=count
    )


def totals(
    replay: core_rs.Replay, idx: np.ndarray
) -> tuple[portfolio_pb2.GainTotals, portfolio_pb2.GainTotals, portfolio_pb2.GainTotals]:
    sums = replay.sum_matches(idx)
    short, long_ = sums["short"], sums["long"]
    total = (
        fmt(Decimal(short[0] or 0) + Decimal(long_[0] or 0)),
        fmt(Decimal(short[1] or 0) + Decimal(long_[1] or 0)),
        fmt(Decimal(short[2] or 0) + Decimal(long_[2] or 0)),
        short[3] + long_[3],
    )
    return gain_totals(short), gain_totals(long_), gain_totals(total)


@dataclass(frozen=True)
class DisposalRow:
    """One reported disposal (one term), amounts exact."""

    seq: int
    leg: int
    asset: str
    wallet: str
    quantity: Decimal
    acquired_ms: int
    various: bool
    disposed_ms: int
    proceeds: Decimal
    cost_basis: Decimal
    gain: Decimal
    term: int
    method: int
    pieces: tuple[
        tuple[int, int, Decimal, Decimal, bool], ...
    ]  # lot seq, acquired, qty, basis, long


def disposal_rows(
    replay: core_rs.Replay,
    arrays: dict[str, np.ndarray],
    groups: Groups,
    page_groups: np.ndarray,
    book: Book,
) -> list[DisposalRow]:
    """The disposals of ``page_groups`` (group numbers in report order)."""
    if page_groups.size == 0:
        return []
    rows = groups.rows_of(page_groups)
    qty, basis, proceeds, gain = replay.match_amounts(rows)
    of_row = groups.of_row[np.isin(groups.of_row, page_groups)]
    by_group: dict[int, list[int]] = {}
    for position, g in enumerate(of_row.tolist()):
        by_group.setdefault(g, []).append(position)
    out: list[DisposalRow] = []
    for g in page_groups.tolist():
        positions = by_group.get(g, [])
        if not positions:
            continue
        first = int(rows[positions[0]])
        pieces = []
        q_total = b_total = p_total = g_total = ZERO
        for pos in positions:
            r = int(rows[pos])
            q, b, pr, gn = (
                Decimal(qty[pos]),
                Decimal(basis[pos]),
                Decimal(proceeds[pos]),
                Decimal(gain[pos]),
            )
            q_total += q
            b_total += b
            p_total += pr
            g_total += gn
            pieces.append(
                (
                    int(arrays["lot_tx"][r]),
                    int(arrays["acquired_ms"][r]),
                    q,
                    b,
                    bool(arrays["long_term"][r]),
                )
            )
        acquired = [p[1] for p in pieces]
        out.append(
            DisposalRow(
                seq=int(arrays["tx"][first]),
                leg=int(arrays["leg"][first]),
                asset=book.assets.name(int(arrays["asset"][first])),
                wallet=book.wallets.name(int(arrays["wallet"][first])),
                quantity=q_total,
                acquired_ms=min(acquired),
                various=len({a // DAY_MS for a in acquired}) > 1,
                disposed_ms=int(arrays["disposed_ms"][first]),
                proceeds=p_total,
                cost_basis=b_total,
                gain=g_total,
                term=LONG if bool(arrays["long_term"][first]) else SHORT,
                method=int(arrays["method"][first]),
                pieces=tuple(pieces),
            )
        )
    return out


def lot_id(book: Book, seq: int) -> str:
    return "" if seq < 0 else book.tx_id(seq)


def disposal_message(row: DisposalRow, book: Book) -> portfolio_pb2.Disposal:
    entry = book.txs.get(row.seq)
    return portfolio_pb2.Disposal(
        transaction_id=book.tx_id(row.seq),
        kind=entry.kind if entry else 0,  # type: ignore[arg-type]
        asset=row.asset,
        wallet=row.wallet,
        quantity=fmt(row.quantity),
        acquired_time=ms_to_timestamp(row.acquired_ms),
        acquired_various=row.various,
        disposed_time=ms_to_timestamp(row.disposed_ms),
        proceeds=fmt(row.proceeds),
        cost_basis=fmt(row.cost_basis),
        gain=fmt(row.gain),
        term=row.term,  # type: ignore[arg-type]
        method=row.method,  # type: ignore[arg-type]
        lots=[
            portfolio_pb2.LotConsumed(
                lot_id=lot_id(book, seq),
                acquired_time=ms_to_timestamp(acquired),
                quantity=fmt(q),
                cost_basis=fmt(b),
                term=LONG if long_ else SHORT,  # type: ignore[arg-type]
            )
            for seq, acquired, q, b, long_ in row.pieces
        ],
    )


def form_8949_row(row: DisposalRow, book: Book) -> portfolio_pb2.TaxReportRow:
    what = f"{fmt(row.quantity)} {row.asset}"
    if row.leg > 0:  # a disposal after a transaction's first leg is its fee (legs.py)
        what += " (fee)"
    return portfolio_pb2.TaxReportRow(
        description=what,
        date_acquired="VARIOUS" if row.various else day_text(row.acquired_ms),
        date_sold=day_text(row.disposed_ms),
        proceeds=fmt(row.proceeds),
        cost_basis=fmt(row.cost_basis),
        gain=fmt(row.gain),
        term=row.term,  # type: ignore[arg-type]
        transaction_id=book.tx_id(row.seq),
    )


CSV_HEADER = "description,date_acquired,date_sold,proceeds,cost_basis,gain,term,transaction_id"


def csv_line(row: portfolio_pb2.TaxReportRow) -> str:
    term = "long" if row.term == LONG else "short"
    fields = (
        row.description,
        row.date_acquired,
        row.date_sold,
        row.proceeds,
        row.cost_basis,
        row.gain,
        term,
        row.transaction_id,
    )
    return ",".join(_csv_field(f) for f in fields)


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def page_slice(groups: Groups, offset: int, limit: int) -> np.ndarray:
    return groups.order[offset : offset + limit]


def rows_for_all(groups: Groups, chunk: int) -> Sequence[np.ndarray]:
    return [groups.order[i : i + chunk] for i in range(0, len(groups), chunk)]
