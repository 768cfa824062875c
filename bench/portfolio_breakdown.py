"""Where a portfolio write's CPU goes, in-process (no gRPC): the figures behind
the findings of bench.portfolio when a write goal is missed.

* per RecordTransaction: the owner check's database read
  (``PortfolioApp.portfolio`` -> ``Repository.get_portfolio``), and
  ``PortfolioApp.record`` under 50 concurrent callers with and without it;
* per imported row: each step of ImportTransactions' fast path (core_rs
  parse_import_rows per message, bulk_import's decisions and book, its insert) and
  of the general path RecordTransaction and mixed imports take (parse, legs,
  hash, body, leg rows, book, one task per row for the market lookup, the
  client-id lookup, the insert), each timed alone over the same rows.

CPU time of this process (``time.process_time``), so other work on the
machine does not count; aiosqlite's thread is part of the process.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from bench.portfolio_ledger import ledger_rows, transaction_messages
from core_rs.portfolio_rows import ImportRows, parse_import_rows
from marketmesh.v1 import portfolio_pb2
from services.common.validation import now_ms
from services.portfolio.app import PortfolioApp, portfolio_row
from services.portfolio.book import Book, TxIndex
from services.portfolio.bulk_import import write_fast_rows
from services.portfolio.db.repository import Repository
from services.portfolio.ledger_writer import LedgerWriter, leg_rows
from services.portfolio.legs import build_legs
from services.portfolio.settings import PortfolioSettings
from services.portfolio.transactions import (
    BUY,
    TxContent,
    content_hash,
    parse_transaction,
    to_body,
)

# Rows per ImportTransactions message and per batch, as section 3 sends them.
BATCH = 5_000


def _quiet_logs() -> None:
    # The service logs every commit; this process is not measuring logging.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def _settings(data_dir: Path) -> PortfolioSettings:
    from services.common.config import CommonSettings  # noqa: PLC0415

    return PortfolioSettings(
        common=CommonSettings(
            log_level="warning", log_format="json", data_dir=data_dir, shutdown_grace_s=1.0
        ),
        address="127.0.0.1:0",
        metrics_port=0,
        pricing_address="127.0.0.1:1",
        signals_address="127.0.0.1:1",
        database_url=f"sqlite:///{data_dir / 'portfolio.sqlite3'}",
        cache_legs=5_000_000,
        max_batch=5_000,
        market_timeout_s=1.0,
        max_position_fraction=Decimal("0.2"),
        future_skew_s=300.0,
    )


def _us(seconds: float, n: int) -> float:
    return round(seconds / n * 1e6, 1)


async def record_path(calls: int = 2_000, concurrency: int = 50) -> dict[str, Any]:
    """CPU per RecordTransaction-equivalent, in-process."""
    with tempfile.TemporaryDirectory(prefix="mm-bench-breakdown-") as tmp:
        settings = _settings(Path(tmp))
        app = PortfolioApp(settings)
        app.repository = await Repository.open(settings.resolved_database_url)
        app.writer = LedgerWriter(app.repository, settings.max_batch)
        try:
            row = await app.create_portfolio(portfolio_row("bench", "b", 1, (), 1, False))
            tx = TxContent(BUY, 1_750_000_000_000, "BTC", Decimal("0.01"), price=Decimal("65000"))
            c0 = time.process_time()
            for _ in range(500):
                await app.portfolio("bench", row.id)
            read_us = _us(time.process_time() - c0, 500)
            out: dict[str, Any] = {"get_portfolio_cpu_us": read_us}
            gate = asyncio.Semaphore(concurrency)

            async def with_read(k: int) -> None:
                async with gate:
                    portfolio = await app.portfolio("bench", row.id)
                    await app.record(portfolio, f"a{k}", tx)

            async def without_read(k: int) -> None:
                async with gate:
                    await app.record(row, f"b{k}", tx)

            for name, one in (("with_owner_read", with_read), ("without_owner_read", without_read)):
                w0, c0 = time.perf_counter(), time.process_time()
                await asyncio.gather(*(one(k) for k in range(calls)))
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                out[name] = {"per_s": round(calls / wall), "cpu_us_per_tx": _us(cpu, calls)}
            out["concurrency"] = concurrency
            out["calls"] = calls
            return out
        finally:
            await app.repository.close()


def import_path(contents: Sequence[TxContent], known: frozenset[str]) -> dict[str, Any]:
    """CPU per row of each step of ImportTransactions' path, each timed alone."""
    n = len(contents)
    messages = transaction_messages(contents, "b")
    steps: dict[str, float] = {}

    def timed(name: str, work: Callable[[], Any]) -> Any:
        c0 = time.process_time()
        result = work()
        steps[name] = _us(time.process_time() - c0, n)
        return result

    parsed = timed(
        "parse_transaction",
        lambda: [
            parse_transaction(
                m,  # type: ignore[arg-type]
                base_currency="USD",
                now_ms=2**62,
                future_skew_ms=0,
                known_asset=known.__contains__,
            )
            for m in messages
        ],
    )
    built = timed("build_legs", lambda: [build_legs(t, "USD") for t in parsed])
    timed("content_hash", lambda: [content_hash(t) for t in parsed])
    timed("to_body", lambda: [to_body(t) for t in parsed])
    rows = ledger_rows("pf_b", parsed, 1, 0)
    timed("leg_rows", lambda: [leg_rows(r, b[0]) for (r, _), b in zip(rows, built, strict=True)])
    index = [
        TxIndex(r.seq, r.id, t.kind, t.time_ms, tuple(b[0]), t.income_kind)
        for (r, _), t, b in zip(rows, parsed, built, strict=True)
    ]
    one_by_one = Book("pf_b")
    timed(
        "Book.add one transaction at a time (as _admit does)",
        lambda: [one_by_one.add([(i, "")]) for i in index],
    )
    batched = Book("pf_b")
    timed(
        "Book.add of the whole batch at once (for comparison)",
        lambda: batched.add([(i, "") for i in index]),
    )

    async def one_task_per_row() -> None:
        async def valued(t: TxContent) -> TxContent:
            return t

        await asyncio.gather(*(valued(t) for t in parsed))

    timed(
        "asyncio.gather of one valued() per row (no lookup needed)",
        lambda: asyncio.run(one_task_per_row()),
    )
    steps |= asyncio.run(_storage(parsed))
    steps |= _fast_path(messages, known)
    return {"rows": n, "cpu_us_per_row": steps}


