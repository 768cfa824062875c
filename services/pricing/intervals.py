"""The candle intervals pricing keeps, finest first, and their enum values."""

from services.common.intervals import INTERVALS as _ALL

# (enum value, width in ms), finest first: the order of core_rs interval indices.
INTERVALS: tuple[tuple[int, int], ...] = tuple((enum, ms) for enum, ms, _ in _ALL)
INTERVAL_MS: tuple[int, ...] = tuple(ms for _, ms in INTERVALS)
MS_BY_ENUM: dict[int, int] = dict(INTERVALS)
INDEX_BY_MS: dict[int, int] = {ms: i for i, ms in enumerate(INTERVAL_MS)}
NAME_BY_MS: dict[int, str] = {ms: name for _, ms, name in _ALL}
MS_BY_NAME: dict[str, int] = {name: ms for ms, name in NAME_BY_MS.items()}
FINEST_MS = INTERVAL_MS[0]
