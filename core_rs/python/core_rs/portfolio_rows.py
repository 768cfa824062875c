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
and ``legs`` a tuple of ``(leg, kind, asset, wallet, qty, amount, to_wallet)``
as ``legs.build_legs`` makes them. A truncated or malformed message (invalid
UTF-8 in a string included) is a ``ValueError``.

The import itself keeps the rows in Rust: ``parse_import_rows(message,
base_currency, now_ms, future_skew_ms, known_assets, first_row)`` returns
``(portfolio_id, count, rows, slow_rows)``, ``count`` the message's number of
transactions and ``rows`` an ``ImportRows``: the same rows, numbered
``first_row`` + position, without a Python object each. ``ImportRows``
supports ``len``, ``take(n)`` (removes and returns the first n),
``extend(other)`` (moves other's rows to the end), ``client_ids()``, and
``tuples()`` / ``ImportRows.from_tuples(pairs)`` to and from ``(row number,
tuple)`` pairs.

``decide_import`` takes a batch of those rows and decides them as
services/portfolio/bulk_import does (see
``core_rs/src/portfolio_rows/decide.rs``)::

    decided = decide_import(
        rows,                   # ImportRows (consumed unless None is returned)
        existing,               # client id -> (content hash, transaction id)
        uncommitted,            # UncommittedIds: the same, of batches not committed
        balances, last_ms,      # (asset, wallet) -> Decimal, -> int: the book's
        check,                  # refuse oversells
        portfolio_id, first_seq, clock_ms, seed, record_ms,
        show,                   # how many rows written to list
    )

None when the batch is backdated (a row earlier than the latest transaction
of a key it touches) or a balance or quantity is outside the ledger's fixed point:
nothing is decided, the general path takes the batch. Else
``(written, created, duplicates, rejected, inserts, book_rows, changed)``:

- ``written``: the first ``show`` rows written, as ``(row, client_id,
  transaction_id, created)`` in row order, ``created`` False for a duplicate
  (of the ledger or of an earlier row); ``created`` and ``duplicates`` count
  them all;
- ``rejected``: ``(row, client_id, prefix_row, short)`` in row order, ``short``
  None for a client id reused for other content, else ``(asset, wallet,
  time_ms, shortfall)`` of the row ``prefix_row`` (the row itself, or the
  first with its client id and content);
- ``inserts``: an ``InsertRows`` of the taken rows (``len``,
  ``client_ids()``, and ``tuples()`` in Repository.INSERT_FIELDS order), seqs
  from ``first_seq`` in time order, ids ``tx_`` + 11 hex digits of
  ``clock_ms`` + 13 from a splitmix64 sequence seeded with ``seed``;
  ``core_rs.sqlite_writer.SqliteWriter.write`` takes it as it is, and
  ``UncommittedIds.add`` / ``remove`` its client ids;
- ``book_rows``: a ``BookRows`` of the same rows for the book: ``len``,
  ``tuples()`` (Book.load's StoredTx), ``index(txs, seq_of, unknown)``
  (registers them as ``core_rs.index_stored`` does), and
  ``core_rs.Ledger.append_rows`` appends their legs;
- ``changed``: ``((asset, wallet), balance, last_ms)`` of every key the taken
  rows moved, after them.
"""

from __future__ import annotations

from core_rs._core import (
    BookRows,
    ImportRows,
    InsertRows,
    UncommittedIds,
    decide_import,
    parse_import,
    parse_import_rows,
)

__all__ = [
    "BookRows",
    "ImportRows",
    "InsertRows",
    "UncommittedIds",
    "decide_import",
    "parse_import",
    "parse_import_rows",
]
