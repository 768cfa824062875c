//! Rolling extremes with their bar index: a monotonic deque in a ring of
//! `period.next_power_of_two()` slots, O(1) amortized per bar and no
//! allocation after construction. Shared by donchian, ichimoku and
//! fibonacci, batch kernels and states alike (so they agree bitwise).

use serde::{Deserialize, Serialize};

/// The highest (`MAX = true`) or lowest value of the last `period` values
/// pushed, with the index it was pushed at. Ties go to the most recent bar.
#[derive(Clone, Serialize, Deserialize)]
pub struct Extreme<const MAX: bool> {
    period: usize,
    /// (index, value), values non-increasing (MAX) from the front.
    buf: Vec<(usize, f64)>,
    head: usize,
    len: usize,
}

pub type RollingMax = Extreme<true>;
pub type RollingMin = Extreme<false>;

impl<const MAX: bool> Extreme<MAX> {
    pub fn new(period: usize) -> Self {
        Extreme {
            period,
            buf: vec![(0, 0.0); period.next_power_of_two()],
            head: 0,
            len: 0,
        }
    }

    /// True if the new value `a` makes the older `b` irrelevant.
    #[inline(always)]
    fn dominates(a: f64, b: f64) -> bool {
        if MAX {
            a >= b
        } else {
            a <= b
        }
    }

    /// Adds value `x` at index `i` (one more than the previous push) and
    /// returns the window's extreme and its index.
    #[inline(always)]
    pub fn push(&mut self, i: usize, x: f64) -> (f64, usize) {
        let mask = self.buf.len() - 1;
        // Indices increase by one per push, so at most the front expires;
        // dropping it first keeps at most `period` entries in the ring.
        if self.len > 0 && self.buf[self.head].0 + self.period <= i {
            self.head = (self.head + 1) & mask;
            self.len -= 1;
        }
        while self.len > 0 && Self::dominates(x, self.buf[(self.head + self.len - 1) & mask].1) {
            self.len -= 1;
        }
        self.buf[(self.head + self.len) & mask] = (i, x);
        self.len += 1;
        let front = self.buf[self.head];
        (front.1, front.0)
    }

    /// What `push(i, x)` would return, without changing the deque.
    pub fn peek(&self, i: usize, x: f64) -> (f64, usize) {
        let mask = self.buf.len() - 1;
        let mut k = 0;
        if self.len > 0 && self.buf[self.head].0 + self.period <= i {
            k = 1;
        }
        if k < self.len {
            let (j, v) = self.buf[(self.head + k) & mask];
            if !Self::dominates(x, v) {
                return (v, j);
            }
        }
        (x, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::Rng;

    #[test]
    fn matches_a_scan_with_latest_ties() {
        let mut rng = Rng::new(3);
        for period in [1, 2, 3, 5, 8, 13] {
            // Few distinct values, so ties are common.
            let x: Vec<f64> = (0..300).map(|_| (rng.next_f64() * 6.0).floor()).collect();
            let mut hi = RollingMax::new(period);
            let mut lo = RollingMin::new(period);
            for i in 0..x.len() {
                let start = (i + 1).saturating_sub(period);
                let w = &x[start..=i];
                let mx = w.iter().cloned().fold(f64::MIN, f64::max);
                let mn = w.iter().cloned().fold(f64::MAX, f64::min);
                let imx = start + w.iter().rposition(|&v| v == mx).unwrap();
                let imn = start + w.iter().rposition(|&v| v == mn).unwrap();
                assert_eq!(hi.peek(i, x[i]), (mx, imx));
                assert_eq!(lo.peek(i, x[i]), (mn, imn));
                assert_eq!(hi.push(i, x[i]), (mx, imx), "max p={period} i={i}");
                assert_eq!(lo.push(i, x[i]), (mn, imn), "min p={period} i={i}");
            }
        }
    }
}
