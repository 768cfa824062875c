//! Single-asset backtests: the bar loop and its fills ([`engine`]), the
//! statistics ([`stats`]), the built-in strategies' entry/exit conditions
//! ([`strategy`]) and a parallel parameter sweep ([`sweep`]).
//!
//! Every rule (fill prices, stops, sizing, the trading window, each
//! statistic's formula) is written down once, in `docs/backtest.md`; the doc
//! comments here point there rather than restating it.

pub mod engine;
pub mod stats;
pub mod strategy;
pub mod sweep;

pub use engine::{run, Backtest, Bars, Config, ExitReason, StopRule, Trade};
pub use stats::{statistics, Stats, STAT_NAMES};
pub use strategy::{Conditions, MaKind, Strategy};
pub use sweep::{sweep, SweepControl, SweepSpec};
