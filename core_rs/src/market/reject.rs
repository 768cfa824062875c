//! Per-tick result codes of `CandleEngine::ingest`. The numbers equal
//! `marketmesh.v1.TickRejectionReason` in proto/marketmesh/v1/pricing.proto,
//! so the service can pass them through unchanged.
//!
//! Checks run in this order and the first failing one wins:
//! unknown symbol, non-finite price, non-positive price, invalid volume,
//! time in the future, time before a closed candle.

/// The tick was applied.
pub const ACCEPTED: u8 = 0;
/// The symbol id is negative or not below `n_symbols`.
pub const REJECT_UNKNOWN_SYMBOL: u8 = 1;
/// The price is zero or negative.
pub const REJECT_NON_POSITIVE_PRICE: u8 = 2;
/// The price is NaN or infinite.
pub const REJECT_NON_FINITE_PRICE: u8 = 3;
/// The volume is negative, NaN or infinite.
pub const REJECT_INVALID_VOLUME: u8 = 4;
/// The time is later than `now_ms + max_future_ms`.
pub const REJECT_TIME_IN_FUTURE: u8 = 5;
/// The time is before the symbol's watermark: its finest candle is closed.
pub const REJECT_TIME_BEFORE_CLOSED_CANDLE: u8 = 6;
