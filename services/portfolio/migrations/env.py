"""Alembic environment of the portfolio database.

Two ways in:
- start-up (services/portfolio/db/migrate.py) passes an open connection in
  ``config.attributes["connection"]``; the migrations run on it, inside the
  caller's transaction;
- the ``alembic`` command line (see README) opens its own async engine on
  ``-x url=...``, else ``sqlalchemy.url``, else what the service would use
  (MM_DATABASE_URL, or the SQLite file under MM_DATA_DIR).
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy.engine import Connection

from services.portfolio.db.engine import create_engine, resolve_url
from services.portfolio.db.schema import metadata

config = context.config
target_metadata = metadata

# The command line's alembic.ini sets up logging; at start-up the service's own stays.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations use batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _cli_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return resolve_url(url, Path("."))
    data_dir = Path(os.environ.get("MM_DATA_DIR", "").strip() or "var").expanduser()
    return resolve_url(os.environ.get("MM_DATABASE_URL"), data_dir)


async def _run_cli() -> None:
    engine = create_engine(_cli_url())
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_cli_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    asyncio.run(_run_cli())
