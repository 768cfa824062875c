"""One ImportTransactions call: rows parsed, valued, written in atomic batches.

Each message is parsed by core_rs in one pass
(``core_rs.portfolio_rows.parse_import_rows``); the rows it vouches for stay
in core_rs and are written by :mod:`services.portfolio.bulk_import`. A message with
any row core_rs leaves to Python (invalid, valued at market, naming lots)
goes through the general path instead: every row a Pending, parsed and
valued by the same functions as RecordTransaction. Either way batches are
written in stream order, one at a time, each all or nothing; the next
message is parsed while the batch before it commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq

from core_rs.portfolio_rows import ImportRows, parse_import_rows
from marketmesh.v1 import portfolio_pb2
from services.common.errors import InvalidArgument, ServiceError
from services.common.validation import now_ms
from services.portfolio.app import BASE_CURRENCY, PortfolioApp
from services.portfolio.bulk_import import fast_pending, write_fast_rows
from services.portfolio.db.repository import PortfolioRow
from services.portfolio.ledger_writer import Pending
from services.portfolio.legs import market_needs
from services.portfolio.transactions import TxContent, parse_client_id, parse_transaction

# The first 1,000 rows that went in and the first 10,000 that did not are
# listed in the response; the counts cover every row.
IMPORT_RESULTS_SHOWN = 1_000
# Bounds the response (and memory) of an import that is rejected wholesale.
IMPORT_REJECTIONS_SHOWN = 10_000


class Import:
    def __init__(self, app: PortfolioApp, owner: str) -> None:
        self.app = app
        self.owner = owner
        self.portfolio: PortfolioRow | None = None
        self.row = 0
        # Rows waiting for their batch: core_rs-parsed ones, or (when a
        # message had a row only Python can take) Pendings. Never both.
        self.fast = ImportRows()
        self.batch: list[tuple[int, Pending]] = []
        self.accepted = self.duplicates = self.rejected = self.batches = 0
        self.results: list[portfolio_pb2.ImportRowResult] = []
        self.shown = 0
        # Rejections arrive out of row order (a message is parsed while the
        # batch before it is written): the lowest rows are kept, in a max-heap.
        self.rejections: list[tuple[int, portfolio_pb2.ImportRowResult]] = []
        # The batch being written while the next message is parsed, and the
        # database writes of columnar batches (which go on after) not yet
        # known to have committed.
        self.writing: asyncio.Future[None] | None = None
        self.commits: list[asyncio.Future[None]] = []

    async def message(self, message: portfolio_pb2.ImportTransactionsRequest) -> None:
        if self.portfolio is None:
            if not message.portfolio_id.strip():
                raise InvalidArgument("portfolio_id", "is required on the first message")
            self.portfolio = await self.app.portfolio(self.owner, message.portfolio_id)
        elif message.portfolio_id.strip() and message.portfolio_id.strip() != self.portfolio.id:
            raise InvalidArgument("portfolio_id", "must be the same on every message (or empty)")
        known = await self.app.market.known_assets()
        now = now_ms()
        skew = int(self.app.settings.future_skew_s * 1000)
        first = self.row
        # In a worker thread (core_rs parses with the GIL released): the
        # event loop meanwhile decides the batch before this one.
        _, count, fast, slow = await asyncio.to_thread(
            parse_import_rows, message.SerializeToString(), BASE_CURRENCY, now, skew, known, first
        )
        self.row += count
        if not slow and not self.batch:
            self.fast.extend(fast)
            while len(self.fast) >= self.app.settings.max_batch:
                await self._write_next()
            return
        while self.fast:
            await self._write_next()  # what came before goes first
        for row, r in fast.tuples():
            self.batch.append((row, fast_pending(row, r)))
        parsed: list[tuple[int, str, TxContent]] = []
        for position in slow:
            msg = message.transactions[position]
            row = first + position
            prefix = f"transactions[{row}]"
            try:
                client_id = parse_client_id(
                    msg.client_transaction_id, prefix + ".client_transaction_id"
                )
                tx = parse_transaction(
                    msg,
                    base_currency=BASE_CURRENCY,
                    now_ms=now,
                    future_skew_ms=skew,
                    known_asset=known.__contains__,
                    prefix=prefix,
                )
            except InvalidArgument as err:
                self._reject(row, msg.client_transaction_id, err)
                continue
            parsed.append((row, client_id, tx))
        # Only rows valued at market need pricing; the rest skip the round trip.
        needing = [i for i, (_, _, tx) in enumerate(parsed) if market_needs(tx, BASE_CURRENCY)]
        valued = [tx for _, _, tx in parsed]
        for i, tx in zip(
            needing,
            await asyncio.gather(*(self.app.valued(valued[i]) for i in needing)),
            strict=True,
        ):
            valued[i] = tx
        for (row, client_id, _), tx in zip(parsed, valued, strict=True):
            self.batch.append((row, self.app.pending(client_id, tx, f"transactions[{row}]")))
        if len(self.batch) >= self.app.settings.max_batch:
            await self._write_next()

    async def flush(self) -> None:
        """Write what is left and wait for every batch to commit."""
        while (self.fast or self.batch) and self.portfolio is not None:
            await self._write_next()
        await self._written()
        for commit in self.commits:
            await commit

    async def abandon(self) -> None:
        """The call ended (or failed): let the writes in flight finish, so no
        write outlives the call unobserved."""
        for pending in (self.writing, *self.commits):
            if pending is not None and not pending.done():
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(pending)

    def _check_commits(self) -> None:
        """Stop at the first batch that failed to commit: the batches after it
        must not go in without it (a failed write makes the app rebuild the
        book, so the next batch would not wait for it on its own)."""
        still = []
        for commit in self.commits:
            if not commit.done():
                still.append(commit)
            elif commit.exception() is not None:
                raise commit.exception()  # type: ignore[misc]
        self.commits = still

    async def _written(self) -> None:
        writing, self.writing = self.writing, None
        if writing is not None:
            await writing

    async def _write_next(self) -> None:
        await self._written()
        if self.portfolio is None:
            return
        if self.fast:
            # Batches of MM_PORTFOLIO_MAX_BATCH rows, whatever the message size.
            fast = self.fast.take(self.app.settings.max_batch)
            self.writing = asyncio.ensure_future(self._write_fast(self.portfolio, fast))
        elif self.batch:
            batch, self.batch = self.batch, []
            self.writing = asyncio.ensure_future(self._write(self.portfolio, batch))

    async def _write_fast(self, portfolio: PortfolioRow, rows: ImportRows) -> None:
        assert self.app.writer is not None
        self._check_commits()
        state = await self.app.state(portfolio)
        self._check_commits()  # one may have failed meanwhile (and the book been rebuilt)
        show = IMPORT_RESULTS_SHOWN - self.shown
        result = await write_fast_rows(self.app.writer, state, rows, show)
        if result is None:  # backdated: the general path's whole-ledger check
            await self._write(portfolio, [(row, fast_pending(row, r)) for row, r in rows.tuples()])
            return
        self.batches += 1
        if result.committed is not None:
            self.commits.append(result.committed)
        for row, client_id, err in result.rejected:
            self._reject(row, client_id, err)
        self.accepted += result.created
        self.duplicates += result.duplicates
        for row, client_id, tx_id, created in result.written:
            self._show(row, client_id, tx_id, created)

    async def _write(self, portfolio: PortfolioRow, batch: list[tuple[int, Pending]]) -> None:
        self._check_commits()
        # Written in time order: a ledger exported newest-first still imports in one pass.
        batch.sort(key=lambda item: (item[1].content.time_ms, item[0]))
        await self.app.record_many(portfolio, [p for _, p in batch])
        self.batches += 1
        for row, pending in sorted(batch, key=lambda item: item[0]):
            err = pending.future.exception()
            if err is not None:
                if not isinstance(err, ServiceError | ValueError):
                    raise err
                self._reject(row, pending.client_id, err)
                continue
            outcome = pending.future.result()
            if outcome.created:
                self.accepted += 1
            else:
                self.duplicates += 1
            self._show(row, pending.client_id, outcome.row.id, outcome.created)

    def _show(self, row: int, client_id: str, tx_id: str, created: bool) -> None:
        """Lists a row written (or found written), while fewer than
        IMPORT_RESULTS_SHOWN are."""
        if self.shown < IMPORT_RESULTS_SHOWN:
            status = (
                portfolio_pb2.IMPORT_ROW_STATUS_ACCEPTED
                if created
                else portfolio_pb2.IMPORT_ROW_STATUS_DUPLICATE
            )
            self.shown += 1
            self.results.append(
                portfolio_pb2.ImportRowResult(
                    row=row, client_transaction_id=client_id, status=status, transaction_id=tx_id
                )
            )

    def _reject(self, row: int, client_id: str, err: Exception) -> None:
        self.rejected += 1
        if len(self.rejections) >= IMPORT_REJECTIONS_SHOWN and -self.rejections[0][0] < row:
            return
        field, reason = "", str(err)
        if isinstance(err, InvalidArgument):
            field, reason = err.violations[0]
            if len(err.violations) > 1:
                reason += "; " + "; ".join(f"{f}: {r}" for f, r in err.violations[1:])
        elif isinstance(err, ServiceError):
            reason = err.message
        result = portfolio_pb2.ImportRowResult(
            row=row,
            client_transaction_id=client_id,
            status=portfolio_pb2.IMPORT_ROW_STATUS_REJECTED,
            field=field,
            reason=reason,
        )
        if len(self.rejections) < IMPORT_REJECTIONS_SHOWN:
            heapq.heappush(self.rejections, (-row, result))
        else:
            heapq.heapreplace(self.rejections, (-row, result))

    def response(self) -> portfolio_pb2.ImportTransactionsResponse:
        if self.portfolio is None:
            raise InvalidArgument("portfolio_id", "is required on the first message")
        return portfolio_pb2.ImportTransactionsResponse(
            accepted=self.accepted,
            duplicates=self.duplicates,
            rejected=self.rejected,
            results=sorted([*self.results, *(r for _, r in self.rejections)], key=lambda r: r.row),
            batches=self.batches,
        )
