"""Candle intervals: the one table every service reads (enum value, width, name)."""

from marketmesh.v1 import common_pb2

# (enum value, width in ms, short name), finest first.
INTERVALS: tuple[tuple[int, int, str], ...] = (
    (common_pb2.INTERVAL_1M, 60_000, "1m"),
    (common_pb2.INTERVAL_5M, 300_000, "5m"),
    (common_pb2.INTERVAL_15M, 900_000, "15m"),
    (common_pb2.INTERVAL_1H, 3_600_000, "1h"),
    (common_pb2.INTERVAL_4H, 14_400_000, "4h"),
    (common_pb2.INTERVAL_1D, 86_400_000, "1d"),
)
MS_BY_ENUM: dict[int, int] = {enum: ms for enum, ms, _ in INTERVALS}
NAME_BY_ENUM: dict[int, str] = {enum: name for enum, _, name in INTERVALS}
ENUM_BY_NAME: dict[str, int] = {name: enum for enum, _, name in INTERVALS}
