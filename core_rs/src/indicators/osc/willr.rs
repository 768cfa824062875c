//! WILLR: Williams' %R, -100 * (highest high - close) / (highest high -
//! lowest low) over the last `timeperiod` bars, clamped to [-100, 0]; 0 for
//! a flat window (TA-Lib's scaled test, see [`super::range_of`]).

use serde::{Deserialize, Serialize};

use super::is_zero_scaled;
use super::window::{rolling_high_low, HighLow};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "willr",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| willr_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| willr_checked(i[0], i[1], i[2], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Willr::new(int_param(p, 0)))),
    load_state: Some(load::<Willr>),
};

/// %R from the window's extremes and the close (TA-Lib's formula order:
/// divide by the range, then scale, then clamp). Written with selects only
/// (the quotient of a flat window is computed and dropped) so the batch
/// loop vectorizes.
#[inline(always)]
pub fn willr_value(highest: f64, lowest: f64, close: f64) -> f64 {
    let range = highest - lowest;
    let r = ((highest - close) / range) * -100.0;
    let r = if r > 0.0 { 0.0 } else { r };
    let r = if r < -100.0 { -100.0 } else { r };
    if is_zero_scaled(range, highest.abs() + lowest.abs()) {
        0.0
    } else {
        r
    }
}

/// WILLR of a gap-free series, NaN for the first `period - 1` values.
pub fn willr_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    willr_checked(high, low, close, period, out);
}

/// `willr_into` that also returns whether every input was finite: each
/// block's bars are checked as its values are written (from L1), the bars
/// before the first full window up front (see `RunCheckedFn`).
pub fn willr_checked(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    let n = out.len();
    let lb = period - 1;
    fill_nan(out, lb);
    let (high, low, close) = (&high[..n], &low[..n], &close[..n]);
    let head = lb.min(n);
    let mut bad = any_non_finite(&high[..head])
        | any_non_finite(&low[..head])
        | any_non_finite(&close[..head]);
    rolling_high_low(high, low, period, |s, hh, ll| {
        let m = hh.len();
        let bars = hh
            .iter()
            .zip(ll)
            .zip(&close[s..s + m])
            .zip(high[s..s + m].iter().zip(&low[s..s + m]));
        let mut b = false;
        for (o, (((&hh, &ll), &c), (&h, &l))) in out[s..s + m].iter_mut().zip(bars) {
            b |= non_finite(h) | non_finite(l) | non_finite(c);
            *o = willr_value(hh, ll, c);
        }
        bad |= b;
    });
    !bad
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Willr {
    period: usize,
    w: HighLow,
}

impl Willr {
    pub fn new(period: usize) -> Willr {
        Willr {
            period,
            w: HighLow::new(period),
        }
    }

    pub fn next(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let (hh, ll) = self.w.push(high, low);
        if (self.w.seen() as usize) < self.period {
            f64::NAN
        } else {
            willr_value(hh, ll, close)
        }
    }
}

impl State for Willr {
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

    #[test]
    fn golden_values_by_hand() {
        let high = vec![10.0, 12.0, 11.0, 9.0, 9.0];
        let low = vec![8.0, 9.0, 10.0, 7.0, 9.0];
        let close = vec![9.0, 11.0, 10.5, 8.0, 9.0];
        // period 3: bar 2 window high 12 low 8: -100*(12-10.5)/4 = -37.5
        // bar 3: high 12 low 7: -100*(12-8)/5 = -80
        // bar 4: high 11 low 7: -100*(11-9)/4 = -50
        let out = run(&SPEC, &[high, low, close], &[3.0]);
        assert_close(&out[0], &[NAN, NAN, -37.5, -80.0, -50.0], 1e-15, "willr");
    }

    #[test]
    fn flat_window_is_zero_and_edges() {
        let x = vec![5.0; 6];
        let out = run(&SPEC, &[x.clone(), x.clone(), x], &[3.0]);
        assert_close(&out[0], &[NAN, NAN, 0.0, 0.0, 0.0, 0.0], 0.0, "flat");
        for n in 0..5usize {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x.clone(), x.clone(), x], &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
        }
    }
}
