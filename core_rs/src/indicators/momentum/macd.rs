//! MACD: fast EMA - slow EMA, its signal EMA and the histogram, as TA-Lib's
//! `MACD`, in one pass.
//!
//! Seeding (TA-Lib's default): the slow EMA starts at the mean of the first
//! `slowperiod` values and the fast EMA at the mean of the LAST `fastperiod`
//! of those, so both start on bar `slowperiod - 1`; the signal EMA starts at
//! the mean of the first `signalperiod` MACD values. Every output is NaN
//! for the first `slowperiod - 1 + signalperiod - 1` bars. If `slowperiod <
//! fastperiod` the two are swapped, as TA-Lib does.

use serde::{Deserialize, Serialize};

use super::gaps::Gaps;

use crate::indicators::ma::ema::{ema_k, ema_step};
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "macd",
    inputs: &["real"],
    outputs: &["macd", "macdsignal", "macdhist"],
    params: &[
        Param::period("fastperiod", 12.0, 2.0),
        Param::period("slowperiod", 26.0, 2.0),
        Param::period("signalperiod", 9.0, 1.0),
    ],
    lookback: |p| {
        let (_, slow, signal) = periods(p);
        slow - 1 + signal - 1
    },
    run: |i, p, o| {
        let (fast, slow, signal) = periods(p);
        let [m, s, h] = o else {
            unreachable!("macd has three outputs")
        };
        macd_into(i[0], fast, slow, signal, m, s, h)
    },
    run_checked: Some(|i, p, o| {
        let (fast, slow, signal) = periods(p);
        let [m, s, h] = o else {
            unreachable!("macd has three outputs")
        };
        macd_checked(i[0], fast, slow, signal, m, s, h)
    }),
    check: None,
    new_state: Some(|p| {
        let (fast, slow, signal) = periods(p);
        Box::new(Macd::new(fast, slow, signal))
    }),
    load_state: Some(load::<Macd>),
};

/// (fast, slow, signal) with fast <= slow, as TA-Lib swaps them.
fn periods(p: &[f64]) -> (usize, usize, usize) {
    let (a, b) = (int_param(p, 0), int_param(p, 1));
    (a.min(b), a.max(b), int_param(p, 2))
}

/// One EMA's factors for stepping one bar or two at once. Two bars from
/// `e`: e1 = e * c + x1 * k (output only) and
/// e2 = e * c^2 + (x1 * (k * c) + x2 * k) (carried), c = 1 - k, each
/// `e * ...` one fused multiply-add: the loop-carried chain is one FMA per
/// TWO bars. Agrees
/// with the one-bar recursion to a few ulps; the smoothing damps rounding.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct EmaK {
    k: f64,
    c: f64,
    c2: f64,
    kc: f64,
}

impl EmaK {
    fn new(period: usize) -> EmaK {
        let k = ema_k(period);
        let c = 1.0 - k;
        EmaK {
            k,
            c,
            c2: c * c,
            kc: k * c,
        }
    }

    #[inline(always)]
    fn one(self, e: f64, x: f64) -> f64 {
        ema_step(e, x, self.k, self.c)
    }

    #[inline(always)]
    fn two(self, e: f64, x1: f64, x2: f64) -> (f64, f64) {
        (
            self.one(e, x1),
            e.mul_add(self.c2, x1.mul_add(self.kc, x2 * self.k)),
        )
    }
}

/// The three EMAs, stepped one bar (the first of a pair) or two.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Lines {
    fast: EmaK,
    slow: EmaK,
    signal: EmaK,
    ef: f64,
    es: f64,
    s: f64,
}

impl Lines {
    /// (macd, signal, hist) after `x`, without moving the carried EMAs.
    #[inline(always)]
    fn half(&self, x: f64) -> [f64; 3] {
        let m = self.fast.one(self.ef, x) - self.slow.one(self.es, x);
        let s = self.signal.one(self.s, m);
        [m, s, m - s]
    }

