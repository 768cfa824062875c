//! Tick-to-candle aggregation: the last quote per symbol, OHLCV candles at
//! several intervals and rolling (24h) statistics. Free of PyO3.
//!
//! # Conventions
//!
//! * **Time.** All times are `i64` milliseconds since the Unix epoch (UTC).
//! * **Alignment.** A candle of width `w` covers `[open_ms, open_ms + w)` with
//!   `open_ms = floor(t / w) * w` (Euclidean floor, so pre-1970 times align
//!   too): buckets sit on epoch multiples of their width, not on the first
//!   tick, and a 1d candle runs from 00:00 UTC.
//! * **Intervals.** Given finest first; every other one is a whole multiple
//!   of the finest, so each coarse bucket is a union of whole finest buckets.
//! * **Candle formula.** open = price of the tick with the smallest time,
//!   close = price of the tick with the greatest time, high/low = max/min
//!   price, volume = Σ volume, quote_volume = Σ price·volume, trades = count.
//!   Ties in time: open keeps the earlier arrival, close takes the later one.
//! * **Current candle and out-of-order rule.** Per symbol and interval one
//!   current candle: the latest bucket that received a tick. A tick inside it
//!   updates it whatever its order of arrival (open/close follow tick time),
//!   so out-of-order ticks inside a forming candle are fine. A tick in a later
//!   bucket closes it and opens the next. Buckets without ticks produce no
//!   candle: gaps stay gaps.
//! * **Watermark.** Per symbol, ticks with `time < watermark` are rejected
//!   (code 6, time before closed candle). Opening a finest candle raises the
//!   watermark to its open; `close_expired` raises it to the end of every
//!   candle it closes (of any interval, so no tick can land in a closed coarse
//!   candle either); `restore_candles` raises it to the open of the last
//!   restored candle if forming, else its end. The watermark never goes
//!   down. So an accepted tick is never older than any current bucket.
//! * **Last quote.** Price and time of the tick with the greatest time (ties:
//!   the later arrival). A tick that changes the last price or time marks the
//!   symbol for `take_dirty_quotes`; `set_last` and `restore_candles` do not.
//! * **Rolling window.** See `rolling`: finest buckets with open in
//!   `[floor(now, f) - window + f, floor(now, f)]`; sums of volumes, max/min
//!   of high/low, open of the oldest bucket, `change = (price / open - 1) *
//!   100`. No bucket in the window: volumes 0, open = high = low = price.
//!   Reads are exact for `now_ms` at or after the newest finest bucket; each
//!   symbol keeps only its newest `window / f + 1` finest buckets.
//! * **Rejections.** See `reject`; checked in the order unknown symbol, price
//!   not finite, price <= 0, volume, future time, watermark. A rejected tick
//!   changes nothing.
//! * **Dirty output.** `take_dirty_candles` returns each candle touched since
//!   the previous call once, in its latest state, so call it regularly: a
//!   candle replaced before it is taken is kept until then.

pub mod candle;
pub mod engine;
pub mod reject;
pub mod rolling;
pub mod rows;

pub use candle::Candle;
pub use engine::{CandleColumns, CandleEngine};
pub use reject::*;
pub use rows::{CandleRows, QuoteRows};
