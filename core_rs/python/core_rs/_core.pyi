"""Type stubs for the Rust extension ``core_rs._core``."""

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Final, Literal, Self, TypedDict

import numpy as np
from numpy.typing import NDArray

VERSION: str

# Per-tick codes of CandleEngine.ingest; equal to
# marketmesh.v1.TickRejectionReason, checked in the order 1, 3, 2, 4, 5, 6.
ACCEPTED: Final[Literal[0]]
REJECT_UNKNOWN_SYMBOL: Final[Literal[1]]
REJECT_NON_POSITIVE_PRICE: Final[Literal[2]]
REJECT_NON_FINITE_PRICE: Final[Literal[3]]
REJECT_INVALID_VOLUME: Final[Literal[4]]
REJECT_TIME_IN_FUTURE: Final[Literal[5]]
REJECT_TIME_BEFORE_CLOSED_CANDLE: Final[Literal[6]]

# The two TypedDicts below exist for type checkers only; at run time the
# methods return plain dicts of numpy arrays.

class _CandleColumns(TypedDict):
    """Result of ``CandleEngine.take_dirty_candles``: one array per field."""

    symbol_id: NDArray[np.int32]
    interval_idx: NDArray[np.uint8]
    open_ms: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    quote_volume: NDArray[np.float64]
    trades: NDArray[np.int64]
    closed: NDArray[np.bool_]

class _QuoteColumns(TypedDict):
    """Result of ``CandleEngine.quotes``; NaN (time_ms 0) where has_price is False."""

    price: NDArray[np.float64]
    time_ms: NDArray[np.int64]
    volume_24h: NDArray[np.float64]
    quote_volume_24h: NDArray[np.float64]
    open_24h: NDArray[np.float64]
    high_24h: NDArray[np.float64]
    low_24h: NDArray[np.float64]
    change_24h_pct: NDArray[np.float64]
    has_price: NDArray[np.bool_]

class _StreamCandles(TypedDict):
    """Result of ``decode_stream_candles``: header fields and one row per update."""

    sequence: int
    snapshot: bool
    heartbeat: bool
    more: bool
    symbol: list[str]
    interval: NDArray[np.int32]
    open_ms: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    closed: NDArray[np.bool_]

def decode_stream_candles(data: bytes) -> _StreamCandles:
    """One serialized marketmesh.v1.StreamCandlesResponse as columns (one
    pass in Rust; ValueError for a truncated or malformed message)."""

class CandleEngine:
    """Ticks to last quotes, aligned OHLCV candles and rolling-window stats.

    Times are int64 ms since the epoch (UTC); every interval is aligned to
    epoch multiples of its width. ``intervals_ms`` lists the finest first and
    every other one must be a multiple of it; ``window_ms`` (the rolling
    statistics window) too. Symbols are dense ids ``0..n_symbols-1``. Every
    method releases the GIL around its loop; bad arguments raise ValueError.
    """

    def __init__(
        self,
        intervals_ms: list[int] = ...,  # [1m, 5m, 15m, 1h, 4h, 1d]
        window_ms: int = 86_400_000,
        n_symbols: int = 0,
    ) -> None: ...
    def add_symbols(self, n: int) -> int:
        """Adds ``n`` symbols; returns the first new id."""
    @property
    def n_symbols(self) -> int: ...
    @property
    def intervals_ms(self) -> list[int]: ...
    @property
    def window_ms(self) -> int: ...
    def ingest(
        self,
        symbol_ids: NDArray[np.int32] | NDArray[np.int64],
        times_ms: NDArray[np.int64],
        prices: NDArray[np.float64],
        volumes: NDArray[np.float64],
        now_ms: int,
        max_future_ms: int = 5000,
    ) -> NDArray[np.uint8]:
        """Applies ticks in order; returns one code per tick (0 = accepted).

        A rejected tick changes nothing. Arrays must have equal lengths.
        """
    def close_expired(self, cutoff_ms: int) -> int:
        """Closes every current candle whose end (open + width) <= cutoff_ms.

        Returns how many; late ticks for those candles are rejected after.
        """
    def take_dirty_candles(self) -> _CandleColumns:
        """Candles touched since the previous call, once each, latest state.

        Ordered by (symbol_id, interval_idx, open_ms).
        """
    def current_candles(
        self, symbol_ids: NDArray[np.int32] | NDArray[np.int64], interval_idx: list[int]
    ) -> _CandleColumns:
        """The current candle (forming, else last closed) per id and interval.

        Ordered by (id, interval) as given; slots with no candle are left out.
        Read-only: takes nothing from ``take_dirty_candles``.
        """
    def take_dirty_quotes(self) -> NDArray[np.int32]:
        """Sorted ids whose last price/time changed since the previous call."""
    def quotes(
        self, symbol_ids: NDArray[np.int32] | NDArray[np.int64], now_ms: int
    ) -> _QuoteColumns:
        """Last quote and rolling-window statistics at ``now_ms`` per id.

        An unknown id raises ValueError.
        """
    def restore_candles(
        self,
        symbol_id: int,
        interval_idx: int,
        open_ms: NDArray[np.int64],
        open: NDArray[np.float64],
        high: NDArray[np.float64],
        low: NDArray[np.float64],
        close: NDArray[np.float64],
        volume: NDArray[np.float64],
        quote_volume: NDArray[np.float64],
        trades: NDArray[np.int64],
        closed: NDArray[np.bool_],
    ) -> None:
        """Loads persisted candles of one symbol and interval, ascending.

        The last becomes the current candle; finest candles fill the rolling
        window. Must come before the symbol's first tick. Marks nothing dirty.
        """
    def set_last(self, symbol_id: int, price: float, time_ms: int) -> None:
        """Restores the last quote of a symbol (not marked dirty)."""

