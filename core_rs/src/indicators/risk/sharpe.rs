//! SHARPE: the annualized Sharpe ratio of the last `timeperiod` log
//! returns, sqrt(periods_per_year) * (mean(r) - risk_free /
//! periods_per_year) / std(r, ddof = 1). NaN when the window's returns are all equal
//! (zero deviation: the ratio is undefined, and 0 would claim "no edge").

use serde::{Deserialize, Serialize};

use super::window::{bad_price, run_steps, Blocks, LogReturn, Moments};
use super::{positive, price_state, PERIODS_PER_YEAR, RISK_FREE};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param, Spec};

pub const SPEC: Spec = Spec {
    name: "sharpe",
    inputs: &["real"],
    outputs: &["real"],
    params: &[
        Param::period("timeperiod", 30.0, 2.0),
        RISK_FREE,
        PERIODS_PER_YEAR,
    ],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| sharpe_into(i[0], int_param(p, 0), p[1], p[2], o[0]),
    run_checked: None,
    check: Some(|p| positive(p, 2, "periods_per_year")),
    new_state: Some(|p| Box::new(Sharpe::new(int_param(p, 0), p[1], p[2]))),
    load_state: Some(load::<Sharpe>),
};

/// Sharpe ratio of a gap-free series, NaN for the first `period` prices.
/// Mean and deviation come from Welford/Chan block aggregates
/// ([`Blocks`]), as in `volatility`.
pub fn sharpe_into(
    x: &[f64],
    period: usize,
    risk_free: f64,
    periods_per_year: f64,
    out: &mut [f64],
) {
    let mut state = Sharpe::new(period, risk_free, periods_per_year);
    run_steps(&mut state, x, out, Sharpe::next);
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Sharpe {
    ret: LogReturn,
    window: Blocks<f64, Moments>,
    /// The risk-free return per bar.
    rf: f64,
    /// sqrt(periods_per_year * (period - 1)): excess / sqrt(M2) times it is
    /// excess / std * sqrt(periods_per_year).
    scale: f64,
}

impl Sharpe {
    pub fn new(period: usize, risk_free: f64, periods_per_year: f64) -> Sharpe {
        Sharpe {
            ret: LogReturn::default(),
            window: Blocks::new(period),
            rf: risk_free / periods_per_year,
            scale: (periods_per_year * (period as f64 - 1.0)).sqrt(),
        }
    }

    #[inline(always)]
    fn value(&self, m: Option<Moments>) -> f64 {
        match m {
            Some(m) if m.m2 > 0.0 => (m.mean - self.rf) * self.scale / m.m2.sqrt(),
            _ => f64::NAN,
        }
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

price_state!(Sharpe);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // Prices 1, e, e^3, e^2, e^2, e^2: log returns 1, 2, -1, 0, 0.
        // Period 2, risk_free 0.4, periods_per_year 4: rf per bar 0.1,
        // factor sqrt(4) = 2.
        // (1, 2): mean 1.5, std sqrt(0.5): (1.4 / sqrt 0.5) * 2 = 2.8 sqrt 2
        // (2, -1): mean 0.5, std sqrt(4.5): 0.4 / sqrt(4.5) * 2 = 0.8 / sqrt 4.5
        // (-1, 0): mean -0.5, std sqrt 0.5: -0.6 / sqrt(0.5) * 2 = -1.2 sqrt 2
        // (0, 0): zero deviation: NaN
        let e = std::f64::consts::E;
        let x = vec![1.0, e, e.powi(3), e * e, e * e, e * e];
        let out = run(&SPEC, &[x], &[2.0, 0.4, 4.0]);
        let s2 = 2f64.sqrt();
        let want = [NAN, NAN, 2.8 * s2, 0.8 / 4.5f64.sqrt(), -1.2 * s2, NAN];
        assert_close(&out[0], &want, 1e-14, "sharpe");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..6 {
            let x: Vec<f64> = (1..=n).map(|i| f64::from(i as u32 * i as u32)).collect();
            let out = run(&SPEC, &[x], &[3.0, 0.0, 1.0]);
            assert_eq!(out[0].len(), n);
            for (i, v) in out[0].iter().enumerate() {
                assert_eq!(v.is_nan(), i < 3, "{i}: {v}");
            }
        }
    }

    #[test]
    fn flat_is_nan() {
        let out = run(&SPEC, &[vec![3.0; 50]], &[10.0, 0.0, 365.0]);
        assert!(out[0].iter().all(|v| v.is_nan()));
    }
}
