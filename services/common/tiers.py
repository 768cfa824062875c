"""Market-cap tiers as common.proto defines them: large >= $10B, mid $1B-$10B,
small < $1B (market cap = price x circulating supply)."""

import numpy as np

from marketmesh.v1 import common_pb2

LARGE_CAP = 10e9
MID_CAP = 1e9


def tiers_of(market_caps: np.ndarray) -> np.ndarray:
    """Tier enum per market cap; TIER_UNSPECIFIED where the cap is not a
    finite number (no price yet)."""
    caps = np.asarray(market_caps, dtype=np.float64)
    out = np.full(caps.shape, common_pb2.TIER_SMALL, dtype=np.int32)
    with np.errstate(invalid="ignore"):
        out[caps >= MID_CAP] = common_pb2.TIER_MID
        out[caps >= LARGE_CAP] = common_pb2.TIER_LARGE
    out[~np.isfinite(caps)] = common_pb2.TIER_UNSPECIFIED
    return out
