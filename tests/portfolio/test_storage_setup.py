"""Opening the portfolio database: URLs, passwords kept out of messages,
SQLite's settings, and the alembic command line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.portfolio.db import migrate
from services.portfolio.db.engine import DatabaseUrlError, driver_url, redact, resolve_url
from services.portfolio.db.repository import Repository, StorageError, StorageUnavailable
from tests.portfolio.postgres import free_port
from tests.portfolio.test_repository import OWNER, new_portfolio

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_default_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet"
    url = resolve_url(None, data_dir)
    assert url == f"sqlite+aiosqlite:///{data_dir}/portfolio.sqlite3"
    assert data_dir.is_dir()
    assert resolve_url("  ", data_dir) == url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://mm:pw@db:5432/marketmesh", "postgresql+asyncpg://mm:pw@db:5432/marketmesh"),
        ("postgres://mm:pw@db/marketmesh", "postgresql+asyncpg://mm:pw@db/marketmesh"),
        ("postgresql+asyncpg://mm@db/x", "postgresql+asyncpg://mm@db/x"),
        # An escaped '@' in the password stays escaped.
        ("postgresql://mm:p%40ss@db/x", "postgresql+asyncpg://mm:p%40ss@db/x"),
        ("sqlite:////var/lib/mm/p.sqlite3", "sqlite+aiosqlite:////var/lib/mm/p.sqlite3"),
    ],
)
def test_plain_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert resolve_url(given, Path("unused")) == expected
    assert make_url(expected).password == make_url(given).password


def test_other_databases_are_refused_without_showing_the_password() -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        driver_url("mysql://mm:hunter2@db/x")
    assert "hunter2" not in str(raised.value)
    assert "mysql" in str(raised.value)
    with pytest.raises(DatabaseUrlError) as raised:
        driver_url("not a url :// mm:hunter2@db")
    assert "hunter2" not in str(raised.value)


def test_redact() -> None:
    assert redact("postgresql://mm:hunter2@db:5432/x") == "postgresql://mm:***@db:5432/x"
    assert redact("postgresql://mm@db/x") == "postgresql://mm@db/x"
    assert redact("sqlite:///var/p.sqlite3") == "sqlite:///var/p.sqlite3"


async def test_unreachable_postgres_is_storage_unavailable_naming_the_url() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://mm:hunter2@127.0.0.1:{port}/marketmesh"
    with pytest.raises(StorageUnavailable) as raised:
        await Repository.open(url)
    message = str(raised.value)
    assert f"postgresql://mm:***@127.0.0.1:{port}/marketmesh" in message
    assert "hunter2" not in message


async def test_wrong_password_and_missing_database(postgres_url: str) -> None:
    good = make_url(postgres_url)
    for url in (good.set(password="wrong-pw-123"), good.set(database="no_such_db")):
        with pytest.raises(StorageUnavailable) as raised:
            await Repository.open(url.render_as_string(hide_password=False))
        message = str(raised.value)
        assert url.render_as_string(hide_password=True) in message
        assert "wrong-pw-123" not in message and str(good.password) not in message


async def test_unopenable_sqlite_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StorageUnavailable, match="cannot open the portfolio database"):
        await Repository.open(f"sqlite:///{blocker}/portfolio.sqlite3")


async def test_unsupported_url_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="unsupported database"):
        await Repository.open("mysql://mm:hunter2@db/x")


async def test_sqlite_connection_settings(tmp_path: Path) -> None:
    repo = await Repository.open(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    try:
        async with repo.engine.connect() as conn:
            got = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                    "page_size",
                )
            }
    finally:
        await repo.close()
    # synchronous: 2 is FULL.
    assert got == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 30_000,
        "page_size": 16_384,
    }


async def test_an_existing_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute("PRAGMA page_size=4096")
    old.execute("CREATE TABLE before_us (x INTEGER)")
    old.close()
    repo = await Repository.open(f"sqlite:///{path}")
    try:
        pid = await new_portfolio(repo)
        got = await repo.get_portfolio(OWNER, pid)
        assert got is not None
    finally:
        await repo.close()
    again = sqlite3.connect(path)
    try:
        assert again.execute("PRAGMA page_size").fetchone() == (4096,)
        assert again.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        again.close()


def _alembic(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "services/portfolio/migrations/alembic.ini", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_alembic_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    _alembic("-x", f"url={url}", "upgrade", "head")
    assert f"{migrate.head_revision()} (head)" in _alembic("-x", f"url={url}", "current")
    # Without -x it finds the database the service would use.
    data_dir = tmp_path / "data"
    _alembic("upgrade", "head", env={"MM_DATA_DIR": str(data_dir), "MM_DATABASE_URL": ""})
    assert (data_dir / "portfolio.sqlite3").exists()
    assert "(head)" in _alembic("current", env={"MM_DATA_DIR": str(data_dir)})


async def test_a_missing_sqlite_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "data" / "portfolio.sqlite3"
    repo = await Repository.open(f"sqlite+aiosqlite:///{path}")
    await repo.close()
    assert path.exists()
