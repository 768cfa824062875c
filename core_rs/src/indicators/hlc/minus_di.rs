//! MINUS_DI: Wilder's minus directional indicator, 100 * (-DM sum) / (TR sum)
//! with TA-Lib's seeding (see [`super::dm`]). Lookback `timeperiod`; 0 where
//! the TR sum is 0. Period 1 is -DM / TR without the factor 100, as in TA-Lib.

use serde::{Deserialize, Serialize};

use super::dm::{di_checked, DiState};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "minus_di",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 1.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| minus_di_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| minus_di_checked(i[0], i[1], i[2], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(MinusDi::new(int_param(p, 0)))),
    load_state: Some(load::<MinusDi>),
};

/// MINUS_DI of a gap-free series, NaN for the first `period` values.
pub fn minus_di_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    minus_di_checked(high, low, close, period, out);
}

/// `minus_di_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`).
pub fn minus_di_checked(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    di_checked::<false>(high, low, close, period, out)
}

/// The running MINUS_DI.
#[derive(Clone, Serialize, Deserialize)]
pub struct MinusDi(DiState<false>);

impl MinusDi {
    pub fn new(period: usize) -> MinusDi {
        MinusDi(DiState::new(period))
    }

    /// The next value, NaN during the warm-up.
    pub fn next(&mut self, high: f64, low: f64, close: f64) -> f64 {
        self.0.next(high, low, close)
    }
}

impl State for MinusDi {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1], bar[2]);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    fn bars() -> Vec<Vec<f64>> {
        vec![
            vec![10.0, 12.0, 11.0, 15.0, 14.0],
            vec![9.0, 10.5, 8.0, 13.0, 13.0],
            vec![9.5, 11.0, 8.5, 14.0, 13.5],
        ]
    }

    #[test]
    fn golden_values_by_hand() {
        // bar 1: up 2, down -1.5 -> -DM 0, TR 2.5; bar 2: up -1, down 2.5 ->
        // -DM 2.5, TR 3; bar 3: up 4, down -5 -> -DM 0, TR 6.5; bar 4: up -1,
        // down 0 -> -DM 0 (down must be > 0), TR 1.
        // period 2: seed sums (bar 1) -DM 0, TR 2.5; bar 2: 0 + 2.5 = 2.5,
        // TR 4.25 -> 250/4.25; bar 3: 1.25, 8.625 -> 125/8.625; bar 4: 0.625,
        // 5.3125 -> 62.5/5.3125
        let out = run(&SPEC, &bars(), &[2.0]);
        let want = [NAN, NAN, 250.0 / 4.25, 125.0 / 8.625, 62.5 / 5.3125];
        assert_close(&out[0], &want, 1e-15, "minus_di");
    }

    #[test]
    fn period_one_is_dm_over_tr_without_100() {
        // only bar 2 has a -DM: 2.5 / 3
        let out = run(&SPEC, &bars(), &[1.0]);
        assert_close(
            &out[0],
            &[NAN, 0.0, 2.5 / 3.0, 0.0, 0.0],
            1e-15,
            "minus_di(1)",
        );
    }

    #[test]
    fn flat_is_zero_and_edges_do_not_panic() {
        let flat = vec![vec![5.0; 6]; 3];
        let out = run(&SPEC, &flat, &[2.0]);
        assert_close(&out[0], &[NAN, NAN, 0.0, 0.0, 0.0, 0.0], 0.0, "flat");
        for n in 0..5 {
            let x = vec![vec![1.0; n]; 3];
            let out = run(&SPEC, &x, &[3.0]);
            assert_eq!(out[0].len(), n);
            assert!(out[0].iter().take(3).all(|v| v.is_nan()));
        }
    }
}
