"""portfolios, transactions and legs

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Written by hand to match services/portfolio/db/schema.py as of this revision
(a migration is history: it never imports the current schema).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portfolios",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("base_currency", sa.Text(), nullable=False),
        sa.Column("cost_basis_method", sa.SmallInteger(), nullable=False),
        sa.Column("method_changes", sa.Text(), nullable=False),
        sa.Column("pool", sa.SmallInteger(), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("create_ms", sa.BigInteger(), nullable=False),
        sa.Column("update_ms", sa.BigInteger(), nullable=False),
        sa.Column("next_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_portfolios"),
    )
    op.create_index("ix_portfolios_owner", "portfolios", ["owner"])

    op.create_table(
        "transactions",
        sa.Column("portfolio_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("client_transaction_id", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("wallet", sa.Text(), nullable=False),
        sa.Column("to_asset", sa.Text(), nullable=False),
        sa.Column("to_wallet", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("valuation", sa.Text(), nullable=False),
        sa.Column("record_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("portfolio_id", "seq", name="pk_transactions"),
        sa.UniqueConstraint("id", name="uq_transactions_id"),
        sa.UniqueConstraint(
            "portfolio_id", "client_transaction_id", name="uq_transactions_client_id"
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name="fk_transactions_portfolio",
            ondelete="CASCADE",
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_transactions_time", "transactions", ["portfolio_id", "time_ms", "seq"])
    op.create_index("ix_transactions_asset", "transactions", ["portfolio_id", "asset"])

    op.create_table(
        "legs",
        sa.Column("portfolio_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("leg", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("wallet", sa.Text(), nullable=False),
        sa.Column("to_wallet", sa.Text(), nullable=False),
        sa.Column("qty", sa.Text(), nullable=False),
        sa.Column("amount", sa.Text(), nullable=True),
        sa.Column("selections", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("portfolio_id", "seq", "leg", name="pk_legs"),
        sa.ForeignKeyConstraint(
            ["portfolio_id", "seq"],
            ["transactions.portfolio_id", "transactions.seq"],
            name="fk_legs_transaction",
            ondelete="CASCADE",
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("legs")
    op.drop_index("ix_transactions_asset", table_name="transactions")
    op.drop_index("ix_transactions_time", table_name="transactions")
    op.drop_table("transactions")
    op.drop_index("ix_portfolios_owner", table_name="portfolios")
    op.drop_table("portfolios")