def _fast_path(messages: Sequence[Any], known: frozenset[str]) -> dict[str, float]:
    """ImportTransactions' path for these rows: core_rs parses each message,
    bulk_import decides and books each batch, then its insert commits."""
    n = len(messages)
    requests = [
        portfolio_pb2.ImportTransactionsRequest(
            portfolio_id="pf_b", transactions=messages[lo : lo + BATCH]
        ).SerializeToString()
        for lo in range(0, n, BATCH)
    ]
    now = now_ms()
    c0 = time.process_time()
    parsed = [parse_import_rows(m, "USD", now, 0, known, i * BATCH) for i, m in enumerate(requests)]
    parse_s = time.process_time() - c0
    batches = []
    for _, _, fast, slow in parsed:
        assert not slow, f"{len(slow)} rows left to Python"
        batches.append(fast)
    decide_s, commit_s = asyncio.run(_bulk(batches))
    return {
        "fast path: core_rs parse_import_rows, messages of 5,000": _us(parse_s, n),
        "fast path: bulk_import decisions and book": _us(decide_s, n),
        "fast path: its insert (Repository.insert_rows)": _us(commit_s, n),
    }


async def _bulk(batches: list[ImportRows]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="mm-bench-breakdown-") as tmp:
        app = PortfolioApp(_settings(Path(tmp)))
        await app.start()
        try:
            portfolio = await app.create_portfolio(portfolio_row("bench", "b", 1, (), 1, False))
            state = await app.state(portfolio)
            assert app.writer is not None
            decide = commit = 0.0
            for batch in batches:  # one at a time: each step alone
                c0 = time.process_time()
                result = await write_fast_rows(app.writer, state, batch)
                c1 = time.process_time()
                assert result is not None and result.committed is not None
                await result.committed
                decide += c1 - c0
                commit += time.process_time() - c1
        finally:
            await app.stop()
    return decide, commit


async def _storage(contents: Sequence[TxContent], batch: int = 5_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="mm-bench-breakdown-") as tmp:
        repo = await Repository.open(f"sqlite:///{Path(tmp) / 'p.sqlite3'}")
        try:
            portfolio = portfolio_row("bench", "b", 1, (), 1, False)
            await repo.create_portfolio(portfolio)
            rows = ledger_rows(portfolio.id, contents, 1, 0)
            n = len(rows)
            lookup = write = 0.0
            # Interleaved as ImportTransactions does: each batch's lookup sees
            # the rows written before it.
            for lo in range(0, n, batch):
                chunk = rows[lo : lo + batch]
                c0 = time.process_time()
                await repo.find_client_ids(
                    portfolio.id, [r.client_transaction_id for r, _ in chunk]
                )
                c1 = time.process_time()
                await repo.write_batch(portfolio.id, chunk[-1][0].seq + 1, chunk)
                lookup += c1 - c0
                write += time.process_time() - c1
        finally:
            await repo.close()
    return {
        "Repository.find_client_ids, batches of 5,000": _us(lookup, n),
        "Repository.write_batch, batches of 5,000": _us(write, n),
    }


async def client_id_lookup(db_path: Path, portfolio_id: str) -> dict[str, Any]:
    """What LedgerWriter's duplicate check costs on a big portfolio: wall time of
    Repository.find_client_ids for a group commit's worth of ids and for one
    IN chunk, and SQLite's plan for its query (read-only)."""
    import sqlite3  # noqa: PLC0415

    from services.portfolio.db.repository import IN_CHUNK  # noqa: PLC0415

    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        ids = [f"absent-{i}" for i in range(IN_CHUNK)]
        marks = ", ".join("?" * len(ids))
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM transactions WHERE portfolio_id = ? "
            f"AND client_transaction_id IN ({marks})",
            [portfolio_id, *ids],
        ).fetchall()
        transactions = db.execute(
            "SELECT count(*) FROM transactions WHERE portfolio_id = ?", (portfolio_id,)
        ).fetchone()[0]
    repo = await Repository.open(f"sqlite:///{db_path}")
    out: dict[str, Any] = {
        "transactions": transactions,
        "plan": "; ".join(row[-1] for row in plan),
    }
    try:
        for n in (25, IN_CHUNK):
            times = []
            for _ in range(3):  # the best of three: the first also warms the page cache
                t0 = time.perf_counter()
                await repo.find_client_ids(portfolio_id, [f"absent-{i}" for i in range(n)])
                times.append(time.perf_counter() - t0)
            out[f"ids_{n}_s"] = round(min(times), 3)
    finally:
        await repo.close()
    return out


def measure(contents: Sequence[TxContent], known: frozenset[str]) -> dict[str, Any]:
    _quiet_logs()
    return {"record": asyncio.run(record_path()), "import": import_path(contents, known)}
