"""The one owner of the engine's candle changes.

`CandleEngine.take_dirty_candles` hands out each changed candle once, but two
consumers need every change: the persister (rows not yet written) and the
candle feed (rows not yet published). Each take therefore goes to both: it is
appended to one buffer per consumer, and each consumer drains its own buffer
when it is ready. Neither can lose a change to the other, whichever takes
first.

Takes happen whenever either consumer drains, and also right after ticks are
ingested so a tick that closes a candle is noticed at once (see
`take_closed`). The buffers hold takes in order, so the newest state of a
candle is always the last one buffered.
"""

from collections.abc import Callable, Sequence

import numpy as np

CandleRows = dict[str, np.ndarray]


def merge_takes(takes: Sequence[CandleRows], n_intervals: int) -> CandleRows:
    """Takes (oldest first) as one set of columns holding the newest row of
    each (symbol, interval, open_ms), ordered by that key, plus a "slot"
    column (symbol_id * n_intervals + interval_idx)."""
    keys = [key for key in takes[0] if key != "slot"]
    if len(takes) == 1:
        rows = {key: takes[0][key] for key in keys}
    else:
        rows = {key: np.concatenate([t[key] for t in takes]) for key in keys}
    slot = rows["symbol_id"].astype(np.int64) * n_intervals + rows["interval_idx"]
    n = len(slot)
    # Later takes are newer: within a key, position order is age order.
    order = np.lexsort((np.arange(n), rows["open_ms"], slot))
    sorted_slot, sorted_open = slot[order], rows["open_ms"][order]
    newest = np.ones(n, dtype=bool)
    newest[:-1] = (sorted_slot[1:] != sorted_slot[:-1]) | (sorted_open[1:] != sorted_open[:-1])
    keep = order[newest]
    merged = {key: column[keep] for key, column in rows.items()}
    merged["slot"] = slot[keep]
    return merged


class CandleChanges:
    def __init__(self, take_dirty_candles: Callable[[], CandleRows]) -> None:
        self._take_dirty = take_dirty_candles
        self._unpersisted: list[CandleRows] = []
        self._unpublished: list[CandleRows] = []

    def take(self) -> CandleRows | None:
        """Move the engine's changes into both buffers; returns them (None
        when nothing changed)."""
        rows = self._take_dirty()
        if len(rows["open_ms"]) == 0:
            return None
        self._unpersisted.append(rows)
        self._unpublished.append(rows)
        return rows

    def take_closed(self) -> bool:
        """`take`, and whether any candle closed since the previous take."""
        rows = self.take()
        return rows is not None and bool(rows["closed"].any())

    def for_persister(self) -> list[CandleRows]:
        """Every change not yet handed to the persister, oldest take first.
        The persister keeps what it fails to write (its carry): handed out
        means handed over."""
        self.take()
        out, self._unpersisted = self._unpersisted, []
        return out

    def for_feed(self) -> list[CandleRows]:
        """Every change not yet handed to the candle feed, oldest take first."""
        self.take()
        out, self._unpublished = self._unpublished, []
        return out