    /// The outputs after `x1` and after `x2`; the EMAs advance by both.
    #[inline(always)]
    fn two(&mut self, x1: f64, x2: f64) -> ([f64; 3], [f64; 3]) {
        let (f1, f2) = self.fast.two(self.ef, x1, x2);
        let (s1, s2) = self.slow.two(self.es, x1, x2);
        let (m1, m2) = (f1 - s1, f2 - s2);
        let (g1, g2) = self.signal.two(self.s, m1, m2);
        self.ef = f2;
        self.es = s2;
        self.s = g2;
        ([m1, g1, m1 - g1], [m2, g2, m2 - g2])
    }
}

/// MACD of a gap-free series into the three outputs (same length).
pub fn macd_into(
    x: &[f64],
    fast: usize,
    slow: usize,
    signal: usize,
    macd: &mut [f64],
    sig: &mut [f64],
    hist: &mut [f64],
) {
    macd_checked(x, fast, slow, signal, macd, sig, hist);
}

/// `macd_into` that also returns whether every input was finite, checked
/// as it reads (see `RunCheckedFn`).
pub fn macd_checked(
    x: &[f64],
    fast: usize,
    slow: usize,
    signal: usize,
    macd: &mut [f64],
    sig: &mut [f64],
    hist: &mut [f64],
) -> bool {
    let n = macd.len();
    let lb = slow - 1 + signal - 1;
    fill_nan(macd, lb);
    fill_nan(sig, lb);
    fill_nan(hist, lb);
    let mut gaps = Gaps::default();
    if n <= lb {
        gaps.see_all(x);
        return gaps.finite();
    }
    gaps.see_all(&x[..=lb]);
    // Both price EMAs are seeded over windows ending on bar slow - 1; the
    // slow sum adds bars in order, as TA-Lib does.
    let mut slow_sum = 0.0;
    for &v in &x[..slow - fast] {
        slow_sum += v;
    }
    let mut fast_sum = 0.0;
    for &v in &x[slow - fast..slow] {
        fast_sum += v;
        slow_sum += v;
    }
    let (kf, ks, kg) = (EmaK::new(fast), EmaK::new(slow), EmaK::new(signal));
    let mut ef = fast_sum / fast as f64;
    let mut es = slow_sum / slow as f64;
    // The signal seed: the sum of the first `signal` MACD values.
    let mut sig_sum = ef - es;
    for &v in &x[slow..=lb] {
        ef = kf.one(ef, v);
        es = ks.one(es, v);
        sig_sum += ef - es;
    }
    let m = ef - es;
    let s = sig_sum / signal as f64;
    macd[lb] = m;
    sig[lb] = s;
    hist[lb] = m - s;
    let mut lines = Lines {
        fast: kf,
        slow: ks,
        signal: kg,
        ef,
        es,
        s,
    };
    let outs = macd[lb + 1..]
        .chunks_exact_mut(2)
        .zip(sig[lb + 1..].chunks_exact_mut(2))
        .zip(hist[lb + 1..].chunks_exact_mut(2));
    let mut bars = x[lb + 1..].chunks_exact(2);
    for (((om, os), oh), p) in outs.zip(bars.by_ref()) {
        gaps.see(p[0]);
        gaps.see(p[1]);
        let (a, b) = lines.two(p[0], p[1]);
        (om[0], os[0], oh[0]) = (a[0], a[1], a[2]);
        (om[1], os[1], oh[1]) = (b[0], b[1], b[2]);
    }
    if let [last] = bars.remainder() {
        gaps.see(*last);
        let [m, s, h] = lines.half(*last);
        (macd[n - 1], sig[n - 1], hist[n - 1]) = (m, s, h);
    }
    gaps.finite()
}

