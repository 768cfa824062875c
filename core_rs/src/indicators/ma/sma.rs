//! SMA: the mean of the last `timeperiod` values.

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "sma",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| sma_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| sma_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Sma::new(int_param(p, 0)))),
    load_state: Some(load::<Sma>),
};

/// SMA of a gap-free series into `out` (same length), NaN for the first
/// `period - 1` values. The window sum moves by `x[i] - x[i - period]`,
/// computed off the dependency chain, so the loop carries one add per bar.
pub fn sma_into(x: &[f64], period: usize, out: &mut [f64]) {
    sma_checked(x, period, out);
}

/// `sma_into` that also returns whether every input was finite, checked in
/// the same pass (see `RunCheckedFn`).
pub fn sma_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    let lb = period - 1;
    fill_nan(out, lb);
    if x.len() <= lb {
        return !any_non_finite(x);
    }
    let inv = 1.0 / period as f64;
    let mut sum = 0.0;
    let mut bad = false;
    for &v in &x[..period] {
        sum += v;
        bad |= non_finite(v);
    }
    out[lb] = sum * inv;
    let (ahead, behind) = (&x[period..], &x[..x.len() - period]);
    for ((o, &new), &old) in out[period..].iter_mut().zip(ahead).zip(behind) {
        bad |= non_finite(new);
        sum += new - old;
        *o = sum * inv;
    }
    !bad
}

/// The running window: a ring of the last `period` values and their sum.
#[derive(Clone, Serialize, Deserialize)]
pub struct Sma {
    ring: Vec<f64>,
    pos: usize,
    seen: usize,
    sum: f64,
    inv: f64,
}

impl Sma {
    pub fn new(period: usize) -> Sma {
        Sma {
            ring: vec![0.0; period],
            pos: 0,
            seen: 0,
            sum: 0.0,
            inv: 1.0 / period as f64,
        }
    }

    /// The next value, NaN until `period` values were seen.
    pub fn next(&mut self, x: f64) -> f64 {
        let period = self.ring.len();
        if self.seen < period {
            self.sum += x;
            self.seen += 1;
        } else {
            self.sum += x - self.ring[self.pos];
        }
        self.ring[self.pos] = x;
        self.pos = if self.pos + 1 == period {
            0
        } else {
            self.pos + 1
        };
        if self.seen < period {
            f64::NAN
        } else {
            self.sum * self.inv
        }
    }

    pub fn peek(&self, x: f64) -> f64 {
        let period = self.ring.len();
        match self.seen + 1 {
            s if s < period => f64::NAN,
            s if s == period => (self.sum + x) * self.inv,
            _ => (self.sum + (x - self.ring[self.pos])) * self.inv,
        }
    }
}

impl State for Sma {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Sma::peek(self, bar[0]);
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
        let x = vec![1.0, 2.0, 3.0, 4.0, 10.0];
        let out = run(&SPEC, &[x], &[3.0]);
        // (1+2+3)/3, (2+3+4)/3, (3+4+10)/3
        assert_close(&out[0], &[NAN, NAN, 2.0, 3.0, 17.0 / 3.0], 1e-15, "sma");
    }

    #[test]
    fn edge_lengths() {
        for n in [0, 1, 2, 3, 4] {
            let x: Vec<f64> = (1..=n).map(f64::from).collect();
            let out = run(&SPEC, &[x], &[3.0]);
            assert_eq!(out[0].len(), n as usize);
            assert_eq!(
                out[0].iter().filter(|v| v.is_nan()).count(),
                (n as usize).min(2)
            );
        }
    }

    #[test]
    fn period_one_is_identity() {
        let x = vec![3.0, -1.0, 2.5];
        assert_close(
            &run(&SPEC, std::slice::from_ref(&x), &[1.0])[0],
            &x,
            0.0,
            "sma(1)",
        );
    }
}
