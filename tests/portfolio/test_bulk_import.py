"""The columnar import path (bulk_import.write_fast_rows) against the general
path (LedgerWriter, one Pending per transaction) on the same rows: the same
outcome for every row, the same book, the same stored ledger.

The rows are a generated ledger (buys, sales never overselling, income,
transfers paying a fee in the asset, swaps) plus what a real import throws in:
a re-run of rows already in, a same-content repeat and a conflicting reuse of
a client id inside a batch, oversells, and a batch dated before the book.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bench.portfolio_ledger import LedgerSpec, generate, transaction_messages
from core_rs.portfolio_rows import ImportRows
from marketmesh.v1 import portfolio_pb2
from services.common.errors import FailedPrecondition, ServiceError, Unavailable
from services.portfolio.app import BASE_CURRENCY, PortfolioApp, portfolio_row
from services.portfolio.book import TxIndex
from services.portfolio.bulk_import import FastRow, fast_pending, write_fast_rows
from services.portfolio.db.repository import StorageUnavailable
from services.portfolio.decimals import fmt
from services.portfolio.importer import Import
from services.portfolio.legs import build_legs
from services.portfolio.transactions import BUY, GIFT_OUT, SELL, TRANSFER, TxContent, encode
from tests.portfolio.harness import portfolio_settings

T0 = 1_577_836_800_000  # 2020-01-01
ASSETS = ("BTC", "ETH", "SOL")


def fast_row(position: int, client_id: str, tx: TxContent) -> FastRow:
    """What core_rs.portfolio_rows.parse_import hands back for ``tx``, made
    by the Python functions it is tested against."""
    legs, valuation = build_legs(tx, BASE_CURRENCY)
    digest, body = encode(tx)
    return (
        position,
        client_id,
        tx.kind,
        tx.time_ms,
        tx.asset,
        fmt(tx.quantity),
        fmt(tx.price),
        fmt(tx.value),
        tx.fee_asset,
        fmt(tx.fee_amount),
        fmt(tx.fee_value),
        tx.wallet,
        tx.to_wallet,
        tx.to_asset,
        fmt(tx.to_quantity),
        tx.income_kind,
        tx.note,
        digest,
        body,
        valuation,
        [(g.leg, g.kind, g.asset, g.wallet, fmt(g.qty), fmt(g.amount), g.to_wallet) for g in legs],
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[PortfolioApp]:
    settings = portfolio_settings(tmp_path, f"sqlite:///{tmp_path / 'p.sqlite3'}")
    application = PortfolioApp(settings)
    await application.start()
    try:
        yield application
    finally:
        await application.stop()


Outcome = tuple[int, str, str]  # (row, status, detail)


def by_seq(entry: TxIndex) -> int:
    return entry.seq


async def through_bulk(
    app: PortfolioApp, pid: str, batches: list[list[tuple[int, FastRow]]]
) -> list[Outcome]:
    assert app.writer is not None
    out: list[Outcome] = []
    last = None
    for batch in batches:
        # Decided while the batch before it commits.
        state = await app.state(await app.portfolio("o", pid))
        result = await write_fast_rows(app.writer, state, ImportRows.from_tuples(batch))
        if result is None:
            out += await through_pendings(app, pid, [batch])
            out.append((-1, "fallback", ""))
            continue
        last = result.committed or last
        assert result.created == sum(1 for w in result.written if w[3])
        assert result.duplicates == sum(1 for w in result.written if not w[3])
        out += [
            (row, "written" if new else "duplicate", cid) for row, cid, _, new in result.written
        ]
        out += [(row, "rejected", err.message) for row, _, err in result.rejected]
    if last is not None:
        await last
    return sorted(out)


async def through_pendings(
    app: PortfolioApp, pid: str, batches: list[list[tuple[int, FastRow]]]
) -> list[Outcome]:
    out: list[Outcome] = []
    portfolio = await app.portfolio("o", pid)
    for batch in batches:
        pendings = sorted(
            ((row, fast_pending(row, r)) for row, r in batch),
            key=lambda item: (item[1].content.time_ms, item[0]),
        )
        await app.record_many(portfolio, [p for _, p in pendings])
        for row, p in pendings:
            err = p.future.exception()
            if err is not None:
                assert isinstance(err, ServiceError)
                out.append((row, "rejected", err.message))
            else:
                outcome = p.future.result()
                status = "written" if outcome.created else "duplicate"
                out.append((row, status, p.client_id))
    return sorted(out)


def batches_of(rows: list[tuple[int, FastRow]], size: int) -> list[list[tuple[int, FastRow]]]:
    return [rows[lo : lo + size] for lo in range(0, len(rows), size)]


async def ledger_of(
    app: PortfolioApp, pid: str, *, seqs: bool = True
) -> tuple[list[object], list[object]]:
    """The stored ledger, in order, without what differs by construction (ids,
    record times; seqs too unless ``seqs``)."""
    txs, legs = [], []
    async for chunk_txs, chunk_legs in app.repo.load_ledger(pid):
        txs += [
            dataclasses.replace(t, portfolio_id="", id="", record_ms=0, seq=t.seq if seqs else 0)
            for t in chunk_txs
        ]
        legs += [
            dataclasses.replace(g, portfolio_id="", seq=g.seq if seqs else 0) for g in chunk_legs
        ]
    return txs, legs


async def test_bulk_rows_end_as_the_general_path_ends_them(app: PortfolioApp) -> None:
    contents = list(generate(LedgerSpec(2_400, ASSETS, T0, years=2, seed=3)))
    rows = [(i, fast_row(i, f"r{i}", tx)) for i, tx in enumerate(contents)]
    later = T0 + 3 * 365 * 86_400_000
    oversell = TxContent(SELL, later, "BTC", contents[0].quantity * 10**9, price=contents[0].price)
    extra = [
        # A repeat of row 5 with the same content, and a conflicting reuse of r6.
        (2_400, fast_row(2_400, "r5", contents[5])),
        (2_401, fast_row(2_401, "r6", contents[7])),
        # Oversells, later than everything: refused naming the shortfall.
        (2_402, fast_row(2_402, "big", oversell)),
        # Inside one batch: a same-content repeat, a conflicting reuse.
        (2_403, fast_row(2_403, "r1500", contents[1_500])),
        (2_404, fast_row(2_404, "r1501", contents[1_502])),
    ]
    first, second = rows[:1_800] + extra, rows[1_800:]
    rerun = rows[:300]  # already in: duplicates with the original ids

    a = (await app.create_portfolio(portfolio_row("o", "bulk", 1, (), 1, False))).id
    b = (await app.create_portfolio(portfolio_row("o", "pending", 1, (), 1, False))).id
    # rows[2000:2100] again right after their batch: decided while it may still
    # be committing, so found among the uncommitted rather than in the database.
    plan = [*batches_of(first, 700), *batches_of(second, 700), rows[2_000:2_100], rerun]
    got = await through_bulk(app, a, plan)
    want = await through_pendings(app, b, plan)
    assert got == want
    assert sum(1 for o in got if o[1] == "rejected") >= 2
    assert sum(1 for o in got if o[1] == "duplicate") >= 401
    assert all(o[1] != "fallback" for o in got)

    assert await ledger_of(app, a) == await ledger_of(app, b)
    book_a = (await app.state(await app.portfolio("o", a))).book
    book_b = (await app.state(await app.portfolio("o", b))).book
    assert book_a.balances == book_b.balances
    assert book_a.last_ms == book_b.last_ms
    assert book_a.leg_count == book_b.leg_count
    # The index entries too: kind, time, kind of income and legs, in order.
    assert [
        (e.kind, e.time_ms, e.income_kind, e.legs) for e in sorted(book_a.txs.values(), key=by_seq)
    ] == [
        (e.kind, e.time_ms, e.income_kind, e.legs) for e in sorted(book_b.txs.values(), key=by_seq)
    ]
    assert any(e.income_kind for e in book_a.txs.values())
    for method in (1, 2, 3):
        ra = book_a.replay([(0, method)], False, False)
        rb = book_b.replay([(0, method)], False, False)
        every = np.arange(ra.n_matches, dtype=np.int64)
        assert ra.sum_matches(every) == rb.sum_matches(every)

    # A restart reads back the same book the bulk path built in memory.
    again = PortfolioApp(app.settings)
    await again.start()
    try:
        reloaded = (await again.state(await again.portfolio("o", a))).book
        assert reloaded.balances == book_a.balances
        assert [e.legs for e in reloaded.txs.values()] == [e.legs for e in book_a.txs.values()]
    finally:
        await again.stop()


@pytest.mark.parametrize("allow_negative", [False, True])
async def test_oversells_inside_a_batch_end_as_the_general_path_ends_them(
    app: PortfolioApp, allow_negative: bool
) -> None:
    """Oversells by a sale, a transfer and a gift, a same-content repeat of an
    oversell (refused through the first, named by its row), and the rows
    after them on the balances the refused rows left alone."""
    t = T0 + 86_400_000
    buy = TxContent(BUY, t, "BTC", Decimal("2.5"), price=Decimal("100"), wallet="a")
    sell = TxContent(SELL, t + 1, "BTC", Decimal("3"), price=Decimal("120"), wallet="a")
    move = TxContent(
        TRANSFER, t + 2, "BTC", Decimal("2.6"), wallet="a", to_wallet="b", fee_asset=""
    )
    gift = TxContent(GIFT_OUT, t + 3, "ETH", Decimal("0.000000000000000001"), wallet="a")
    small_sell = TxContent(SELL, t + 4, "BTC", Decimal("2.5"), price=Decimal("90"), wallet="a")
    batch = [
        (0, fast_row(0, "buy", buy)),
        (1, fast_row(1, "sell", sell)),
        (2, fast_row(2, "move", move)),
        (3, fast_row(3, "sell", sell)),  # the same again: the first's outcome
        (4, fast_row(4, "gift", gift)),
        (5, fast_row(5, "small", small_sell)),
    ]
    a = (await app.create_portfolio(portfolio_row("o", "a", 1, (), 1, allow_negative))).id
    b = (await app.create_portfolio(portfolio_row("o", "b", 1, (), 1, allow_negative))).id
    got = await through_bulk(app, a, [batch])
    want = await through_pendings(app, b, [batch])
    assert got == want
    rejected = [o for o in got if o[1] == "rejected"]
    if allow_negative:
        assert not rejected
    else:
        assert [row for row, _, _ in rejected] == [1, 2, 3, 4]
        assert rejected[2][2] == rejected[0][2]
        assert rejected[0][2].startswith("transactions[1]: wallet 'a' would hold -0.5 BTC")
    # The general path leaves the seqs of refused rows unused; the order is the same.
    assert await ledger_of(app, a, seqs=False) == await ledger_of(app, b, seqs=False)
    book_a = (await app.state(await app.portfolio("o", a))).book
    book_b = (await app.state(await app.portfolio("o", b))).book
    assert book_a.balances == book_b.balances
    assert book_a.last_ms == book_b.last_ms


async def test_a_backdated_batch_is_left_to_the_general_path(app: PortfolioApp) -> None:
    contents = list(generate(LedgerSpec(400, ASSETS, T0, years=1, seed=4)))
    rows = [(i, fast_row(i, f"r{i}", tx)) for i, tx in enumerate(contents)]
    pid = (await app.create_portfolio(portfolio_row("o", "late", 1, (), 1, False))).id
    assert app.writer is not None
    state = await app.state(await app.portfolio("o", pid))
    done = await write_fast_rows(app.writer, state, ImportRows.from_tuples(rows[200:]))
    assert done is not None and done.written and done.committed is not None
    await done.committed
    version, next_seq = state.book.version, state.next_seq
    # Dated before what the book holds: nothing done, the caller uses the general path.
    assert await write_fast_rows(app.writer, state, ImportRows.from_tuples(rows[:200])) is None
    assert (state.book.version, state.next_seq) == (version, next_seq)
    loaded = await app.portfolio("o", pid, with_count=True)
    assert loaded.transaction_count == len(done.written)


async def test_a_batch_that_fails_to_commit_stops_the_import_and_a_rerun_completes_it(
    app: PortfolioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches commit in the background, in order: when one fails, no batch
    after it goes in, the call fails UNAVAILABLE, and re-running the import
    finishes it (duplicates for what is in, the rest accepted)."""
    contents = list(generate(LedgerSpec(3_000, ASSETS, T0, years=1, seed=6)))
    messages = transaction_messages(contents, "f")
    pid = (await app.create_portfolio(portfolio_row("o", "f", 1, (), 1, False))).id
    requests = [
        portfolio_pb2.ImportTransactionsRequest(
            portfolio_id=pid,
            transactions=messages[lo : lo + 500],  # type: ignore[arg-type]
        )
        for lo in range(0, len(messages), 500)
    ]

    async def known() -> frozenset[str]:
        return frozenset(ASSETS)

    monkeypatch.setattr(app.market, "known_assets", known)
    monkeypatch.setattr(app, "settings", dataclasses.replace(app.settings, max_batch=500))
    real_insert = app.repo.insert_rows
    calls = 0

    async def failing_second(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StorageUnavailable("disk went away")
        await real_insert(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.repo, "insert_rows", failing_second)
    first = Import(app, "o")
    with pytest.raises(Unavailable):
        try:
            for request in requests:
                await first.message(request)
            await first.flush()
        finally:
            await first.abandon()
    loaded = await app.portfolio("o", pid, with_count=True)
    assert loaded.transaction_count == 500  # the first batch only

    monkeypatch.setattr(app.repo, "insert_rows", real_insert)
    again = Import(app, "o")
    for request in requests:
        await again.message(request)
    await again.flush()
    assert (again.accepted, again.duplicates, again.rejected) == (2_500, 500, 0)
    loaded = await app.portfolio("o", pid, with_count=True)
    assert loaded.transaction_count == 3_000
    book = (await app.state(loaded)).book
    assert book.leg_count == sum(len(build_legs(t, "USD")[0]) for t in contents)


async def test_a_repeat_of_a_batch_that_commits_during_the_next_lookup_is_a_duplicate(
    app: PortfolioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch's client-id lookup reads the database before the batch
    ahead of it commits, and returns after: that batch's rows are still
    known as uncommitted, so a repeat of one is a DUPLICATE, not a second
    insert that the database refuses (failing the batch)."""
    portfolio = await app.create_portfolio(portfolio_row("o", "race", 1, (), 1, False))
    assert app.writer is not None
    state = await app.state(portfolio)
    contents = list(generate(LedgerSpec(40, ASSETS, T0, years=1, seed=9)))
    first = [(i, fast_row(i, f"r{i}", tx)) for i, tx in enumerate(contents[:20])]
    # The first batch's latest row again (same content: not backdated), then new rows.
    assert max(t.time_ms for t in contents[:20]) == contents[19].time_ms
    second = [(20, fast_row(20, "r19", contents[19]))] + [
        (i, fast_row(i, f"r{i}", tx)) for i, tx in enumerate(contents[20:], start=21)
    ]
    gate = asyncio.Event()
    real_insert, real_find = app.repo.insert_rows, app.repo.find_client_ids

    async def held_insert(*args: object, **kwargs: object) -> None:
        await gate.wait()
        await real_insert(*args, **kwargs)  # type: ignore[arg-type]

    async def lookup_then_commit(*args: object, **kwargs: object) -> object:
        found = await real_find(*args, **kwargs)  # type: ignore[arg-type]
        gate.set()  # the first batch commits after the lookup has read
        assert state.committing is not None
        await state.committing
        return found

    monkeypatch.setattr(app.repo, "insert_rows", held_insert)
    one = await write_fast_rows(app.writer, state, ImportRows.from_tuples(first))
    assert one is not None and one.created == 20
    monkeypatch.setattr(app.repo, "find_client_ids", lookup_then_commit)
    two = await write_fast_rows(app.writer, state, ImportRows.from_tuples(second))
    assert two is not None and (two.created, two.duplicates, two.rejected) == (20, 1, [])
    assert two.written[0] == (20, "r19", one.written[19][2], False)
    assert two.committed is not None
    await two.committed
    loaded = await app.portfolio("o", portfolio.id, with_count=True)
    assert loaded.transaction_count == 40


async def test_no_write_is_decided_on_rows_a_failed_commit_left_out(
    app: PortfolioApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sale that only the failed batch's buys would cover: refused
    UNAVAILABLE on the book that still holds them, then, on the book rebuilt
    from the database, FAILED_PRECONDITION: never written against rows the
    database does not have."""
    portfolio = await app.create_portfolio(portfolio_row("o", "gap", 1, (), 1, False))
    assert app.writer is not None
    state = await app.state(portfolio)
    buy = TxContent(BUY, T0, "BTC", Decimal(2), price=Decimal(100))

    async def broken(*args: object, **kwargs: object) -> None:
        raise StorageUnavailable("disk went away")

    monkeypatch.setattr(app.repo, "insert_rows", broken)
    result = await write_fast_rows(
        app.writer, state, ImportRows.from_tuples([(0, fast_row(0, "b", buy))])
    )
    assert result is not None and result.committed is not None
    with pytest.raises(Unavailable):
        await result.committed
    assert state.book.balances[("BTC", "default")] == 2  # in the book, not in the database

    sell = TxContent(SELL, T0 + 1, "BTC", Decimal(1), price=Decimal(100))
    with pytest.raises(Unavailable):
        await app.writer.submit(state, [app.pending("s", sell)])
    with pytest.raises(FailedPrecondition):
        await app.record(portfolio, "s", sell)
    loaded = await app.portfolio("o", portfolio.id, with_count=True)
    assert loaded.transaction_count == 0
