//! Rolling maximum over the last `window` bars in O(1) amortized per bar: a
//! monotonic deque in a power-of-two ring. A rolling minimum is the rolling
//! maximum of the negated values (negation is exact).
//!
//! Ties: a new value evicts every queued value `<=` it, so the front is the
//! maximum and, among equal maxima, the LATEST bar. That is TA-Lib's AROON
//! rule (its rescan and its update both use `>=` / `<=`). STOCH and WILLR
//! only use the value, which no tie rule changes.

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct RollingMax {
    vals: Vec<f64>,
    idx: Vec<u64>,
    head: usize,
    len: usize,
    mask: usize,
    window: u64,
}

impl RollingMax {
    /// A deque over the last `window` (>= 1) bars.
    pub fn new(window: usize) -> RollingMax {
        // One slot more than the window: a bar is pushed before one leaves.
        let cap = (window + 1).next_power_of_two();
        RollingMax {
            vals: vec![0.0; cap],
            idx: vec![0; cap],
            head: 0,
            len: 0,
            mask: cap - 1,
            window: window as u64,
        }
    }

    /// Adds bar `i` (bars numbered consecutively) with value `x`, drops the
    /// bar that left the window, and returns the maximum and its bar.
    #[inline(always)]
    pub fn push(&mut self, i: u64, x: f64) -> (f64, u64) {
        let mask = self.mask;
        let mut len = self.len;
        // Pop from the back every value the new one dominates (ties too).
        while len > 0 {
            let b = (self.head + len - 1) & mask;
            if self.vals[b] <= x {
                len -= 1;
            } else {
                break;
            }
        }
        let t = (self.head + len) & mask;
        self.vals[t] = x;
        self.idx[t] = i;
        len += 1;
        // At most one bar leaves per step: the front, if it is that bar.
        if self.idx[self.head] + self.window <= i {
            self.head = (self.head + 1) & mask;
            len -= 1;
        }
        self.len = len;
        (self.vals[self.head], self.idx[self.head])
    }
}

/// The highest high and lowest low of the last `window` bars.
#[derive(Clone, Serialize, Deserialize)]
pub struct HighLow {
    hi: RollingMax,
    lo: RollingMax,
    bar: u64,
}

impl HighLow {
    pub fn new(window: usize) -> HighLow {
        HighLow {
            hi: RollingMax::new(window),
            lo: RollingMax::new(window),
            bar: 0,
        }
    }

    /// Bars pushed so far.
    pub fn seen(&self) -> u64 {
        self.bar
    }

    /// Adds a bar; returns (highest high, lowest low) over the window.
    #[inline(always)]
    pub fn push(&mut self, high: f64, low: f64) -> (f64, f64) {
        let i = self.bar;
        self.bar += 1;
        let (hh, _) = self.hi.push(i, high);
        let (nl, _) = self.lo.push(i, -low);
        (hh, -nl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::Rng;

    #[test]
    fn matches_a_naive_scan_with_latest_tie() {
        let mut rng = Rng::new(3);
        for window in [1usize, 2, 3, 5, 8, 14] {
            // Few distinct values so ties are common.
            let x: Vec<f64> = (0..500).map(|_| (rng.next_f64() * 6.0).floor()).collect();
            let mut dq = RollingMax::new(window);
            for i in 0..x.len() {
                let (v, at) = dq.push(i as u64, x[i]);
                let lo = (i + 1).saturating_sub(window);
                let mut best = lo;
                for j in lo..=i {
                    if x[j] >= x[best] {
                        best = j;
                    }
                }
                assert_eq!((v, at), (x[best], best as u64), "window {window} bar {i}");
            }
        }
    }
}
