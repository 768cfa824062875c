//! Sliding windows shared by the risk kernels.
//!
//! [`Blocks`] aggregates the last `period` items of a stream in O(1)
//! amortized per item without ever removing an item from a running total:
//! the stream is cut into blocks of `period` items; the window ending in the
//! current block is (the suffix of the previous block) + (the prefix of the
//! current one). The prefix grows by one item per step; when a block is
//! complete, the aggregates of all its suffixes are computed once, right to
//! left (O(period) every `period` items). Every output is therefore computed
//! from at most `2 * period` values, whatever came before: no rounding error
//! accumulates over the series (unlike `sum += new - old`), and a window of
//! equal values aggregates exactly (zero variance, exact mean). This works
//! for any associative aggregate ([`Monoid`]), commutative or not, so the
//! moments (Welford/Chan), downside sums and drawdowns share it.

use serde::{Deserialize, Serialize};

/// An associative aggregate of a run of items, in stream order.
pub trait Monoid: Copy {
    type Item: Copy;
    /// The aggregate of one item.
    fn one(x: Self::Item) -> Self;
    /// `self` followed by `x`.
    fn push(self, x: Self::Item) -> Self;
    /// `x` followed by `s`.
    fn prepend(x: Self::Item, s: Self) -> Self;
    /// `a` followed by `b`.
    fn merge(a: Self, b: Self) -> Self;
}

/// The aggregate of the last `period` items (see the module doc).
#[derive(Clone, Serialize, Deserialize)]
pub struct Blocks<I, M> {
    period: usize,
    /// The items of the current block, fewer than `period`.
    block: Vec<I>,
    /// Their aggregate, `None` while the block is empty.
    prefix: Option<M>,
    /// The previous block's suffix aggregates, shortest first:
    /// `suffix[j]` covers its last `j + 1` items. Empty until one block
    /// was completed.
    suffix: Vec<M>,
}

impl<I: Copy, M: Monoid<Item = I>> Blocks<I, M> {
    pub fn new(period: usize) -> Self {
        Blocks {
            period,
            block: Vec::new(),
            prefix: None,
            suffix: Vec::new(),
        }
    }

    pub fn reset(&mut self) {
        self.block.clear();
        self.prefix = None;
        self.suffix.clear();
    }

    /// The new prefix and the window's aggregate, if the window is full.
    #[inline(always)]
    fn advance(&self, x: I) -> (M, Option<M>) {
        let pre = match self.prefix {
            None => M::one(x),
            Some(p) => p.push(x),
        };
        let k = self.block.len() + 1;
        let out = if k == self.period {
            Some(pre)
        } else {
            // The window is the previous block's last `period - k` items
            // followed by the `k` items of this one.
            self.suffix
                .get(self.period - 1 - k)
                .map(|&s| M::merge(s, pre))
        };
        (pre, out)
    }

    /// What [`push`](Self::push) would return, without changing the window.
    #[inline]
    pub fn peek(&self, x: I) -> Option<M> {
        self.advance(x).1
    }

    /// Adds `x`; the aggregate of the last `period` items once there are
    /// that many.
    #[inline]
    pub fn push(&mut self, x: I) -> Option<M> {
        let (pre, out) = self.advance(x);
        self.block.push(x);
        if self.block.len() == self.period {
            self.close_block();
        } else {
            self.prefix = Some(pre);
        }
        out
    }

    /// The block is complete: its suffix aggregates, right to left.
    #[cold]
    fn close_block(&mut self) {
        self.suffix.clear();
        if let Some((&last, rest)) = self.block.split_last() {
            let mut acc = M::one(last);
            self.suffix.push(acc);
            for &x in rest.iter().rev() {
                acc = M::prepend(x, acc);
                self.suffix.push(acc);
            }
        }
        self.block.clear();
        self.prefix = None;
    }
}

/// Count, mean and sum of squared deviations (M2): Welford's update to add
/// one value, Chan et al.'s pairwise formula to join two runs. Both only
/// ever add non-negative terms to M2 from deviations about a mean, so a
/// large common offset in the values costs no precision (unlike
/// sum(x^2) - sum(x)^2 / n).
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    pub m2: f64,
}

impl Monoid for Moments {
    type Item = f64;

