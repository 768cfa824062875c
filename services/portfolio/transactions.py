"""A caller's transaction: validated, normalised and fingerprinted.

:func:`parse_transaction` turns a ``Transaction`` message into a frozen
:class:`TxContent` (every bad field reported at once, each named), and
:func:`content_hash` fingerprints the caller's content so a retry with the
same client_transaction_id can be told from a conflicting one. The body
stored in the database is :func:`to_body` (JSON of the content plus the
market prices the service resolved), read back with :func:`from_body`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from marketmesh.v1 import portfolio_pb2
from services.common.errors import InvalidArgument
from services.common.validation import Violations, ms_to_timestamp, timestamp_to_ms
from services.portfolio.decimals import fmt, parse_decimal

K = portfolio_pb2.TransactionKind
BUY, SELL, SWAP, SPEND = (
    K.TRANSACTION_KIND_BUY,
    K.TRANSACTION_KIND_SELL,
    K.TRANSACTION_KIND_SWAP,
    K.TRANSACTION_KIND_SPEND,
)
INCOME, TRANSFER = K.TRANSACTION_KIND_INCOME, K.TRANSACTION_KIND_TRANSFER
GIFT_IN, GIFT_OUT = K.TRANSACTION_KIND_GIFT_IN, K.TRANSACTION_KIND_GIFT_OUT
KINDS = frozenset((BUY, SELL, SWAP, SPEND, INCOME, TRANSFER, GIFT_IN, GIFT_OUT))
KIND_NAMES = {kind: K.Name(kind).removeprefix("TRANSACTION_KIND_") for kind in KINDS}
# Kinds whose price or value must come with the transaction (no market lookup).
NEEDS_OWN_VALUE = frozenset((BUY, SELL, GIFT_IN))
# Kinds valued at market when the caller gives no price or value.
MARKET_VALUED = frozenset((SWAP, SPEND, INCOME))
# Kinds that consume lots (and may name them).
CONSUMING = frozenset((SELL, SWAP, SPEND, TRANSFER, GIFT_OUT))
INCOME_KINDS = frozenset(portfolio_pb2.IncomeKind.values()) - {0}

DEFAULT_WALLET = "default"
_ASSET = re.compile(r"[A-Z0-9]{1,20}")
_WALLET = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:@/-]{0,63}")
_LOT_ID = re.compile(r"tx_[0-9a-f]{24}(\.[0-9]{1,3})?")
CLIENT_ID_MAX = 128
NOTE_MAX = 1_000
MAX_LOTS = 1_000


@dataclass(frozen=True)
class TxContent:
    """What the caller said, normalised (upper-case assets, default wallet, Decimals)."""

    kind: int
    time_ms: int
    asset: str
    quantity: Decimal
    price: Decimal | None = None
    value: Decimal | None = None
    fee_asset: str = ""
    fee_amount: Decimal | None = None
    fee_value: Decimal | None = None
    wallet: str = DEFAULT_WALLET
    to_wallet: str = ""
    to_asset: str = ""
    to_quantity: Decimal | None = None
    income_kind: int = 0
    lots: tuple[tuple[str, Decimal], ...] = ()
    note: str = ""
    # Resolved by the service, not part of the caller's content (nor its hash).
    market: dict[str, Decimal | None] = field(default_factory=dict, compare=False)

    @property
    def has_crypto_fee(self) -> bool:
        return bool(self.fee_asset) and self.fee_amount is not None and self.fee_amount > 0


class _Violations(Violations):
    def decimal(self, text: str, field_name: str, **checks: bool) -> Decimal | None:
        return self.guard(lambda: parse_decimal(text, field_name, required=False, **checks))


def parse_asset(text: str, field_name: str, base_currency: str) -> str:
    asset = text.strip().upper()
    if not asset:
        raise InvalidArgument(field_name, "is required")
    if not asset.isascii() or not _ASSET.fullmatch(asset):
        raise InvalidArgument(
            field_name, f"{text!r} is not an asset ticker such as BTC (1-20 letters or digits)"
        )
    if asset == base_currency:
        raise InvalidArgument(
            field_name, f"{asset} is the portfolio's base currency (cash), not an asset to hold"
        )
    return asset


def parse_wallet(text: str, field_name: str, *, default: str = DEFAULT_WALLET) -> str:
    wallet = text.strip()
    if not wallet:
        return default
    if not _WALLET.fullmatch(wallet):
        raise InvalidArgument(
            field_name,
            f"{text!r} is not a wallet name (1-64 letters, digits, spaces or _.:@/-)",
        )
    return wallet


def parse_client_id(text: str, field_name: str = "client_transaction_id") -> str:
    cid = text.strip()
    if not cid:
        raise InvalidArgument(field_name, "is required: it makes retries safe (any unique string)")
    if len(cid) > CLIENT_ID_MAX or not cid.isprintable():
        raise InvalidArgument(field_name, f"must be 1-{CLIENT_ID_MAX} printable characters")
    return cid


def parse_transaction(
    msg: portfolio_pb2.Transaction,
    *,
    base_currency: str,
    now_ms: int,
    future_skew_ms: int,
    known_asset: Callable[[str], bool],
    prefix: str = "transaction",
) -> TxContent:
    """Validate every field; InvalidArgument lists all violations, each named."""
    v = _Violations()
    p = prefix + "."

    kind = msg.kind
    if kind not in KINDS:
        v.add(
            p + "kind", "is required: BUY, SELL, SWAP, SPEND, INCOME, TRANSFER, GIFT_IN or GIFT_OUT"
        )

    time_ms = 0
    if not msg.HasField("time"):
        v.add(p + "time", "is required")
    else:
        parsed_ms = v.guard(lambda: timestamp_to_ms(msg.time, p + "time"))
        if parsed_ms is not None:
            time_ms = parsed_ms
            if time_ms > now_ms + future_skew_ms:
                v.add(p + "time", "is in the future; a ledger records what already happened")

    def asset_field(text: str, name: str) -> str:
        asset: str = v.guard(lambda: parse_asset(text, p + name, base_currency), "")
        if asset and not known_asset(asset):
            v.add(p + name, f"unknown asset {asset}: pricing has no {asset}-{base_currency} market")
        return asset

    asset = asset_field(msg.asset, "asset")
    quantity = v.decimal(msg.quantity, p + "quantity", positive=True)
    if quantity is None and not msg.quantity.strip():
        v.add(p + "quantity", "is required")

    price = v.decimal(msg.price, p + "price", non_negative=True)
    value = v.decimal(msg.value, p + "value", non_negative=True)
    if price is not None and value is not None:
        v.add(p + "value", "set price or value, not both")
    if (
        kind in NEEDS_OWN_VALUE
        and price is None
        and value is None
        and not v.has(p + "price", p + "value")
    ):
        v.add(p + "price", f"a {KIND_NAMES[kind]} needs its price or value")
    if kind in (TRANSFER, GIFT_OUT) and (price is not None or value is not None):
        v.add(p + "price", f"a {KIND_NAMES.get(kind, '')} has no price or value (not a sale)")

    fee_asset = ""
    fee_amount = v.decimal(msg.fee.amount, p + "fee.amount", non_negative=True)
    fee_value = v.decimal(msg.fee.value, p + "fee.value", non_negative=True)
    if msg.fee.asset.strip():
        fee_text = msg.fee.asset.strip().upper()
        if fee_text == base_currency:
            fee_asset = base_currency
        else:
            fee_asset = asset_field(msg.fee.asset, "fee.asset")
        if fee_amount is None and not msg.fee.amount.strip():
            v.add(p + "fee.amount", "is required when fee.asset is set")
    elif fee_amount is not None:
        fee_asset = base_currency  # an amount alone is in the base currency
    if fee_amount is not None and fee_amount == 0:
        fee_asset, fee_amount, fee_value = "", None, None
    if fee_asset == base_currency and fee_value is not None:
        v.add(p + "fee.value", "is only for fees paid in a crypto asset")

    wallet = v.guard(lambda: parse_wallet(msg.wallet, p + "wallet"), DEFAULT_WALLET)
    to_wallet = ""
    if kind == TRANSFER:
        to_wallet = v.guard(lambda: parse_wallet(msg.to_wallet, p + "to_wallet", default=""), "")
        if not msg.to_wallet.strip():
            v.add(p + "to_wallet", "is required for a TRANSFER")
        elif to_wallet == wallet:
            v.add(p + "to_wallet", "must differ from wallet")
    elif msg.to_wallet.strip():
        v.add(p + "to_wallet", "is only for TRANSFER")

    to_asset, to_quantity = "", None
    if kind == SWAP:
        to_asset = asset_field(msg.to_asset, "to_asset") if msg.to_asset.strip() else ""
        if not msg.to_asset.strip():
            v.add(p + "to_asset", "is required for a SWAP")
        elif to_asset and to_asset == asset:
            v.add(p + "to_asset", "must differ from asset")
        to_quantity = v.decimal(msg.to_quantity, p + "to_quantity", positive=True)
        if to_quantity is None and not msg.to_quantity.strip():
            v.add(p + "to_quantity", "is required for a SWAP")
        if price is not None:
            v.add(p + "price", "a SWAP takes value (the market value of the exchange), not price")
    elif msg.to_asset.strip() or msg.to_quantity.strip():
        v.add(p + "to_asset", "is only for SWAP")

    income_kind = 0
    if kind == INCOME:
        income_kind = msg.income_kind or portfolio_pb2.INCOME_KIND_OTHER
        if income_kind not in INCOME_KINDS:
            v.add(p + "income_kind", f"unknown income kind {msg.income_kind}")
    elif msg.income_kind:
        v.add(p + "income_kind", "is only for INCOME")

    lots: list[tuple[str, Decimal]] = []
    if msg.lots:
        if kind not in CONSUMING:
            v.add(p + "lots", f"a {KIND_NAMES.get(kind, 'transaction')} consumes no lots")
        elif len(msg.lots) > MAX_LOTS:
            v.add(p + "lots", f"at most {MAX_LOTS} lots")
        else:
            seen: set[str] = set()
            for i, sel in enumerate(msg.lots):
                lot_field = f"{p}lots[{i}]"
                lot_id = sel.lot_id.strip()
                if not _LOT_ID.fullmatch(lot_id):
                    v.add(
                        lot_field + ".lot_id",
                        f"{sel.lot_id!r} is not a lot id (ListLots gives them)",
                    )
                elif lot_id in seen:
                    v.add(lot_field + ".lot_id", f"lot {lot_id} is named twice")
                seen.add(lot_id)
                qty = v.decimal(sel.quantity, lot_field + ".quantity", positive=True)
                if qty is None and not sel.quantity.strip():
                    v.add(lot_field + ".quantity", "is required")
                if qty is not None:
                    lots.append((lot_id, qty))
            total = sum((q for _, q in lots), Decimal(0))
            if quantity is not None and len(lots) == len(msg.lots) and total != quantity:
                v.add(
                    p + "lots",
                    f"the named lots add up to {fmt(total)}, not the quantity {fmt(quantity)}",
                )

    note = msg.note
    if len(note) > NOTE_MAX:
        v.add(p + "note", f"at most {NOTE_MAX:,} characters")

    v.raise_any()
    assert quantity is not None
    return TxContent(
        kind=kind,
        time_ms=time_ms,
        asset=asset,
        quantity=quantity,
        price=price,
        value=value,
        fee_asset=fee_asset,
        fee_amount=fee_amount,
        fee_value=fee_value,
        wallet=wallet,
        to_wallet=to_wallet,
        to_asset=to_asset,
        to_quantity=to_quantity,
        income_kind=income_kind,
        lots=tuple(lots),
        note=note,
    )


def _content_dict(tx: TxContent) -> dict[str, Any]:
    return {
        "kind": tx.kind,
        "time_ms": tx.time_ms,
        "asset": tx.asset,
        "quantity": fmt(tx.quantity),
        "price": fmt(tx.price),
        "value": fmt(tx.value),
        "fee_asset": tx.fee_asset,
        "fee_amount": fmt(tx.fee_amount),
        "fee_value": fmt(tx.fee_value),
        "wallet": tx.wallet,
        "to_wallet": tx.to_wallet,
        "to_asset": tx.to_asset,
        "to_quantity": fmt(tx.to_quantity),
        "income_kind": tx.income_kind,
        "lots": [[lot, fmt(q)] for lot, q in tx.lots],
        "note": tx.note,
    }


def content_hash(tx: TxContent) -> str:
    """Fingerprint of the caller's content: "1.50" and "1.5" are the same amount."""
    canonical = json.dumps(_content_dict(tx), separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def to_body(tx: TxContent) -> str:
    return encode(tx)[1]


def encode(tx: TxContent) -> tuple[str, str]:
    """(content_hash, body) with one JSON encoding: the body is the content plus
    the resolved market prices, which are not part of the hash."""
    canonical = json.dumps(_content_dict(tx), separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    market = {k: fmt(p) if p is not None else None for k, p in sorted(tx.market.items())}
    body = canonical[:-1] + ',"market":' + json.dumps(market, separators=(",", ":")) + "}"
    return digest, body


def _dec(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def from_body(body: str) -> TxContent:
    d = json.loads(body)
    return TxContent(
        kind=d["kind"],
        time_ms=d["time_ms"],
        asset=d["asset"],
        quantity=Decimal(d["quantity"]),
        price=_dec(d["price"]),
        value=_dec(d["value"]),
        fee_asset=d["fee_asset"],
        fee_amount=_dec(d["fee_amount"]),
        fee_value=_dec(d["fee_value"]),
        wallet=d["wallet"],
        to_wallet=d["to_wallet"],
        to_asset=d["to_asset"],
        to_quantity=_dec(d["to_quantity"]),
        income_kind=d["income_kind"],
        lots=tuple((lot, Decimal(q)) for lot, q in d["lots"]),
        note=d["note"],
        market={k: (Decimal(p) if p is not None else None) for k, p in d.get("market", {}).items()},
    )


def with_market(tx: TxContent, market: dict[str, Decimal | None]) -> TxContent:
    return replace(tx, market=dict(market))


def to_message(
    tx: TxContent,
    *,
    tx_id: str,
    client_id: str,
    valuation: str,
    record_ms: int,
) -> portfolio_pb2.Transaction:
    msg = portfolio_pb2.Transaction(
        id=tx_id,
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
        lots=[portfolio_pb2.LotSelection(lot_id=lot, quantity=fmt(q)) for lot, q in tx.lots],
        note=tx.note,
        client_transaction_id=client_id,
        valuation=valuation,
        record_time=ms_to_timestamp(record_ms),
    )
    if tx.fee_asset:
        msg.fee.asset = tx.fee_asset
        msg.fee.amount = fmt(tx.fee_amount)
        msg.fee.value = fmt(tx.fee_value)
    return msg
