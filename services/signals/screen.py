"""ScreenSignals: a vectorized filter over every graded token of one interval,
ordered and paginated with an offset bound to the query."""

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from marketmesh.v1 import signals_pb2
from services.common.errors import InvalidArgument
from services.common.pagination import decode_page_token, encode_page_token
from services.common.tiers import tiers_of
from services.common.validation import parse_limit
from services.signals.book import IntervalBook
from services.signals.signal_view import market_caps, signal_rows
from services.signals.universe import SignalsUniverse

DEFAULT_LIMIT = 50
MAX_LIMIT = 1_000
Order = signals_pb2.ScreenOrder


@dataclass(frozen=True)
class Screen:
    min_grade: float
    max_grade: float
    direction: int
    flipped_within_ms: int  # 0: no constraint
    sector_mask: np.ndarray | None
    tiers: tuple[int, ...]
    min_market_cap: float
    order: int
    limit: int
    offset: int


def _fingerprint(request: signals_pb2.ScreenSignalsRequest) -> str:
    copy = signals_pb2.ScreenSignalsRequest()
    copy.CopyFrom(request)
    copy.page_token = ""
    copy.limit = 0
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def parse_screen(request: signals_pb2.ScreenSignalsRequest, universe: SignalsUniverse) -> Screen:
    problems: list[tuple[str, str]] = []
    lo = request.min_grade if request.HasField("min_grade") else -math.inf
    hi = request.max_grade if request.HasField("max_grade") else math.inf
    for name, value in (("min_grade", lo), ("max_grade", hi)):
        if math.isnan(value) or (math.isfinite(value) and not 0 <= value <= 100):
            problems.append((name, f"must be between 0 and 100, got {value}"))
    if lo > hi:
        problems.append(("min_grade", f"must not exceed max_grade ({lo:g} > {hi:g})"))
    if request.direction not in signals_pb2.Direction.values():
        problems.append(("direction", f"unknown direction value {request.direction}"))
    within = 0
    if request.HasField("flipped_within"):
        d = request.flipped_within
        within = d.seconds * 1000 + d.nanos // 1_000_000
        if within <= 0:
            problems.append(("flipped_within", "must be a positive duration"))
    for i, tier in enumerate(request.tiers):
        if tier not in (1, 2, 3):
            problems.append((f"tiers[{i}]", "must be TIER_LARGE, TIER_MID or TIER_SMALL"))
    cap = request.min_market_cap
    if not math.isfinite(cap) or cap < 0:
        problems.append(("min_market_cap", f"must be a finite number >= 0, got {cap}"))
    if request.order_by not in Order.values():
        problems.append(("order_by", f"unknown order value {request.order_by}"))
    mask = None
    try:
        mask = universe.sector_mask(list(request.sectors), "sectors")
    except InvalidArgument as err:
        problems.extend(err.violations)
    try:
        limit = parse_limit(request.limit, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    except InvalidArgument as err:
        problems.extend(err.violations)
        limit = DEFAULT_LIMIT
    offset = 0
    if request.page_token:
        token = decode_page_token(request.page_token)
        if token.get("kind") != "screen" or token.get("q") != _fingerprint(request):
            problems.append(
                ("page_token", "was issued for a different screen; keep the other fields unchanged")
            )
        else:
            offset = int(token.get("offset", 0))
    if problems:
        raise InvalidArgument.many(problems)
    return Screen(
        lo,
        hi,
        request.direction,
        within,
        mask,
        tuple(request.tiers),
        cap,
        request.order_by,
        limit,
        offset,
    )


def run_screen(
    screen: Screen,
    request: signals_pb2.ScreenSignalsRequest,
    book: IntervalBook,
    universe: SignalsUniverse,
    interval: int,
    *,
    now_ms: int,
    stale: bool,
    flipped: np.ndarray | None = None,
) -> signals_pb2.ScreenSignalsResponse:
    n = book.n_symbols
    grade = book.grade[:n]
    keep = np.isfinite(grade) & book.has_data[:n]
    with np.errstate(invalid="ignore"):
        keep &= (grade >= screen.min_grade) & (grade <= screen.max_grade)
    if screen.direction:
        keep &= book.direction[:n] == screen.direction
    if screen.flipped_within_ms:
        keep &= book.direction_since_ms[:n] >= now_ms - screen.flipped_within_ms
        keep &= book.direction_since_ms[:n] > 0
        # A first direction is not a flip.
        if flipped is not None:
            keep &= flipped[:n]
    if screen.sector_mask is not None:
        keep &= screen.sector_mask[:n]
    caps = market_caps(book, universe)
    tiers = tiers_of(caps)
    if screen.tiers:
        keep &= np.isin(tiers, screen.tiers)
    if screen.min_market_cap:
        with np.errstate(invalid="ignore"):
            keep &= caps >= screen.min_market_cap
    sids = np.flatnonzero(keep)
    order = screen.order
    # Stable ties by symbol id so pages do not overlap.
    if order in (Order.SCREEN_ORDER_UNSPECIFIED, Order.SCREEN_ORDER_GRADE_DESC):
        sids = sids[np.lexsort((sids, -grade[sids]))]
    elif order == Order.SCREEN_ORDER_GRADE_ASC:
        sids = sids[np.lexsort((sids, grade[sids]))]
    elif order == Order.SCREEN_ORDER_MARKET_CAP_DESC:
        sids = sids[np.lexsort((sids, -np.nan_to_num(caps[sids], nan=-1.0)))]
    elif order == Order.SCREEN_ORDER_FLIP_TIME_DESC:
        sids = sids[np.lexsort((sids, -book.direction_since_ms[sids]))]
    else:
        names = np.asarray(universe.symbols, dtype=object)[sids]
        sids = sids[np.argsort(names, kind="stable")]
    total = int(sids.size)
    page = sids[screen.offset : screen.offset + screen.limit]
    response = signals_pb2.ScreenSignalsResponse(total_size=total)
    response.signals.extend(
        signal_rows(book, page, interval, universe, stale=stale, caps=caps, tiers=tiers)
    )
    end = screen.offset + len(page)
    if end < total:
        response.next_page_token = encode_page_token(
            {"kind": "screen", "q": _fingerprint(request), "offset": end}
        )
    return response
