"""Backtests: requests parsed into specs, data loaded, core_rs runs the bars,
results and charts built. Definitions of fills and statistics: docs/backtest.md."""