# Indicator registry (see core_rs._kernels, core_rs.batch, core_rs.incremental).

def run(
    name: str, inputs: list[object], params: list[float]
) -> tuple[NDArray[np.float64], ...]: ...
def run_batch(
    name: str, inputs: list[object], params: list[float]
) -> tuple[NDArray[np.float64], ...]: ...
def kernels() -> list[dict[str, object]]: ...
def lookback(name: str, params: list[float]) -> int: ...
def batch_threads() -> int: ...

class Incremental:
    def __new__(cls, name: str, params: list[float]) -> Incremental: ...
    def update(self, *values: float) -> float | tuple[float, ...]: ...
    def peek(self, *values: float) -> float | tuple[float, ...]: ...
    def reset(self) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def params(self) -> list[float]: ...
    def to_bytes(self) -> bytes: ...
    def _restore(self, data: bytes) -> None: ...

# Bundles (see core_rs.bundle): members as (kernel, [(param, value)], alias,
# [(kernel input, bar field)]).

_MemberTuple = tuple[str, list[tuple[str, float]], str | None, list[tuple[str, str]]]
_Field = object | None

def bundle_columns(members: list[_MemberTuple]) -> list[str]: ...
def bundle_run(
    members: list[_MemberTuple],
    open: _Field = None,
    high: _Field = None,
    low: _Field = None,
    close: _Field = None,
    volume: _Field = None,
) -> dict[str, NDArray[np.float64]]: ...

class BundleSet:
    def __new__(cls, members: list[_MemberTuple], n_symbols: int = 0) -> Self: ...
    def add_symbols(self, n: int) -> int: ...
    @property
    def n_symbols(self) -> int: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def _members(self) -> list[_MemberTuple]: ...
    def update(
        self,
        ids: object,
        open: _Field = None,
        high: _Field = None,
        low: _Field = None,
        close: _Field = None,
        volume: _Field = None,
        out: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]: ...
    def peek(
        self,
        ids: object,
        open: _Field = None,
        high: _Field = None,
        low: _Field = None,
        close: _Field = None,
        volume: _Field = None,
        out: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]: ...
    def reset(self, ids: object) -> None: ...
    def to_bytes(self) -> bytes: ...
    def _restore(self, data: bytes) -> None: ...

# ---- The lot-matching engine (core_rs/src/ledger) ----
#
# Amounts are exact decimal strings in plain notation ("0.00012345", at most
# 20 digits before the point and 18 after, no exponent), held in Rust as
# i128 x 10^-18; derived amounts (a piece of a lot's cost, a share of
# proceeds or of an average) are rounded half-even to 18 places and the
# remainder stays with what is left, so every split sums exactly. "" is an
# unknown amount. Leg kinds: 1 ACQUIRE, 2 DISPOSE, 3 REMOVE (gift out: lots
# leave, not taxable), 4 MOVE (wallet -> to_wallet). Method codes equal
# marketmesh.v1.CostBasisMethod: 1 FIFO, 2 LIFO, 3 HIFO, 4 AVERAGE_COST,
# 5 SPECIFIC_LOT. Every error is a ValueError whose message starts with
# where it is: "leg <position in batch>: <field> ..." from append,
# "tx <tx>: ..." from replay.

