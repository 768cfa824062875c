"""One portfolio's ledger in memory: the legs in core_rs, and the indexes around them.

A :class:`Book` is built from the database the first time a portfolio is
used and then kept in step with every write, so a report replays the legs
(core_rs, GIL released) without reading a million rows again. The database
stays the source of truth: a book can always be dropped and rebuilt.

Balances per (asset, wallet) are kept here as Decimals so the common write,
a transaction later than everything before it in its wallet, is checked for
overselling in O(1); a backdated one asks core_rs for the first negative
running balance over the whole ledger instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

import core_rs
from services.portfolio.decimals import ZERO, fmt
from services.portfolio.legs import Leg, acquire_leg

UNIVERSAL_WALLET_ID = 0
# A replay of a million legs holds ~100 MB of matches: keep a few.
MAX_CACHED_REPLAYS = 3


@dataclass
class Overlay:
    """Balances of transactions accepted but not yet added to the book."""

    balances: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    last_ms: dict[tuple[str, str], int] = field(default_factory=dict)


class Interner:
    """Names <-> dense u32 ids (0 is reserved: the universal pool)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = [""]

    def id(self, name: str) -> int:
        found = self.ids.get(name)
        if found is None:
            found = len(self.names)
            self.ids[name] = found
            self.names.append(name)
        return found

    def name(self, ident: int) -> str:
        return self.names[ident]


@dataclass(frozen=True)
class TxIndex:
    """What a book remembers of each transaction besides its legs."""

    seq: int
    tx_id: str
    kind: int
    time_ms: int
    legs: tuple[Leg, ...]
    income_kind: int = 0


@dataclass
class Shortfall:
    seq: int
    asset: str
    wallet: str
    time_ms: int
    shortfall: Decimal


