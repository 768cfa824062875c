"""legs inline in transactions; no legs table, no asset index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Each transaction's legs move into its row as JSON
``[[leg, kind, asset, wallet, to_wallet, qty, amount, selections], ...]``
(ordered by leg; amount and selections null when absent, selections kept as
their JSON text). The asset index goes: every insert paid for it and no query
needs it. Existing ledgers are converted in place by one statement per
database, so a million-transaction ledger converts without Python in the loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEG_COLUMNS = "leg, kind, asset, wallet, to_wallet, qty, amount, selections"

_FILL_SQLITE = f"""
UPDATE transactions SET legs = (
    SELECT json_group_array(json_array({_LEG_COLUMNS}))
    FROM (
        SELECT {_LEG_COLUMNS} FROM legs AS l
        WHERE l.portfolio_id = transactions.portfolio_id AND l.seq = transactions.seq
        ORDER BY l.leg
    )
)
WHERE EXISTS (
    SELECT 1 FROM legs AS l
    WHERE l.portfolio_id = transactions.portfolio_id AND l.seq = transactions.seq
)
"""

_FILL_PG = f"""
UPDATE transactions AS t SET legs = s.legs
FROM (
    SELECT portfolio_id, seq,
           json_agg(json_build_array({_LEG_COLUMNS}) ORDER BY leg)::text AS legs
    FROM legs GROUP BY portfolio_id, seq
) AS s
WHERE t.portfolio_id = s.portfolio_id AND t.seq = s.seq
"""

_UNFOLD_SQLITE = """
INSERT INTO legs
SELECT t.portfolio_id, t.seq, l.value ->> 0, l.value ->> 1, t.time_ms, l.value ->> 2,
       l.value ->> 3, l.value ->> 4, l.value ->> 5, l.value ->> 6, l.value ->> 7
FROM transactions AS t, json_each(t.legs) AS l
"""

_UNFOLD_PG = """
INSERT INTO legs
SELECT t.portfolio_id, t.seq, (l ->> 0)::smallint, (l ->> 1)::smallint, t.time_ms, l ->> 2,
       l ->> 3, l ->> 4, l ->> 5, l ->> 6, l ->> 7
FROM transactions AS t, json_array_elements(t.legs::json) AS l
"""


def _legs_table() -> None:
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


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("transactions", sa.Column("legs", sa.Text(), nullable=False, server_default="[]"))
    op.execute(_FILL_PG if _postgres() else _FILL_SQLITE)
    op.drop_table("legs")
    op.drop_index("ix_transactions_asset", table_name="transactions")


def downgrade() -> None:
    op.create_index("ix_transactions_asset", "transactions", ["portfolio_id", "asset"])
    _legs_table()
    op.execute(_UNFOLD_PG if _postgres() else _UNFOLD_SQLITE)
    op.drop_column("transactions", "legs")