class _MatchColumns(TypedDict):
    """Result of ``Replay.match_arrays``: one row per (disposal or removal
    leg, consumed lot piece), in replay order."""

    tx: NDArray[np.int64]
    leg: NDArray[np.uint8]
    kind: NDArray[np.uint8]  # 2 DISPOSE or 3 REMOVE
    lot_tx: NDArray[np.int64]  # -1: the phantom lot of a negative balance
    lot_leg: NDArray[np.uint8]
    disposed_ms: NDArray[np.int64]
    acquired_ms: NDArray[np.int64]
    asset: NDArray[np.uint32]
    wallet: NDArray[np.uint32]  # the disposal's wallet
    long_term: NDArray[np.bool_]  # floor(ms / 86_400_000) days apart > 365
    unknown: NDArray[np.bool_]  # the lot's cost (or a disposal's proceeds) unknown
    method: NDArray[np.uint8]  # as applied: 5 only when the leg named lots

class _LotColumns(TypedDict):
    """Result of ``Replay.lot_arrays``: the open lots at the end of the
    replay, by (asset, wallet), then first in first."""

    lot_tx: NDArray[np.int64]
    lot_leg: NDArray[np.uint8]
    asset: NDArray[np.uint32]
    wallet: NDArray[np.uint32]  # the pool's wallet; 0 for universal pools
    acquired_ms: NDArray[np.int64]
    unknown: NDArray[np.bool_]

class _PreviewAmounts(TypedDict):
    cost_basis: str  # "" when a lot's cost is unknown (then the gains too)
    proceeds: str
    short_gain: str
    long_gain: str
    gain: str

class Ledger:
    """A portfolio's legs, kept in replay order (time_ms, tx, leg).

    A lot is identified by its acquiring leg (tx, leg); (tx, leg) is unique
    in the ledger. Thread-safe; every method releases the GIL for its work.
    """

    def __init__(self) -> None: ...
    def append(
        self,
        tx: NDArray[np.int64],
        leg: NDArray[np.uint8],
        kind: NDArray[np.uint8],
        time_ms: NDArray[np.int64],
        asset: NDArray[np.uint32],
        wallet: NDArray[np.uint32],
        to_wallet: NDArray[np.uint32],
        qty: list[str],
        amount: list[str],
        selections: dict[int, list[tuple[int, int, str]]] | None = None,
    ) -> None:
        """Appends a batch of legs, all or nothing.

        ``amount``: ACQUIRE the lot's cost basis, DISPOSE the net proceeds,
        ignored for REMOVE and MOVE; "" = not valued yet. ``qty`` > 0.
        ``to_wallet`` is read for MOVE only. ``selections`` maps a position
        in this batch (a DISPOSE, REMOVE or MOVE) to the lots it consumes,
        (lot_tx, lot_leg, qty), in that order; their quantities must add up
        to the leg's qty. 0 <= ``tx`` < 2**55. Legs may be backdated. ValueError
        (nothing appended) names the first bad leg and field: "leg 3: qty
        '1e5' is not a decimal: ...", "leg 0: tx 7 leg 0 is already in the
        ledger; ...".
        """
    def append_stored(
        self,
        tx: NDArray[np.int64],
        time_ms: NDArray[np.int64],
        legs: list[str],
        asset_ids: dict[str, int],
        asset_names: list[str],
        wallet_ids: dict[str, int],
        wallet_names: list[str],
    ) -> int | None:
        """Appends transactions as the portfolio stores their legs (one JSON
        text each: ``[[leg, kind, asset, wallet, to_wallet, qty, amount,
        selections], ...]``), all or nothing. Asset and wallet names are
        interned into the given (name -> id, id -> name) pairs, id 0 being
        reserved (an empty to_wallet is 0). Returns the number of legs, or
        None, with nothing appended, when a leg names lots."""
    def append_rows(
        self,
        rows: BookRows,
        asset_ids: dict[str, int],
        asset_names: list[str],
        wallet_ids: dict[str, int],
        wallet_names: list[str],
    ) -> int:
        """Appends a bulk import's decided rows' legs; how many."""
    def remove_tx(self, tx: int) -> int:
        """Removes every leg of transaction ``tx``; returns how many."""
    def __len__(self) -> int: ...
    def first_negative(self) -> tuple[int, int, int, int, str] | None:
        """The first point in replay order where an (asset, wallet) balance
        goes below zero (ACQUIRE +, DISPOSE/REMOVE -, MOVE - wallet and +
        to_wallet): (tx, asset, wallet, time_ms, shortfall > 0), or None."""
    def balances(self) -> list[tuple[int, int, str, int]]:
        """Every (asset, wallet) the legs touch, sorted: (asset, wallet,
        balance after every leg, time_ms of the latest leg touching it)."""
    def replay(
        self,
        methods: list[tuple[int, int]],
        per_wallet: bool,
        allow_negative: bool,
        until_ms: int | None = None,
    ) -> Replay:
        """Matches every disposal, removal and (per wallet) move to lots.

        ``until_ms``: replay only the legs at or before that time (the open
        lots as of then); None replays every leg.

        ``methods``: [(from_year, method)], years strictly increasing; a
        leg uses the method of its UTC calendar year (years before the first
        entry use the first). A leg that names lots consumes exactly those;
        SPECIFIC_LOT without names is FIFO. HIFO orders by exact unit cost
        (an unknown cost counts as 0), ties first in first. AVERAGE_COST
        takes the pool's average cost and the lots' dates first in first.

        Pools are per asset, or per (asset, wallet) with ``per_wallet``,
        where a MOVE carries the pieces (same lot id, date, basis) to
        ``to_wallet``'s pool; without it a MOVE changes no lot.

        ValueError "tx <tx>: lot <lot_tx>.<lot_leg> is not open in the pool
        of asset <a> wallet <w> at that time" / "... has only '<q>' left,
        '<q>' selected"; and, unless ``allow_negative``, "tx <tx>: asset
        <a> wallet <w> short by <qty>". With ``allow_negative`` a disposal's
        excess is matched to a phantom lot (lot_tx -1, lot_leg 0, zero
        basis, acquired at the disposal); a move's excess moves nothing.
        """