@dataclass
class Book:
    portfolio_id: str
    ledger: core_rs.Ledger = field(default_factory=core_rs.Ledger)
    assets: Interner = field(default_factory=Interner)
    wallets: Interner = field(default_factory=Interner)
    txs: dict[int, TxIndex] = field(default_factory=dict)
    seq_of: dict[str, int] = field(default_factory=dict)
    balances: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    last_ms: dict[tuple[str, str], int] = field(default_factory=dict)
    unknown: set[int] = field(default_factory=set)
    # Bumped on every change: replays are cached per version.
    version: int = 0
    leg_count: int = 0
    _replays: dict[tuple[object, ...], core_rs.Replay] = field(default_factory=dict)
    # GetHoldings' all-time realized gain and the replay it was taken from (the
    # same cached Replay object until the next change).
    realized_for: tuple[core_rs.Replay, Decimal] | None = None

    # -- changes -----------------------------------------------------------

    def fits_in_order(
        self, legs: Iterable[Leg], time_ms: int, overlay: Overlay | None = None
    ) -> Shortfall | bool | None:
        """O(1) check for a transaction dated after everything in its wallets.

        Returns a Shortfall when it would oversell, None when it fits, and
        False when it is backdated (the caller must use :meth:`first_negative`).
        ``overlay`` holds the balances of transactions checked but not added
        yet (a batch added in one go); a fitting transaction is entered in it.
        """
        overlay = overlay if overlay is not None else Overlay()
        pending: dict[tuple[str, str], Decimal] = {}
        for leg in legs:
            for key, delta in leg.deltas():
                last = overlay.last_ms.get(key)
                if last is None:
                    last = self.last_ms.get(key, -(2**62))
                if last > time_ms:
                    return False
                if key not in pending:
                    base = overlay.balances.get(key)
                    pending[key] = self.balances.get(key, ZERO) if base is None else base
                pending[key] += delta
                if pending[key] < 0:
                    return Shortfall(-1, key[0], key[1], time_ms, -pending[key])
        overlay.balances.update(pending)
        for key in pending:
            overlay.last_ms[key] = time_ms
        return None

    def add(self, entries: Sequence[tuple[TxIndex, str]]) -> None:
        """Append transactions (index, valuation) to the ledger and the indexes."""
        if not entries:
            return
        # Register ids first: a sale may name a lot bought earlier in the same batch.
        fresh = [e.seq for e, _ in entries if e.seq not in self.txs]
        for entry, _ in entries:
            self.txs[entry.seq] = entry
            self.seq_of[entry.tx_id] = entry.seq
        try:
            self._append(entries)
        except BaseException:
            for seq in fresh:
                entry = self.txs.pop(seq)
                self.seq_of.pop(entry.tx_id, None)
            raise
        for entry, valuation in entries:
            self._index(entry, valuation)
        self.leg_count += sum(len(e.legs) for e, _ in entries)
        self._changed()

    def _append(self, entries: Sequence[tuple[TxIndex, str]]) -> None:
        # Plain lists first, one numpy conversion each: per-element writes into
        # numpy arrays cost more than the rest of this loop.
        tx: list[int] = []
        leg_no: list[int] = []
        kind: list[int] = []
        time_ms: list[int] = []
        asset: list[int] = []
        wallet: list[int] = []
        to_wallet: list[int] = []
        qty: list[str] = []
        amount: list[str] = []
        selections: dict[int, list[tuple[int, int, str]]] = {}
        asset_id, wallet_id = self.assets.id, self.wallets.id
        for entry, _ in entries:
            for leg in entry.legs:
                if leg.selections:
                    selections[len(tx)] = [self._selection(lot, q) for lot, q in leg.selections]
                tx.append(entry.seq)
                leg_no.append(leg.leg)
                kind.append(leg.kind)
                time_ms.append(entry.time_ms)
                asset.append(asset_id(leg.asset))
                wallet.append(wallet_id(leg.wallet))
                to_wallet.append(wallet_id(leg.to_wallet) if leg.to_wallet else 0)
                # Plain notation (never an exponent); core_rs ignores trailing zeros.
                qty.append(format(leg.qty, "f"))
                amount.append("" if leg.amount is None else format(leg.amount, "f"))
        self.ledger.append(
            np.array(tx, np.int64),
            np.array(leg_no, np.uint8),
            np.array(kind, np.uint8),
            np.array(time_ms, np.int64),
            np.array(asset, np.uint32),
            np.array(wallet, np.uint32),
            np.array(to_wallet, np.uint32),
            qty,
            amount,
            selections or None,
        )

    def _selection(self, lot_id: str, qty: Decimal) -> tuple[int, int, str]:
        seq = self.seq_of.get(lot_id)
        entry = self.txs.get(seq) if seq is not None else None
        lot_leg = acquire_leg(entry.legs) if entry else None
        if seq is None or lot_leg is None:
            raise UnknownLot(lot_id)
        return (seq, lot_leg, fmt(qty))

    def _index(self, entry: TxIndex, valuation: str) -> None:
        for leg in entry.legs:
            for key, delta in leg.deltas():
                self.balances[key] += delta
                if self.last_ms.get(key, -(2**62)) < entry.time_ms:
                    self.last_ms[key] = entry.time_ms
        if valuation == "unknown":
            self.unknown.add(entry.seq)
        else:
            self.unknown.discard(entry.seq)

    def remove(self, seq: int) -> TxIndex | None:
        entry = self.txs.pop(seq, None)
        if entry is None:
            return None
        self.ledger.remove_tx(seq)
        self.seq_of.pop(entry.tx_id, None)
        self.unknown.discard(seq)
        for leg in entry.legs:
            for key, delta in leg.deltas():
                self.balances[key] -= delta
        # last_ms stays as an upper bound: a later write just takes the full check.
        self.leg_count -= len(entry.legs)
        self._changed()
        return entry

    def _changed(self) -> None:
        self.version += 1
        self._replays.clear()
        self.realized_for = None

    # -- questions -----------------------------------------------------------

    def first_negative(self) -> Shortfall | None:
        found = self.ledger.first_negative()
        if found is None:
            return None
        seq, asset, wallet, time_ms, shortfall = found
        return Shortfall(
            seq, self.assets.name(asset), self.wallets.name(wallet), time_ms, Decimal(shortfall)
        )

    def replay(
        self,
        methods: Sequence[tuple[int, int]],
        per_wallet: bool,
        allow_negative: bool,
        until_ms: int | None = None,
    ) -> core_rs.Replay:
        """Replay (cached until the next change), of the legs up to
        ``until_ms`` when given. Runs with the GIL released."""
        key = (tuple(methods), per_wallet, allow_negative, until_ms)
        cached = self._replays.get(key)
        if cached is None:
            cached = self.ledger.replay(list(methods), per_wallet, allow_negative, until_ms)
            if len(self._replays) >= MAX_CACHED_REPLAYS:
                self._replays.clear()
            self._replays[key] = cached
        return cached

    def tx_id(self, seq: int) -> str:
        entry = self.txs.get(seq)
        return entry.tx_id if entry else f"#{seq}"


class UnknownLot(Exception):
    def __init__(self, lot_id: str) -> None:
        super().__init__(lot_id)
        self.lot_id = lot_id
