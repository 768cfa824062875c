"""Events from closed candles: one per flip, one per grade level crossed."""

import numpy as np

from marketmesh.v1 import common_pb2, signals_pb2
from services.signals.book import ClosedUpdate
from services.signals.signal_events import closed_events

B, S = signals_pb2.DIRECTION_BULLISH, signals_pb2.DIRECTION_BEARISH
CROSSED = signals_pb2.SIGNAL_EVENT_TYPE_GRADE_CROSSED
FLIP = signals_pb2.SIGNAL_EVENT_TYPE_DIRECTION_FLIP
HOUR = 3_600_000


def test_crossings_and_flips_by_hand() -> None:
    up = ClosedUpdate(
        sids=np.array([0, 1, 2, 3, 4]),
        open_ms=np.array([0, 0, 0, 0, 0]) + 10 * HOUR,
        close=np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        # 0: 35 -> 65 crosses 40 and 60 upward; 1: 80 -> 79.9 crosses 80 down;
        # 2: no grade before (nothing); 3: 50 -> 55 nothing but flips; 4: 60 -> 60 nothing
        grade_before=np.array([35.0, 80.0, np.nan, 50.0, 60.0]),
        grade_after=np.array([65.0, 79.9, 90.0, 55.0, 60.0]),
        direction_before=np.array([S, B, 0, S, B], dtype=np.int8),
        direction_after=np.array([S, B, B, B, B], dtype=np.int8),
        flipped=np.array([False, False, False, True, False]),
    )
    symbols = ["A-USD", "B-USD", "C-USD", "D-USD", "E-USD"]
    events, flips = closed_events(common_pb2.INTERVAL_1H, HOUR, up, symbols)
    got = [(e.type, e.symbol, e.threshold) for e, _, _ in events]
    assert got == [
        (CROSSED, "A-USD", 40.0),
        (CROSSED, "A-USD", 60.0),
        (CROSSED, "B-USD", 80.0),
        (FLIP, "D-USD", 0.0),
    ]
    assert "above 40" in events[0][0].message and "below 80" in events[2][0].message
    assert [(f.symbol, f.time_ms, f.direction, f.price) for f in flips] == [
        ("D-USD", 11 * HOUR, B, 4.0)
    ]
    # The close time is the event time, and keys make replays idempotent.
    assert events[3][0].time.ToMilliseconds() == 11 * HOUR
    keys = [key for _, _, key in events]
    assert len(set(keys)) == len(keys)
    again, _ = closed_events(common_pb2.INTERVAL_1H, HOUR, up, symbols)
    assert [key for _, _, key in again] == keys
