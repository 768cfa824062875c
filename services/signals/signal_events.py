"""Signal events built from what changed: flips and grade crossings of closed
candles, alert firings, regime changes. Each comes with the key that makes
it unique (the store drops a second event with the same key, so candles
replayed after a restart report nothing twice)."""

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from marketmesh.v1 import common_pb2, signals_pb2
from services.common.validation import ms_to_timestamp
from services.signals import alerts as alert_rules
from services.signals.book import ClosedUpdate
from services.signals.store import FlipRow

GRADE_LEVELS = (20.0, 40.0, 60.0, 80.0)
EventT = signals_pb2.SignalEventType
FLIP = signals_pb2.SIGNAL_EVENT_TYPE_DIRECTION_FLIP
CROSSED = signals_pb2.SIGNAL_EVENT_TYPE_GRADE_CROSSED
DIRECTION_NAMES = {
    signals_pb2.DIRECTION_BULLISH: "BULLISH",
    signals_pb2.DIRECTION_BEARISH: "BEARISH",
}
# (event, owner for alert firings else None, dedupe key)
EventRow = tuple[signals_pb2.SignalEvent, str | None, str]


def make_event(
    kind: int, symbol: str, interval: int, time_ms: int, message: str, **fields: object
) -> signals_pb2.SignalEvent:
    seconds, ms = divmod(time_ms, 1000)
    return signals_pb2.SignalEvent(
        type=kind,
        symbol=symbol,
        interval=interval,
        message=message,
        time=Timestamp(seconds=seconds, nanos=ms * 1_000_000),
        **fields,
    )


def _interval_name(interval: int) -> str:
    return common_pb2.Interval.Name(interval).removeprefix("INTERVAL_").lower()


def closed_events(
    interval: int, width_ms: int, up: ClosedUpdate, symbols: list[str]
) -> tuple[list[EventRow], list[FlipRow]]:
    """DIRECTION_FLIP and GRADE_CROSSED events of one apply_closed call, and
    the flip records. Vectorized: only the rows with something to report are
    visited (a regrade of thousands of symbols usually has a handful)."""
    before, after = up.grade_before, up.grade_after
    with np.errstate(invalid="ignore"):
        graded = np.isfinite(before) & np.isfinite(after)
        crossed = {
            level: graded
            & (((before < level) & (after >= level)) | ((after < level) & (before >= level)))
            for level in GRADE_LEVELS
        }
    interesting = up.flipped.astype(bool).copy()
    for mask in crossed.values():
        interesting |= mask
    iname = _interval_name(interval)
    events: list[EventRow] = []
    flips: list[FlipRow] = []
    rows = np.flatnonzero(interesting)
    # Plain lists: indexing numpy arrays element by element costs more than
    # building the events.
    crossed_at = [
        [level for level, mask in zip(GRADE_LEVELS, hits, strict=True) if mask]
        for hits in zip(*(crossed[level][rows].tolist() for level in GRADE_LEVELS), strict=True)
    ]
    for sid, open_ms, price, g0, g1, direction, flipped, levels in zip(
        up.sids[rows].tolist(),
        up.open_ms[rows].tolist(),
        up.close[rows].tolist(),
        before[rows].tolist(),
        after[rows].tolist(),
        up.direction_after[rows].tolist(),
        up.flipped[rows].tolist(),
        crossed_at,
        strict=True,
    ):
        symbol = symbols[sid]
        close_ms = open_ms + width_ms
        if flipped:
            event = make_event(
                FLIP,
                symbol,
                interval,
                close_ms,
                f"{symbol} turned {DIRECTION_NAMES.get(direction, '?')} on the {iname} close "
                f"at {price:.6g} (grade {g1:.1f})",
                price=price,
                trader_grade=g1,
                previous_grade=g0,
                direction=direction,
            )
            events.append((event, None, f"flip:{symbol}:{interval}:{close_ms}"))
            flips.append(FlipRow(symbol, interval, close_ms, direction, price, g1))
        for level in levels:
            way = "above" if g1 >= level else "below"
            event = make_event(
                CROSSED,
                symbol,
                interval,
                close_ms,
                f"{symbol} {iname} grade crossed {way} {level:g}: {g0:.1f} -> {g1:.1f}",
                price=price,
                trader_grade=g1,
                previous_grade=g0,
                threshold=level,
                direction=direction,
            )
            events.append((event, None, f"grade:{symbol}:{interval}:{close_ms}:{level:g}"))
    return events, flips


def alert_event(
    rule: alert_rules.AlertRule,
    symbol: str,
    interval: int,
    time_ms: int,
    price: float,
    grade: float,
    value: float | None = None,
) -> EventRow:
    """An ALERT_TRIGGERED event for the rule's owner; counts the firing."""
    rule.alert.trigger_count += 1
    rule.alert.last_triggered_time.CopyFrom(ms_to_timestamp(time_ms))
    event = make_event(
        EventT.SIGNAL_EVENT_TYPE_ALERT_TRIGGERED,
        symbol,
        interval,
        time_ms,
        alert_rules.describe(rule, symbol, value if value is not None else price),
        price=price,
        trader_grade=grade,
        alert_id=rule.alert.id,
        threshold=rule.alert.condition.threshold,
    )
    return event, rule.owner, f"alert:{rule.alert.id}:{symbol}:{time_ms}"


def regime_event(
    interval: int, time_ms: int, before: int, after: int, bullish_share: float, tokens: int
) -> EventRow:
    name = signals_pb2.Regime.Name(after).removeprefix("REGIME_")
    event = make_event(
        EventT.SIGNAL_EVENT_TYPE_REGIME_CHANGE,
        "",
        interval,
        time_ms,
        f"{_interval_name(interval)} market regime is now {name}: "
        f"{bullish_share:.0%} of {tokens} tokens bullish",
        regime=after,
        previous_regime=before,
    )
    return event, None, f"regime:{interval}:{time_ms}"
