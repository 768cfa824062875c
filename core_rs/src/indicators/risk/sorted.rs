//! The last `period` log returns kept sorted, for the historical VaR and
//! CVaR: each new return replaces the oldest by binary search and one
//! memmove of the values between their two places (O(period) worst case,
//! usually far less), never a full sort.

use serde::{Deserialize, Serialize};

use super::window::{bad_price, LogReturn};

#[derive(Clone, Serialize, Deserialize)]
pub struct SortedReturns {
    period: usize,
    ret: LogReturn,
    /// The window in arrival order, a ring once full.
    ring: Vec<f64>,
    /// The oldest return's place in `ring`.
    pos: usize,
    sorted: Vec<f64>,
    /// 1 - confidence: the quantile level of the loss tail.
    q: f64,
}

impl SortedReturns {
    pub fn new(period: usize, confidence: f64) -> SortedReturns {
        SortedReturns {
            period,
            ret: LogReturn::default(),
            ring: Vec::with_capacity(period),
            pos: 0,
            sorted: Vec::with_capacity(period),
            q: 1.0 - confidence,
        }
    }

    fn reset(&mut self) {
        self.ret.reset();
        self.ring.clear();
        self.pos = 0;
        self.sorted.clear();
    }

    /// Feeds a price; `f(sorted window, quantile level)` once the window
    /// holds `period` returns, else NaN. A non-positive price is a gap.
    #[inline]
    pub fn next(&mut self, price: f64, f: impl Fn(&[f64], f64) -> f64) -> f64 {
        if bad_price(price) {
            self.reset();
            return f64::NAN;
        }
        let Some(r) = self.ret.next(price) else {
            return f64::NAN;
        };
        if self.ring.len() < self.period {
            self.ring.push(r);
            let at = self.sorted.partition_point(|&v| v < r);
            self.sorted.insert(at, r);
            if self.ring.len() < self.period {
                return f64::NAN;
            }
        } else {
            let old = std::mem::replace(&mut self.ring[self.pos], r);
            self.pos = if self.pos + 1 == self.period {
                0
            } else {
                self.pos + 1
            };
            replace_sorted(&mut self.sorted, old, r);
        }
        f(&self.sorted, self.q)
    }
}

/// Replaces one value equal to `old` by `new` in a sorted slice, shifting
/// only the values between their places.
#[inline]
pub fn replace_sorted(s: &mut [f64], old: f64, new: f64) {
    let i = s.partition_point(|&v| v < old).min(s.len() - 1);
    if new > old {
        // The values after i that are below `new` move one place left.
        let j = i + 1 + s[i + 1..].partition_point(|&v| v < new);
        s.copy_within(i + 1..j, i);
        s[j - 1] = new;
    } else if new < old {
        // The values before i that are above `new` move one place right.
        let j = s[..i].partition_point(|&v| v <= new);
        s.copy_within(j..i, j + 1);
        s[j] = new;
    } else {
        s[i] = new;
    }
}

/// The `q` quantile of sorted values with linear interpolation, exactly as
/// numpy's default (`method="linear"`): index h = (n - 1) * q, then a lerp
/// between the values at floor(h) and floor(h) + 1, from the nearer end.
#[inline]
pub fn quantile(s: &[f64], q: f64) -> f64 {
    let n = s.len();
    let h = (n - 1) as f64 * q;
    let lo = h.floor();
    let g = h - lo;
    let i = (lo as usize).min(n - 1);
    let a = s[i];
    let b = s[(i + 1).min(n - 1)];
    let diff = b - a;
    if g >= 0.5 {
        b - diff * (1.0 - g)
    } else {
        a + diff * g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::Rng;

    #[test]
    fn replace_keeps_the_slice_sorted() {
        let mut rng = Rng::new(4);
        let mut s: Vec<f64> = (0..9).map(|_| (rng.next_f64() * 8.0).floor()).collect();
        s.sort_by(f64::total_cmp);
        for _ in 0..2000 {
            let old = s[(rng.next_f64() * 9.0) as usize];
            let new = (rng.next_f64() * 8.0).floor();
            let mut want = s.clone();
            let at = want.iter().position(|&v| v == old).unwrap();
            want[at] = new;
            want.sort_by(f64::total_cmp);
            replace_sorted(&mut s, old, new);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn quantile_by_hand() {
        let s = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 16.0);
        assert_eq!(quantile(&s, 0.5), 4.0);
        // h = 4 * 0.1 = 0.4: 1 + (2 - 1) * 0.4
        assert_eq!(quantile(&s, 0.1), 1.4);
        // h = 4 * 0.8 = 3.2: 8 + (16 - 8) * 0.2 = 9.6
        assert!((quantile(&s, 0.8) - 9.6).abs() < 1e-14);
        assert_eq!(quantile(&[3.0], 0.3), 3.0);
    }
}
