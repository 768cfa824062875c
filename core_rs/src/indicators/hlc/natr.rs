//! NATR: ATR as a percentage of the close, 100 * atr / close (0 when the
//! close is 0). TA-Lib quirk kept for equal values: with `timeperiod` 1 it
//! returns the raw true range, not normalised.

use serde::{Deserialize, Serialize};

use super::atr::{atr_generic, normalise, Atr};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "natr",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 1.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| natr_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| natr_checked(i[0], i[1], i[2], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Natr::new(int_param(p, 0)))),
    load_state: Some(load::<Natr>),
};

/// NATR of a gap-free series, NaN for the first `period` values.
pub fn natr_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    natr_checked(high, low, close, period, out);
}

/// `natr_into` that also returns whether every input was finite, checked
/// in the same pass as the ATR (see `RunCheckedFn`); the normalisation is
/// fused into that pass too.
pub fn natr_checked(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    atr_generic::<true>(high, low, close, period, out)
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Natr {
    atr: Atr,
    raw: bool,
}

impl Natr {
    pub fn new(period: usize) -> Natr {
        Natr {
            atr: Atr::new(period),
            raw: period == 1,
        }
    }

    fn finish(&self, atr: f64, close: f64) -> f64 {
        if self.raw || atr.is_nan() {
            atr
        } else {
            normalise(atr, close)
        }
    }
}

impl State for Natr {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        let atr = self.atr.next(bar[0], bar[1], bar[2]);
        out[0] = self.finish(atr, bar[2]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        let atr = self.atr.peek(bar[0], bar[1], bar[2]);
        out[0] = self.finish(atr, bar[2]);
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
        let high = vec![10.0, 12.0, 11.0, 15.0, 14.0];
        let low = vec![9.0, 10.5, 8.0, 13.0, 13.0];
        let close = vec![9.5, 11.0, 8.5, 14.0, 12.5];
        // ATR(2) as in atr.rs: 2.75 at bar 2, then (2.75 + 6.5)/2 = 4.625, then
        // tr max(14-13, |14-14|, |13-14|) = 1: (4.625 + 1)/2 = 2.8125.
        // NATR: 2.75/8.5*100, 4.625/14*100, 2.8125/12.5*100.
        let out = run(&SPEC, &[high, low, close], &[2.0]);
        let want = [
            NAN,
            NAN,
            2.75 / 8.5 * 100.0,
            4.625 / 14.0 * 100.0,
            2.8125 / 12.5 * 100.0,
        ];
        assert_close(&out[0], &want, 1e-15, "natr");
    }

    #[test]
    fn zero_close_is_zero_and_period_one_is_raw_true_range() {
        let out = run(
            &SPEC,
            &[
                vec![1.0, 2.0, 1.0],
                vec![0.0, 0.0, 0.0],
                vec![0.5, 0.0, 0.0],
            ],
            &[1.0],
        );
        assert_close(&out[0], &[NAN, 2.0, 1.0], 0.0, "natr(1)");
        let out = run(
            &SPEC,
            &[
                vec![1.0, 2.0, 1.0],
                vec![0.0, 0.0, 0.0],
                vec![0.5, 0.0, 0.0],
            ],
            &[2.0],
        );
        assert_close(&out[0], &[NAN, NAN, 0.0], 0.0, "natr close 0");
    }
}
