"""The candle intervals pricing keeps, finest first, and their enum values."""

from marketmesh.v1 import common_pb2

# (enum value, width in ms), finest first: the order of core_rs interval indices.
INTERVALS: tuple[tuple[int, int], ...] = (
    (common_pb2.INTERVAL_1M, 60_000),
    (common_pb2.INTERVAL_5M, 300_000),
    (common_pb2.INTERVAL_15M, 900_000),
    (common_pb2.INTERVAL_1H, 3_600_000),
    (common_pb2.INTERVAL_4H, 14_400_000),
    (common_pb2.INTERVAL_1D, 86_400_000),
)
INTERVAL_MS: tuple[int, ...] = tuple(ms for _, ms in INTERVALS)
MS_BY_ENUM: dict[int, int] = dict(INTERVALS)
INDEX_BY_MS: dict[int, int] = {ms: i for i, ms in enumerate(INTERVAL_MS)}
NAME_BY_MS: dict[int, str] = {
    60_000: "1m",
    300_000: "5m",
    900_000: "15m",
    3_600_000: "1h",
    14_400_000: "4h",
    86_400_000: "1d",
}
MS_BY_NAME: dict[str, int] = {name: ms for ms, name in NAME_BY_MS.items()}
FINEST_MS = INTERVAL_MS[0]
