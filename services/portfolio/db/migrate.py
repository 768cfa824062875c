"""Bring the portfolio database to the newest schema at start-up (Alembic ``upgrade head``).

The migrations live in services/portfolio/migrations/; this module runs them
on a connection of the service's own async engine, so start-up needs no
alembic.ini and no second connection URL. Running it on an up-to-date
database is a no-op, and two processes starting at once are serialised (SQLite:
the write lock; PostgreSQL: an advisory lock), so neither sees a half-made
schema or creates a table twice.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portfolio.db.engine import WRITE_LOCK

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Any constant shared by every portfolio process; "mm-pf" in ASCII.
_PG_MIGRATION_LOCK = 0x6D6D2D7066


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the portfolio migrations, built in code (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation would read a '%' in a password as a reference.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations in " + str(MIGRATIONS_DIR)
    return head


async def upgrade(engine: AsyncEngine, target: str = "head") -> None:
    """Run every pending migration up to ``target`` in one transaction;
    nothing when already there."""
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE_LOCK: True})
        async with conn.begin():
            await conn.run_sync(_upgrade, target)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for an empty database."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


def _upgrade(connection: Connection, target: str) -> None:
    if connection.dialect.name == "postgresql":
        # Held to the end of the transaction: a second process waits here and
        # then finds the schema at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    config = alembic_config()
    # env.py runs on this connection instead of opening its own.
    config.attributes["connection"] = connection
    command.upgrade(config, target)
