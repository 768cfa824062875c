//! TRIMA: triangular moving average, weights 1, 2, ..., 2, 1 peaking in the
//! middle of the window. As TA-Lib documents, it equals an SMA of an SMA:
//! odd n: SMA(SMA(x, (n+1)/2), (n+1)/2); even n: SMA(SMA(x, n/2), n/2 + 1).

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "trima",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| trima_into(i[0], int_param(p, 0), o[0]),
    check: None,
    new_state: Some(|p| Box::new(Trima::new(int_param(p, 0)))),
    load_state: Some(load::<Trima>),
};

/// The inner and outer SMA lengths (a + b - 1 = period) and 1 / (a * b),
/// TA-Lib's `factor`.
fn split(period: usize) -> (usize, usize, f64) {
    let half = period / 2;
    let (a, b) = if period % 2 == 1 {
        (half + 1, half + 1)
    } else {
        (half, half + 1)
    };
    (a, b, 1.0 / (a * b) as f64)
}

/// TRIMA of a gap-free series, NaN for the first `period - 1` values.
///
/// `s` is the inner window sum (length a) ending at the current bar and
/// `t` the sum of the last b values of `s`. The value of `s` b bars ago is
/// a second running sum over the input shifted by b (`s_lag`), so no ring
/// is needed and each of the three sums carries one add per bar (TA-Lib's
/// numerator carries three).
pub fn trima_into(x: &[f64], period: usize, out: &mut [f64]) {
    let lb = period - 1;
    fill_nan(out, lb);
    if x.len() <= lb {
        return;
    }
    let (a, b, factor) = split(period);
    // Warm-up: s over x[..a], then t over the first b values of s.
    let mut s = 0.0;
    for &v in &x[..a] {
        s += v;
    }
    let s_first = s;
    let mut t = s;
    for (&new, &old) in x[a..period].iter().zip(x) {
        s += new - old;
        t += s;
    }
    out[lb] = t * factor;
    // s_lag is s at bar (i - b); at i = period that is bar a - 1: s_first.
    let mut s_lag = s_first;
    let n = x.len();
    let new_in = &x[period..];
    let old_in = &x[period - a..n - a];
    let lag_new = &x[a..n + 1 - b];
    let lag_old = &x[..n - period];
    for ((((o, &xn), &xo), &ln), &lo) in out[period..]
        .iter_mut()
        .zip(new_in)
        .zip(old_in)
        .zip(lag_new)
        .zip(lag_old)
    {
        s += xn - xo;
        t += s - s_lag;
        s_lag += ln - lo;
        *o = t * factor;
    }
}

/// The running TRIMA: the last `a` inputs, the last `b` inner sums, and the
/// two sums (the same operations as `trima_into`).
#[derive(Clone, Serialize, Deserialize)]
pub struct Trima {
    xs: Vec<f64>,
    x_pos: usize,
    sums: Vec<f64>,
    s_pos: usize,
    seen: usize,
    s: f64,
    t: f64,
    factor: f64,
}

impl Trima {
    pub fn new(period: usize) -> Trima {
        let (a, b, factor) = split(period);
        Trima {
            xs: vec![0.0; a],
            x_pos: 0,
            sums: vec![0.0; b],
            s_pos: 0,
            seen: 0,
            s: 0.0,
            t: 0.0,
            factor,
        }
    }

    /// The next value, NaN until `period` values were seen.
    pub fn next(&mut self, x: f64) -> f64 {
        let (a, b) = (self.xs.len(), self.sums.len());
        self.seen += 1;
        // Inner sum: plain adds for the first a values, then slide.
        if self.seen <= a {
            self.s += x;
        } else {
            self.s += x - self.xs[self.x_pos];
        }
        self.xs[self.x_pos] = x;
        self.x_pos = if self.x_pos + 1 == a { 0 } else { self.x_pos + 1 };
        if self.seen < a {
            return f64::NAN;
        }
        // Outer sum over the inner sums, from bar a - 1.
        let k = self.seen - a; // index of this inner sum, from 0
        if k == 0 {
            self.t = self.s;
        } else if k < b {
            self.t += self.s;
        } else {
            self.t += self.s - self.sums[self.s_pos];
        }
        self.sums[self.s_pos] = self.s;
        self.s_pos = if self.s_pos + 1 == b { 0 } else { self.s_pos + 1 };
        if k + 1 < b {
            f64::NAN
        } else {
            self.t * self.factor
        }
    }

    pub fn peek(&self, x: f64) -> f64 {
        self.clone().next(x)
    }
}

impl State for Trima {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Trima::peek(self, bar[0]);
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
        let x = vec![1.0, 2.0, 3.0, 4.0, 10.0, 0.0];
        // period 4: weights 1,2,2,1 / 6: (1+4+6+4)/6 = 15/6, (2+6+8+10)/6 = 26/6,
        // (3+8+20+0)/6 = 31/6
        let out = run(&SPEC, std::slice::from_ref(&x), &[4.0]);
        let want = [NAN, NAN, NAN, 15.0 / 6.0, 26.0 / 6.0, 31.0 / 6.0];
        assert_close(&out[0], &want, 1e-15, "trima(4)");
        // period 3: weights 1,2,1 / 4: (1+4+3)/4 = 2, (2+6+4)/4 = 3, (3+8+10)/4,
        // (4+20+0)/4 = 6
        let out = run(&SPEC, &[x], &[3.0]);
        let want = [NAN, NAN, 2.0, 3.0, 21.0 / 4.0, 6.0];
        assert_close(&out[0], &want, 1e-15, "trima(3)");
    }

    #[test]
    fn edge_lengths_and_small_periods() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
            let out = run(&SPEC, std::slice::from_ref(&x), &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
            assert_close(&run(&SPEC, std::slice::from_ref(&x), &[1.0])[0], &x, 0.0, "trima(1)");
            // period 2 is the SMA of 2
            let sma2 = run(&super::super::sma::SPEC, std::slice::from_ref(&x), &[2.0]);
            let trima2 = run(&SPEC, std::slice::from_ref(&x), &[2.0]);
            assert_close(&trima2[0], &sma2[0], 1e-15, "trima(2)");
        }
    }
}
