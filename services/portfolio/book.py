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

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

import core_rs
from core_rs.portfolio_rows import BookRows
from services.portfolio.decimals import CONTEXT, ZERO, fmt
from services.portfolio.legs import Leg, acquire_leg, legs_from_json

# What the book keeps per transaction (core_rs: never tracked by the cyclic
# GC). A stored transaction's legs stay JSON text until something reads them.
TxIndex = core_rs.TxIndex
TxIndex.set_legs_parser(legs_from_json)

UNIVERSAL_WALLET_ID = 0
# A transaction as Repository.load_book_rows gives it: (seq, id, kind,
# time_ms, valuation, body (INCOME only, else ""), legs JSON).
StoredTx = tuple[int, str, int, int, str, str, str]
# Balances and last times of the keys some rows changed, after them (a
# caller that works them out anyway saves core_rs a sum over every leg).
KeyBalances = tuple[dict[tuple[str, str], Decimal], dict[tuple[str, str], int]]
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
    _balances: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    _last_ms: dict[tuple[str, str], int] = field(default_factory=dict)
    # False after a bulk load: the two above are recomputed by core_rs on use.
    _settled: bool = True
    unknown: set[int] = field(default_factory=set)
    # Bumped on every change: replays are cached per version.
    version: int = 0
    leg_count: int = 0
    _replays: dict[tuple[object, ...], core_rs.Replay] = field(default_factory=dict)
    # GetHoldings' all-time realized gain and the replay it was taken from (the
    # same cached Replay object until the next change).
    realized_for: tuple[core_rs.Replay, Decimal] | None = None

    @property
    def balances(self) -> dict[tuple[str, str], Decimal]:
        """Balance per (asset, wallet) after every transaction."""
        if not self._settled:
            self._settle()
        return self._balances

    @property
    def last_ms(self) -> dict[tuple[str, str], int]:
        """Per (asset, wallet): the time of its latest transaction (an upper bound)."""
        if not self._settled:
            self._settle()
        return self._last_ms

    def _settle(self) -> None:
        balances: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        last_ms: dict[tuple[str, str], int] = {}
        asset, wallet = self.assets.name, self.wallets.name
        for a, w, balance, last in self.ledger.balances():
            key = (asset(a), wallet(w))
            balances[key] = Decimal(balance)
            last_ms[key] = last
        self._balances, self._last_ms, self._settled = balances, last_ms, True

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
                # The ledger's context: exact for any in-range amounts.
                pending[key] = CONTEXT.add(pending[key], delta)
                if pending[key] < 0:
                    return Shortfall(-1, key[0], key[1], time_ms, pending[key].copy_negate())
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

    def load(
        self,
        rows: Sequence[StoredTx],
        balances: KeyBalances | None = None,
    ) -> None:
        """Add transactions as stored (Repository.load_book_rows), in seq order.

        The same result as :meth:`add`, the stored legs parsed and appended
        by core_rs (no Leg objects until something asks for a transaction's).
        All or nothing: on an error nothing of ``rows`` stays (but names it
        interned). ``balances`` as :meth:`load_parsed` takes them.
        """
        n = len(rows)
        appended = self.ledger.append_stored(
            np.fromiter((row[0] for row in rows), np.int64, n),
            np.fromiter((row[3] for row in rows), np.int64, n),
            [row[6] for row in rows],
            self.assets.ids,
            self.assets.names,
            self.wallets.ids,
            self.wallets.names,
        )
        if appended is None:
            # A leg names lots: their ids resolve through this book's indexes.
            every_legs = json.loads("[" + ",".join(row[6] for row in rows) + "]")
            self.load_parsed(rows, every_legs, balances)
            return
        try:
            core_rs.index_stored(rows, self.txs, self.seq_of, self.unknown)
        except BaseException:
            for row in rows:  # a body that is not readable: all or nothing
                self.ledger.remove_tx(row[0])
            raise
        self._balances_after(balances)
        self.leg_count += appended
        self._changed()

    def load_rows(self, rows: BookRows, balances: KeyBalances) -> None:
        """:meth:`load` for a bulk import's decided rows (core_rs's
        ``BookRows``): their legs appended and their entries registered by
        core_rs, without reading back a tuple and the stored text per row."""
        appended = self.ledger.append_rows(
            rows, self.assets.ids, self.assets.names, self.wallets.ids, self.wallets.names
        )
        rows.index(self.txs, self.seq_of, self.unknown)
        self._balances_after(balances)
        self.leg_count += appended
        self._changed()

    def load_parsed(
        self,
        rows: Sequence[StoredTx],
        every_legs: Sequence[Sequence[Sequence[Any]]],
        balances: KeyBalances | None = None,
    ) -> None:
        """:meth:`load` with each row's legs already parsed (the stored
        lists). ``balances``: the balances and last times of the keys these
        rows change, after them, when the caller has worked them out (a bulk
        import checks them anyway); else core_rs sums them when next needed.
        """
        loads = json.loads
        tx: list[int] = []
        leg_no: list[int] = []
        kind: list[int] = []
        time_ms: list[int] = []
        asset: list[int] = []
        wallet: list[int] = []
        to_wallet: list[int] = []
        qty: list[str] = []
        amount: list[str] = []
        named: list[tuple[int, str]] = []
        entries: list[TxIndex] = []
        asset_id, wallet_id = self.assets.id, self.wallets.id
        for (seq, tx_id, tx_kind, t, _, body, legs_text), tx_legs in zip(
            rows, every_legs, strict=True
        ):
            income_kind = loads(body).get("income_kind", 0) if body else 0
            entries.append(TxIndex.stored(seq, tx_id, tx_kind, t, legs_text, income_kind))
            for g_leg, g_kind, g_asset, g_wallet, g_to, g_qty, g_amount, g_sel in tx_legs:
                if g_sel:
                    named.append((len(tx), g_sel))
                tx.append(seq)
                leg_no.append(g_leg)
                kind.append(g_kind)
                time_ms.append(t)
                asset.append(asset_id(g_asset))
                wallet.append(wallet_id(g_wallet))
                to_wallet.append(wallet_id(g_to) if g_to else 0)
                qty.append(g_qty)
                amount.append("" if g_amount is None else g_amount)
        fresh = [e.seq for e in entries if e.seq not in self.txs]
        for entry in entries:
            self.txs[entry.seq] = entry
            self.seq_of[entry.tx_id] = entry.seq
        try:
            selections = {
                position: [self._selection(lot, Decimal(q)) for lot, q in loads(text)]
                for position, text in named
            }
            self._append_columns(
                tx, leg_no, kind, time_ms, asset, wallet, to_wallet, qty, amount, selections
            )
        except BaseException:
            for seq in fresh:
                self.seq_of.pop(self.txs.pop(seq).tx_id, None)
            raise
        self._balances_after(balances)
        self.unknown.update(seq for seq, _, _, _, valuation, _, _ in rows if valuation == "unknown")
        self.leg_count += len(tx)
        self._changed()

    def _balances_after(
        self,
        balances: KeyBalances | None,
    ) -> None:
        if balances is not None and self._settled:
            self._balances.update(balances[0])
            self._last_ms.update(balances[1])
        else:
            # Summed by core_rs when first needed, over every leg at once.
            self._settled = False

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
        self._append_columns(
            tx, leg_no, kind, time_ms, asset, wallet, to_wallet, qty, amount, selections
        )

    def _append_columns(
        self,
        tx: list[int],
        leg_no: list[int],
        kind: list[int],
        time_ms: list[int],
        asset: list[int],
        wallet: list[int],
        to_wallet: list[int],
        qty: list[str],
        amount: list[str],
        selections: dict[int, list[tuple[int, int, str]]],
    ) -> None:
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
                self.balances[key] = CONTEXT.add(self.balances[key], delta)
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
                self.balances[key] = CONTEXT.subtract(self.balances[key], delta)
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
