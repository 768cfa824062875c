"""Grade labels, the momentum label and the per-factor explanation type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketmesh.v1 import signals_pb2

LABEL_EDGES = np.array([20.0, 40.0, 60.0, 80.0])
_LABELS = np.array(
    [
        signals_pb2.GRADE_LABEL_STRONG_SELL,
        signals_pb2.GRADE_LABEL_SELL,
        signals_pb2.GRADE_LABEL_NEUTRAL,
        signals_pb2.GRADE_LABEL_BUY,
        signals_pb2.GRADE_LABEL_STRONG_BUY,
    ],
    dtype=np.int8,
)
MOMENTUM_STEP = 5.0  # grade points over MOMENTUM_BARS closed candles


@dataclass(frozen=True)
class FactorScore:
    """One factor of a grade as GetSignal shows it (weight 0: no data)."""

    name: str
    score: float
    weight: float
    reason: str


def labels(grades: np.ndarray) -> np.ndarray:
    """GradeLabel of each grade (int8): an edge belongs to the label above
    it (40 is Neutral); NaN is GRADE_LABEL_UNSPECIFIED."""
    g = np.asarray(grades, dtype=np.float64)
    idx = np.searchsorted(LABEL_EDGES, np.nan_to_num(g, nan=0.0), side="right")
    return np.where(np.isnan(g), signals_pb2.GRADE_LABEL_UNSPECIFIED, _LABELS[idx]).astype(np.int8)


def label_of(grade: float) -> int:
    """GradeLabel of one grade."""
    return int(labels(np.array([grade]))[0])


def momentum_labels(now: np.ndarray, before: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Momentum of each symbol from its closed grade now and MOMENTUM_BARS
    candles before, in the direction held (a bearish grade falling
    accelerates); UNSPECIFIED where either grade is missing."""
    change = np.where(direction == signals_pb2.DIRECTION_BEARISH, before - now, now - before)
    out = np.full(change.shape, signals_pb2.MOMENTUM_STEADY, dtype=np.int8)
    out[change >= MOMENTUM_STEP] = signals_pb2.MOMENTUM_ACCELERATING
    out[change <= -MOMENTUM_STEP] = signals_pb2.MOMENTUM_FADING
    out[np.isnan(change)] = signals_pb2.MOMENTUM_UNSPECIFIED
    return out
