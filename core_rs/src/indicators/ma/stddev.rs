//! STDDEV: population standard deviation over `timeperiod` values, times
//! `nbdev` (TA-Lib `STDDEV`). Also home of [`RollVar`], the rolling
//! variance BBANDS shares.

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

/// TA-Lib's `TA_REAL_MIN..=TA_REAL_MAX` range for deviation multipliers.
pub const REAL_RANGE: f64 = 3e37;

pub const SPEC: Spec = Spec {
    name: "stddev",
    inputs: &["real"],
    outputs: &["real"],
    params: &[
        Param::period("timeperiod", 5.0, 2.0),
        Param::real("nbdev", 1.0, -REAL_RANGE, REAL_RANGE),
    ],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| stddev_into(i[0], int_param(p, 0), p[1], o[0]),
    run_checked: Some(|i, p, o| stddev_checked(i[0], int_param(p, 0), p[1], o[0])),
    check: None,
    new_state: Some(|p| Box::new(Stddev::new(int_param(p, 0), p[1]))),
    load_state: Some(load::<Stddev>),
};

/// An exact pass is forced when the sum of squared deviations falls below
/// this fraction of the rounding it may carry (see [`RollVar`]).
const TRUST: f64 = 1.0 / 16384.0;

/// Rolling mean and variance of a fixed-length window, numerically stable.
///
/// No running sum of squares: values are shifted by an anchor `c` (the
/// window mean at the last exact pass), and the mean and the sum of squared
/// deviations `m2` of the shifted values slide with Welford's add/remove
/// update (new value in, oldest out):
///   d = y_new - y_old, mean' = mean + d / n,
///   m2' = m2 + d * ((y_new - mean') + (y_old - mean)).
/// Rounding in `m2` is then relative to the window's spread, not to the
/// squared price level. It still accumulates, so an exact two-pass
/// recomputation over the window (which also re-anchors `c`) runs every
/// `every` bars, and at once when `m2` falls below `TRUST` times the sum of
/// the magnitudes of its updates since the last exact pass (a volatile
/// stretch followed by a quiet one, where the residue would dominate). A
/// constant window gives exactly 0.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct RollVar {
    inv_n: f64,
    c: f64,
    mean: f64,
    m2: f64,
    /// Minus the sum of |m2 updates| since the last exact pass (negated so
    /// that LLVM does not pack its add with m2's into one SIMD add with a
    /// shuffle on both chains).
    neg_drift: f64,
    steps: usize,
    every: usize,
}

impl RollVar {
    pub fn new(period: usize) -> RollVar {
        RollVar {
            inv_n: 1.0 / period as f64,
            c: 0.0,
            mean: 0.0,
            m2: 0.0,
            neg_drift: 0.0,
            steps: 0,
            every: 4 * period.max(64),
        }
    }

    /// Exact two-pass statistics of `window` (oldest first). Returns a new
    /// value rather than updating in place, so the hot loops keep the
    /// running fields in registers.
    #[cold]
    #[inline(never)]
    pub fn exact<'a, I: Iterator<Item = &'a f64> + Clone>(self, window: I) -> RollVar {
        let mut sum = 0.0;
        for &v in window.clone() {
            sum += v;
        }
        let c = sum * self.inv_n;
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in window {
            let y = v - c;
            s1 += y;
            s2 += y * y;
        }
        let mean = s1 * self.inv_n;
        RollVar {
            c,
            mean,
            m2: (s2 - s1 * mean).max(0.0),
            neg_drift: 0.0,
            steps: 0,
            ..self
        }
    }

    /// Slides the window: `new` enters, `old` leaves. True when an exact
    /// pass ([`RollVar::exact`]) over the new window is due.
    #[inline(always)]
    pub fn slide(&mut self, new: f64, old: f64) -> bool {
        let yn = new - self.c;
        let yo = old - self.c;
        let d = yn - yo;
        let mean = self.mean + d * self.inv_n;
        let inc = d * ((yn - mean) + (yo - self.mean));
        self.mean = mean;
        self.m2 += inc;
        self.neg_drift -= inc.abs();
        self.steps += 1;
        self.steps >= self.every || self.m2 < self.neg_drift * -TRUST
    }

    #[inline(always)]
    pub fn mean(&self) -> f64 {
        self.c + self.mean
    }

    /// The population variance (may be slightly negative from rounding).
    #[inline(always)]
    pub fn var(&self) -> f64 {
        self.m2 * self.inv_n
    }

    /// The population standard deviation (0 if rounding made it negative).
    #[inline(always)]
    pub fn std(&self) -> f64 {
        std_of(self.var())
    }
}

/// The standard deviation of a variance, 0 if rounding made it negative (a
/// plain comparison, not the NaN-aware `f64::max`, so loops of it
/// vectorize).
#[inline(always)]
pub fn std_of(var: f64) -> f64 {
    if var > 0.0 {
        var.sqrt()
    } else {
        0.0
    }
}

/// Outputs whose square roots are taken together (see [`stddev_checked`]).
const ROOT_BLOCK: usize = 256;

impl RollVar {}

/// Calls `f(i, mean, var)` for each window end `i` from `period - 1`, in
/// order (the variance as [`RollVar::var`]), and returns whether every value of `x` was finite (checked in
/// the same pass). `x.len() >= period`.
///
/// The running statistics live in a local copy between exact passes (a
/// `RollVar` reassigned inside the loop stays in memory, and its fields'
/// chains then go through store-to-load forwarding).
#[inline(always)]
pub fn rolling_var(x: &[f64], period: usize, mut f: impl FnMut(usize, f64, f64)) -> bool {
    let mut bad = any_non_finite(&x[..period]);
    let mut rv = RollVar::new(period).exact(x[..period].iter());
    f(period - 1, rv.mean(), rv.var());
    let (ahead, behind) = (&x[period..], &x[..x.len() - period]);
    let mut bars = (period..).zip(ahead.iter().zip(behind));
    loop {
        let mut r = rv;
        let mut due = None;
        for (i, (&new, &old)) in bars.by_ref() {
            bad |= non_finite(new);
            if r.slide(new, old) {
                due = Some(i);
                break;
            }
            f(i, r.mean(), r.var());
        }
        let Some(i) = due else {
            return !bad;
        };
        rv = r.exact(x[i + 1 - period..=i].iter());
        f(i, rv.mean(), rv.var());
    }
}