    #[inline(always)]
    fn one(x: f64) -> Moments {
        Moments {
            n: 1.0,
            mean: x,
            m2: 0.0,
        }
    }

    #[inline(always)]
    fn push(self, x: f64) -> Moments {
        let n = self.n + 1.0;
        // 1 / n depends only on the count: the division stays off the
        // mean's dependency chain (d / n would put it on).
        let inv = 1.0 / n;
        let d = x - self.mean;
        let mean = self.mean + d * inv;
        Moments {
            n,
            mean,
            m2: self.m2 + d * (x - mean),
        }
    }

    #[inline(always)]
    fn prepend(x: f64, s: Moments) -> Moments {
        s.push(x)
    }

    #[inline(always)]
    fn merge(a: Moments, b: Moments) -> Moments {
        let n = a.n + b.n;
        let wb = b.n / n;
        let d = b.mean - a.mean;
        Moments {
            n,
            mean: a.mean + d * wb,
            m2: a.m2 + b.m2 + d * d * (a.n * wb),
        }
    }
}

/// The previous price, to turn prices into log returns ln(p[i] / p[i-1]).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct LogReturn {
    prev: Option<f64>,
}

impl LogReturn {
    /// The log return into `price`, `None` for the first price.
    #[inline(always)]
    pub fn peek(&self, price: f64) -> Option<f64> {
        self.prev.map(|p| log_return(p, price))
    }

    #[inline(always)]
    pub fn next(&mut self, price: f64) -> Option<f64> {
        let r = self.peek(price);
        self.prev = Some(price);
        r
    }

    pub fn reset(&mut self) {
        self.prev = None;
    }
}

/// ln(price / prev): the division first keeps full relative precision for
/// tiny moves (ln(price) - ln(prev) would cancel). When the ratio itself
/// overflows, underflows or is subnormal (prices 1e-300 and 1e300), the
/// difference of the logs is exact enough and finite.
#[inline(always)]
pub fn log_return(prev: f64, price: f64) -> f64 {
    let ratio = price / prev;
    if ratio.is_normal() {
        ratio.ln()
    } else {
        price.ln() - prev.ln()
    }
}

/// Prices must be positive for log returns and fractional drawdowns: a
/// price that is zero or negative is treated like a gap (NaN output and a
/// restart), as the framework treats NaN and infinities.
#[inline(always)]
pub fn bad_price(x: f64) -> bool {
    x.is_nan() || x <= 0.0
}

/// Runs a per-price step function over a gap-free series.
#[inline(always)]
pub fn run_steps<S>(state: &mut S, x: &[f64], out: &mut [f64], step: impl Fn(&mut S, f64) -> f64) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = step(state, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sum as a monoid, to check the block bookkeeping against a direct sum.
    #[derive(Clone, Copy, Serialize, Deserialize)]
    struct Sum(f64);

    impl Monoid for Sum {
        type Item = f64;
        fn one(x: f64) -> Sum {
            Sum(x)
        }
        fn push(self, x: f64) -> Sum {
            Sum(self.0 + x)
        }
        fn prepend(x: f64, s: Sum) -> Sum {
            Sum(x + s.0)
        }
        fn merge(a: Sum, b: Sum) -> Sum {
            Sum(a.0 + b.0)
        }
    }

    #[test]
    fn blocks_cover_exactly_the_last_period_items() {
        for period in 1..8 {
            let mut w = Blocks::<f64, Sum>::new(period);
            // Powers of two: every window has a distinct exact sum.
            for i in 0..40 {
                let x = f64::from(1u32 << (i % 20));
                let peeked = w.peek(x).map(|s| s.0);
                let got = w.push(x).map(|s| s.0);
                assert_eq!(peeked, got);
                let want = (i + 1 >= period).then(|| {
                    (i + 1 - period..=i)
                        .map(|j| f64::from(1u32 << (j % 20)))
                        .sum::<f64>()
                });
                assert_eq!(got, want, "period {period} at {i}");
            }
        }
    }

    #[test]
    fn moments_of_equal_values_are_exact() {
        let mut w = Blocks::<f64, Moments>::new(4);
        for i in 0..20 {
            if let Some(m) = w.push(0.1) {
                assert_eq!((m.n, m.mean, m.m2), (4.0, 0.1, 0.0), "at {i}");
            }
        }
    }
}
