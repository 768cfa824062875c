"""Portfolio configuration, read once from the environment at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from services.common.config import (
    CommonSettings,
    ConfigError,
    env_address,
    env_float,
    env_int,
    env_str,
    load_common_settings,
)
from services.portfolio.db.engine import DatabaseUrlError, driver_url, redact, resolve_url


@dataclass(frozen=True)
class PortfolioSettings:
    common: CommonSettings
    address: str
    metrics_port: int
    pricing_address: str
    signals_address: str
    # Empty: SQLite file under MM_DATA_DIR; else a postgresql:// URL.
    database_url: str
    # Legs of all cached portfolios kept in memory (least recently used go first).
    cache_legs: int
    # Transactions committed together by the write queue (group commit).
    max_batch: int
    # Deadline of each call to pricing or signals.
    market_timeout_s: float
    # SizePosition never sizes a position above this fraction of equity.
    max_position_fraction: Decimal
    # A transaction may be dated at most this far in the future (clock skew).
    future_skew_s: float
    # Bearer token portfolio sends to pricing and signals (needed when they
    # run with MM_REQUIRE_AUTH=1); empty: calls them anonymously.
    upstream_token: str = field(default="", repr=False)

    @property
    def resolved_database_url(self) -> str:
        """The driver URL: MM_DATABASE_URL, or the SQLite file under MM_DATA_DIR."""
        return resolve_url(self.database_url, self.common.data_dir)


def _database_url(name: str) -> str:
    raw = env_str(name, "")
    if raw:
        try:
            driver_url(raw)  # the same check the engine makes, at start-up
        except DatabaseUrlError as err:
            raise ConfigError(name, redact(raw), str(err)) from None
    return raw


def _fraction(name: str, default: str) -> Decimal:
    raw = env_str(name, default)
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise ConfigError(name, raw, "a fraction between 0 and 1 (0.2 = 20%)") from None
    if not value.is_finite() or not 0 < value <= 1:
        raise ConfigError(name, raw, "a fraction between 0 and 1 (0.2 = 20%)")
    return value


def load_portfolio_settings() -> PortfolioSettings:
    return PortfolioSettings(
        common=load_common_settings(),
        address=env_address("MM_PORTFOLIO_ADDR", "127.0.0.1:50053"),
        metrics_port=env_int("MM_PORTFOLIO_METRICS_PORT", 9103, minimum=0, maximum=65535),
        pricing_address=env_address("MM_PRICING_ADDR", "127.0.0.1:50051"),
        signals_address=env_address("MM_SIGNALS_ADDR", "127.0.0.1:50052"),
        database_url=_database_url("MM_DATABASE_URL"),
        cache_legs=env_int("MM_PORTFOLIO_CACHE_LEGS", 5_000_000, minimum=10_000),
        max_batch=env_int("MM_PORTFOLIO_MAX_BATCH", 5_000, minimum=1, maximum=100_000),
        market_timeout_s=env_float("MM_PORTFOLIO_MARKET_TIMEOUT_S", 5.0, minimum=0.1, maximum=120),
        max_position_fraction=_fraction("MM_MAX_POSITION_FRACTION", "0.2"),
        future_skew_s=env_float("MM_PORTFOLIO_FUTURE_SKEW_S", 300.0, minimum=0.0, maximum=86_400),
        upstream_token=env_str("MM_UPSTREAM_TOKEN", ""),
    )
