//! SORTINO: the annualized Sortino ratio of the last `timeperiod` log
//! returns: (mean(r) - rf) / DD * sqrt(periods_per_year), with
//! rf = risk_free / periods_per_year and the downside deviation
//! DD = sqrt(mean(min(r - rf, 0)^2)) over all the window's returns (the
//! population form, the standard definition).
//!
//! A window without a return below rf has no downside deviation: the
//! output is NaN. (The ratio would be +inf, or 0/0 when every return
//! equals rf; an infinity wrecks averages, rankings and JSON downstream,
//! and says no more than "undefined here", which NaN says everywhere else
//! in this library, as for a flat window's Sharpe ratio.)

use serde::{Deserialize, Serialize};

use super::window::{bad_price, run_steps, Blocks, LogReturn, Monoid};
use super::{positive, price_state, PERIODS_PER_YEAR, RISK_FREE};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param, Spec};

pub const SPEC: Spec = Spec {
    name: "sortino",
    inputs: &["real"],
    outputs: &["real"],
    params: &[
        Param::period("timeperiod", 30.0, 2.0),
        RISK_FREE,
        PERIODS_PER_YEAR,
    ],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| sortino_into(i[0], int_param(p, 0), p[1], p[2], o[0]),
    run_checked: None,
    check: Some(|p| positive(p, 2, "periods_per_year")),
    new_state: Some(|p| Box::new(Sortino::new(int_param(p, 0), p[1], p[2]))),
    load_state: Some(load::<Sortino>),
};

/// Sortino ratio of a gap-free series, NaN for the first `period` prices.
/// The sums are block aggregates ([`Blocks`]): no value is ever
/// subtracted from a running sum, so a large loss leaving the window leaves
/// no rounding residue in the downside sum.
pub fn sortino_into(
    x: &[f64],
    period: usize,
    risk_free: f64,
    periods_per_year: f64,
    out: &mut [f64],
) {
    let mut state = Sortino::new(period, risk_free, periods_per_year);
    run_steps(&mut state, x, out, Sortino::next);
}

/// Sums over a run of returns: of the returns, of the squared shortfalls
/// min(r - rf, 0)^2, and the number of returns below rf.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Downside {
    sum: f64,
    down: f64,
    below: u32,
}

impl Downside {
    #[inline(always)]
    fn of(r: f64, rf: f64) -> Downside {
        let d = (r - rf).min(0.0);
        Downside {
            sum: r,
            down: d * d,
            below: u32::from(r < rf),
        }
    }
}

impl Monoid for Downside {
    type Item = Downside;

    #[inline(always)]
    fn one(x: Downside) -> Downside {
        x
    }

    #[inline(always)]
    fn push(self, x: Downside) -> Downside {
        Downside::merge(self, x)
    }

    #[inline(always)]
    fn prepend(x: Downside, s: Downside) -> Downside {
        Downside::merge(x, s)
    }

    #[inline(always)]
    fn merge(a: Downside, b: Downside) -> Downside {
        Downside {
            sum: a.sum + b.sum,
            down: a.down + b.down,
            below: a.below + b.below,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Sortino {
    ret: LogReturn,
    window: Blocks<Downside, Downside>,
    /// The risk-free return per bar.
    rf: f64,
    inv_period: f64,
    /// periods_per_year * period: excess * sqrt(it / down) is
    /// excess / sqrt(down / period) * sqrt(periods_per_year).
    scale: f64,
}

impl Sortino {
    pub fn new(period: usize, risk_free: f64, periods_per_year: f64) -> Sortino {
        Sortino {
            ret: LogReturn::default(),
            window: Blocks::new(period),
            rf: risk_free / periods_per_year,
            inv_period: 1.0 / period as f64,
            scale: periods_per_year * period as f64,
        }
    }

    #[inline(always)]
    fn value(&self, w: Option<Downside>) -> f64 {
        match w {
            // `below` counts exactly; `down > 0` also catches a shortfall
            // so small its square underflows.
            Some(w) if w.below > 0 && w.down > 0.0 => {
                (w.sum * self.inv_period - self.rf) * (self.scale / w.down).sqrt()
            }
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
        let rf = self.rf;
        let w = self
            .ret
            .next(price)
            .and_then(|r| self.window.push(Downside::of(r, rf)));
        self.value(w)
    }

    pub fn peek(&self, price: f64) -> f64 {
        if bad_price(price) {
            return f64::NAN;
        }
        let w = self
            .ret
            .peek(price)
            .and_then(|r| self.window.peek(Downside::of(r, self.rf)));
        self.value(w)
    }
}

price_state!(Sortino);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // Prices 1, e, e^3, e^2, e^2, e^4: log returns 1, 2, -1, 0, 2.
        // Period 2, risk_free 0.4, periods_per_year 4: rf 0.1 per bar,
        // factor sqrt(4) = 2.
        // (1, 2): nothing below 0.1: NaN
        // (2, -1): mean 0.5, shortfalls (0, -1.1): DD = sqrt(1.21 / 2),
        //   0.4 / (1.1 / sqrt 2) * 2 = 0.8 sqrt(2) / 1.1
        // (-1, 0): mean -0.5, shortfalls (-1.1, -0.1): DD = sqrt(1.22 / 2),
        //   -0.6 / sqrt(0.61) * 2 = -1.2 / sqrt(0.61)
        // (0, 2): mean 1, shortfalls (-0.1, 0): DD = sqrt(0.01 / 2),
        //   0.9 / (0.1 / sqrt 2) * 2 = 18 sqrt 2
        let e = std::f64::consts::E;
        let x = vec![1.0, e, e.powi(3), e * e, e * e, e.powi(4)];
        let out = run(&SPEC, &[x], &[2.0, 0.4, 4.0]);
        let s2 = 2f64.sqrt();
        let want = [
            NAN,
            NAN,
            NAN,
            0.8 * s2 / 1.1,
            -1.2 / 0.61f64.sqrt(),
            18.0 * s2,
        ];
        assert_close(&out[0], &want, 1e-13, "sortino");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..6 {
            let x: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 2.0 } else { 3.0 }).collect();
            let out = run(&SPEC, &[x], &[3.0, 0.0, 1.0]);
            assert_eq!(out[0].len(), n);
            for (i, v) in out[0].iter().enumerate() {
                assert_eq!(v.is_nan(), i < 3, "{i}: {v}");
            }
        }
    }

    #[test]
    fn rising_prices_are_nan() {
        let x: Vec<f64> = (1..50).map(f64::from).collect();
        let out = run(&SPEC, &[x], &[5.0, 0.0, 365.0]);
        assert!(out[0].iter().all(|v| v.is_nan()));
    }
}
