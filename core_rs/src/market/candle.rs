//! One OHLCV candle and the rule that folds a tick into it.
//!
//! open  = price of the tick with the smallest time (ties: the earlier arrival
//!         keeps it), close = price of the tick with the greatest time (ties: the
//!         later arrival takes it), high/low = max/min price,
//!         volume = Σ volume, quote_volume = Σ price·volume, trades = tick count.
//! Because open and close follow tick *time*, not arrival order, ticks that
//! arrive out of order inside a forming candle give the same candle as sorted
//! ones (up to floating-point summation order of the volumes).

use super::rolling::Bucket;

/// A candle as callers see it: the output of `take_dirty_candles` and the
/// input of `restore_candles`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candle {
    pub open_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub quote_volume: f64,
    pub trades: i64,
    pub closed: bool,
}

/// A candle plus the tick times that decide its open and close.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CandleState {
    open_ms: i64,
    /// Time of the tick that set `open`.
    first_ms: i64,
    /// Time of the tick that set `close`.
    last_ms: i64,
    trades: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    quote_volume: f64,
    closed: bool,
}

impl CandleState {
    /// A placeholder for a slot that has no candle yet.
    pub const EMPTY: CandleState = CandleState {
        open_ms: 0,
        first_ms: 0,
        last_ms: 0,
        trades: 0,
        open: f64::NAN,
        high: f64::NAN,
        low: f64::NAN,
        close: f64::NAN,
        volume: 0.0,
        quote_volume: 0.0,
        closed: false,
    };

    /// The candle opened by its first tick.
    #[inline]
    pub fn start(open_ms: i64, t: i64, price: f64, volume: f64) -> CandleState {
        CandleState {
            open_ms,
            first_ms: t,
            last_ms: t,
            trades: 1,
            open: price,
            high: price,
            low: price,
            close: price,
            volume,
            quote_volume: price * volume,
            closed: false,
        }
    }

    /// A persisted candle. Its tick times are unknown, so both are set to the
    /// open: later ticks (time >= open) then move the close but never the open.
    pub fn restored(c: &Candle) -> CandleState {
        CandleState {
            open_ms: c.open_ms,
            first_ms: c.open_ms,
            last_ms: c.open_ms,
            trades: c.trades,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
            quote_volume: c.quote_volume,
            closed: c.closed,
        }
    }

    /// Folds one tick of this candle's bucket in.
    #[inline(always)]
    pub fn add(&mut self, t: i64, price: f64, volume: f64) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.volume += volume;
        self.quote_volume += price * volume;
        self.trades += 1;
        if t >= self.last_ms {
            self.close = price;
            self.last_ms = t;
        }
        if t < self.first_ms {
            self.open = price;
            self.first_ms = t;
        }
    }

    #[inline]
    pub fn open_ms(&self) -> i64 {
        self.open_ms
    }

    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn close_now(&mut self) {
        self.closed = true;
    }

    pub fn candle(&self) -> Candle {
        Candle {
            open_ms: self.open_ms,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            quote_volume: self.quote_volume,
            trades: self.trades,
            closed: self.closed,
        }
    }

    /// What the rolling window keeps of a finest-interval candle.
    pub fn bucket(&self) -> Bucket {
        Bucket {
            open_ms: self.open_ms,
            open: self.open,
            high: self.high,
            low: self.low,
            volume: self.volume,
            quote_volume: self.quote_volume,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(ticks: &[(i64, f64, f64)]) -> Candle {
        let (t0, p0, v0) = ticks[0];
        let mut c = CandleState::start(0, t0, p0, v0);
        for &(t, p, v) in &ticks[1..] {
            c.add(t, p, v);
        }
        c.candle()
    }

    #[test]
    fn sorted_ticks() {
        let c = fold(&[
            (1, 10.0, 1.0),
            (2, 12.0, 2.0),
            (3, 9.0, 0.5),
            (4, 11.0, 1.0),
        ]);
        assert_eq!(c.open, 10.0);
        assert_eq!(c.high, 12.0);
        assert_eq!(c.low, 9.0);
        assert_eq!(c.close, 11.0);
        assert_eq!(c.volume, 4.5);
        assert_eq!(c.quote_volume, 10.0 + 24.0 + 4.5 + 11.0);
        assert_eq!(c.trades, 4);
        assert!(!c.closed);
    }

    #[test]
    fn out_of_order_ticks_give_the_sorted_candle() {
        let sorted = fold(&[
            (1, 10.0, 1.0),
            (2, 12.0, 2.0),
            (3, 9.0, 0.5),
            (4, 11.0, 1.0),
        ]);
        let shuffled = fold(&[
            (3, 9.0, 0.5),
            (4, 11.0, 1.0),
            (1, 10.0, 1.0),
            (2, 12.0, 2.0),
        ]);
        assert_eq!(sorted.open, shuffled.open);
        assert_eq!(sorted.close, shuffled.close);
        assert_eq!(sorted.high, shuffled.high);
        assert_eq!(sorted.low, shuffled.low);
        assert_eq!(sorted.volume, shuffled.volume);
        assert_eq!(sorted.trades, shuffled.trades);
    }

    #[test]
    fn equal_times_close_takes_later_arrival_open_keeps_earlier() {
        let c = fold(&[(5, 10.0, 1.0), (5, 11.0, 1.0), (5, 12.0, 1.0)]);
        assert_eq!(c.open, 10.0);
        assert_eq!(c.close, 12.0);
    }

    #[test]
    fn restored_candle_keeps_open_and_moves_close() {
        let c = Candle {
            open_ms: 60_000,
            open: 5.0,
            high: 6.0,
            low: 4.0,
            close: 5.5,
            volume: 2.0,
            quote_volume: 10.0,
            trades: 3,
            closed: false,
        };
        let mut s = CandleState::restored(&c);
        assert_eq!(s.candle(), c);
        s.add(60_000, 7.0, 1.0);
        let after = s.candle();
        assert_eq!(after.open, 5.0);
        assert_eq!(after.close, 7.0);
        assert_eq!(after.high, 7.0);
        assert_eq!(after.trades, 4);
        assert_eq!(after.quote_volume, 17.0);
    }
}
