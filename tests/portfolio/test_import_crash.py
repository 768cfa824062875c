"""A portfolio server killed with SIGKILL in the middle of an import loses no committed batch
and keeps no partial one; re-running the import finishes the job exactly once.

The server is a real subprocess (``python -m services.portfolio``) on SQLite in
a temporary MM_DATA_DIR, with MM_PORTFOLIO_MAX_BATCH=500 so each 500-row
stream message is one atomic batch. Pricing is the in-process test server
(the portfolio asks it which assets exist).

The ledger (20,000 rows, ten minutes apart, every row priced so no market
lookup happens): for k = 0 .. 9,999,

    row 2k:     BUY  2 BTC at 100 + k
    row 2k + 1: SELL 1 BTC at 200 + k

FIFO, by hand: the units bought so far queue up two per lot, so sale k takes
unit k, which belongs to lot floor(k / 2) bought at 100 + floor(k / 2).

    proceeds = sum(200 + k)            = 2,000,000 + 49,995,000 = 51,995,000
    cost     = sum(100 + floor(k / 2)) = 1,000,000 + 2 x (0 + .. + 4,999)
                                       = 1,000,000 + 24,995,000 = 25,995,000
    gain     = 26,000,000, all short term (no unit is held more than ~70 days)

Left: lots 5,000 .. 9,999, two units each: 10,000 BTC costing
2 x (5,000 x 100 + (5,000 + .. + 9,999)) = 2 x (500,000 + 37,497,500) = 75,995,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from marketmesh.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.common.validation import now_ms
from tests.portfolio.harness import ALICE, ALICE_MD, DEAD_ADDRESS, Client, D, tx
from tests.pricing.conftest import StartPricing

P = portfolio_pb2
BUY, SELL = P.TRANSACTION_KIND_BUY, P.TRANSACTION_KIND_SELL
ROWS = 20_000
BATCH = 500
MINUTE_MS = 60_000
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    address: str
    channel: grpc.aio.Channel
    stub: portfolio_pb2_grpc.PortfolioServiceStub

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 10)


async def start_server(data_dir: Path, pricing_address: str, log: Path) -> ServerProcess:
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "MM_DATA_DIR": str(data_dir),
        "MM_PORTFOLIO_ADDR": address,
        "MM_PRICING_ADDR": pricing_address,
        "MM_SIGNALS_ADDR": DEAD_ADDRESS,
        "MM_AUTH_TOKENS": f"alice={ALICE}",
        "MM_PORTFOLIO_MAX_BATCH": str(BATCH),
        "MM_PORTFOLIO_METRICS_PORT": "0",
        "MM_LOG_LEVEL": "warning",
        "MM_LOG_FORMAT": "json",
        "MM_DATABASE_URL": "",
    }
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.portfolio", cwd=REPO, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    channel = grpc.aio.insecure_channel(address)
    server = ServerProcess(
        process, address, channel, portfolio_pb2_grpc.PortfolioServiceStub(channel)
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        if process.returncode is not None:
            raise AssertionError(f"server exited with {process.returncode}: {read(log)}")
        try:
            await server.stub.ListPortfolios(
                P.ListPortfoliosRequest(), metadata=ALICE_MD, timeout=1
            )
            return server
        except grpc.aio.AioRpcError:
            if loop.time() > deadline:
                raise AssertionError(f"server never became ready: {read(log)}") from None
            await asyncio.sleep(0.1)


@pytest.fixture
async def servers() -> AsyncIterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.process.returncode is None:
            with contextlib.suppress(Exception):
                await server.kill()
        await server.channel.close()


def ledger(start_ms: int) -> Iterator[P.Transaction]:
    for k in range(ROWS // 2):
        t = start_ms + 2 * k * 10 * MINUTE_MS
        yield tx(BUY, "BTC", "2", t, price=str(100 + k), client_id=f"r{2 * k:05d}")
        yield tx(
            SELL, "BTC", "1", t + 10 * MINUTE_MS, price=str(200 + k), client_id=f"r{2 * k + 1:05d}"
        )


def messages(pid: str, rows: list[P.Transaction]) -> list[P.ImportTransactionsRequest]:
    return [
        P.ImportTransactionsRequest(
            portfolio_id=pid if i == 0 else "", transactions=rows[i : i + BATCH]
        )
        for i in range(0, len(rows), BATCH)
    ]


async def count_of(stub: portfolio_pb2_grpc.PortfolioServiceStub, pid: str) -> int:
    response = await stub.GetPortfolio(P.GetPortfolioRequest(portfolio_id=pid), metadata=ALICE_MD)
    return response.portfolio.transaction_count


async def client_ids(stub: portfolio_pb2_grpc.PortfolioServiceStub, pid: str) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = await stub.ListTransactions(
            P.ListTransactionsRequest(portfolio_id=pid, page_size=1000, page_token=token),
            metadata=ALICE_MD,
        )
        ids += [t.client_transaction_id for t in page.transactions]
        token = page.next_page_token
        if not token:
            return ids


async def import_and_kill(
    server: ServerProcess,
    pid: str,
    batches: list[P.ImportTransactionsRequest],
    after_rows: int,
    delay_s: float,
) -> int:
    """Stream the import; SIGKILL the server once ``after_rows`` are committed (plus a
    delay); the rows seen committed then."""
    killed = asyncio.Event()

    async def requests() -> AsyncIterator[P.ImportTransactionsRequest]:
        for i, message in enumerate(batches):
            if i == 30:
                await killed.wait()  # never let the import finish before the kill
            yield message

    call = server.stub.ImportTransactions(requests(), metadata=ALICE_MD)
    while (seen := await count_of(server.stub, pid)) < after_rows:  # noqa: ASYNC110 (polls a server)
        await asyncio.sleep(0.01)
    await asyncio.sleep(delay_s)
    await server.kill()
    killed.set()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    # The connection is gone: UNAVAILABLE, or, when the client was writing the
    # next message at that moment, grpc.aio's INTERNAL for the failed send.
    err = info.value
    assert err.code() == grpc.StatusCode.UNAVAILABLE or (
        err.code() == grpc.StatusCode.INTERNAL
        and "SendMessageOperation" in err.debug_error_string()
    ), err
    return seen


async def test_sigkill_mid_import_keeps_whole_batches_and_a_rerun_completes(
    tmp_path: Path, start_pricing_server: StartPricing, servers: list[ServerProcess]
) -> None:
    pricing = await start_pricing_server(backfill_days=0, backfill_fine_days=0)
    data_dir, log = tmp_path / "portfolio", tmp_path / "portfolio.log"
    server = await start_server(data_dir, pricing.target, log)
    servers.append(server)
    client = Client(server.stub)
    pid = await client.create("crash")
    # A second portfolio with one recorded transaction, to retry after the restart.
    other = await client.create("other")
    manual = P.RecordTransactionRequest(
        portfolio_id=other,
        client_transaction_id="manual-1",
        transaction=tx(BUY, "BTC", "0.5", now_ms() - MINUTE_MS, price="60000"),
    )
    first = await client.stub.RecordTransaction(manual, metadata=ALICE_MD)
    assert first.created

    rows = list(ledger(now_ms() - 150 * 24 * 60 * MINUTE_MS))
    batches = messages(pid, rows)

    # Crash 1: killed as soon as three batches are seen committed (the fourth is
    # being parsed or written). Crash 2: the re-run killed a little after five more
    # batches, somewhere else in a batch's life.
    committed = 0
    for extra, delay_s in ((3 * BATCH, 0.0), (5 * BATCH, 0.035)):
        seen = await import_and_kill(server, pid, batches, committed + extra, delay_s)
        server = await start_server(data_dir, pricing.target, log)
        servers.append(server)
        before, committed = committed, await count_of(server.stub, pid)
        print(f"killed with {seen} rows seen committed; {committed} after the restart")
        # Whole batches only, at least what was seen before the kill, never all of it.
        assert committed % BATCH == 0 and before < seen <= committed < ROWS, (seen, committed)
        # And they are the first rows of the stream, in order, nothing else.
        assert await client_ids(server.stub, pid) == [f"r{i:05d}" for i in range(committed)]
    client = Client(server.stub)

    # The recorded transaction survived; its retry answers with the original.
    retry = await server.stub.RecordTransaction(manual, metadata=ALICE_MD)
    assert not retry.created and retry.transaction.id == first.transaction.id

    # Re-run the whole import: what is in comes back DUPLICATE, the rest ACCEPTED.
    async def again() -> AsyncIterator[P.ImportTransactionsRequest]:
        for message in batches:
            yield message

    response = await server.stub.ImportTransactions(again(), metadata=ALICE_MD)
    assert (response.duplicates, response.accepted, response.rejected) == (
        committed,
        ROWS - committed,
        0,
    )
    statuses = {r.row: r.status for r in response.results}  # the first 1,000 rows
    assert all(
        statuses[row]
        == (P.IMPORT_ROW_STATUS_DUPLICATE if row < committed else P.IMPORT_ROW_STATUS_ACCEPTED)
        for row in statuses
    )
    assert await count_of(server.stub, pid) == ROWS

    gains = await client.gains(pid, page_size=1)
    assert (D(gains.total.proceeds), D(gains.total.cost_basis), D(gains.total.gain)) == (
        D("51995000"),
        D("25995000"),
        D("26000000"),
    )
    assert gains.total.count == ROWS // 2
    assert gains.long_term.count == 0 and D(gains.short_term.gain) == D("26000000")
    holdings = await client.holdings(pid, skip_market=True)
    assert [(h.asset, D(h.quantity), D(h.cost_basis)) for h in holdings.holdings] == [
        ("BTC", Decimal(10_000), D("75995000"))
    ]
