"""Independent reference for candle aggregation: pandas' resample rules."""

# How pandas folds finer candles (or ticks as candles) into a coarser one.
OHLCV_AGG: dict[str, str] = {
    "open": "first",
    "high": "max",
    "low": "min",
    "close": "last",
    "volume": "sum",
    "quote_volume": "sum",
    "trades": "sum",
}
