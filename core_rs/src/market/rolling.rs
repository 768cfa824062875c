//! Rolling-window statistics (24h by default) over finest-interval buckets.
//!
//! At `now_ms` the window holds the finest buckets whose open lies in
//! `[floor(now_ms, f) - window_ms + f, floor(now_ms, f)]` (f = finest width):
//! `window_ms / f` buckets, the one `now_ms` falls in included. Over them
//! volume and quote volume are sums, high/low are max/min, and the window's
//! open is the open of its oldest non-empty bucket.
//!
//! Storage: each symbol's finished finest candles, ascending, in a deque of
//! at most `window_ms / f + 1` entries (every bucket a window at or after the
//! newest entry can hold); the engine adds its current finest candle at read
//! time. Bounding by count, not time, spares the hot path a read of the
//! oldest entry. Only buckets that saw ticks are stored, so
//! gaps cost nothing. The aggregate over the deque is cached per (window
//! start, deque version): the deque changes at most once per finest width per
//! symbol and the window start once per finest width, so repeated reads
//! within a minute cost O(1) and a miss costs one scan of the window.

use std::collections::VecDeque;

/// What the window keeps of one finest-interval candle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub open_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub volume: f64,
    pub quote_volume: f64,
}

/// Statistics over the buckets of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowStats {
    /// Buckets seen; 0 means the other fields are meaningless.
    pub buckets: usize,
    /// Open time of the oldest bucket; its open is `open`.
    pub oldest_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub volume: f64,
    pub quote_volume: f64,
}

impl WindowStats {
    pub const EMPTY: WindowStats = WindowStats {
        buckets: 0,
        oldest_ms: i64::MAX,
        open: f64::NAN,
        high: f64::NEG_INFINITY,
        low: f64::INFINITY,
        volume: 0.0,
        quote_volume: 0.0,
    };

    /// Adds one bucket, in any order.
    #[inline]
    pub fn add(&mut self, b: &Bucket) {
        if self.buckets == 0 || b.open_ms < self.oldest_ms {
            self.oldest_ms = b.open_ms;
            self.open = b.open;
        }
        self.buckets += 1;
        self.high = self.high.max(b.high);
        self.low = self.low.min(b.low);
        self.volume += b.volume;
        self.quote_volume += b.quote_volume;
    }
}

/// The window `[lo, hi]` (inclusive bucket opens) ending in the bucket of
/// `now_ms`.
#[inline]
pub fn window_bounds(now_ms: i64, finest_ms: i64, window_ms: i64) -> (i64, i64) {
    let hi = now_ms.div_euclid(finest_ms) * finest_ms;
    (hi.saturating_sub(window_ms - finest_ms), hi)
}

/// Batch form: statistics over the buckets of `buckets` (any order) whose
/// open lies in `[lo, hi]`.
pub fn window_stats(buckets: &[Bucket], lo: i64, hi: i64) -> WindowStats {
    let mut s = WindowStats::EMPTY;
    for b in buckets
        .iter()
        .filter(|b| b.open_ms >= lo && b.open_ms <= hi)
    {
        s.add(b);
    }
    s
}

/// One symbol's finished finest buckets, ascending by open.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    buckets: VecDeque<Bucket>,
    version: u64,
    /// (lo, hi, version) the cached stats were computed for.
    cache: Option<(i64, i64, u64, WindowStats)>,
}

impl Ring {
    /// Appends a bucket newer than every stored one, keeping the newest
    /// `keep` (>= 1).
    pub fn push(&mut self, b: Bucket, keep: usize) {
        debug_assert!(self
            .buckets
            .back()
            .map_or(true, |last| last.open_ms < b.open_ms));
        while self.buckets.len() >= keep {
            self.buckets.pop_front();
        }
        self.buckets.push_back(b);
        self.version += 1;
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Statistics over the stored buckets with open in `[lo, hi]`.
    pub fn window(&mut self, lo: i64, hi: i64) -> WindowStats {
        if let Some((clo, chi, cver, stats)) = self.cache {
            if clo == lo && chi == hi && cver == self.version {
                return stats;
            }
        }
        let start = self.buckets.partition_point(|b| b.open_ms < lo);
        let mut stats = WindowStats::EMPTY;
        for b in self.buckets.range(start..).take_while(|b| b.open_ms <= hi) {
            stats.add(b);
        }
        self.cache = Some((lo, hi, self.version, stats));
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(open_ms: i64, px: f64, vol: f64) -> Bucket {
        Bucket {
            open_ms,
            open: px,
            high: px + 1.0,
            low: px - 1.0,
            volume: vol,
            quote_volume: px * vol,
        }
    }

    #[test]
    fn bounds_cover_window_over_finest_buckets_ending_at_now() {
        // 1h window over 1m buckets at 10:30:15 -> opens 09:31 .. 10:30.
        let (lo, hi) = window_bounds(37_815_000, 60_000, 3_600_000);
        assert_eq!(hi, 37_800_000);
        assert_eq!(lo, 34_260_000);
        assert_eq!((hi - lo) / 60_000 + 1, 60);
    }

    #[test]
    fn ring_window_equals_batch_and_drops_old_buckets() {
        let f = 60_000;
        let window = 10 * f;
        let keep = (window / f + 1) as usize;
        let all: Vec<Bucket> = (0..40)
            .filter(|i| i % 3 != 0) // gaps
            .map(|i| bucket(i * f, 100.0 + i as f64, 1.0 + i as f64))
            .collect();
        let mut ring = Ring::default();
        for (n, b) in all.iter().enumerate() {
            ring.push(*b, keep);
            let (lo, hi) = window_bounds(b.open_ms + 1234, f, window);
            assert_eq!(ring.window(lo, hi), window_stats(&all[..=n], lo, hi));
            // Cached second read agrees.
            assert_eq!(ring.window(lo, hi), window_stats(&all[..=n], lo, hi));
        }
        assert!(ring.len() <= 11);
    }

    #[test]
    fn window_edge_is_exact() {
        let f = 60_000;
        let window = 3 * f;
        let keep = 4;
        let mut ring = Ring::default();
        ring.push(bucket(0, 10.0, 1.0), keep);
        ring.push(bucket(f, 20.0, 2.0), keep);
        ring.push(bucket(2 * f, 30.0, 4.0), keep);
        // now in bucket 2: opens 0..2 -> all three.
        let (lo, hi) = window_bounds(2 * f + 59_999, f, window);
        let s = ring.window(lo, hi);
        assert_eq!((s.buckets, s.open, s.volume), (3, 10.0, 7.0));
        assert_eq!((s.high, s.low), (31.0, 9.0));
        // now in bucket 3: opens 1..3 -> bucket 0 left the window.
        let (lo, hi) = window_bounds(3 * f, f, window);
        let s = ring.window(lo, hi);
        assert_eq!((s.buckets, s.open, s.volume, s.low), (2, 20.0, 6.0, 19.0));
        // far later: nothing.
        let (lo, hi) = window_bounds(100 * f, f, window);
        assert_eq!(ring.window(lo, hi).buckets, 0);
    }
}
