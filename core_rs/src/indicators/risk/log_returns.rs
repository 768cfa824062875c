//! LOG_RETURNS: r[i] = ln(p[i] / p[i-1]), NaN for the first price.

use serde::{Deserialize, Serialize};

use super::price_state;
use super::window::{bad_price, log_return, LogReturn};
use crate::indicators::state::load;
use crate::indicators::{fill_nan, Spec};

pub const SPEC: Spec = Spec {
    name: "log_returns",
    inputs: &["real"],
    outputs: &["real"],
    params: &[],
    lookback: |_| 1,
    run: |i, _, o| log_returns_into(i[0], o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|_| Box::new(LogReturns::default())),
    load_state: Some(load::<LogReturns>),
};

/// Log returns of a gap-free series; NaN for the first price and for any
/// return into or out of a price that is not positive (such a price is a
/// gap, see the module doc).
pub fn log_returns_into(x: &[f64], out: &mut [f64]) {
    fill_nan(out, 1);
    if x.len() <= 1 {
        return;
    }
    for ((o, &p), &prev) in out[1..].iter_mut().zip(&x[1..]).zip(x) {
        *o = if bad_price(p) || bad_price(prev) {
            f64::NAN
        } else {
            log_return(prev, p)
        };
    }
}

/// The previous (positive) price.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct LogReturns {
    ret: LogReturn,
}

impl LogReturns {
    pub fn next(&mut self, price: f64) -> f64 {
        if bad_price(price) {
            self.ret.reset();
            return f64::NAN;
        }
        self.ret.next(price).unwrap_or(f64::NAN)
    }

    pub fn peek(&self, price: f64) -> f64 {
        if bad_price(price) {
            return f64::NAN;
        }
        self.ret.peek(price).unwrap_or(f64::NAN)
    }
}

price_state!(LogReturns);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // ln(2/1) = ln 2, ln(1/2) = -ln 2, ln(1/1) = 0; a zero price is a
        // gap: NaN there and for the next price (no previous price).
        let e = std::f64::consts::E;
        let x = vec![1.0, 2.0, 1.0, 1.0, 0.0, e, e * e];
        let out = run(&SPEC, &[x], &[]);
        let ln2 = std::f64::consts::LN_2;
        assert_close(
            &out[0],
            &[NAN, ln2, -ln2, 0.0, NAN, NAN, 1.0],
            1e-15,
            "log_returns",
        );
    }

    #[test]
    fn extreme_ratios_stay_finite() {
        // 1e300 / 1e-300 overflows: ln 1e300 - ln 1e-300 = 600 ln 10.
        let out = run(&SPEC, &[vec![1e-300, 1e300, 1e-300]], &[]);
        let l = 600.0 * std::f64::consts::LN_10;
        assert_close(&out[0], &[NAN, l, -l], 1e-14, "log_returns");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..3 {
            let out = run(&SPEC, &[vec![5.0; n]], &[]);
            assert_eq!(out[0].len(), n);
            assert!(out[0].iter().take(1).all(|v| v.is_nan()));
            assert!(out[0].iter().skip(1).all(|&v| v == 0.0));
        }
    }
}
