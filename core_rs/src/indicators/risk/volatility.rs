//! VOLATILITY: annualized volatility, the sample standard deviation
//! (ddof = 1) of the last `timeperiod` log returns times
//! sqrt(periods_per_year).

use serde::{Deserialize, Serialize};

use super::window::{bad_price, run_steps, Blocks, LogReturn, Moments};
use super::{positive, price_state, PERIODS_PER_YEAR};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param, Spec};

pub const SPEC: Spec = Spec {
    name: "volatility",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 2.0), PERIODS_PER_YEAR],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| volatility_into(i[0], int_param(p, 0), p[1], o[0]),
    run_checked: None,
    check: Some(|p| positive(p, 1, "periods_per_year")),
    new_state: Some(|p| Box::new(Volatility::new(int_param(p, 0), p[1]))),
    load_state: Some(load::<Volatility>),
};

/// Volatility of a gap-free series, NaN for the first `period` prices
/// (`period` returns need `period + 1` prices). The window's moments are
/// Welford/Chan aggregates over blocks ([`Blocks`]): no running sum of
/// squares, nothing that drifts along the series.
pub fn volatility_into(x: &[f64], period: usize, periods_per_year: f64, out: &mut [f64]) {
    let mut state = Volatility::new(period, periods_per_year);
    run_steps(&mut state, x, out, Volatility::next);
}

/// The last price and the window of returns.
#[derive(Clone, Serialize, Deserialize)]
pub struct Volatility {
    ret: LogReturn,
    window: Blocks<f64, Moments>,
    /// periods_per_year / (period - 1): M2 times it is the annualized
    /// sample variance.
    scale: f64,
}

impl Volatility {
    pub fn new(period: usize, periods_per_year: f64) -> Volatility {
        Volatility {
            ret: LogReturn::default(),
            window: Blocks::new(period),
            scale: periods_per_year / (period as f64 - 1.0),
        }
    }

    #[inline(always)]
    fn value(&self, m: Option<Moments>) -> f64 {
        // M2 is a sum of non-negative terms; max() guards the last ulp.
        m.map_or(f64::NAN, |m| (m.m2.max(0.0) * self.scale).sqrt())
    }

    #[inline]
    pub fn next(&mut self, price: f64) -> f64 {
        if bad_price(price) {
            self.ret.reset();
            self.window.reset();
            return f64::NAN;
        }
        let m = self.ret.next(price).and_then(|r| self.window.push(r));
        self.value(m)
    }

    pub fn peek(&self, price: f64) -> f64 {
        if bad_price(price) {
            return f64::NAN;
        }
        let m = self.ret.peek(price).and_then(|r| self.window.peek(r));
        self.value(m)
    }
}

price_state!(Volatility);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, make_inputs, run};

    const NAN: f64 = f64::NAN;

    /// The sample standard deviation by the textbook two-pass formula.
    fn two_pass_std(r: &[f64]) -> f64 {
        let n = r.len() as f64;
        let mean = r.iter().sum::<f64>() / n;
        (r.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt()
    }

    #[test]
    fn golden_values_by_hand() {
        // Prices 1, e, e^3, e^2, e^2: log returns 1, 2, -1, 0.
        // Period 2, periods_per_year 4 (so the factor is sqrt(4) = 2):
        // returns (1, 2): mean 1.5, sample var 0.5, vol sqrt(0.5)*2 = sqrt 2
        // returns (2, -1): mean 0.5, var (2.25+2.25)/1 = 4.5, vol sqrt(18)
        // returns (-1, 0): var 0.5, vol sqrt 2
        let e = std::f64::consts::E;
        let x = vec![1.0, e, e.powi(3), e * e, e * e];
        let out = run(&SPEC, &[x], &[2.0, 4.0]);
        let want = [NAN, NAN, 2f64.sqrt(), 18f64.sqrt(), 2f64.sqrt()];
        assert_close(&out[0], &want, 1e-14, "volatility");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..6 {
            let x: Vec<f64> = (1..=n).map(|i| f64::from(i as u32)).collect();
            let out = run(&SPEC, &[x], &[3.0, 1.0]);
            assert_eq!(out[0].len(), n);
            for (i, v) in out[0].iter().enumerate() {
                assert_eq!(v.is_nan(), i < 3, "{i}: {v}");
            }
        }
    }

    #[test]
    fn flat_is_exactly_zero() {
        let out = run(&SPEC, &[vec![7.5; 100]], &[10.0, 365.0]);
        assert!(out[0][10..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn long_trending_series_matches_two_pass() {
        // A strong trend: returns 0.01 +- 1e-5, mean / std ~ 1e3, where a
        // running sum of squares would lose ~6 digits.
        let n = 200_000;
        let mut rng = crate::indicators::testing::Rng::new(11);
        let mut x = Vec::with_capacity(n);
        let mut log_p = 0.0;
        for _ in 0..n {
            log_p += 0.01 + (rng.next_f64() - 0.5) * 2e-5;
            x.push(log_p.exp());
        }
        let period = 50;
        let out = run(&SPEC, std::slice::from_ref(&x), &[period as f64, 1.0]);
        let r: Vec<f64> = x.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        for i in (period..n).step_by(997) {
            let want = two_pass_std(&r[i - period..i]);
            assert_close(&out[0][i..=i], &[want], 1e-9, "trend");
        }
    }

    #[test]
    fn non_positive_price_restarts() {
        let mut x = make_inputs(&["real"], 60, 3).remove(0);
        x[20] = 0.0;
        let out = run(&SPEC, std::slice::from_ref(&x), &[5.0, 1.0]);
        let tail = run(&SPEC, &[x[21..].to_vec()], &[5.0, 1.0]);
        assert!(out[0][20].is_nan());
        assert_close(&out[0][21..], &tail[0], 0.0, "restart");
    }
}