class Replay:
    """The immutable result of ``Ledger.replay``."""

    @property
    def n_matches(self) -> int: ...
    @property
    def n_lots(self) -> int: ...
    def match_arrays(self) -> _MatchColumns: ...
    def match_amounts(
        self, idx: NDArray[np.int64]
    ) -> tuple[list[str], list[str], list[str], list[str]]:
        """(qty, cost_basis, proceeds, gain) of rows ``idx``. Unknown
        amounts are ""; a REMOVE row's proceeds and gain are "" (a gift
        realizes nothing). A DISPOSE's proceeds are split over its pieces by
        qty, the last piece taking the remainder; gain = proceeds - basis."""
    def sum_matches(self, idx: NDArray[np.int64]) -> dict[str, tuple[str, str, str, int]]:
        """{'short': (proceeds, cost_basis, gain, rows), 'long': (...)} over
        the DISPOSE rows among ``idx`` (REMOVE rows are skipped). ValueError
        "tx <tx>: the proceeds is unknown ..." / "tx <tx>: the cost basis of
        lot <lot_tx>.<lot_leg> is unknown ..." at the first unknown row."""
    def lot_arrays(self) -> _LotColumns: ...
    def lot_amounts(self, idx: NDArray[np.int64]) -> tuple[list[str], list[str], list[str]]:
        """(qty, cost_basis, original_qty) of open lots ``idx``; the cost of
        an unknown lot is "". ``original_qty``: the acquiring leg's qty."""
    def preview_disposal(
        self, asset: int, wallet: int, qty: str, proceeds: str, time_ms: int, method: int
    ) -> _PreviewAmounts:
        """What selling ``qty`` now would realize from the open lots, without
        changing anything (``wallet`` is ignored for universal pools; a
        SPECIFIC_LOT preview is FIFO). ValueError "asset <a> wallet <w>
        short by <qty>" when there is not enough."""

# Portfolio backtest (core_rs.portfolio_backtest); TypedDicts for type
# checkers only, the values are plain dicts.

