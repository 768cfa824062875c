//! Column-oriented results, one `Vec` per field, so the bindings hand each
//! column to numpy without copying it again.

use super::candle::Candle;
use super::rolling::WindowStats;

/// Candles from `take_dirty_candles`, ordered by (symbol_id, interval_idx,
/// open_ms).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CandleRows {
    pub symbol_id: Vec<i32>,
    pub interval_idx: Vec<u8>,
    pub open_ms: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    pub quote_volume: Vec<f64>,
    pub trades: Vec<i64>,
    pub closed: Vec<bool>,
}

impl CandleRows {
    pub fn with_capacity(n: usize) -> CandleRows {
        CandleRows {
            symbol_id: Vec::with_capacity(n),
            interval_idx: Vec::with_capacity(n),
            open_ms: Vec::with_capacity(n),
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
            quote_volume: Vec::with_capacity(n),
            trades: Vec::with_capacity(n),
            closed: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, symbol_id: i32, interval_idx: u8, c: &Candle) {
        self.symbol_id.push(symbol_id);
        self.interval_idx.push(interval_idx);
        self.open_ms.push(c.open_ms);
        self.open.push(c.open);
        self.high.push(c.high);
        self.low.push(c.low);
        self.close.push(c.close);
        self.volume.push(c.volume);
        self.quote_volume.push(c.quote_volume);
        self.trades.push(c.trades);
        self.closed.push(c.closed);
    }

    pub fn len(&self) -> usize {
        self.open_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open_ms.is_empty()
    }

    /// Row `i` as a candle.
    pub fn candle(&self, i: usize) -> Candle {
        Candle {
            open_ms: self.open_ms[i],
            open: self.open[i],
            high: self.high[i],
            low: self.low[i],
            close: self.close[i],
            volume: self.volume[i],
            quote_volume: self.quote_volume[i],
            trades: self.trades[i],
            closed: self.closed[i],
        }
    }
}

/// Last quotes with rolling-window statistics, from `quotes`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuoteRows {
    pub price: Vec<f64>,
    /// 0 where `has_price` is false.
    pub time_ms: Vec<i64>,
    pub volume_24h: Vec<f64>,
    pub quote_volume_24h: Vec<f64>,
    pub open_24h: Vec<f64>,
    pub high_24h: Vec<f64>,
    pub low_24h: Vec<f64>,
    pub change_24h_pct: Vec<f64>,
    pub has_price: Vec<bool>,
}

impl QuoteRows {
    pub fn with_capacity(n: usize) -> QuoteRows {
        QuoteRows {
            price: Vec::with_capacity(n),
            time_ms: Vec::with_capacity(n),
            volume_24h: Vec::with_capacity(n),
            quote_volume_24h: Vec::with_capacity(n),
            open_24h: Vec::with_capacity(n),
            high_24h: Vec::with_capacity(n),
            low_24h: Vec::with_capacity(n),
            change_24h_pct: Vec::with_capacity(n),
            has_price: Vec::with_capacity(n),
        }
    }

    /// A symbol that never had a price: NaN everywhere.
    pub fn push_missing(&mut self) {
        self.price.push(f64::NAN);
        self.time_ms.push(0);
        self.volume_24h.push(f64::NAN);
        self.quote_volume_24h.push(f64::NAN);
        self.open_24h.push(f64::NAN);
        self.high_24h.push(f64::NAN);
        self.low_24h.push(f64::NAN);
        self.change_24h_pct.push(f64::NAN);
        self.has_price.push(false);
    }

    /// A symbol with a last price; an empty window reads as no movement.
    pub fn push(&mut self, price: f64, time_ms: i64, w: &WindowStats) {
        let (open, high, low, volume, quote_volume) = if w.buckets == 0 {
            (price, price, price, 0.0, 0.0)
        } else {
            (w.open, w.high, w.low, w.volume, w.quote_volume)
        };
        self.price.push(price);
        self.time_ms.push(time_ms);
        self.volume_24h.push(volume);
        self.quote_volume_24h.push(quote_volume);
        self.open_24h.push(open);
        self.high_24h.push(high);
        self.low_24h.push(low);
        self.change_24h_pct.push((price / open - 1.0) * 100.0);
        self.has_price.push(true);
    }

    pub fn len(&self) -> usize {
        self.price.len()
    }

    pub fn is_empty(&self) -> bool {
        self.price.is_empty()
    }
}
