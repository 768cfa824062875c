"""core_rs.Ledger / core_rs.Replay: the Python API of the lot-matching engine.

The property tests replay small random ledgers with core_rs and with an
independent pure-Python reference (``RefBook`` below, written from the rules
in the brief with ``decimal.Decimal`` and ``fractions.Fraction``), and check
the accounting invariants every replay must keep.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import core_rs

ACQUIRE, DISPOSE, REMOVE, MOVE = 1, 2, 3, 4
FIFO, LIFO, HIFO, AVERAGE_COST, SPECIFIC_LOT = 1, 2, 3, 4, 5
DAY = 86_400_000
ALWAYS = -(2**31)

QUANTUM = Decimal(1).scaleb(-18)
CTX = Context(prec=100, rounding=ROUND_HALF_EVEN)


@dataclass
class L:
    """One leg as a test writes it."""

    tx: int
    kind: int
    day: float
    qty: str
    amount: str = ""
    asset: int = 1
    wallet: int = 1
    to_wallet: int = 0
    leg: int = 0
    picks: list[tuple[int, int, str]] | None = None

    @property
    def time_ms(self) -> int:
        return int(self.day * DAY)


def append(ledger: core_rs.Ledger, legs: list[L]) -> None:
    sel = {i: leg.picks for i, leg in enumerate(legs) if leg.picks is not None}
    ledger.append(
        np.array([g.tx for g in legs], dtype=np.int64),
        np.array([g.leg for g in legs], dtype=np.uint8),
        np.array([g.kind for g in legs], dtype=np.uint8),
        np.array([g.time_ms for g in legs], dtype=np.int64),
        np.array([g.asset for g in legs], dtype=np.uint32),
        np.array([g.wallet for g in legs], dtype=np.uint32),
        np.array([g.to_wallet for g in legs], dtype=np.uint32),
        [g.qty for g in legs],
        [g.amount for g in legs],
        sel or None,
    )


def ledger_of(legs: list[L]) -> core_rs.Ledger:
    ledger = core_rs.Ledger()
    append(ledger, legs)
    return ledger


def all_rows(r: core_rs.Replay) -> list[tuple]:
    """(tx, lot_tx, qty, basis, proceeds, gain, long_term) per match row."""
    m = r.match_arrays()
    idx = np.arange(len(m["tx"]), dtype=np.int64)
    q, b, p, g = r.match_amounts(idx)
    return [
        (int(m["tx"][i]), int(m["lot_tx"][i]), q[i], b[i], p[i], g[i], bool(m["long_term"][i]))
        for i in range(len(idx))
    ]


def open_lots(r: core_rs.Replay) -> list[tuple]:
    """(lot_tx, wallet, qty, cost, original_qty) per open lot."""
    a = r.lot_arrays()
    q, c, o = r.lot_amounts(np.arange(len(a["lot_tx"]), dtype=np.int64))
    return [(int(a["lot_tx"][i]), int(a["wallet"][i]), q[i], c[i], o[i]) for i in range(len(q))]


# ---- the API on hand-worked ledgers ----


def test_fifo_rows_dtypes_and_amounts() -> None:
    # Buy 1 for 100 (day 0) and 2 for 300 (day 10); sell 1.5 for 300 (day
    # 20): lot 1 (basis 100, proceeds 300 x 1/1.5 = 200) and 0.5 of lot 2
    # (basis 75, proceeds the rest 100). Sell 1.5 for 120 on day 400: lot
    # 2's last 1.5 (basis 225), held 390 days: long.
    r = ledger_of(
        [
            L(1, ACQUIRE, 0, "1", "100"),
            L(2, ACQUIRE, 10, "2", "300"),
            L(3, DISPOSE, 20, "1.5", "300"),
            L(4, DISPOSE, 400, "1.5", "120"),
        ]
    ).replay([(ALWAYS, FIFO)], False, False)
    assert all_rows(r) == [
        (3, 1, "1", "100", "200", "100", False),
        (3, 2, "0.5", "75", "100", "25", False),
        (4, 2, "1.5", "225", "120", "-105", True),
    ]
    m = r.match_arrays()
    dtypes = {k: v.dtype for k, v in m.items()}
    assert dtypes == {
        "tx": np.int64,
        "leg": np.uint8,
        "kind": np.uint8,
        "lot_tx": np.int64,
        "lot_leg": np.uint8,
        "disposed_ms": np.int64,
        "acquired_ms": np.int64,
        "asset": np.uint32,
        "wallet": np.uint32,
        "long_term": np.bool_,
        "unknown": np.bool_,
        "method": np.uint8,
    }
    assert m["acquired_ms"].tolist() == [0, 10 * DAY, 10 * DAY]
    assert m["method"].tolist() == [FIFO] * 3
    assert r.n_matches == 3 and r.n_lots == 0
    totals = r.sum_matches(np.arange(3, dtype=np.int64))
    assert totals == {"short": ("300", "175", "125", 2), "long": ("120", "225", "-105", 1)}
    a = r.lot_arrays()
    assert {k: v.dtype for k, v in a.items()} == {
        "lot_tx": np.int64,
        "lot_leg": np.uint8,
        "asset": np.uint32,
        "wallet": np.uint32,
        "acquired_ms": np.int64,
        "unknown": np.bool_,
    }


def test_average_cost_open_lots_and_preview() -> None:
    # Pool 3 for 400; sell 1.5: basis 200 (pieces: lot 1 133.33..33, lot 2
    # the rest 66.66..67). Pool 1.5 for 200, buy 0.5 for 200: 2 for 400.
    r = ledger_of(
        [
            L(1, ACQUIRE, 0, "1", "100"),
            L(2, ACQUIRE, 10, "2", "300"),
            L(3, DISPOSE, 20, "1.5", "300"),
            L(4, ACQUIRE, 30, "0.5", "200"),
        ]
    ).replay([(ALWAYS, AVERAGE_COST)], False, False)
    assert [row[3] for row in all_rows(r)] == ["133.333333333333333333", "66.666666666666666667"]
    # Open: lot 2 (1.5 of it) and lot 4 (0.5) share 400 by qty: 300 and 100.
    assert open_lots(r) == [(2, 0, "1.5", "300", "2"), (4, 0, "0.5", "100", "0.5")]
    # Selling 1 at day 390 for 500, FIFO: 1 of lot 2 (basis 200, proceeds
    # 500, held 380 days: long).
    p = r.preview_disposal(1, 0, "1", "500", 390 * DAY, FIFO)
    assert p == {
        "cost_basis": "200",
        "proceeds": "500",
        "short_gain": "0",
        "long_gain": "300",
        "gain": "300",
    }
    # AVERAGE over all 2 units: basis 400, shared 300 (lot 2) and 100 (lot
    # 4); proceeds 375 and 125. Lot 2 long (375 - 300 = 75), lot 4 (day 30,
    # 360 days) short (125 - 100 = 25).
    p = r.preview_disposal(1, 0, "2", "500", 390 * DAY, AVERAGE_COST)
    assert (p["cost_basis"], p["long_gain"], p["short_gain"], p["gain"]) == (
        "400",
        "75",
        "25",
        "100",
    )
    with pytest.raises(ValueError, match="asset 1 wallet 0 short by 1"):
        r.preview_disposal(1, 0, "3", "1", 0, FIFO)
    with pytest.raises(ValueError, match="qty '1e3'"):
        r.preview_disposal(1, 0, "1e3", "1", 0, FIFO)
    # Nothing changed.
    assert open_lots(r)[0][2] == "1.5"


def test_per_wallet_moves_and_selections() -> None:
    legs = [
        L(1, ACQUIRE, 0, "2", "100"),
        L(2, ACQUIRE, 1, "1", "80"),
        # Lot 1 0.5 (basis 25), then lot 2 1 (80) go to wallet 2.
        L(3, MOVE, 5, "1.5", wallet=1, to_wallet=2, picks=[(1, 0, "0.5"), (2, 0, "1")]),
        # Wallet 2 names lot 2: basis 80 x 0.5 / 1 = 40, proceeds 100.
        L(4, DISPOSE, 6, "0.5", "100", wallet=2, picks=[(2, 0, "0.5")]),
    ]
    r = ledger_of(legs).replay([(ALWAYS, LIFO)], True, False)
    assert all_rows(r) == [(4, 2, "0.5", "40", "100", "60", False)]
    assert r.match_arrays()["method"].tolist() == [SPECIFIC_LOT]
    assert open_lots(r) == [
        (1, 1, "1.5", "75", "2"),
        (1, 2, "0.5", "25", "2"),
        (2, 2, "0.5", "40", "1"),
    ]
    # Universal: the move changes nothing; the sale still takes lot 2.
    r = ledger_of(legs).replay([(ALWAYS, LIFO)], False, False)
    assert open_lots(r) == [(1, 0, "2", "100", "2"), (2, 0, "0.5", "40", "1")]
    # Per wallet, wallet 1 no longer holds lot 2.
    bad = [*legs, L(5, DISPOSE, 7, "0.1", "1", wallet=1, picks=[(2, 0, "0.1")])]
    with pytest.raises(
        ValueError, match=r"^tx 5: lot 2\.0 is not open in the pool of asset 1 wallet 1"
    ):
        ledger_of(bad).replay([(ALWAYS, FIFO)], True, False)
    bad = [*legs, L(5, DISPOSE, 7, "1", "1", wallet=2, picks=[(1, 0, "1")])]
    with pytest.raises(ValueError, match=r"^tx 5: lot 1\.0 has only '0\.5' left, '1' selected"):
        ledger_of(bad).replay([(ALWAYS, FIFO)], True, False)


def test_unknown_amounts_and_sum_errors() -> None:
    r = ledger_of(
        [
            L(1, ACQUIRE, 0, "1", ""),
            L(2, ACQUIRE, 1, "1", "50"),
            L(3, DISPOSE, 2, "1.5", "90"),
            L(4, DISPOSE, 3, "0.5", ""),
            L(5, REMOVE, 4, "0.0001", "123"),
        ]
    ).replay([(ALWAYS, FIFO)], False, True)
    # tx5 is short (nothing left): the phantom lot, zero basis.
    assert all_rows(r) == [
        (3, 1, "1", "", "60", "", False),
        (3, 2, "0.5", "25", "30", "5", False),
        (4, 2, "0.5", "25", "", "", False),
        (5, -1, "0.0001", "0", "", "", False),
    ]
    assert r.match_arrays()["unknown"].tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match=r"^tx 3: the cost basis of lot 1\.0 is unknown"):
        r.sum_matches(np.array([1, 0], dtype=np.int64))
    with pytest.raises(ValueError, match=r"^tx 4: the proceeds is unknown"):
        r.sum_matches(np.array([2], dtype=np.int64))
    assert r.sum_matches(np.array([1, 3], dtype=np.int64)) == {
        "short": ("30", "25", "5", 1),
        "long": ("0", "0", "0", 0),
    }
    with pytest.raises(ValueError, match=r"row 9 is not in 0\.\.4"):
        r.match_amounts(np.array([9], dtype=np.int64))


def test_pieces_round_half_even_and_sum_exactly() -> None:
    # Lot 1: 2 units for 3e-18. Half of it is 1.5e-18, a tie, rounded to the
    # even 2e-18; the last unit keeps the remaining 1e-18.
    tiny = "0.00000000000000000"
    r = ledger_of(
        [
            L(1, ACQUIRE, 0, "2", tiny + "3"),
            L(2, DISPOSE, 1, "1", "1"),
            L(3, DISPOSE, 2, "1", "1"),
            L(5, ACQUIRE, 3, "1", tiny + "1"),
            L(6, ACQUIRE, 3, "1", "7"),
            L(4, DISPOSE, 4, "0.5", tiny + "5"),
            L(7, DISPOSE, 5, "1", tiny + "5"),
        ]
    ).replay([(ALWAYS, FIFO)], False, False)
    rows = all_rows(r)
    assert [row[3] for row in rows[:2]] == [tiny + "2", tiny + "1"]
    # tx 4: half of lot 5 (1e-18 x 0.5 = 0.5e-18 -> 0), all 5e-18 proceeds.
    assert rows[2][1:5] == (5, "0.5", "0", tiny + "5")
    # tx 7: the other half of lot 5 (the rest, 1e-18) and 0.5 of lot 6 (3.5);
    # proceeds 5e-18 x 0.5/1 = 2.5e-18 -> 2e-18, the rest 3e-18.
    assert [row[1:5] for row in rows[3:]] == [
        (5, "0.5", tiny + "1", tiny + "2"),
        (6, "0.5", "3.5", tiny + "3"),
    ]


def test_shortfall_without_negative_balances() -> None:
    ledger = ledger_of([L(1, ACQUIRE, 0, "1", "100"), L(2, DISPOSE, 1, "1.25", "300", wallet=3)])
    with pytest.raises(ValueError, match=r"^tx 2: asset 1 wallet 3 short by 0\.25$"):
        ledger.replay([(ALWAYS, FIFO)], False, False)


def test_method_schedule_by_utc_year() -> None:
    jan_2025 = 20_089  # 2025-01-01, days since the epoch
    ledger = ledger_of(
        [
            L(1, ACQUIRE, 19_732, "1", "100"),
            L(2, ACQUIRE, 19_754, "1", "200"),
            L(3, DISPOSE, jan_2025 - 1 / DAY, "0.5", "100"),  # 2024-12-31 23:59:59.999
            L(4, DISPOSE, jan_2025, "0.5", "100"),
        ]
    )
    r = ledger.replay([(2000, FIFO), (2025, LIFO)], False, False)
    assert r.match_arrays()["lot_tx"].tolist() == [1, 2]
    assert r.match_arrays()["method"].tolist() == [FIFO, LIFO]
    for bad, msg in [
        ([], "at least one"),
        ([(2025, 1), (2024, 2)], "strictly increasing"),
        ([(2025, 7)], "method 7 is not"),
    ]:
        with pytest.raises(ValueError, match=msg):
            ledger.replay(bad, False, False)


def test_append_validates_everything_first() -> None:
    ledger = ledger_of([L(1, ACQUIRE, 0, "1", "100")])
    cases = [
        (
            [L(2, ACQUIRE, 0, "1", "1"), L(3, ACQUIRE, 0, "1e5", "1")],
            r"^leg 1: qty '1e5' is not a decimal",
        ),
        ([L(2, ACQUIRE, 0, "1", " 1")], r"^leg 0: amount ' 1' is not a decimal"),
        ([L(2, ACQUIRE, 0, "1.0000000000000000001", "1")], "more than 18 digits after the point"),
        ([L(2, ACQUIRE, 0, "123456789012345678901", "1")], "more than 20 digits before the point"),
        ([L(2, ACQUIRE, 0, "0", "1")], "^leg 0: qty must be greater than zero"),
        ([L(2, 9, 0, "1", "1")], "^leg 0: kind 9 is not"),
        (
            [L(2, ACQUIRE, 0, "1", "1"), L(1, ACQUIRE, 0, "1", "1")],
            "^leg 1: tx 1 leg 0 is already in the ledger",
        ),
        (
            [L(2, ACQUIRE, 0, "1", "1"), L(2, ACQUIRE, 0, "1", "1")],
            "^leg 1: tx 2 leg 0 is twice in this batch",
        ),
        (
            [L(2, DISPOSE, 0, "1", "1", picks=[(1, 0, "0.5")])],
            "selected lots total '0.5' but qty is '1'",
        ),
        ([L(2, ACQUIRE, 0, "1", "1", picks=[(1, 0, "1")])], "only for disposals"),
        ([L(-2, ACQUIRE, 0, "1", "1")], "tx -2 must be in 0..=2"),
    ]
    for legs, msg in cases:
        with pytest.raises(ValueError, match=msg):
            append(ledger, legs)
        assert len(ledger) == 1, msg
    n = np.zeros(1, dtype=np.int64)
    u8 = np.zeros(1, dtype=np.uint8)
    u32 = np.zeros(1, dtype=np.uint32)
    with pytest.raises(ValueError, match="tx must be a 1-D numpy array of int64"):
        ledger.append(np.zeros(1, dtype=np.int32), u8, u8 + 1, n, u32, u32, u32, ["1"], ["1"])
    with pytest.raises(ValueError, match="asset must be a 1-D numpy array of uint32"):
        ledger.append(n + 5, u8, u8 + 1, n, n, u32, u32, ["1"], ["1"])
    with pytest.raises(ValueError, match="leg 0: qty must be a str, got int"):
        ledger.append(n + 5, u8, u8 + 1, n, u32, u32, u32, [1], ["1"])
    with pytest.raises(ValueError, match="amount has 2 values but tx has 1"):
        ledger.append(n + 5, u8, u8 + 1, n, u32, u32, u32, ["1"], ["1", "2"])
    with pytest.raises(ValueError, match="position 4 is not in this batch"):
        ledger.append(n + 5, u8, u8 + 2, n, u32, u32, u32, ["1"], ["1"], {4: [(1, 0, "1")]})
    assert len(ledger) == 1
    # Strided (non-contiguous) columns are fine.
    wide = np.array([5, 0, 6, 0], dtype=np.int64)[::2]
    ledger.append(wide, np.zeros(2, np.uint8), np.ones(2, np.uint8), wide, np.ones(2, np.uint32),
                  np.ones(2, np.uint32), np.zeros(2, np.uint32), ["1", "2"], ["3", ""])  # fmt: skip
    assert len(ledger) == 3


def test_remove_tx_and_backdated_first_negative() -> None:
    ledger = ledger_of(
        [
            L(1, ACQUIRE, 1, "2", "10"),
            L(2, DISPOSE, 3, "1.5", "9"),
            L(3, ACQUIRE, 2, "1", "1", leg=1),
        ]
    )
    assert ledger.first_negative() is None
    # A backdated sale before any buy.
    append(ledger, [L(4, DISPOSE, 0.5, "0.25", "1", wallet=1)])
    assert ledger.first_negative() == (4, 1, 1, DAY // 2, "0.25")
    assert ledger.remove_tx(4) == 1
    assert ledger.remove_tx(4) == 0
    # A move of 2.5 out of wallet 1 on day 2.5 (2 + 1 there): short by 0, and
    # wallet 1 then holds 0.5 at the sale of 1.5 on day 3: short by 1.
    append(ledger, [L(5, MOVE, 2.5, "2.5", wallet=1, to_wallet=2)])
    assert ledger.first_negative() == (2, 1, 1, 3 * DAY, "1")
    assert ledger.remove_tx(3) == 1
    assert ledger.first_negative() == (5, 1, 1, int(2.5 * DAY), "0.5")
    assert len(ledger) == 3


def test_replay_runs_beside_other_threads() -> None:
    legs = [L(i, ACQUIRE if i % 2 == 0 else DISPOSE, i, "1", "10") for i in range(2000)]
    ledger = ledger_of(legs)
    results: list[int] = []

    def work() -> None:
        results.append(ledger.replay([(ALWAYS, HIFO)], False, False).n_matches)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1000] * 4


# ---- the independent reference ----


def q18(x: Decimal) -> Decimal:
    return x.quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=CTX)


def share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """total x part / whole, rounded half-even to 18 places; the whole when
    part == whole."""
    if part == whole:
        return total
    return q18(CTX.divide(CTX.multiply(total, part), whole))


@dataclass
class RefLot:
    tx: int
    leg: int
    acquired: int
    qty: Decimal
    cost: Decimal
    original: Decimal
    unknown: bool


@dataclass
class RefBook:
    """FIFO/LIFO/HIFO replay over plain lists, straight from the rules."""

    method: int
    per_wallet: bool
    allow_negative: bool
    pools: dict[tuple[int, int], list[RefLot]] = field(default_factory=dict)
    rows: list[tuple] = field(default_factory=list)

    def pool(self, asset: int, wallet: int) -> list[RefLot]:
        return self.pools.setdefault((asset, wallet if self.per_wallet else 0), [])

    def order(self, lots: list[RefLot]) -> list[RefLot]:
        fifo = sorted(lots, key=lambda x: (x.acquired, x.tx, x.leg))
        if self.method == LIFO:
            return fifo[::-1]
        if self.method == HIFO:
            unit = lambda x: Fraction(x.cost) / Fraction(x.qty)  # noqa: E731
            return sorted(fifo, key=lambda x: -unit(x))  # stable: ties stay FIFO
        return fifo

    def take(self, lots: list[RefLot], qty: Decimal, picks: list | None) -> tuple[list, Decimal]:
        pieces: list[tuple[RefLot, Decimal, Decimal]] = []

        def consume(lot: RefLot, part: Decimal) -> None:
            basis = share(lot.cost, part, lot.qty)
            lot.cost -= basis
            lot.qty -= part
            pieces.append((lot, part, basis))
            if lot.qty == 0:
                lots.remove(lot)

        if picks is not None:
            # One after the other: a lot named twice has less left the second
            # time.
            for lot_tx, lot_leg, q in picks:
                match = [x for x in lots if (x.tx, x.leg) == (lot_tx, lot_leg)]
                if not match or match[0].qty < Decimal(q):
                    raise ValueError(f"lot {lot_tx}.{lot_leg}")
                consume(match[0], Decimal(q))
        else:
            rest = qty
            for lot in self.order(lots):
                if rest == 0:
                    break
                part = min(rest, lot.qty)
                consume(lot, part)
                rest -= part
        short = qty - sum((p[1] for p in pieces), Decimal(0))
        return pieces, short

    def apply(self, g: L) -> None:
        time = g.time_ms
        if g.kind == ACQUIRE:
            amount = Decimal(g.amount) if g.amount else Decimal(0)
            self.pool(g.asset, g.wallet).append(
                RefLot(g.tx, g.leg, time, Decimal(g.qty), amount, Decimal(g.qty), g.amount == "")
            )
            return
        if g.kind == MOVE and (not self.per_wallet or g.wallet == g.to_wallet):
            return
        try:
            pieces, short = self.take(self.pool(g.asset, g.wallet), Decimal(g.qty), g.picks)
        except ValueError as e:
            raise ValueError(f"tx {g.tx}: {e}") from None
        if short and not self.allow_negative:
            raise ValueError(f"tx {g.tx}: short")
        if g.kind == MOVE:
            dest = self.pool(g.asset, g.to_wallet)
            for lot, part, basis in pieces:
                same = [x for x in dest if (x.tx, x.leg) == (lot.tx, lot.leg)]
                if same:
                    same[0].qty += part
                    same[0].cost += basis
                    same[0].unknown |= lot.unknown
                else:
                    piece = RefLot(lot.tx, lot.leg, lot.acquired, part, basis, lot.original, False)
                    piece.unknown = lot.unknown
                    dest.append(piece)
            return
        out = [((x.tx, x.leg, x.acquired, x.unknown), part, basis) for x, part, basis in pieces]
        if short:
            out.append(((-1, 0, time, False), short, Decimal(0)))
        known = g.kind == DISPOSE and g.amount != ""
        rest, rest_qty = (Decimal(g.amount) if known else Decimal(0)), Decimal(g.qty)
        for (lot_tx, _leg, acquired, unknown), part, basis in out:
            proceeds = share(rest, part, rest_qty)
            rest -= proceeds
            rest_qty -= part
            long_term = (time // DAY) - (acquired // DAY) > 365
            b = "" if unknown else fmt(basis)
            p = fmt(proceeds) if known else ""
            gain = fmt(proceeds - basis) if known and not unknown else ""
            self.rows.append((g.tx, lot_tx, fmt(part), b, p, gain, long_term))

    def open_lots(self) -> list[tuple]:
        out = []
        for (_asset, wallet), lots in sorted(self.pools.items()):
            for x in sorted(lots, key=lambda x: (x.acquired, x.tx, x.leg)):
                cost = "" if x.unknown else fmt(x.cost)
                out.append((x.tx, wallet, fmt(x.qty), cost, fmt(x.original)))
        return out


def fmt(x: Decimal) -> str:
    if x == 0:
        return "0"
    s = format(x, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


# ---- random ledgers ----

amounts = st.one_of(
    st.integers(1, 10**6).map(lambda n: fmt(Decimal(n).scaleb(-3))),
    st.integers(1, 10**12).map(lambda n: fmt(Decimal(n).scaleb(-18))),
    st.integers(1, 10**9).map(str),
)


@st.composite
def ledgers(
    draw: st.DrawFn, unknowns: bool = True, moves: bool = True, picks: bool = False
) -> list[L]:
    n = draw(st.integers(1, 24))
    legs: list[L] = []
    for tx in range(n):
        kinds = [ACQUIRE, ACQUIRE, DISPOSE, REMOVE] + ([MOVE] if moves else [])
        kind = draw(st.sampled_from(kinds))
        day = draw(st.integers(0, 800)) + draw(st.sampled_from([0, 0.5]))
        qty = draw(st.one_of(amounts, st.sampled_from(["1", "0.5", "3"])))
        amount = draw(amounts)
        if unknowns and draw(st.integers(0, 9)) == 0:
            amount = ""
        legs.append(
            L(
                tx=draw(st.integers(0, 3)) * 100 + tx,  # tx order differs from time order
                kind=kind,
                day=day,
                qty=qty,
                amount=amount,
                asset=draw(st.integers(0, 1)),
                wallet=draw(st.integers(0, 2)),
                to_wallet=draw(st.integers(0, 2)),
            )
        )
    if picks:
        # Some disposals, removals and moves name one or two lots: mostly
        # earlier lots of the same asset and wallet, sometimes any lot (later,
        # elsewhere, or with too little left); their qty is what they name.
        bought = [g for g in legs if g.kind == ACQUIRE]
        for g in legs:
            if g.kind == ACQUIRE or not bought or draw(st.integers(0, 2)):
                continue
            near = [
                a
                for a in bought
                if (a.asset, a.wallet) == (g.asset, g.wallet) and a.time_ms < g.time_ms
            ]
            pool = near if near and draw(st.integers(0, 3)) else bought
            g.picks = []
            for _ in range(draw(st.integers(1, 2))):
                lot = draw(st.sampled_from(pool))
                part = q18(Decimal(lot.qty) * Decimal(draw(st.sampled_from(["0.25", "0.5", "1"]))))
                if part > 0:
                    g.picks.append((lot.tx, 0, fmt(part)))
            if not g.picks:
                g.picks = None
                continue
            g.qty = fmt(sum((Decimal(q) for _, _, q in g.picks), Decimal(0)))
    return legs


def replay_order(legs: list[L]) -> list[L]:
    return sorted(legs, key=lambda g: (g.time_ms, g.tx, g.leg))


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(legs=ledgers(), method=st.sampled_from([FIFO, LIFO, HIFO]), per_wallet=st.booleans())
def test_matches_the_decimal_reference(legs: list[L], method: int, per_wallet: bool) -> None:
    ledger = core_rs.Ledger()
    # Appended in two batches, the second partly backdated.
    half = len(legs) // 2
    append(ledger, legs[half:])
    append(ledger, legs[:half])
    ref = RefBook(method, per_wallet, allow_negative=True)
    for g in replay_order(legs):
        ref.apply(g)
    r = ledger.replay([(ALWAYS, method)], per_wallet, True)
    assert all_rows(r) == ref.rows
    assert open_lots(r) == ref.open_lots()


@settings(PROPERTY, max_examples=400)
@given(
    legs=ledgers(picks=True),
    method=st.sampled_from([FIFO, HIFO, SPECIFIC_LOT]),
    per_wallet=st.booleans(),
)
def test_named_lots_match_the_reference(legs: list[L], method: int, per_wallet: bool) -> None:
    ref = RefBook(FIFO if method == SPECIFIC_LOT else method, per_wallet, allow_negative=True)
    try:
        for g in replay_order(legs):
            ref.apply(g)
    except ValueError as e:
        event("a named lot is not there")
        # The same transaction and lot: "tx 7: lot 3.0 ...".
        with pytest.raises(ValueError, match=f"^{e} "):
            ledger_of(legs).replay([(ALWAYS, method)], per_wallet, True)
        return
    event("replayed" + (" with named lots" if any(g.picks for g in legs) else ""))
    r = ledger_of(legs).replay([(ALWAYS, method)], per_wallet, True)
    assert all_rows(r) == ref.rows
    assert open_lots(r) == ref.open_lots()
    named = {g.tx for g in legs if g.picks is not None}
    m = r.match_arrays()
    expect = [
        SPECIFIC_LOT if t in named else (FIFO if method == SPECIFIC_LOT else method)
        for t in m["tx"]
    ]
    assert m["method"].tolist() == expect


@PROPERTY
@given(legs=ledgers(), per_wallet=st.booleans())
def test_shortfall_errors_agree_with_the_reference(legs: list[L], per_wallet: bool) -> None:
    ref = RefBook(FIFO, per_wallet, allow_negative=False)
    try:
        for g in replay_order(legs):
            ref.apply(g)
        short_tx = None
    except ValueError as e:
        short_tx = str(e).split(":")[0]
    if short_tx is None:
        ledger_of(legs).replay([(ALWAYS, FIFO)], per_wallet, False)
    else:
        with pytest.raises(ValueError, match=f"^{short_tx}: asset"):
            ledger_of(legs).replay([(ALWAYS, FIFO)], per_wallet, False)


@PROPERTY
@given(
    legs=ledgers(unknowns=False),
    schedule=st.lists(st.sampled_from([FIFO, LIFO, HIFO, AVERAGE_COST, SPECIFIC_LOT]), max_size=3),
    per_wallet=st.booleans(),
)
def test_invariants_for_every_method(legs: list[L], schedule: list[int], per_wallet: bool) -> None:
    # Methods change every year from 1970 (days 0..800 span 1970-1972).
    methods = [(1970 + i, m) for i, m in enumerate([*schedule, FIFO])]
    r = ledger_of(legs).replay(methods, per_wallet, True)
    m = r.match_arrays()
    idx = np.arange(len(m["tx"]), dtype=np.int64)
    qty, basis, proceeds, gain = r.match_amounts(idx)
    lots = r.lot_arrays()
    lot_qty, lot_cost, _ = r.lot_amounts(np.arange(len(lots["lot_tx"]), dtype=np.int64))
    for asset in (0, 1):
        # Quantity: acquired - what real lots gave to disposals and removals
        # (not the phantom lot) = what is open.
        acquired = dsum(g.qty for g in legs if g.asset == asset and g.kind == ACQUIRE)
        mine = (m["asset"] == asset) & (m["lot_tx"] >= 0)
        consumed = dsum(q for q, ok in zip(qty, mine, strict=True) if ok)
        left = dsum(q for q, a in zip(lot_qty, lots["asset"], strict=True) if a == asset)
        assert acquired - consumed == left
    # Cost: every acquisition's cost ends up in a match or an open lot.
    bought = dsum(g.amount for g in legs if g.kind == ACQUIRE)
    assert bought == dsum(basis) + dsum(lot_cost)
    # Proceeds: each disposal's pieces add up to it; removals have none.
    for g in legs:
        if g.kind == DISPOSE:
            assert dsum(p for p, t in zip(proceeds, m["tx"], strict=True) if t == g.tx) == Decimal(
                g.amount
            )
    assert all(p == "" for p, k in zip(proceeds, m["kind"], strict=True) if k == REMOVE)
    # The totals over every row are the sums of the disposal rows.
    t = r.sum_matches(idx)
    taxable = m["kind"] == DISPOSE
    assert Decimal(t["short"][2]) + Decimal(t["long"][2]) == dsum(
        g for g, ok in zip(gain, taxable, strict=True) if ok
    )
    assert t["short"][3] + t["long"][3] == int(taxable.sum())


def dsum(values: Iterable[str]) -> Decimal:
    return sum((Decimal(v) for v in values), Decimal(0))


@PROPERTY
@given(legs=ledgers(unknowns=False, moves=False))
def test_average_cost_is_the_pool_average(legs: list[L]) -> None:
    # Universal pools, no moves: before each disposal the pool's average is
    # (cost of what is left) / (qty left); the basis is that share of it.
    r = ledger_of(legs).replay([(ALWAYS, AVERAGE_COST)], False, True)
    m = r.match_arrays()
    idx = np.arange(len(m["tx"]), dtype=np.int64)
    _q, basis, _p, _g = r.match_amounts(idx)
    pool = {0: [Decimal(0), Decimal(0)], 1: [Decimal(0), Decimal(0)]}
    for g in replay_order(legs):
        qty_cost = pool[g.asset]
        if g.kind == ACQUIRE:
            qty_cost[0] += Decimal(g.qty)
            qty_cost[1] += Decimal(g.amount)
            continue
        if g.kind == MOVE:
            continue
        take = min(Decimal(g.qty), qty_cost[0])
        expect = share(qty_cost[1], take, qty_cost[0]) if take else Decimal(0)
        mine = (m["tx"] == g.tx) & (m["lot_tx"] >= 0)
        assert dsum(b for b, ok in zip(basis, mine, strict=True) if ok) == expect
        qty_cost[0] -= take
        qty_cost[1] -= expect
