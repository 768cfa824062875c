"""Database fixtures for the portfolio tests, on SQLite and PostgreSQL.

- ``postgres_url`` (session): one throwaway PostgreSQL cluster for the whole
  run (tests/portfolio/postgres.py), started on first use only, so a run that
  selects only SQLite cases (``-k sqlite``) never starts it. Set
  MM_TEST_POSTGRES_URL=postgresql://user:pw@host:port/db to use a server of
  your own instead (each test still gets its own database on it).
- ``database_url``: parametrized ``sqlite`` / ``postgresql``; a plain URL as an
  operator would set MM_DATABASE_URL: a fresh SQLite file in tmp_path, or a
  fresh database on the session cluster, dropped after the test. Any test or
  fixture that takes it runs once per database.
- ``repository``: a Repository opened (and migrated) on ``database_url``,
  closed after the test. Service tests can start a server on
  ``database_url`` instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.portfolio.db.repository import Repository
from tests.portfolio.postgres import start_postgres


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL database whose user may create databases."""
    external = os.environ.get("MM_TEST_POSTGRES_URL", "").strip()
    if external:
        yield external
        return
    url, stop = start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield url
    finally:
        stop()


def _asyncpg_dsn(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


async def create_database(cluster_url: str) -> str:
    """A new empty database next to ``cluster_url``'s; its URL."""
    name = "mm_test_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(_asyncpg_dsn(cluster_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return make_url(cluster_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    name = make_url(url).database
    admin = await asyncpg.connect(_asyncpg_dsn(url, "postgres"))
    try:
        # FORCE: a test that failed half-way may have left connections open.
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A plain URL of an empty database (see the module docstring)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'portfolio.sqlite3'}"
        return
    url = await create_database(request.getfixturevalue("postgres_url"))
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[Repository]:
    repo = await Repository.open(database_url)
    try:
        yield repo
    finally:
        await repo.close()


# Service fixtures shared by the portfolio service tests (real servers).
from tests.portfolio.harness import start_portfolio  # noqa: E402, F401
from tests.pricing.conftest import start_pricing_server  # noqa: E402, F401
