//! ROC: rate of change in percent, (x[i] / x[i - timeperiod] - 1) * 100, as
//! TA-Lib's `ROC`. Where the earlier value is exactly 0 the output is 0
//! (TA-Lib's convention), not infinity.

use serde::{Deserialize, Serialize};

use super::gaps::Gaps;
use super::mom::Lag;
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "roc",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 10.0, 1.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| roc_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| roc_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Roc(Lag::new(int_param(p, 0))))),
    load_state: Some(load::<Roc>),
};

/// One ROC value, in TA-Lib's order of operations.
#[inline(always)]
pub fn roc_value(cur: f64, old: f64) -> f64 {
    // Computed unconditionally then selected, so the loop vectorizes; a
    // zero divisor only makes a discarded infinity or NaN.
    let r = (cur / old - 1.0) * 100.0;
    if old != 0.0 {
        r
    } else {
        0.0
    }
}

/// ROC of a gap-free series into `out`, NaN for the first `period` values.
pub fn roc_into(x: &[f64], period: usize, out: &mut [f64]) {
    roc_checked(x, period, out);
}

/// `roc_into` that also returns whether every input was finite, checked in
/// the same pass (see `RunCheckedFn`).
pub fn roc_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    fill_nan(out, period);
    let mut gaps = Gaps::default();
    if x.len() <= period {
        gaps.see_all(x);
        return gaps.finite();
    }
    gaps.see_all(&x[..period]);
    for (o, (&cur, &old)) in out[period..].iter_mut().zip(x[period..].iter().zip(x)) {
        gaps.see(cur);
        *o = roc_value(cur, old);
    }
    gaps.finite()
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Roc(Lag);

impl State for Roc {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self
            .0
            .push(bar[0])
            .map_or(f64::NAN, |old| roc_value(bar[0], old));
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = self
            .0
            .lagged()
            .map_or(f64::NAN, |old| roc_value(bar[0], old));
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
        // period 1: (2/1 - 1) * 100 = 100, (1/2 - 1) * 100 = -50,
        // (0/1 - 1) * 100 = -100, then 5 over 0 is 0 by convention.
        let out = run(&SPEC, &[vec![1.0, 2.0, 1.0, 0.0, 5.0]], &[1.0]);
        assert_close(&out[0], &[NAN, 100.0, -50.0, -100.0, 0.0], 0.0, "roc");
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| i as f64 + 1.0).collect();
            let out = run(&SPEC, &[x], &[2.0]);
            assert_eq!(out[0].len(), n);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
        }
    }
}
