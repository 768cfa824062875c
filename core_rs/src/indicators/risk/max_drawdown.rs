//! MAX_DRAWDOWN: the largest peak-to-trough fall within the last
//! `timeperiod` prices, as a positive fraction of the peak:
//! max over i <= j in the window of (p[i] - p[j]) / p[i], 0 when the window
//! only rises (0.25 is a fall of 25 %).

use serde::{Deserialize, Serialize};

use super::price_state;
use super::window::{bad_price, run_steps, Blocks, Monoid};
use crate::indicators::state::load;
use crate::indicators::{int_param, Param, Spec};

pub const SPEC: Spec = Spec {
    name: "max_drawdown",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 2.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| max_drawdown_into(i[0], int_param(p, 0), o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(MaxDrawdown::new(int_param(p, 0)))),
    load_state: Some(load::<MaxDrawdown>),
};

/// Maximum drawdown of a gap-free series, NaN for the first `period - 1`
/// prices. O(n) overall: the drawdown of a run of prices is an associative
/// aggregate (peak, trough, drawdown) - two runs A then B have drawdown
/// max(dd(A), dd(B), (peak(A) - trough(B)) / peak(A)) - so the window is a
/// [`Blocks`] aggregate, O(1) amortized per price, O(period) memory.
pub fn max_drawdown_into(x: &[f64], period: usize, out: &mut [f64]) {
    let mut state = MaxDrawdown::new(period);
    run_steps(&mut state, x, out, MaxDrawdown::next);
}

/// The highest and lowest price of a run and its largest fall.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Drawdown {
    peak: f64,
    trough: f64,
    dd: f64,
}

/// max and min for the finite prices the kernel sees: one instruction
/// each (`f64::max` also handles NaN, which costs a compare and a blend).
#[inline(always)]
fn hi(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn lo(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// The fall from `peak` to a later `low` as a fraction of the peak
/// (negative when `low` is above it).
#[inline(always)]
fn fall(peak: f64, low: f64) -> f64 {
    (peak - low) / peak
}

impl Monoid for Drawdown {
    type Item = f64;

    #[inline(always)]
    fn one(x: f64) -> Drawdown {
        Drawdown {
            peak: x,
            trough: x,
            dd: 0.0,
        }
    }

    #[inline(always)]
    fn push(self, x: f64) -> Drawdown {
        Drawdown {
            peak: hi(self.peak, x),
            trough: lo(self.trough, x),
            dd: hi(self.dd, fall(self.peak, x)),
        }
    }

    #[inline(always)]
    fn prepend(x: f64, s: Drawdown) -> Drawdown {
        Drawdown {
            peak: hi(s.peak, x),
            trough: lo(s.trough, x),
            dd: hi(s.dd, fall(x, s.trough)),
        }
    }

    #[inline(always)]
    fn merge(a: Drawdown, b: Drawdown) -> Drawdown {
        Drawdown {
            peak: hi(a.peak, b.peak),
            trough: lo(a.trough, b.trough),
            dd: hi(hi(a.dd, b.dd), fall(a.peak, b.trough)),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct MaxDrawdown {
    window: Blocks<f64, Drawdown>,
}

impl MaxDrawdown {
    pub fn new(period: usize) -> MaxDrawdown {
        MaxDrawdown {
            window: Blocks::new(period),
        }
    }

    #[inline]
    pub fn next(&mut self, price: f64) -> f64 {
        if bad_price(price) {
            self.window.reset();
            return f64::NAN;
        }
        self.window.push(price).map_or(f64::NAN, |w| w.dd)
    }

    pub fn peek(&self, price: f64) -> f64 {
        if bad_price(price) {
            return f64::NAN;
        }
        self.window.peek(price).map_or(f64::NAN, |w| w.dd)
    }
}

price_state!(MaxDrawdown);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, make_inputs, run};

    const NAN: f64 = f64::NAN;

    /// The definition, O(n * period).
    fn brute(x: &[f64], period: usize) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                if i + 1 < period {
                    return NAN;
                }
                let mut peak = f64::MIN;
                let mut dd = 0.0f64;
                for &v in &x[i + 1 - period..=i] {
                    peak = peak.max(v);
                    dd = dd.max((peak - v) / peak);
                }
                dd
            })
            .collect()
    }

    #[test]
    fn golden_values_by_hand() {
        // Period 3 over 10, 8, 12, 6, 9, 12, 3:
        // (10, 8, 12): 10 -> 8 = 0.2
        // (8, 12, 6): 12 -> 6 = 0.5
        // (12, 6, 9): 12 -> 6 = 0.5
        // (6, 9, 12): rising, 0
        // (9, 12, 3): 12 -> 3 = 0.75
        let x = vec![10.0, 8.0, 12.0, 6.0, 9.0, 12.0, 3.0];
        let out = run(&SPEC, &[x], &[3.0]);
        assert_close(
            &out[0],
            &[NAN, NAN, 0.2, 0.5, 0.5, 0.0, 0.75],
            1e-15,
            "max_drawdown",
        );
    }

    #[test]
    fn edge_lengths() {
        for n in 0..5 {
            let x: Vec<f64> = (0..n).map(|i| 10.0 - f64::from(i as u32)).collect();
            let out = run(&SPEC, &[x], &[3.0]);
            assert_eq!(out[0].len(), n);
            for (i, v) in out[0].iter().enumerate() {
                assert_eq!(v.is_nan(), i < 2, "{i}: {v}");
            }
        }
    }

    #[test]
    fn matches_the_definition() {
        for period in [2, 3, 7, 30] {
            let x = make_inputs(&["real"], 500, period as u64).remove(0);
            let out = run(&SPEC, std::slice::from_ref(&x), &[period as f64]);
            assert_close(&out[0], &brute(&x, period), 1e-15, "max_drawdown");
        }
    }
}