/// The running MACD: seed sums during warm-up, then the three EMAs, with
/// the first bar of an unfinished pair pending (as the batch pairs bars).
#[derive(Clone, Serialize, Deserialize)]
pub struct Macd {
    fast: usize,
    slow: usize,
    signal: usize,
    seen: usize,
    fast_sum: f64,
    slow_sum: f64,
    sig_sum: f64,
    lines: Lines,
    pending: Option<f64>,
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Macd {
        Macd {
            fast,
            slow,
            signal,
            seen: 0,
            fast_sum: 0.0,
            slow_sum: 0.0,
            sig_sum: 0.0,
            lines: Lines {
                fast: EmaK::new(fast),
                slow: EmaK::new(slow),
                signal: EmaK::new(signal),
                ef: f64::NAN,
                es: f64::NAN,
                s: f64::NAN,
            },
            pending: None,
        }
    }

    /// The next (macd, signal, hist), NaN through the warm-up.
    pub fn next(&mut self, x: f64) -> [f64; 3] {
        const NAN3: [f64; 3] = [f64::NAN; 3];
        let lb = self.slow - 1 + self.signal - 1;
        let i = self.seen;
        if i > lb {
            return match self.pending.take() {
                None => {
                    self.pending = Some(x);
                    self.lines.half(x)
                }
                Some(x1) => self.lines.two(x1, x).1,
            };
        }
        self.seen += 1;
        let l = &mut self.lines;
        if i < self.slow {
            if i >= self.slow - self.fast {
                self.fast_sum += x;
            }
            self.slow_sum += x;
            if i + 1 < self.slow {
                return NAN3;
            }
            l.ef = self.fast_sum / self.fast as f64;
            l.es = self.slow_sum / self.slow as f64;
            self.sig_sum = l.ef - l.es;
        } else {
            l.ef = l.fast.one(l.ef, x);
            l.es = l.slow.one(l.es, x);
            self.sig_sum += l.ef - l.es;
        }
        if i < lb {
            return NAN3;
        }
        // i == lb: the signal is seeded.
        let m = l.ef - l.es;
        l.s = self.sig_sum / self.signal as f64;
        [m, l.s, m - l.s]
    }
}

impl State for Macd {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&self.next(bar[0]));
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&self.clone().next(bar[0]));
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
        // fast 2 (k = 2/3), slow 3 (k = 1/2), signal 2 (k = 2/3), lookback 3.
        // bar 2: slow seed (1+2+4)/3 = 7/3, fast seed (2+4)/2 = 3, macd 2/3
        // bar 3 (x = 8): fast 3 + (8-3)*2/3 = 19/3, slow 7/3 + (8-7/3)/2 = 31/6,
        //   macd 7/6; signal seed (2/3 + 7/6)/2 = 11/12, hist 1/4
        // bar 4 (x = 8): fast 19/3 + (8-19/3)*2/3 = 67/9, slow 31/6 + (8-31/6)/2
        //   = 79/12, macd 67/9 - 79/12 = 31/36; signal 11/12 + (31/36-11/12)*2/3
        //   = 95/108, hist 31/36 - 95/108 = -1/54
        let out = run(&SPEC, &[vec![1.0, 2.0, 4.0, 8.0, 8.0]], &[2.0, 3.0, 2.0]);
        assert_close(
            &out[0],
            &[NAN, NAN, NAN, 7.0 / 6.0, 31.0 / 36.0],
            1e-14,
            "macd",
        );
        assert_close(
            &out[1],
            &[NAN, NAN, NAN, 11.0 / 12.0, 95.0 / 108.0],
            1e-14,
            "signal",
        );
        assert_close(&out[2], &[NAN, NAN, NAN, 0.25, -1.0 / 54.0], 1e-12, "hist");
    }

    #[test]
    fn swapped_periods_are_the_same() {
        let inputs = make_inputs(SPEC.inputs, 200, 4);
        let a = run(&SPEC, &inputs, &[12.0, 26.0, 9.0]);
        let b = run(&SPEC, &inputs, &[26.0, 12.0, 9.0]);
        for k in 0..3 {
            assert_close(&a[k], &b[k], 0.0, "swapped");
        }
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4, 5] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x], &[2.0, 3.0, 2.0]);
            for o in &out {
                assert_eq!(o.len(), n);
                assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(3));
            }
        }
    }
}
