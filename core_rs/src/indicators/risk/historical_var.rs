//! HISTORICAL_VAR: historical value at risk of the last `timeperiod` log
//! returns: -(the 1 - confidence quantile, numpy's default linear
//! interpolation), a positive number for a loss (0.03: a one-bar log
//! return of -3 % or worse has probability 1 - confidence).

use super::sorted::{QuantileAt, SortedReturns};
use super::{price_state, Spec};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param};
use crate::CoreError;

pub const SPEC: Spec = Spec {
    name: "historical_var",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 100.0, 2.0), CONFIDENCE],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| historical_var_into(i[0], int_param(p, 0), p[1], o[0]),
    run_checked: None,
    check: Some(check_confidence),
    new_state: Some(|p| Box::new(HistoricalVar::new(int_param(p, 0), p[1]))),
    load_state: Some(load::<HistoricalVar>),
};

/// The probability that a loss stays within the VaR, strictly between 0
/// and 1 (checked by [`check_confidence`]).
pub const CONFIDENCE: Param = Param::real("confidence", 0.95, 0.0, 1.0);

pub fn check_confidence(p: &[f64]) -> Result<(), CoreError> {
    if p[1] > 0.0 && p[1] < 1.0 {
        Ok(())
    } else {
        Err(CoreError::InvalidArgument {
            name: "confidence",
            reason: format!("must be strictly between 0 and 1, got {}", p[1]),
        })
    }
}

/// Historical VaR of a gap-free series, NaN for the first `period` prices.
pub fn historical_var_into(x: &[f64], period: usize, confidence: f64, out: &mut [f64]) {
    let mut state = HistoricalVar::new(period, confidence);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = state.next(v);
    }
}

/// -(the quantile) of a sorted window.
#[inline]
pub fn var_of(sorted: &[f64], at: &QuantileAt) -> f64 {
    -at.of(sorted)
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoricalVar {
    window: SortedReturns,
}

impl HistoricalVar {
    pub fn new(period: usize, confidence: f64) -> HistoricalVar {
        HistoricalVar {
            window: SortedReturns::new(period, confidence),
        }
    }

    #[inline]
    pub fn next(&mut self, price: f64) -> f64 {
        self.window.next(price, var_of)
    }

    pub fn peek(&self, price: f64) -> f64 {
        self.clone().next(price)
    }
}

price_state!(HistoricalVar);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    /// Prices whose log returns are `r`, from 1.
    fn prices(r: &[f64]) -> Vec<f64> {
        let mut p = vec![1.0];
        for v in r {
            p.push(p.last().unwrap() * v.exp());
        }
        p
    }

    #[test]
    fn golden_values_by_hand() {
        // Returns 0.01, -0.05, 0.02, -0.01, 0.03; period 4, confidence 0.75:
        // quantile level 0.25, index h = 3 * 0.25 = 0.75.
        // (0.01, -0.05, 0.02, -0.01) sorted -0.05, -0.01, 0.01, 0.02:
        //   -0.01 - 0.04 * 0.25 = -0.02 -> VaR 0.02
        // (-0.05, 0.02, -0.01, 0.03) sorted -0.05, -0.01, 0.02, 0.03: same.
        let x = prices(&[0.01, -0.05, 0.02, -0.01, 0.03]);
        let out = run(&SPEC, &[x], &[4.0, 0.75]);
        assert_close(&out[0], &[NAN, NAN, NAN, NAN, 0.02, 0.02], 1e-12, "var");
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
    fn confidence_is_checked() {
        assert!(SPEC.validate(&[100.0, 0.95]).is_ok());
        for bad in [0.0, 1.0, 1.5, -0.1] {
            let err = SPEC.validate(&[100.0, bad]).unwrap_err().to_string();
            assert!(err.starts_with("confidence:"), "{err}");
        }
    }
}
