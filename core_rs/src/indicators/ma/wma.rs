//! WMA: linearly weighted moving average, weights 1..=timeperiod (the
//! newest value weighs most), divided by n(n+1)/2.

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "wma",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| wma_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| wma_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Wma::new(int_param(p, 0)))),
    load_state: Some(load::<Wma>),
};

/// WMA of a gap-free series, NaN for the first `period - 1` values.
///
/// With `num` the weighted sum and `sum` the plain window sum, one step is
/// `num += p * x_new - sum; sum += x_new - x_old`: each running value carries
/// a single add per bar (TA-Lib's `periodSum -= periodSub` carries two).
/// `num` integrates the rounding of `sum`, so both are recomputed exactly
/// from the window every [`exact_every`] outputs: the error stays that of a
/// few hundred steps, however long the series.
pub fn wma_into(x: &[f64], period: usize, out: &mut [f64]) {
    wma_checked(x, period, out);
}

/// `wma_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`): the first window's values up
/// front, then each value as it enters (the last value of each exact
/// window as its block starts).
pub fn wma_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    let lb = period - 1;
    let n = x.len();
    fill_nan(out, lb);
    if n <= lb {
        return !any_non_finite(x);
    }
    let mut bad = any_non_finite(&x[..lb]);
    let inv = inv_divider(period);
    let pf = period as f64;
    let every = exact_every(period);
    let mut i0 = lb;
    while i0 < n {
        bad |= non_finite(x[i0]);
        let (mut num, mut nsum) = exact(&x[i0 + 1 - period..=i0]);
        out[i0] = num * inv;
        let end = (i0 + every).min(n);
        let (ahead, behind) = (&x[i0 + 1..end], &x[i0 + 1 - period..end - period]);
        for ((o, &new), &old) in out[i0 + 1..end].iter_mut().zip(ahead).zip(behind) {
            // The plain sum is kept negated: with `sum += ...` next to
            // `num += ...` LLVM packs both adds into one SIMD register and
            // puts a shuffle on the dependency chain (3x slower).
            bad |= non_finite(new);
            num += new * pf + nsum;
            nsum -= new - old;
            *o = num * inv;
        }
        i0 = end;
    }
    !bad
}

/// Outputs between exact recomputations of the running sums.
pub fn exact_every(period: usize) -> usize {
    4 * period.max(64)
}

/// The weighted sum and the negated plain sum of a window, oldest first.
fn exact(w: &[f64]) -> (f64, f64) {
    let (mut num, mut nsum) = (0.0, 0.0);
    for (k, &v) in w.iter().enumerate() {
        nsum -= v;
        num += v * (k + 1) as f64;
    }
    (num, nsum)
}

fn inv_divider(period: usize) -> f64 {
    let p = period as f64;
    1.0 / (p * (p + 1.0) * 0.5)
}

/// The running WMA: a ring of the last `period` values, the weighted sum
/// and the negated plain sum (the same operations as `wma_into`).
#[derive(Clone, Serialize, Deserialize)]
pub struct Wma {
    ring: Vec<f64>,
    pos: usize,
    seen: usize,
    num: f64,
    nsum: f64,
    inv: f64,
}

impl Wma {
    pub fn new(period: usize) -> Wma {
        Wma {
            ring: vec![0.0; period],
            pos: 0,
            seen: 0,
            num: 0.0,
            nsum: 0.0,
            inv: inv_divider(period),
        }
    }

    /// True if the output for the next value is an exact recomputation.
    fn exact_next(&self) -> bool {
        let period = self.ring.len();
        self.seen >= period && (self.seen + 1 - period) % exact_every(period) == 0
    }

    /// The next value, NaN until `period` values were seen.
    pub fn next(&mut self, x: f64) -> f64 {
        let period = self.ring.len();
        let exact_now = self.exact_next();
        if self.seen < period {
            self.seen += 1;
            self.nsum -= x;
            self.num += x * self.seen as f64;
        } else if !exact_now {
            self.seen += 1;
            self.num += x * period as f64 + self.nsum;
            self.nsum -= x - self.ring[self.pos];
        } else {
            self.seen += 1;
        }
        self.ring[self.pos] = x;
        self.pos = if self.pos + 1 == period {
            0
        } else {
            self.pos + 1
        };
        if exact_now {
            let (newer, older) = self.ring.split_at(self.pos);
            let w: Vec<f64> = older.iter().chain(newer).copied().collect();
            (self.num, self.nsum) = exact(&w);
        }
        if self.seen < period {
            f64::NAN
        } else {
            self.num * self.inv
        }
    }

    pub fn peek(&self, x: f64) -> f64 {
        let period = self.ring.len();
        if self.exact_next() {
            return self.clone().next(x);
        }
        match self.seen + 1 {
            s if s < period => f64::NAN,
            s if s == period => (self.num + x * s as f64) * self.inv,
            _ => (self.num + (x * period as f64 + self.nsum)) * self.inv,
        }
    }
}

impl State for Wma {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Wma::peek(self, bar[0]);
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
        // period 3, divider 6: (1*1+2*2+3*3)/6 = 14/6, (2+6+12)/6 = 20/6,
        // (3+8+30)/6 = 41/6
        let out = run(&SPEC, &[vec![1.0, 2.0, 3.0, 4.0, 10.0]], &[3.0]);
        let want = [NAN, NAN, 14.0 / 6.0, 20.0 / 6.0, 41.0 / 6.0];
        assert_close(&out[0], &want, 1e-15, "wma");
    }

    #[test]
    fn state_matches_batch_across_exact_passes() {
        let x = crate::indicators::testing::make_inputs(&["close"], 2000, 4).remove(0);
        for period in [2usize, 5, 70] {
            let want = run(&SPEC, std::slice::from_ref(&x), &[period as f64]);
            let mut st = Wma::new(period);
            for (i, &v) in x.iter().enumerate() {
                let p = st.peek(v);
                let got = st.next(v);
                assert!(p.to_bits() == got.to_bits() || (p.is_nan() && got.is_nan()));
                assert_close(&[got], &want[0][i..=i], 1e-12, "wma state");
            }
        }
    }

    #[test]
    fn edge_lengths_and_period_one() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, std::slice::from_ref(&x), &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
            assert_close(
                &run(&SPEC, std::slice::from_ref(&x), &[1.0])[0],
                &x,
                0.0,
                "wma(1)",
            );
        }
    }
}