/// STDDEV of a gap-free series, NaN for the first `period - 1` values.
pub fn stddev_into(x: &[f64], period: usize, nbdev: f64, out: &mut [f64]) {
    stddev_checked(x, period, nbdev, out);
}

/// `stddev_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`).
pub fn stddev_checked(x: &[f64], period: usize, nbdev: f64, out: &mut [f64]) -> bool {
    let lb = period - 1;
    fill_nan(out, lb);
    if x.len() <= lb {
        return !any_non_finite(x);
    }
    // The variances first, then the roots of each block of them in one
    // vectorized pass while it is in L1 (the scalar square root has a
    // quarter of the throughput).
    let out = &mut out[lb..x.len()];
    let (mut k, mut done) = (0, 0);
    let good = rolling_var(x, period, |_, _, var| {
        out[k] = var;
        k += 1;
        if k - done == ROOT_BLOCK {
            roots(&mut out[done..k], nbdev);
            done = k;
        }
    });
    roots(&mut out[done..], nbdev);
    good
}

/// `v = std_of(v) * nbdev` for each variance of `block`.
#[inline(always)]
fn roots(block: &mut [f64], nbdev: f64) {
    for v in block {
        *v = std_of(*v) * nbdev;
    }
}

/// The running window for [`RollVar`]: a ring of the last `period` values.
#[derive(Clone, Serialize, Deserialize)]
pub struct RollWindow {
    ring: Vec<f64>,
    pos: usize,
    seen: usize,
    rv: RollVar,
}

impl RollWindow {
    pub fn new(period: usize) -> RollWindow {
        RollWindow {
            ring: vec![0.0; period],
            pos: 0,
            seen: 0,
            rv: RollVar::new(period),
        }
    }

    /// Feeds `x`; the window's (mean, std) once `period` values were seen.
    pub fn next(&mut self, x: f64) -> Option<(f64, f64)> {
        let period = self.ring.len();
        let old = self.ring[self.pos];
        self.ring[self.pos] = x;
        self.pos = if self.pos + 1 == period {
            0
        } else {
            self.pos + 1
        };
        if self.seen < period {
            self.seen += 1;
            if self.seen < period {
                return None;
            }
            self.reset();
        } else if self.rv.slide(x, old) {
            self.reset();
        }
        Some((self.rv.mean(), self.rv.std()))
    }

    fn reset(&mut self) {
        let (newer, older) = self.ring.split_at(self.pos);
        self.rv = self.rv.exact(older.iter().chain(newer));
    }
}

/// The running STDDEV.
#[derive(Clone, Serialize, Deserialize)]
pub struct Stddev {
    window: RollWindow,
    nbdev: f64,
}

impl Stddev {
    pub fn new(period: usize, nbdev: f64) -> Stddev {
        Stddev {
            window: RollWindow::new(period),
            nbdev,
        }
    }

    pub fn next(&mut self, x: f64) -> f64 {
        match self.window.next(x) {
            Some((_, sd)) => sd * self.nbdev,
            None => f64::NAN,
        }
    }
}

impl State for Stddev {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, make_inputs, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // period 2: the deviation of two values is |a - b| / 2: 0.5, 0.5, 3;
        // times nbdev 2: 1, 1, 6.
        let out = run(&SPEC, &[vec![1.0, 2.0, 3.0, 9.0]], &[2.0, 2.0]);
        assert_close(&out[0], &[NAN, 1.0, 1.0, 6.0], 1e-15, "stddev");
        // period 4 over 2, 4, 4, 4, 5, 5, 7, 9 (mean 5 over all 8, the textbook
        // example): windows [2,4,4,4] mean 3.5, squares 2.25+.25*3 = 3, var 0.75.
        let x = vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let out = run(&SPEC, &[x], &[4.0, 1.0]);
        assert_close(&out[0][3..4], &[0.75f64.sqrt()], 1e-15, "stddev(4)");
    }

    #[test]
    fn flat_is_exactly_zero_and_edges() {
        let out = run(&SPEC, &[vec![0.1; 50]], &[5.0, 1.0]);
        assert!(out[0][4..].iter().all(|&v| v == 0.0));
        for n in [0usize, 1, 4, 5, 6] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x], &[5.0, 1.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(4));
        }
    }

    #[test]
    fn stays_exact_after_a_volatile_stretch() {
        // Wild prices, then a quiet stretch with a tiny spread: the exact
        // pass must kick in so the quiet deviation is right.
        let mut x = make_inputs(&["close"], 2000, 1).remove(0);
        for v in x.iter_mut() {
            *v *= 1e6;
        }
        let quiet: Vec<f64> = (0..300).map(|i| 1.0 + 1e-9 * (i % 3) as f64).collect();
        x.extend_from_slice(&quiet);
        let out = run(&SPEC, std::slice::from_ref(&x), &[5.0, 1.0]);
        let n = x.len();
        for i in n - 290..n {
            let w = &x[i - 4..=i];
            let m = w.iter().sum::<f64>() / 5.0;
            let v = w.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 5.0;
            assert_close(&out[0][i..=i], &[v.sqrt()], 1e-6, "quiet stddev");
        }
    }
}