class _PortfolioConfig(TypedDict, total=False):
    cash: float
    fee: float
    slippage: float
    top_k: int
    rebalance_every: int
    min_score: float
    whole_units: bool
    start: int
    end: int | None

class _PortfolioFills(TypedDict):
    bar: NDArray[np.int64]
    time_ms: NDArray[np.int64]
    asset: NDArray[np.int64]
    qty: NDArray[np.float64]
    price: NDArray[np.float64]
    fee: NDArray[np.float64]
    reason: NDArray[np.uint8]

class _PortfolioTrades(TypedDict):
    entry_bar: NDArray[np.int64]
    exit_bar: NDArray[np.int64]
    entry_time_ms: NDArray[np.int64]
    exit_time_ms: NDArray[np.int64]
    entry_price: NDArray[np.float64]
    exit_price: NDArray[np.float64]
    size: NDArray[np.float64]
    pnl: NDArray[np.float64]
    return_pct: NDArray[np.float64]
    fees: NDArray[np.float64]
    duration_ms: NDArray[np.int64]
    exit_reason: NDArray[np.uint8]
    asset: NDArray[np.int64]

class _PortfolioResult(TypedDict):
    equity: NDArray[np.float64]
    cash: NDArray[np.float64]
    exposure: NDArray[np.float64]
    benchmark: NDArray[np.float64]
    weights: NDArray[np.float32]
    target_weights: NDArray[np.float32]
    rebalance_bars: NDArray[np.int64]
    fills: _PortfolioFills
    trades: _PortfolioTrades

def portfolio_backtest(
    time_ms: NDArray[np.int64],
    open: NDArray[np.float64],
    close: NDArray[np.float64],
    score: NDArray[np.float64],
    bear: NDArray[np.bool_],
    config: _PortfolioConfig,
) -> _PortfolioResult:
    """The portfolio bar loop; see ``core_rs.portfolio_backtest``."""

# Backtests (see core_rs.backtest and docs/backtest.md).

def run_backtest(
    time_ms: NDArray[np.int64],
    open: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    strategy: dict[str, object],
    config: dict[str, object],
    series: NDArray[np.float64] | None = None,
    direction: NDArray[np.int8] | None = None,
    atr: NDArray[np.float64] | None = None,
) -> dict[str, Any]: ...
def statistics(
    time_ms: NDArray[np.int64],
    equity: NDArray[np.float64],
    close: NDArray[np.float64],
    trades: dict[str, NDArray[Any]],
    bars_per_year: float,
) -> dict[str, float]: ...
def stat_names() -> tuple[str, ...]: ...
def sweep(
    time_ms: NDArray[np.int64],
    open: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    kind: str,
    params: list[dict[str, object]],
    config: dict[str, object],
    windows: list[tuple[int, int]],
    control: SweepControl | None = None,
    series: NDArray[np.float64] | None = None,
    direction: NDArray[np.int8] | None = None,
) -> NDArray[np.float64]: ...

class SweepControl:
    """Cancellation and progress of a running sweep (any thread)."""
    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    def cancelled(self) -> bool: ...
    def done(self) -> int: ...

# ImportTransactions fast path (core_rs.portfolio_rows).

_LegRow = tuple[int, int, str, str, str, str, str]
# (position, client_id, kind, time_ms, asset, quantity, price, value, fee_asset,
#  fee_amount, fee_value, wallet, to_wallet, to_asset, to_quantity, income_kind,
#  note, content_hash, body, valuation, legs)
# fmt: off
_FastRow = tuple[
    int, str, int, int, str, str, str, str, str, str, str, str, str, str, str, int, str, str,
    str, str, tuple[_LegRow, ...],
]
# fmt: on

def parse_import(
    message: bytes,
    base_currency: str,
    now_ms: int,
    future_skew_ms: int,
    known_assets: frozenset[str] | set[str],
) -> tuple[str, list[_FastRow], list[int]]:
    """One serialized ImportTransactionsRequest as (portfolio_id, fast_rows,
    slow_rows); see ``core_rs.portfolio_rows``."""

_Original = tuple[str, str]

