"""Signals configuration, read once from the environment at start-up."""

from dataclasses import dataclass

from services.common.config import (
    CommonSettings,
    ConfigError,
    env_address,
    env_choice,
    env_float,
    env_int,
    env_str,
    load_common_settings,
)
from services.common.intervals import ENUM_BY_NAME

INTERVAL_NAMES = tuple(ENUM_BY_NAME)


@dataclass(frozen=True)
class SignalsSettings:
    common: CommonSettings
    address: str
    metrics_port: int
    pricing_address: str
    # Intervals graded live; 1d is always added (the investor grade reads it).
    intervals: tuple[str, ...]
    # Closed candles fetched per symbol and interval at start-up.
    history_bars: int
    # Closed candles in a row that must agree before the direction flips.
    confirm_bars: int
    # Raw factor weights override ("trend=0.3,momentum=0.2"); empty: defaults.
    weights: str
    # Live (forming-candle) grades are refreshed at most this often.
    live_regrade_ms: int
    # "simulator" produces sentiment / on-chain points; "none" waits for PublishMetrics.
    metrics_feed: str
    # No candle from pricing for this long: answers are marked stale.
    stale_after_s: float
    # State snapshot (indicator state, grades, directions) written at most
    # this often, after closed candles; metrics on this timer.
    snapshot_interval_s: float
    # Concurrent GetCandles calls during backfill.
    backfill_concurrency: int


def _intervals(name: str, default: str) -> tuple[str, ...]:
    raw = env_str(name, default)
    parts = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    bad = [p for p in parts if p not in INTERVAL_NAMES]
    if bad or not parts:
        raise ConfigError(name, raw, "a comma-separated list of " + ", ".join(INTERVAL_NAMES))
    if "1d" not in parts:
        parts = (*parts, "1d")
    return parts


def load_signals_settings() -> SignalsSettings:
    return SignalsSettings(
        common=load_common_settings(),
        address=env_address("MM_SIGNALS_ADDR", "127.0.0.1:50052"),
        metrics_port=env_int("MM_SIGNALS_METRICS_PORT", 9102, minimum=0, maximum=65535),
        pricing_address=env_address("MM_PRICING_ADDR", "127.0.0.1:50051"),
        intervals=_intervals("MM_SIGNALS_INTERVALS", "1h,4h,1d"),
        history_bars=env_int("MM_SIGNALS_HISTORY_BARS", 400, minimum=50, maximum=5000),
        confirm_bars=env_int("MM_SIGNALS_CONFIRM_BARS", 3, minimum=1, maximum=50),
        weights=env_str("MM_SIGNAL_WEIGHTS", ""),
        live_regrade_ms=env_int("MM_SIGNALS_LIVE_REGRADE_MS", 1000, minimum=50, maximum=60_000),
        metrics_feed=env_choice("MM_METRICS_FEED", "simulator", ("simulator", "none")),
        stale_after_s=env_float("MM_SIGNALS_STALE_AFTER_S", 10.0, minimum=1.0, maximum=3600.0),
        snapshot_interval_s=env_float(
            "MM_SIGNALS_SNAPSHOT_INTERVAL_S", 30.0, minimum=1.0, maximum=3600.0
        ),
        backfill_concurrency=env_int("MM_SIGNALS_BACKFILL_CONCURRENCY", 8, minimum=1, maximum=64),
    )
