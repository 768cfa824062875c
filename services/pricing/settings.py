"""Pricing configuration, read once from the environment at start-up."""

from dataclasses import dataclass

from services.common.config import (
    CommonSettings,
    env_address,
    env_choice,
    env_float,
    env_int,
    env_str,
    load_common_settings,
)

MAX_UNIVERSE = 6000


@dataclass(frozen=True)
class PricingSettings:
    common: CommonSettings
    address: str
    metrics_port: int
    feed: str  # "simulator" or "none"
    seed: int
    universe_size: int
    sim_ticks_per_second: int
    # Days of simulated history generated on first start; 0: none (an empty
    # market, e.g. for replaying ticks with past times).
    backfill_days: int
    backfill_fine_days: int
    stream_batch_ms: int
    stream_heartbeat_s: float
    # A forming candle closes this long after its end even if no later tick
    # arrives; ticks for it are then rejected as late.
    candle_close_grace_ms: int
    # Upper bound on how long accepted ticks wait in memory before the
    # background commit (PublishTicks waits for its own commit regardless).
    commit_interval_ms: int
    # 1m/5m/15m candles older than this are deleted (hourly); 0 keeps them all.
    fine_retention_days: int = 30
    # Symbols the simulator leaves alone, so another feed (PublishTicks) owns
    # them while the simulator drives the rest of the market.
    sim_exclude: tuple[str, ...] = ()


def load_pricing_settings() -> PricingSettings:
    return PricingSettings(
        common=load_common_settings(),
        address=env_address("MM_PRICING_ADDR", "127.0.0.1:50051"),
        metrics_port=env_int("MM_PRICING_METRICS_PORT", 9101, minimum=0, maximum=65535),
        feed=env_choice("MM_FEED", "simulator", ("simulator", "none")),
        seed=env_int("MM_SEED", 42),
        universe_size=env_int("MM_UNIVERSE_SIZE", 0, minimum=0, maximum=MAX_UNIVERSE),
        sim_ticks_per_second=env_int("MM_SIM_TICKS_PER_SECOND", 2000, minimum=1, maximum=2_000_000),
        backfill_days=env_int("MM_BACKFILL_DAYS", 365, minimum=0, maximum=3650),
        backfill_fine_days=env_int("MM_BACKFILL_FINE_DAYS", 2, minimum=1, maximum=30),
        stream_batch_ms=env_int("MM_STREAM_BATCH_MS", 100, minimum=10, maximum=5000),
        stream_heartbeat_s=env_float("MM_STREAM_HEARTBEAT_S", 2.0, minimum=0.1, maximum=5.0),
        candle_close_grace_ms=env_int("MM_CANDLE_CLOSE_GRACE_MS", 5000, minimum=0, maximum=600_000),
        commit_interval_ms=env_int("MM_COMMIT_INTERVAL_MS", 200, minimum=1, maximum=10_000),
        fine_retention_days=env_int("MM_FINE_RETENTION_DAYS", 30, minimum=0, maximum=36500),
        sim_exclude=tuple(
            dict.fromkeys(
                s.strip().upper() for s in env_str("MM_SIM_EXCLUDE", "").split(",") if s.strip()
            )
        ),
    )