class ImportRows:
    """Rows parse_import_rows took, kept in Rust; see ``core_rs.portfolio_rows``."""

    def __init__(self) -> None: ...
    @staticmethod
    def from_tuples(pairs: Iterable[tuple[int, _FastRow]]) -> ImportRows: ...
    def __len__(self) -> int: ...
    def take(self, n: int) -> ImportRows: ...
    def extend(self, other: ImportRows) -> None: ...
    def client_ids(self) -> list[str]: ...
    def tuples(self) -> list[tuple[int, _FastRow]]: ...

class InsertRows:
    """A decided batch's transaction rows, kept in Rust; see ``core_rs.portfolio_rows``."""

    def __len__(self) -> int: ...
    def client_ids(self) -> list[str]: ...
    def tuples(self) -> list[tuple[Any, ...]]: ...

class BookRows:
    """A decided batch's rows for the book, kept in Rust; see ``core_rs.portfolio_rows``."""

    def __len__(self) -> int: ...
    def tuples(self) -> list[tuple[int, str, int, int, str, str, str]]: ...
    def index(self, txs: dict[int, TxIndex], seq_of: dict[str, int], unknown: set[int]) -> None: ...

def parse_import_rows(
    message: bytes,
    base_currency: str,
    now_ms: int,
    future_skew_ms: int,
    known_assets: frozenset[str] | set[str],
    first_row: int,
) -> tuple[str, int, ImportRows, list[int]]:
    """parse_import with the fast rows kept in Rust; see ``core_rs.portfolio_rows``."""

class UncommittedIds:
    """Client ids of batches decided and not yet committed; see ``core_rs.portfolio_rows``."""

    def __init__(self) -> None: ...
    def add(self, rows: InsertRows) -> None: ...
    def remove(self, rows: InsertRows) -> None: ...
    def insert(self, client_id: str, content_hash: str, tx_id: str) -> None: ...
    def get(self, client_id: str) -> _Original | None: ...
    def __len__(self) -> int: ...
    def __contains__(self, client_id: str) -> bool: ...

_Decided = tuple[
    list[tuple[int, str, str, bool]],
    int,
    int,
    list[tuple[int, str, int, tuple[str, str, int, str] | None]],
    InsertRows,
    BookRows,
    list[tuple[tuple[str, str], str, int]],
]

def decide_import(
    rows: ImportRows,
    existing: dict[str, _Original],
    uncommitted: UncommittedIds,
    balances: dict[tuple[str, str], Decimal],
    last_ms: dict[tuple[str, str], int],
    check: bool,
    portfolio_id: str,
    first_seq: int,
    clock_ms: int,
    seed: int,
    record_ms: int,
    show: int,
) -> _Decided | None:
    """A batch of parse_import's rows decided against a book; see
    ``core_rs.portfolio_rows``."""

class SqliteWriter:
    """Batch inserts with the GIL released; see ``core_rs.sqlite_writer``."""

    def __init__(self, sqlite_module: str, database: str, pragmas: list[str]) -> None: ...
    def write(
        self,
        first: str,
        first_values: tuple[str | int | None, ...],
        insert: str,
        rows: list[tuple[Any, ...]] | InsertRows,
    ) -> tuple[int, str]: ...
    def close(self) -> None: ...

class TxIndex:
    """What a portfolio book remembers of a transaction besides its legs in
    the Ledger; never tracked by the cyclic GC. A stored entry's legs are its
    JSON text until first read, then parsed by the registered parser."""

    seq: int
    tx_id: str
    kind: int
    time_ms: int
    income_kind: int
    def __init__(
        self,
        seq: int,
        tx_id: str,
        kind: int,
        time_ms: int,
        legs: tuple[Any, ...],
        income_kind: int = 0,
    ) -> None: ...
    @staticmethod
    def stored(
        seq: int, tx_id: str, kind: int, time_ms: int, legs_text: str, income_kind: int
    ) -> TxIndex: ...
    @staticmethod
    def set_legs_parser(parser: Callable[[str], tuple[Any, ...]]) -> None: ...
    @property
    def legs(self) -> tuple[Any, ...]: ...
    def with_legs(self, legs: tuple[Any, ...]) -> TxIndex: ...

def index_stored(
    rows: Iterable[tuple[int, str, int, int, str, str, str]],
    txs: dict[int, TxIndex],
    seq_of: dict[str, int],
    unknown: set[int],
) -> None:
    """Registers stored rows (seq, tx_id, kind, time_ms, valuation, body,
    legs_text) in a book's dicts; nothing on an error."""
