"""Repository.insert_rows through core_rs's SQLite writer (native_sqlite.py).

The same batches through the native writer and through the driver
(``native_sqlite=False``) must leave the same ledger and fail the same way:
a client id already in, a seq already taken, a vanished portfolio, nothing
of a failed batch written. The writer shares the file with SQLAlchemy's
connections: it waits for their write lock, and they for its.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core_rs.portfolio_rows import InsertRows, UncommittedIds, decide_import, parse_import_rows
from services.portfolio.db.repository import (
    INSERT_FIELDS,
    DuplicateClientId,
    PortfolioNotFound,
    Repository,
    StaleWrite,
    encode_legs,
)
from tests.core_rs.test_portfolio_rows import BASE, KNOWN, NOW_MS, SKEW_MS, buy, request
from tests.core_rs.test_sqlite_writer import links_shared_sqlite
from tests.portfolio.test_repository import OWNER, all_ledger, leg, new_portfolio, tx


@pytest.fixture(params=["native", "driver"])
async def repo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Repository]:
    native = request.param == "native"
    repository = await Repository.open(f"sqlite:///{tmp_path / 'p.sqlite3'}", native_sqlite=native)
    try:
        assert (repository._native is not None) == (native and links_shared_sqlite())
        yield repository
    finally:
        await repository.close()


def tuples_of(rows: list[object]) -> list[tuple[object, ...]]:
    return [(*dataclasses.astuple(r), encode_legs([leg(r, 0)])) for r in rows]  # type: ignore[call-overload]


async def test_the_native_writer_is_used_where_python_links_sqlite_shared(tmp_path: Path) -> None:
    if not links_shared_sqlite():
        pytest.skip("this Python's sqlite3 carries its own SQLite")
    repository = await Repository.open(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    try:
        assert repository._native is not None
    finally:
        await repository.close()


async def test_rows_and_failures_are_the_drivers(repo: Repository) -> None:
    pid = await new_portfolio(repo)
    rows = [tx(pid, s) for s in (1, 2, 3, 4)]
    tuples = tuples_of(rows)
    assert len(tuples[0]) == len(INSERT_FIELDS)
    await repo.insert_rows(pid, 3, tuples[:2])
    await repo.insert_rows(pid, 4, tuples[2:3])
    assert await all_ledger(repo, pid) == (rows[:3], [leg(r, 0) for r in rows[:3]])

    # A client id already in: DuplicateClientId, nothing of the batch written.
    again = (*tuples[3][:3], "client-1", *tuples[3][4:])
    with pytest.raises(DuplicateClientId) as dup:
        await repo.insert_rows(pid, 5, [tuples[3], again])
    assert dup.value.client_id == "client-1"
    # A seq already taken: StaleWrite.
    with pytest.raises(StaleWrite, match="batch conflicts"):
        await repo.insert_rows(pid, 5, [(*tuples[1][:3], "fresh", *tuples[1][4:])])
    # next_seq would go backwards: StaleWrite naming where it is.
    with pytest.raises(StaleWrite, match="next_seq 4"):
        await repo.insert_rows(pid, 3, [])
    got = await repo.get_portfolio(OWNER, pid, with_count=True)
    assert got is not None and (got.next_seq, got.transaction_count) == (4, 3)
    # A portfolio that is gone.
    with pytest.raises(PortfolioNotFound):
        await repo.insert_rows("pf_gone", 2, [])


async def test_the_writer_and_the_drivers_connections_wait_for_each_other(
    repo: Repository, tmp_path: Path
) -> None:
    pid = await new_portfolio(repo)
    tuples = tuples_of([tx(pid, s) for s in (1, 2)])
    # Another connection (another process, say) holds the write lock a while.
    holder = sqlite3.connect(tmp_path / "p.sqlite3", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.4, lambda: holder.execute("ROLLBACK"))
    release.start()
    t0 = time.perf_counter()
    try:
        await repo.insert_rows(pid, 2, tuples[:1])
    finally:
        release.join()
        holder.close()
    assert time.perf_counter() - t0 >= 0.3
    # A batch and a driver write at once: both go in, one after the other.
    other = "pf_" + "1" * 24
    await asyncio.gather(repo.insert_rows(pid, 3, tuples[1:]), new_portfolio(repo, other))
    assert await repo.get_portfolio(OWNER, other) is not None
    got = await repo.get_portfolio(OWNER, pid, with_count=True)
    assert got is not None and (got.next_seq, got.transaction_count) == (3, 2)


def insert_rows_for(pid: str, first_seq: int, *client_ids: str) -> InsertRows:
    """A bulk import's decided batch (core_rs InsertRows) of buys."""
    message = request(*(buy(client_transaction_id=c) for c in client_ids))
    _, _, rows, slow = parse_import_rows(message, BASE, NOW_MS, SKEW_MS, KNOWN, 0)
    assert slow == []
    decided = decide_import(
        rows, {}, UncommittedIds(), {}, {}, True, pid, first_seq, NOW_MS, 7, NOW_MS, 0
    )
    assert decided is not None
    return decided[4]


async def test_insert_rows_kept_in_rust_are_written_as_their_tuples_are(
    repo: Repository,
) -> None:
    pid, other = await new_portfolio(repo), await new_portfolio(repo, "pf_" + "1" * 24)
    native = insert_rows_for(pid, 1, "a", "b", "c")
    # The same values through the driver's executemany, into another portfolio.
    tuples = [(other, *t[1:]) for t in native.tuples()]
    tuples = [(*t[:2], t[2] + "x", *t[3:]) for t in tuples]  # ids are unique across portfolios
    await repo.insert_rows(pid, 4, native)
    await repo.insert_rows(other, 4, tuples)
    got, want = await all_ledger(repo, pid), await all_ledger(repo, other)
    assert len(got[0]) == 3 and len(got[1]) == 3
    strip = ("portfolio_id", "id")
    assert [dataclasses.replace(r, **dict.fromkeys(strip, "")) for r in got[0]] == [
        dataclasses.replace(r, **dict.fromkeys(strip, "")) for r in want[0]
    ]
    # A client id already in: DuplicateClientId named from the rows, nothing written.
    with pytest.raises(DuplicateClientId) as dup:
        await repo.insert_rows(pid, 6, insert_rows_for(pid, 4, "d", "b"))
    assert dup.value.client_id == "b"
    got_after = await repo.get_portfolio(OWNER, pid, with_count=True)
    assert got_after is not None and (got_after.next_seq, got_after.transaction_count) == (4, 3)
