"""The portfolio's ImportTransactions fast path: one pass in Rust over a
serialized ``ImportTransactionsRequest`` (GIL released).

::

    from core_rs.portfolio_rows import parse_import
    portfolio_id, fast_rows, slow_rows = parse_import(
        message,          # ImportTransactionsRequest.SerializeToString()
        "USD",            # base currency
        now_ms, future_skew_ms,
        known_assets,     # set or frozenset of pricing's assets
    )

``slow_rows`` are the 0-based positions (in this message) of the rows that
Python must handle with services/portfolio's own functions: every row that
``parse_client_id`` / ``parse_transaction`` might refuse, rows that name lots
or need a market price (``legs.market_needs`` non-empty, which includes a fee
of a positive amount without ``fee.value``), rows with ``id``, ``valuation``
or ``record_time`` set, unknown or repeated fields, text outside ASCII (other
than the note), and derived amounts that Python's default 28-digit decimal
context would round.

``fast_rows`` holds one tuple per other row, in message order::

    (position, client_id, kind, time_ms, asset, quantity, price, value,
     fee_asset, fee_amount, fee_value, wallet, to_wallet, to_asset, to_quantity,
     income_kind, note, content_hash, body, valuation, legs)

with the values of ``TxContent`` (decimals as ``decimals.fmt`` strings, ""
for None), ``(content_hash, body) == transactions.encode(tx)``, valuation ""
and ``legs`` a list of ``(leg, kind, asset, wallet, qty, amount, to_wallet)``
as ``legs.build_legs`` makes them. A truncated or malformed message (invalid
UTF-8 in a string included) is a ``ValueError``.
"""

from __future__ import annotations

from core_rs._core import parse_import

__all__ = ["parse_import"]
