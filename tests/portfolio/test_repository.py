"""The portfolio repository on SQLite and PostgreSQL (every test runs on both).

Expected values come from the rows the tests build and from brute force over
them in Python (filtering, sorting, paging), never from the repository itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
from collections.abc import Sequence

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from services.portfolio.db import migrate
from services.portfolio.db.engine import create_engine
from services.portfolio.db.repository import (
    INSERT_FIELDS,
    DuplicateClientId,
    LegRow,
    PortfolioNotFound,
    PortfolioRow,
    Repository,
    StaleWrite,
    TransactionRow,
    _portfolio_values,
    encode_legs,
)
from services.portfolio.db.schema import metadata, portfolios, transactions

OWNER = "alice"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def portfolio(pid: str, owner: str = OWNER, **changes: object) -> PortfolioRow:
    values: dict[str, object] = {
        "id": pid,
        "owner": owner,
        "name": "main",
        "base_currency": "USD",
        "cost_basis_method": 1,
        "method_changes": ((2025, 3), (2026, 1)),
        "pool": 1,
        "allow_negative": False,
        "create_ms": T0,
        "update_ms": T0,
        "next_seq": 1,
    }
    values.update(changes)
    return PortfolioRow(**values)  # type: ignore[arg-type]


def tx(
    pid: str,
    seq: int,
    *,
    time_ms: int | None = None,
    kind: int = 1,
    asset: str = "BTC",
    wallet: str = "main",
    to_asset: str = "",
    to_wallet: str = "",
    client_id: str | None = None,
    valuation: str = "",
) -> TransactionRow:
    body = json.dumps({"seq": seq, "asset": asset, "quantity": f"{seq}.5", "note": "n" * 30})
    return TransactionRow(
        portfolio_id=pid,
        seq=seq,
        id=f"tx_{pid[-6:]}{seq:018x}",
        client_transaction_id=client_id if client_id is not None else f"client-{seq}",
        content_hash=f"hash-{seq}",
        kind=kind,
        time_ms=T0 + seq * 60_000 if time_ms is None else time_ms,
        asset=asset,
        wallet=wallet,
        to_asset=to_asset,
        to_wallet=to_wallet,
        body=body,
        valuation=valuation,
        record_ms=T0 + 1,
    )


def leg(row: TransactionRow, n: int, qty: str = "1.5", amount: str | None = "100.25") -> LegRow:
    return LegRow(
        portfolio_id=row.portfolio_id,
        seq=row.seq,
        leg=n,
        kind=row.kind,
        time_ms=row.time_ms,
        asset=row.asset if n == 0 else row.to_asset or "USD",
        wallet=row.wallet,
        to_wallet=row.to_wallet,
        qty=qty,
        amount=amount,
        selections=None if n else json.dumps([[1, 0, "0.5"]]),
    )


def with_legs(
    rows: Sequence[TransactionRow], count: int = 1
) -> list[tuple[TransactionRow, list[LegRow]]]:
    return [(row, [leg(row, n) for n in range(count)]) for row in rows]


async def new_portfolio(repo: Repository, pid: str = "pf_" + "0" * 24, **changes: object) -> str:
    await repo.create_portfolio(portfolio(pid, **changes))
    return pid


async def count(repo: Repository, table: object, pid: str) -> int:
    async with repo.engine.connect() as conn:
        column = table.c.id if table is portfolios else table.c.portfolio_id  # type: ignore[attr-defined]
        return int(await conn.scalar(select(func.count()).select_from(table).where(column == pid)))


async def leg_count(repo: Repository, pid: str) -> int:
    return len((await all_ledger(repo, pid))[1])


async def all_ledger(
    repo: Repository, pid: str, chunk: int = 50_000
) -> tuple[list[TransactionRow], list[LegRow]]:
    txs: list[TransactionRow] = []
    leg_rows: list[LegRow] = []
    async for chunk_txs, chunk_legs in repo.load_ledger(pid, chunk):
        txs.extend(chunk_txs)
        leg_rows.extend(chunk_legs)
    return txs, leg_rows


# -- schema and migrations ---------------------------------------------------


async def test_migrations_build_exactly_the_schema(repository: Repository) -> None:
    """The migrations are hand-written: Alembic's own comparison finds no
    difference between what it built and schema.py (columns, types,
    nullability, indexes, unique constraints, foreign keys)."""

    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        # remove_table: alembic_version (and nothing else: 0002 drops legs).
        return [
            d
            for d in compare_metadata(context, metadata)
            if d[0] != "remove_table" or d[1].name != "alembic_version"
        ]

    async with repository.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.current_revision(repository.engine) == migrate.head_revision()


async def test_0002_moves_the_legs_of_an_existing_ledger_into_its_rows(
    database_url: str,
) -> None:
    """A ledger written under 0001 (legs in their own table) reads the same
    after 0002, and going back down restores the legs table row for row."""
    pid = "pf_" + "7" * 24
    rows = [tx(pid, 1), tx(pid, 2, kind=2, to_asset="ETH"), tx(pid, 3, valuation="unknown")]
    old_legs = [
        *(leg(rows[0], 0),),
        *(leg(rows[1], n) for n in range(2)),
        leg(rows[2], 0, qty="0.000000000000000001", amount=None),
    ]
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as conn:
            await conn.execute(portfolios.insert().values(_portfolio_values(portfolio(pid))))
            for row in rows:
                await conn.execute(
                    text(
                        "INSERT INTO transactions VALUES (:portfolio_id, :seq, :id, "
                        ":client_transaction_id, :content_hash, :kind, :time_ms, :asset, "
                        ":wallet, :to_asset, :to_wallet, :body, :valuation, :record_ms)"
                    ),
                    dataclasses.asdict(row),
                )
            for g in old_legs:
                await conn.execute(
                    text(
                        "INSERT INTO legs VALUES (:portfolio_id, :seq, :leg, :kind, :time_ms, "
                        ":asset, :wallet, :to_wallet, :qty, :amount, :selections)"
                    ),
                    dataclasses.asdict(g),
                )
        await migrate.upgrade(engine)
        repo = Repository(engine)
        assert await all_ledger(repo, pid) == (rows, old_legs)

        def down(sync_conn: object) -> list[tuple[object, ...]]:
            config = migrate.alembic_config()
            config.attributes["connection"] = sync_conn
            command.downgrade(config, "0001")
            return list(sync_conn.execute(text("SELECT * FROM legs ORDER BY seq, leg")))  # type: ignore[attr-defined]

        async with engine.begin() as conn:
            restored = await conn.run_sync(down)
        assert [LegRow(*r) for r in restored] == old_legs
    finally:
        await engine.dispose()


async def test_migrating_twice_is_a_no_op(database_url: str) -> None:
    repo = await Repository.open(database_url)
    pid = await new_portfolio(repo)
    await repo.write_batch(pid, 3, with_legs([tx(pid, 1), tx(pid, 2)]))
    await migrate.upgrade(repo.engine)
    await repo.close()

    again = await Repository.open(database_url)
    try:
        assert await migrate.current_revision(again.engine) == migrate.head_revision()
        async with again.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [v[0] for v in versions] == [migrate.head_revision()]
        loaded = await again.get_portfolio(OWNER, pid, with_count=True)
        assert loaded is not None
        assert (loaded.next_seq, loaded.transaction_count) == (3, 2)
        assert await leg_count(again, pid) == 2
    finally:
        await again.close()


async def test_concurrent_start_ups_migrate_once(database_url: str) -> None:
    repos = await asyncio.gather(*(Repository.open(database_url) for _ in range(3)))
    try:
        for repo in repos:
            assert await migrate.current_revision(repo.engine) == migrate.head_revision()
    finally:
        for repo in repos:
            await repo.close()


# -- portfolios ----------------------------------------------------------------


async def test_portfolio_round_trip_and_ownership(repository: Repository) -> None:
    row = portfolio("pf_" + "a1" * 12, allow_negative=True, pool=2, cost_basis_method=5)
    await repository.create_portfolio(row)
    assert await repository.get_portfolio(OWNER, row.id) == row
    assert await repository.get_portfolio("mallory", row.id) is None
    assert await repository.get_portfolio(OWNER, "pf_" + "b" * 24) is None
    empty = await repository.get_portfolio(OWNER, row.id, with_count=True)
    assert empty is not None and empty.transaction_count == 0
    assert empty.method_changes == ((2025, 3), (2026, 1))
    assert empty.allow_negative is True


async def test_list_portfolios_pages_by_id(repository: Repository) -> None:
    rng = random.Random(5)
    ids = ["pf_" + "".join(rng.choice("0123456789abcdef") for _ in range(24)) for _ in range(11)]
    for pid in ids:
        await repository.create_portfolio(portfolio(pid))
    await repository.create_portfolio(portfolio("pf_" + "f" * 24, owner="bob"))
    await repository.write_batch(ids[0], 4, with_legs([tx(ids[0], s) for s in (1, 2, 3)]))

    seen: list[str] = []
    after: str | None = None
    while True:
        page = await repository.list_portfolios(OWNER, after, 4)
        assert len(page) <= 4
        if not page:
            break
        seen.extend(p.id for p in page)
        after = page[-1].id
    assert seen == sorted(ids)

    counted = await repository.list_portfolios(OWNER, None, 100, with_count=True)
    assert {p.id: p.transaction_count for p in counted} == {
        pid: 3 if pid == ids[0] else 0 for pid in ids
    }
    assert [p.id for p in await repository.list_portfolios("bob", None, 10)] == ["pf_" + "f" * 24]
    assert await repository.list_portfolios("nobody", None, 10) == []


async def test_update_portfolio_changes_settings_not_next_seq(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    await repository.write_batch(pid, 6, with_legs([tx(pid, 5)]))
    changed = portfolio(
        pid,
        name="renamed",
        cost_basis_method=3,
        method_changes=(),
        allow_negative=True,
        update_ms=T0 + 99,
        next_seq=1,  # stale in the caller's copy: must not move the real one
        create_ms=1,
    )
    await repository.update_portfolio(changed)
    got = await repository.get_portfolio(OWNER, pid)
    assert got == portfolio(
        pid,
        name="renamed",
        cost_basis_method=3,
        method_changes=(),
        allow_negative=True,
        update_ms=T0 + 99,
        next_seq=6,
    )
    with pytest.raises(PortfolioNotFound):
        await repository.update_portfolio(portfolio(pid, owner="mallory"))
    with pytest.raises(PortfolioNotFound):
        await repository.update_portfolio(portfolio("pf_" + "c" * 24))


async def test_delete_portfolio_cascades(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    other = await new_portfolio(repository, "pf_" + "1" * 24)
    await repository.write_batch(pid, 21, with_legs([tx(pid, s) for s in range(1, 21)], 2))
    await repository.write_batch(other, 3, with_legs([tx(other, s) for s in (1, 2)], 2))

    assert await repository.delete_portfolio("mallory", pid) is False
    assert await count(repository, transactions, pid) == 20
    assert await repository.delete_portfolio(OWNER, pid) is True
    assert await repository.get_portfolio(OWNER, pid) is None
    assert await count(repository, transactions, pid) == 0
    assert await leg_count(repository, pid) == 0
    assert await repository.delete_portfolio(OWNER, pid) is False
    # The neighbour is untouched.
    assert await count(repository, transactions, other) == 2
    assert await leg_count(repository, other) == 4


async def test_foreign_keys_cascade_in_the_database(repository: Repository) -> None:
    """The ON DELETE CASCADE constraints themselves (SQLite needs
    foreign_keys=ON on every connection for them to act)."""
    pid = await new_portfolio(repository)
    await repository.write_batch(pid, 4, with_legs([tx(pid, s) for s in (1, 2, 3)], 2))
    async with repository.engine.begin() as conn:
        await conn.execute(portfolios.delete().where(portfolios.c.id == pid))
    assert await count(repository, transactions, pid) == 0
    assert await leg_count(repository, pid) == 0


# -- writing transactions ------------------------------------------------------


async def test_write_batch_and_point_reads(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    rows = [tx(pid, s, kind=3, to_asset="ETH", to_wallet="cold") for s in range(1, 8)]
    await repository.write_batch(pid, 8, with_legs(rows, 2))

    got = await repository.get_portfolio(OWNER, pid, with_count=True)
    assert got is not None and (got.next_seq, got.transaction_count) == (8, 7)
    assert await repository.get_transaction(pid, rows[3].id) == rows[3]
    assert await repository.get_transaction("pf_" + "9" * 24, rows[3].id) is None
    assert await repository.get_transaction(pid, "tx_missing") is None
    assert await repository.transactions_by_seq(pid, [7, 2, 2, 99]) == {7: rows[6], 2: rows[1]}
    assert await repository.transactions_by_seq(pid, []) == {}

    found = await repository.find_client_ids(pid, ["client-3", "nope", "client-5"])
    assert found == {"client-3": rows[2], "client-5": rows[4]}


async def test_exact_decimal_strings_survive(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    row = tx(pid, 1)
    amounts = [
        ("0.000000000000000001", "12345678901234567890.123456789012345678"),
        ("-0.10", None),
        ("100000000000000000000", "0"),
    ]
    leg_rows = [
        LegRow(pid, 1, n, 1, row.time_ms, "BTC", "w", "", qty, amount, None)
        for n, (qty, amount) in enumerate(amounts)
    ]
    await repository.write_batch(pid, 2, [(row, leg_rows)])
    _, loaded = await all_ledger(repository, pid)
    assert [(lg.qty, lg.amount) for lg in loaded] == amounts


async def test_find_client_ids_in_batches_of_fifty_thousand(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    rows = [tx(pid, s, client_id=f"import-{s:06d}") for s in range(1, 1_201)]
    await repository.write_batch(pid, 1_201, with_legs(rows))
    asked = [f"import-{n:06d}" for n in range(0, 50_000)]
    random.Random(1).shuffle(asked)
    found = await repository.find_client_ids(pid, asked)
    assert found == {row.client_transaction_id: row for row in rows}


async def test_duplicate_client_id_leaves_nothing_written(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    await repository.write_batch(pid, 3, with_legs([tx(pid, 1), tx(pid, 2)]))

    batch = [tx(pid, s) for s in range(3, 10)] + [tx(pid, 10, client_id="client-2")]
    with pytest.raises(DuplicateClientId) as raised:
        await repository.write_batch(pid, 11, with_legs(batch, 2))
    assert raised.value.client_id == "client-2"

    got = await repository.get_portfolio(OWNER, pid, with_count=True)
    assert got is not None and (got.next_seq, got.transaction_count) == (3, 2)
    assert await leg_count(repository, pid) == 2
    assert await repository.find_client_ids(pid, [f"client-{s}" for s in range(3, 10)]) == {}


async def test_duplicate_client_id_within_one_batch(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    batch = [tx(pid, 1, client_id="same"), tx(pid, 2), tx(pid, 3, client_id="same")]
    with pytest.raises(DuplicateClientId) as raised:
        await repository.write_batch(pid, 4, with_legs(batch))
    assert raised.value.client_id == "same"
    assert await count(repository, transactions, pid) == 0


async def test_a_deleted_client_id_can_be_reused_in_the_same_batch(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    await repository.write_batch(pid, 2, with_legs([tx(pid, 1, client_id="x")]))
    await repository.write_batch(pid, 3, with_legs([tx(pid, 2, client_id="x")]), deletes=[1])
    assert (await repository.find_client_ids(pid, ["x"]))["x"].seq == 2


async def test_stale_writes_are_refused_whole(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    await repository.write_batch(pid, 4, with_legs([tx(pid, s) for s in (1, 2, 3)]))

    # seq 3 is taken (another writer's row): the new rows before it go too.
    taken = [tx(pid, 4, client_id="a"), tx(pid, 3, client_id="b")]
    with pytest.raises(StaleWrite):
        await repository.write_batch(pid, 5, with_legs(taken))
    # next_seq may not go backwards.
    with pytest.raises(StaleWrite):
        await repository.write_batch(pid, 3, [])
    # Replacing or deleting a seq that is not there.
    with pytest.raises(StaleWrite):
        await repository.write_batch(pid, 4, [], replaces=with_legs([tx(pid, 3)]), deletes=[9])
    with pytest.raises(StaleWrite):
        await repository.write_batch(pid, 5, with_legs([tx(pid, 4, client_id="c")]), deletes=[1, 8])
    with pytest.raises(PortfolioNotFound):
        await repository.write_batch("pf_" + "d" * 24, 2, with_legs([tx("pf_" + "d" * 24, 1)]))

    got = await repository.get_portfolio(OWNER, pid, with_count=True)
    assert got is not None and (got.next_seq, got.transaction_count) == (4, 3)
    assert await repository.find_client_ids(pid, ["a", "b", "c"]) == {}


async def test_caller_bugs_are_value_errors(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    row = tx(pid, 1)
    with pytest.raises(ValueError, match="next_seq"):
        await repository.write_batch(pid, 1, with_legs([row]))
    with pytest.raises(ValueError, match="belongs"):
        await repository.write_batch("pf_" + "e" * 24, 2, with_legs([row]))
    with pytest.raises(ValueError, match="leg"):
        await repository.write_batch(pid, 3, [(row, [leg(tx(pid, 2), 0)])])
    assert await count(repository, transactions, pid) == 0


async def test_replace_and_delete(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    rows = [tx(pid, s) for s in range(1, 6)]
    await repository.write_batch(pid, 6, with_legs(rows, 2))

    amended = TransactionRow(
        **{
            **{f: getattr(rows[1], f) for f in rows[1].__slots__},  # type: ignore[attr-defined]
            "asset": "ETH",
            "body": '{"amended": true}',
            "content_hash": "hash-amended",
            "valuation": "market",
        }
    )
    new_legs = [leg(amended, 0, qty="7", amount=None)]
    fresh = tx(pid, 6)
    await repository.write_batch(
        pid, 7, with_legs([fresh], 1), replaces=[(amended, new_legs)], deletes=[4, 5]
    )

    txs, leg_rows = await all_ledger(repository, pid)
    expected = [rows[0], amended, rows[2], fresh]
    assert txs == expected
    assert leg_rows == [
        leg(rows[0], 0),
        leg(rows[0], 1),
        *new_legs,
        leg(rows[2], 0),
        leg(rows[2], 1),
        leg(fresh, 0),
    ]
    assert await repository.get_transaction(pid, amended.id) == amended
    assert await repository.get_transaction(pid, rows[3].id) is None


async def test_set_valuations(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    rows = [tx(pid, s, valuation="unknown") for s in range(1, 5)]
    await repository.write_batch(pid, 5, [(r, [leg(r, 0, amount=None)]) for r in rows])

    priced = [leg(rows[1], 0, amount="42.5"), leg(rows[1], 1, amount="0.5")]
    await repository.set_valuations(
        pid, [(2, '{"priced": 2}', "market", priced), (4, '{"priced": 4}', "market", [])]
    )
    by_seq = await repository.transactions_by_seq(pid, [1, 2, 3, 4])
    assert [(r.body, r.valuation) for r in by_seq.values()] == [
        (rows[0].body, "unknown"),
        ('{"priced": 2}', "market"),
        (rows[2].body, "unknown"),
        ('{"priced": 4}', "market"),
    ]
    _, leg_rows = await all_ledger(repository, pid)
    assert leg_rows == [leg(rows[0], 0, amount=None), *priced, leg(rows[2], 0, amount=None)]

    with pytest.raises(StaleWrite):
        await repository.set_valuations(pid, [(1, "{}", "market", []), (77, "{}", "market", [])])
    assert (await repository.transactions_by_seq(pid, [1]))[1].valuation == "unknown"


async def test_concurrent_batches_on_one_portfolio(repository: Repository) -> None:
    """Two writers that both think seqs 1-50 are free: one commits, the other
    gets StaleWrite and writes nothing."""
    pid = await new_portfolio(repository)
    first = with_legs([tx(pid, s, client_id=f"a{s}") for s in range(1, 51)])
    second = with_legs([tx(pid, s, client_id=f"b{s}") for s in range(1, 51)])
    results = await asyncio.gather(
        repository.write_batch(pid, 51, first),
        repository.write_batch(pid, 51, second),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["NoneType", "StaleWrite"]
    txs, _ = await all_ledger(repository, pid)
    winner = "a" if results[0] is None else "b"
    assert [t.client_transaction_id for t in txs] == [f"{winner}{s}" for s in range(1, 51)]


# -- reading transactions ------------------------------------------------------


async def test_keyset_paging_visits_every_row_once(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    rng = random.Random(11)
    assets, wallets = ["BTC", "ETH", "SOL"], ["main", "cold", "exchange"]
    rows = []
    for seq in range(1, 401):
        kind = rng.choice([1, 2, 3, 6])
        rows.append(
            tx(
                pid,
                seq,
                # Few distinct times: many rows share one, so the seq tie-break matters.
                time_ms=T0 + rng.randrange(40) * 3_600_000,
                kind=kind,
                asset=rng.choice(assets),
                wallet=rng.choice(wallets),
                to_asset=rng.choice(assets) if kind == 3 else "",
                to_wallet=rng.choice(wallets) if kind == 6 else "",
            )
        )
    await repository.write_batch(pid, 401, with_legs(rows))
    await repository.write_batch(pid, 401, [], deletes=[7, 100, 250])
    live = [r for r in rows if r.seq not in {7, 100, 250}]

    cases: list[dict[str, object]] = [
        {},
        {"asset": "ETH"},
        {"wallet": "cold"},
        {"kind": 3},
        {"start_ms": T0 + 10 * 3_600_000, "end_ms": T0 + 20 * 3_600_000},
        {"asset": "SOL", "wallet": "main", "kind": 6, "start_ms": T0 + 3_600_000},
        {"asset": "DOGE"},
    ]
    for filters in cases:
        expected = sorted(
            (
                r
                for r in live
                if ("asset" not in filters or filters["asset"] in (r.asset, r.to_asset))
                and ("wallet" not in filters or filters["wallet"] in (r.wallet, r.to_wallet))
                and ("kind" not in filters or r.kind == filters["kind"])
                and r.time_ms >= filters.get("start_ms", 0)  # type: ignore[operator]
                and r.time_ms < filters.get("end_ms", 2**62)  # type: ignore[operator]
            ),
            key=lambda r: (r.time_ms, r.seq),
        )
        seen: list[TransactionRow] = []
        after: tuple[int, int] | None = None
        while True:
            page = await repository.list_transactions(
                pid,
                asset=filters.get("asset"),  # type: ignore[arg-type]
                wallet=filters.get("wallet"),  # type: ignore[arg-type]
                kind=filters.get("kind"),  # type: ignore[arg-type]
                start_ms=filters.get("start_ms"),  # type: ignore[arg-type]
                end_ms=filters.get("end_ms"),  # type: ignore[arg-type]
                after=after,
                limit=37,
            )
            assert len(page) <= 37
            if not page:
                break
            seen.extend(page)
            after = (page[-1].time_ms, page[-1].seq)
        assert seen == expected, filters


async def test_load_ledger_streams_in_seq_order(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    rng = random.Random(3)
    rows = [tx(pid, s, time_ms=T0 + rng.randrange(10**9)) for s in range(1, 1_001)]
    batch = [(r, [leg(r, n) for n in range(rng.randrange(4))]) for r in rows]
    await repository.write_batch(pid, 1_001, batch)
    deleted = set(rng.sample(range(1, 1_001), 50))
    await repository.write_batch(pid, 1_001, [], deletes=sorted(deleted))
    live = [(r, lg) for r, lg in batch if r.seq not in deleted]

    chunks = [c async for c in repository.load_ledger(pid, chunk=64)]
    assert [len(txs) for txs, _ in chunks] == [64] * 14 + [950 - 14 * 64]
    for txs, leg_rows in chunks:
        # Each chunk carries exactly its own transactions' legs.
        assert {lg.seq for lg in leg_rows} <= {t.seq for t in txs}
    assert [t for txs, _ in chunks for t in txs] == [r for r, _ in live]
    assert [lg for _, leg_rows in chunks for lg in leg_rows] == [
        lg for _, lgs in live for lg in lgs
    ]
    assert [c async for c in repository.load_ledger("pf_" + "7" * 24)] == []


async def test_load_ledger_reads_one_snapshot(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    await repository.write_batch(pid, 11, with_legs([tx(pid, s) for s in range(1, 11)]))
    seqs: list[int] = []
    async with contextlib.aclosing(repository.load_ledger(pid, chunk=4)) as chunks:
        async for txs, _ in chunks:
            if not seqs:
                # Committed while the reader is between chunks: not part of its snapshot.
                await repository.write_batch(
                    pid, 21, with_legs([tx(pid, s) for s in range(11, 21)]), deletes=[9]
                )
            seqs.extend(t.seq for t in txs)
    assert seqs == list(range(1, 11))
    after, _ = await all_ledger(repository, pid)
    assert [t.seq for t in after] == [*range(1, 9), *range(10, 21)]


# -- throughput ------------------------------------------------------------------


async def test_insert_throughput(
    repository: Repository, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prints transactions/s for one 50,000-row import batch (one leg each);
    the goal on SQLite is >= 50,000/s. Measured, not asserted: the figure
    depends on the machine and what else runs on it."""
    pid = await new_portfolio(repository)
    n = 50_000
    rows = [
        tx(pid, s, asset=("BTC", "ETH", "SOL")[s % 3], client_id=f"import-{s:08d}")
        for s in range(1, n + 1)
    ]
    batch = with_legs(rows)
    started = time.perf_counter()
    await repository.write_batch(pid, n + 1, batch)
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    loaded = 0
    async for txs, _ in repository.load_ledger(pid):
        loaded += len(txs)
    load_elapsed = time.perf_counter() - started
    assert loaded == n
    database = database_url.split(":", 1)[0]
    with capsys.disabled():
        print(
            f"\n[portfolio storage] {database}: write_batch {n:,} transactions + legs in "
            f"{elapsed:.2f} s = {n / elapsed:,.0f} tx/s; load_ledger {n / load_elapsed:,.0f} tx/s"
        )


async def test_insert_rows_writes_tuples_as_write_batch_does(repository: Repository) -> None:
    pid = await new_portfolio(repository)
    rows = [tx(pid, s) for s in (1, 2, 3)]
    tuples = [(*dataclasses.astuple(r), encode_legs([leg(r, 0)])) for r in rows]
    assert len(tuples[0]) == len(INSERT_FIELDS)
    await repository.insert_rows(pid, 4, tuples[:2])
    assert await all_ledger(repository, pid) == (rows[:2], [leg(r, 0) for r in rows[:2]])

    # A client id already in: DuplicateClientId, and nothing of the batch written.
    again = (*tuples[2][:3], "client-1", *tuples[2][4:])
    with pytest.raises(DuplicateClientId):
        await repository.insert_rows(pid, 5, [tuples[2], again])
    # A seq already taken (another writer): StaleWrite.
    with pytest.raises(StaleWrite):
        await repository.insert_rows(pid, 5, [(*tuples[1][:3], "fresh", *tuples[1][4:])])
    got = await repository.get_portfolio(OWNER, pid, with_count=True)
    assert got is not None and (got.next_seq, got.transaction_count) == (4, 2)
