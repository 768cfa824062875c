//! TRIMA: triangular moving average, weights 1, 2, ..., 2, 1 peaking in the
//! middle of the window. As TA-Lib documents, it equals an SMA of an SMA:
//! odd n: SMA(SMA(x, (n+1)/2), (n+1)/2); even n: SMA(SMA(x, n/2), n/2 + 1).

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "trima",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| trima_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| trima_checked(i[0], int_param(p, 0), o[0])),
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
/// a second running sum over the input shifted by b (`s_lag`, the same
/// operations on the same values, so bitwise `s` delayed), so no ring is
/// needed and each of the three sums carries one add per bar (TA-Lib's
/// numerator carries three). The sums are recomputed exactly from the
/// window every [`exact_every`] outputs, which bounds their drift.
pub fn trima_into(x: &[f64], period: usize, out: &mut [f64]) {
    trima_checked(x, period, out);
}

/// `trima_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`): the first window's values up
/// front, then each value as it enters (the last value of each exact
/// window as its block starts).
pub fn trima_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    let lb = period - 1;
    let n = x.len();
    fill_nan(out, lb);
    if n <= lb {
        return !any_non_finite(x);
    }
    let mut bad = any_non_finite(&x[..lb]);
    let (a, b, factor) = split(period);
    let every = exact_every(period);
    let mut i0 = lb;
    while i0 < n {
        bad |= non_finite(x[i0]);
        let (mut s, mut t, mut s_lag) = exact(&x[i0 + 1 - period..=i0], a, |_, _| {});
        out[i0] = t * factor;
        let end = (i0 + every).min(n);
        // At bar i: x[i] enters and x[i - a] leaves s; s_lag (s at bar i - b)
        // then moves to bar i + 1 - b: x[i + 1 - b] enters, x[i - period] leaves.
        let new_in = &x[i0 + 1..end];
        let old_in = &x[i0 + 1 - a..end - a];
        let lag_new = &x[i0 + 2 - b..end + 1 - b];
        let lag_old = &x[i0 + 1 - period..end - period];
        for ((((o, &xn), &xo), &ln), &lo) in out[i0 + 1..end]
            .iter_mut()
            .zip(new_in)
            .zip(old_in)
            .zip(lag_new)
            .zip(lag_old)
        {
            bad |= non_finite(xn);
            s += xn - xo;
            t += s - s_lag;
            s_lag += ln - lo;
            *o = t * factor;
        }
        i0 = end;
    }
    !bad
}

/// Outputs between exact recomputations of the running sums.
pub fn exact_every(period: usize) -> usize {
    4 * period.max(64)
}

/// The sums of a full window (oldest first): the inner sum over the first
/// `a` values, slid to the end while summing its b values into `t`.
/// Returns (s at the end, t, s at bar a - 1) and passes each inner sum to
/// `store(k, s)`.
fn exact(w: &[f64], a: usize, mut store: impl FnMut(usize, f64)) -> (f64, f64, f64) {
    let mut s = 0.0;
    for &v in &w[..a] {
        s += v;
    }
    let first = s;
    store(0, s);
    let mut t = s;
    for (k, (&new, &old)) in w[a..].iter().zip(w).enumerate() {
        s += new - old;
        t += s;
        store(k + 1, s);
    }
    (s, t, first)
}

/// The running TRIMA: the last `period` inputs, the last `b` inner sums,
/// and the two sums (the same operations as `trima_into`).
#[derive(Clone, Serialize, Deserialize)]
pub struct Trima {
    a: usize,
    xs: Vec<f64>,
    pos: usize,
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
            a,
            xs: vec![0.0; period],
            pos: 0,
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
        let period = self.xs.len();
        self.seen += 1;
        let exact_now = self.seen >= period && (self.seen - period) % exact_every(period) == 0;
        if self.seen > period && !exact_now {
            // xs[pos] is the oldest value, x[i - period]; x[i - a] is a - period
            // places later.
            let leaving = self.xs[(self.pos + period - self.a) % period];
            self.s += x - leaving;
            self.t += self.s - self.sums[self.s_pos];
            self.sums[self.s_pos] = self.s;
            self.s_pos = if self.s_pos + 1 == self.sums.len() {
                0
            } else {
                self.s_pos + 1
            };
        }
        self.xs[self.pos] = x;
        self.pos = if self.pos + 1 == period {
            0
        } else {
            self.pos + 1
        };
        if self.seen < period {
            return f64::NAN;
        }
        if exact_now {
            let (newer, older) = self.xs.split_at(self.pos);
            let w: Vec<f64> = older.iter().chain(newer).copied().collect();
            let sums = &mut self.sums;
            (self.s, self.t, _) = exact(&w, self.a, |k, s| sums[k] = s);
            self.s_pos = 0;
        }
        self.t * self.factor
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
    fn state_matches_batch_across_exact_passes() {
        let x = crate::indicators::testing::make_inputs(&["close"], 2000, 4).remove(0);
        for period in [2usize, 5, 6, 71] {
            let want = run(&SPEC, std::slice::from_ref(&x), &[period as f64]);
            let mut st = Trima::new(period);
            for (i, &v) in x.iter().enumerate() {
                assert_close(&[st.next(v)], &want[0][i..=i], 1e-12, "trima state");
            }
        }
    }

    #[test]
    fn edge_lengths_and_small_periods() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
            let out = run(&SPEC, std::slice::from_ref(&x), &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
            assert_close(
                &run(&SPEC, std::slice::from_ref(&x), &[1.0])[0],
                &x,
                0.0,
                "trima(1)",
            );
            // period 2 is the SMA of 2
            let sma2 = run(&super::super::sma::SPEC, std::slice::from_ref(&x), &[2.0]);
            let trima2 = run(&SPEC, std::slice::from_ref(&x), &[2.0]);
            assert_close(&trima2[0], &sma2[0], 1e-15, "trima(2)");
        }
    }
}
