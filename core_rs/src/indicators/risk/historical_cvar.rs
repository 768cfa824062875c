//! HISTORICAL_CVAR: historical conditional value at risk (expected
//! shortfall) of the last `timeperiod` log returns: -(the mean of the
//! returns at or below the 1 - confidence quantile, the quantile as in
//! `historical_var`), a positive number for a loss.

use super::historical_var::{check_confidence, CONFIDENCE};
use super::sorted::{QuantileAt, SortedReturns};
use super::{price_state, Spec};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param};

pub const SPEC: Spec = Spec {
    name: "historical_cvar",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 100.0, 2.0), CONFIDENCE],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| historical_cvar_into(i[0], int_param(p, 0), p[1], o[0]),
    run_checked: None,
    check: Some(check_confidence),
    new_state: Some(|p| Box::new(HistoricalCvar::new(int_param(p, 0), p[1]))),
    load_state: Some(load::<HistoricalCvar>),
};

/// Historical CVaR of a gap-free series, NaN for the first `period`
/// prices. The tail is a prefix of the sorted window: summing it costs
/// O((1 - confidence) * period) per bar.
pub fn historical_cvar_into(x: &[f64], period: usize, confidence: f64, out: &mut [f64]) {
    let mut state = HistoricalCvar::new(period, confidence);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = state.next(v);
    }
}

/// -(mean of the values <= the quantile) of a sorted window.
#[inline]
pub fn cvar_of(sorted: &[f64], at: &QuantileAt) -> f64 {
    // The values up to floor(h) are <= the quantile; past it, only ties
    // with the quantile can be.
    let cut = at.of(sorted);
    let mut m = at.lo + 1;
    while m < sorted.len() && sorted[m] <= cut {
        m += 1;
    }
    -(sorted[..m].iter().sum::<f64>() / m as f64)
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoricalCvar {
    window: SortedReturns,
}

impl HistoricalCvar {
    pub fn new(period: usize, confidence: f64) -> HistoricalCvar {
        HistoricalCvar {
            window: SortedReturns::new(period, confidence),
        }
    }

    #[inline]
    pub fn next(&mut self, price: f64) -> f64 {
        self.window.next(price, cvar_of)
    }

    pub fn peek(&self, price: f64) -> f64 {
        self.clone().next(price)
    }
}

price_state!(HistoricalCvar);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    fn prices(r: &[f64]) -> Vec<f64> {
        let mut p = vec![1.0];
        for v in r {
            p.push(p.last().unwrap() * v.exp());
        }
        p
    }

    #[test]
    fn golden_values_by_hand() {
        // Returns 0.01, -0.05, 0.02, -0.01, -0.03; period 4, confidence 0.6:
        // quantile level 0.4, index h = 3 * 0.4 = 1.2.
        // (0.01, -0.05, 0.02, -0.01) sorted -0.05, -0.01, 0.01, 0.02:
        //   quantile -0.01 + 0.02 * 0.2 = -0.006; at or below it -0.05 and
        //   -0.01: CVaR 0.03
        // (-0.05, 0.02, -0.01, -0.03) sorted -0.05, -0.03, -0.01, 0.02:
        //   quantile -0.03 + 0.02 * 0.2 = -0.026; below: -0.05, -0.03:
        //   CVaR 0.04
        let x = prices(&[0.01, -0.05, 0.02, -0.01, -0.03]);
        let out = run(&SPEC, &[x], &[4.0, 0.6]);
        assert_close(&out[0], &[NAN, NAN, NAN, NAN, 0.03, 0.04], 1e-12, "cvar");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..6 {
            let x = prices(&[0.01, -0.02, 0.03, -0.04, 0.05]);
            let out = run(&SPEC, &[x[..n].to_vec()], &[3.0, 0.9]);
            assert_eq!(out[0].len(), n);
            for (i, v) in out[0].iter().enumerate() {
                assert_eq!(v.is_nan(), i < 3, "{i}: {v}");
            }
        }
    }

    #[test]
    fn ties_at_the_quantile_all_count() {
        // Returns -0.02, -0.02, -0.02, 0.05: quantile (level 0.5, h = 1.5)
        // is -0.02 exactly; all three ties are in the tail.
        let x = prices(&[-0.02, -0.02, -0.02, 0.05]);
        let out = run(&SPEC, &[x], &[4.0, 0.5]);
        assert_close(&out[0][4..], &[0.02], 1e-12, "cvar ties");
    }
}
