"""The portfolio database: two tables on one MetaData, the same on SQLite and PostgreSQL.

Money and quantities are decimal strings in TEXT columns: SQLite has no exact
decimal type (a NUMERIC column would turn "0.1" into a float), and TEXT keeps
the two databases byte-identical. Times are epoch milliseconds (BIGINT).

On SQLite ``transactions`` is WITHOUT ROWID: rows are stored in primary key
order, (portfolio_id, seq), which is the order the ledger is written and
replayed in, and one b-tree less to update on every insert (measured: ~20-30%
faster bulk inserts). PostgreSQL ignores the option.

A transaction's legs (what the lot engine replays) live in its row as JSON,
not in a table of their own (migration 0002): they are always written, read
and rewritten with their transaction, and a second table cost every insert
another b-tree and every book load a second query. Measured on SQLite, 200,000
rows in batches of 5,000 with executemany: 31,000 rows/s with the legs table,
51,000 with the legs inline and without the asset index, which no query
needs fast enough to pay for on every insert (and with time-ordered
transaction ids: see ledger_writer.new_tx_id).

Constraint and index names are spelled out so that the hand-written Alembic
migrations (services/portfolio/migrations/versions/) name them the same way and
a later migration can drop or alter them by name on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

portfolios = Table(
    "portfolios",
    metadata,
    Column("id", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("base_currency", Text, nullable=False),
    Column("cost_basis_method", SmallInteger, nullable=False),
    # JSON list of [from_year, method] pairs, oldest first.
    Column("method_changes", Text, nullable=False),
    Column("pool", SmallInteger, nullable=False),
    Column("allow_negative", Boolean, nullable=False),
    Column("create_ms", BigInteger, nullable=False),
    Column("update_ms", BigInteger, nullable=False),
    # The seq the next recorded transaction takes; never reused after a delete.
    Column("next_seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("id", name="pk_portfolios"),
    Index("ix_portfolios_owner", "owner"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("portfolio_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("id", Text, nullable=False),
    Column("client_transaction_id", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("asset", Text, nullable=False),
    Column("wallet", Text, nullable=False),
    Column("to_asset", Text, nullable=False),
    Column("to_wallet", Text, nullable=False),
    # Canonical JSON of the normalised transaction, built by the servicer.
    Column("body", Text, nullable=False),
    Column("valuation", Text, nullable=False),
    Column("record_ms", BigInteger, nullable=False),
    # JSON [[leg, kind, asset, wallet, to_wallet, qty, amount, selections], ...]:
    # amount null while unknown; selections null or the JSON text
    # [[lot_seq, lot_leg, qty], ...] of the lots a disposal names.
    # Last: added by migration 0002.
    Column("legs", Text, nullable=False, server_default="[]"),
    PrimaryKeyConstraint("portfolio_id", "seq", name="pk_transactions"),
    UniqueConstraint("id", name="uq_transactions_id"),
    UniqueConstraint("portfolio_id", "client_transaction_id", name="uq_transactions_client_id"),
    ForeignKeyConstraint(
        ["portfolio_id"],
        ["portfolios.id"],
        name="fk_transactions_portfolio",
        ondelete="CASCADE",
    ),
    Index("ix_transactions_time", "portfolio_id", "time_ms", "seq"),
    sqlite_with_rowid=False,
)
