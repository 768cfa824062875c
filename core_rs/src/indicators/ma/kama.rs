//! KAMA: Kaufman's adaptive moving average. The efficiency ratio
//! er = |x - x[n bars ago]| / (sum of the last n absolute one-bar changes)
//! sets the smoothing constant sc = (er * (2/3 - 2/31) + 2/31)^2, and
//! kama = kama + sc * (x - kama), seeded with the value before the first
//! output. As in TA-Lib: er is 1 when the change sum is 0 or not above the
//! signed n-bar change, and a period of 1 copies the input.

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "kama",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| kama_lookback(int_param(p, 0)),
    run: |i, p, o| kama_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| kama_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Kama::new(int_param(p, 0)))),
    load_state: Some(load::<Kama>),
};

const SC_SLOW: f64 = 2.0 / (30.0 + 1.0);
const SC_DIFF: f64 = 2.0 / (2.0 + 1.0) - SC_SLOW;

pub fn kama_lookback(period: usize) -> usize {
    if period == 1 {
        0
    } else {
        period
    }
}

/// One KAMA step: `roc` is the signed n-bar change, `sum` the sum of the
/// last n absolute one-bar changes. `prev * (1 - sc) + x * sc` is one
/// fused multiply-add on the dependency chain (TA-Lib's
/// `(x - prev) * sc + prev` has three operations); the division only
/// depends on the change sum, off that chain.
#[inline(always)]
fn kama_step(prev: f64, x: f64, roc: f64, sum: f64) -> f64 {
    let er = if sum <= roc || sum == 0.0 {
        1.0
    } else {
        (roc / sum).abs()
    };
    let sc = er.mul_add(SC_DIFF, SC_SLOW);
    let sc = sc * sc;
    prev.mul_add(1.0 - sc, x * sc)
}

/// KAMA of a gap-free series, NaN for the first `period` values.
pub fn kama_into(x: &[f64], period: usize, out: &mut [f64]) {
    kama_checked(x, period, out);
}

/// `kama_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`).
///
/// The change sum moves by `new - old` (the newest absolute change minus
/// the oldest), one add on its dependency chain (TA-Lib subtracts, then
/// adds). A flat window's change sum is set to exactly 0, as TA-Lib 0.8.1
/// reports it (er is then 1), whatever rounding residue the running sum
/// carries: `run` counts the consecutive unchanged bars ending here.
pub fn kama_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    if period == 1 {
        out.copy_from_slice(x);
        return !any_non_finite(x);
    }
    let n = x.len();
    fill_nan(out, period);
    if n <= period {
        return !any_non_finite(x);
    }
    let mut bad = non_finite(x[0]);
    let mut sum = 0.0;
    let mut run = 0;
    for w in x[..=period].windows(2) {
        bad |= non_finite(w[1]);
        sum += (w[0] - w[1]).abs();
        run = if w[0] == w[1] { run + 1 } else { 0 };
    }
    let mut prev = kama_step(x[period - 1], x[period], x[period] - x[0], sum);
    out[period] = prev;
    // Each bar reads its own value and the one `period` bars back; the
    // previous values of both ride in registers.
    let (mut last, mut lag1) = (x[period], x[0]);
    let bars = x[period + 1..].iter().zip(&x[1..n - period]);
    for (o, (&cur, &lag)) in out[period + 1..].iter_mut().zip(bars) {
        sum += (cur - last).abs() - (lag1 - lag).abs();
        run = if cur == last { run + 1 } else { 0 };
        if run >= period {
            sum = 0.0;
        }
        prev = kama_step(prev, cur, cur - lag, sum);
        *o = prev;
        (last, lag1) = (cur, lag);
    }
    // The values after the warm-up are checked through `prev`: a NaN or
    // infinite input makes it NaN or infinite for good (it is a convex
    // combination of `prev` and the input with a weight sc in (0, 1], and
    // inf * (1 - sc) + finite stays inf, inf - inf is NaN), off the loop.
    // A finite series can only trip this by overflowing near f64::MAX,
    // which merely sends it down the gap-by-gap path.
    !(bad || non_finite(prev))
}

/// The running KAMA: the last `period + 1` inputs, the change sum and the
/// last value.
#[derive(Clone, Serialize, Deserialize)]
pub struct Kama {
    period: usize,
    ring: Vec<f64>,
    pos: usize,
    seen: usize,
    last: f64,
    sum: f64,
    run: usize,
    prev: f64,
}

impl Kama {
    pub fn new(period: usize) -> Kama {
        Kama {
            period,
            ring: vec![0.0; period + 1],
            pos: 0,
            seen: 0,
            last: 0.0,
            sum: 0.0,
            run: 0,
            prev: f64::NAN,
        }
    }

    /// The next value, NaN until `period + 1` values were seen.
    pub fn next(&mut self, x: f64) -> f64 {
        let p = self.period;
        if p == 1 {
            return x;
        }
        let t = self.seen;
        let out = if t < p {
            if t > 0 {
                self.sum += (self.last - x).abs();
                self.note_change(x);
            }
            f64::NAN
        } else {
            let lag = self.ring[if self.pos == p { 0 } else { self.pos + 1 }];
            if t == p {
                self.sum += (self.last - x).abs();
                self.prev = self.last;
            } else {
                self.sum += (x - self.last).abs() - (self.ring[self.pos] - lag).abs();
            }
            self.note_change(x);
            self.prev = kama_step(self.prev, x, x - lag, self.sum);
            self.prev
        };
        self.ring[self.pos] = x;
        self.pos = if self.pos == p { 0 } else { self.pos + 1 };
        self.last = x;
        self.seen += 1;
        out
    }

    /// Counts unchanged bars; a flat window's change sum is exactly 0.
    fn note_change(&mut self, x: f64) {
        self.run = if x == self.last { self.run + 1 } else { 0 };
        if self.run >= self.period {
            self.sum = 0.0;
        }
    }

    pub fn peek(&self, x: f64) -> f64 {
        self.clone().next(x)
    }
}

impl State for Kama {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Kama::peek(self, bar[0]);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // period 2, x = 1, 2, 3, 2. Bar 2: changes |1-2|+|2-3| = 2, roc = 3-1 = 2,
        // sum <= roc so er = 1, sc = (2/3)^2 = 4/9, kama = 2 + (3-2)*4/9 = 22/9.
        // Bar 3: changes 1+1 = 2, roc = 2-2 = 0, er = 0, sc = (2/31)^2 = 4/961,
        // kama = 22/9 + (2 - 22/9)*4/961 = 22/9 - 16/8649.
        let out = run(&SPEC, &[vec![1.0, 2.0, 3.0, 2.0]], &[2.0]);
        let want = [NAN, NAN, 22.0 / 9.0, 22.0 / 9.0 - 16.0 / 8649.0];
        assert_close(&out[0], &want, 1e-15, "kama");
    }

    #[test]
    fn flat_series_is_flat() {
        let out = run(&SPEC, &[vec![5.0; 40]], &[10.0]);
        assert!(out[0][10..].iter().all(|&v| v == 5.0));
    }

    #[test]
    fn edge_lengths_and_period_one() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
            let out = run(&SPEC, std::slice::from_ref(&x), &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(3));
            assert_close(
                &run(&SPEC, std::slice::from_ref(&x), &[1.0])[0],
                &x,
                0.0,
                "kama(1)",
            );
        }
    }
}
