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
    /// The 1 - confidence quantile's place in the full window.
    at: QuantileAt,
}

impl SortedReturns {
    pub fn new(period: usize, confidence: f64) -> SortedReturns {
        SortedReturns {
            period,
            ret: LogReturn::default(),
            ring: Vec::with_capacity(period),
            pos: 0,
            sorted: Vec::with_capacity(period),
            at: QuantileAt::new(period, 1.0 - confidence),
        }
    }

    fn reset(&mut self) {
        self.ret.reset();
        self.ring.clear();
        self.pos = 0;
        self.sorted.clear();
    }

    /// Feeds a price; `f(sorted window, quantile place)` once the window
    /// holds `period` returns, else NaN. A non-positive price is a gap.
    #[inline]
    pub fn next(&mut self, price: f64, f: impl Fn(&[f64], &QuantileAt) -> f64) -> f64 {
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
        f(&self.sorted, &self.at)
    }
}

/// Replaces one value equal to `old` by `new` in a sorted slice, shifting
/// only the values between their places.
#[inline]
pub fn replace_sorted(s: &mut [f64], old: f64, new: f64) {
    // Where `old` is and where `new` goes, both in the whole slice.
    let (i, j) = lower_bounds(s, old, new);
    let i = i.min(s.len() - 1);
    if j > i {
        // new > old: the values in (i, j) move one place left.
        s.copy_within(i + 1..j, i);
        s[j - 1] = new;
    } else {
        // new <= old: the values in [j, i) move one place right.
        s.copy_within(j..i, j + 1);
        s[j] = new;
    }
}

/// The first index whose value is not below `a`, and the same for `b`.
/// Two branchless binary searches in one loop: their loads are
/// independent, so their latencies overlap.
#[inline]
fn lower_bounds(s: &[f64], a: f64, b: f64) -> (usize, usize) {
    if s.is_empty() {
        return (0, 0);
    }
    let (mut ia, mut ib) = (0usize, 0usize);
    let mut len = s.len();
    while len > 1 {
        let half = len / 2;
        // Arithmetic, not `if`: a branch here is a coin flip, mispredicted
        // half the time; a multiply is not.
        ia += half * usize::from(s[ia + half - 1] < a);
        ib += half * usize::from(s[ib + half - 1] < b);
        len -= half;
    }
    (ia + usize::from(s[ia] < a), ib + usize::from(s[ib] < b))
}

/// Where the `q` quantile of `n` sorted values lies, as numpy's default
/// linear interpolation (`method="linear"`) puts it: index h = (n - 1) * q,
/// between the values at floor(h) and floor(h) + 1. The window's length is
/// fixed, so this is computed once.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct QuantileAt {
    /// floor(h): the values up to it are all at or below the quantile.
    pub lo: usize,
    hi: usize,
    /// h - floor(h).
    g: f64,
}

impl QuantileAt {
    pub fn new(n: usize, q: f64) -> QuantileAt {
        let h = n.saturating_sub(1) as f64 * q;
        let lo = h.floor();
        let last = n.saturating_sub(1);
        QuantileAt {
            lo: (lo as usize).min(last),
            hi: (lo as usize + 1).min(last),
            g: h - lo,
        }
    }

    /// The quantile of `s` (sorted, `n` values): numpy's lerp, from the
    /// nearer end.
    #[inline]
    pub fn of(&self, s: &[f64]) -> f64 {
        let a = s[self.lo];
        let b = s[self.hi];
        let diff = b - a;
        if self.g >= 0.5 {
            b - diff * (1.0 - self.g)
        } else {
            a + diff * self.g
        }
    }
}

/// The `q` quantile of sorted values (numpy's default method).
pub fn quantile(s: &[f64], q: f64) -> f64 {
    QuantileAt::new(s.len(), q).of(s)
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
    fn lower_bounds_match_partition_point() {
        let s = [1.0, 2.0, 2.0, 2.0, 5.0, 7.0, 7.0];
        for n in 0..=s.len() {
            for v in [0.0, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 8.0] {
                let want = s[..n].partition_point(|&x| x < v);
                assert_eq!(lower_bounds(&s[..n], v, v), (want, want), "{n} {v}");
            }
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
