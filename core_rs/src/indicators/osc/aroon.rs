//! AROON: over the last `timeperiod + 1` bars, aroonup = 100 * (period -
//! bars since the highest high) / period and aroondown the same for the
//! lowest low. On a tie the latest bar counts as the extreme (TA-Lib's rule).

use serde::{Deserialize, Serialize};

use super::window::{rolling_arg_high_low, sparse_arg_high_low, RollingMax, SPARSE_MAX};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "aroon",
    inputs: &["high", "low"],
    outputs: &["aroondown", "aroonup"],
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| {
        let (down, up) = o.split_at_mut(1);
        aroon_into(i[0], i[1], int_param(p, 0), down[0], up[0]);
    },
    run_checked: Some(|i, p, o| {
        let (down, up) = o.split_at_mut(1);
        aroon_into(i[0], i[1], int_param(p, 0), down[0], up[0])
    }),
    check: None,
    new_state: Some(|p| Box::new(Aroon::new(int_param(p, 0)))),
    load_state: Some(load::<Aroon>),
};

/// AROON of a gap-free series, NaN for the first `period` values. Returns
/// whether every input was finite: each bar is checked as its outputs are
/// written, the bars before the first full window up front (see
/// `RunCheckedFn`).
pub fn aroon_into(
    high: &[f64],
    low: &[f64],
    period: usize,
    down: &mut [f64],
    up: &mut [f64],
) -> bool {
    let n = down.len();
    fill_nan(down, period);
    fill_nan(up, period);
    let (high, low) = (&high[..n], &low[..n]);
    let head = period.min(n);
    let mut bad = any_non_finite(&high[..head]) | any_non_finite(&low[..head]);
    let factor = 100.0 / period as f64;
    if period < SPARSE_MAX {
        // Bars as f64 (exact): period - (i - at) is the same integer.
        let pf = period as f64;
        sparse_arg_high_low(high, low, period + 1, |s, hi_at, lo_at| {
            let m = hi_at.len();
            let outs = down[s..s + m].iter_mut().zip(&mut up[s..s + m]);
            let ins = hi_at
                .iter()
                .zip(lo_at)
                .zip(high[s..s + m].iter().zip(&low[s..s + m]));
            let mut b = false;
            for (j, ((dn, u), ((&ha, &la), (&h, &l)))) in outs.zip(ins).enumerate() {
                b |= non_finite(h) | non_finite(l);
                let i = (s + j) as f64;
                *dn = factor * (pf - (i - la));
                *u = factor * (pf - (i - ha));
            }
            bad |= b;
        });
    } else {
        rolling_arg_high_low(high, low, period + 1, |i, hi_at, lo_at| {
            bad |= non_finite(high[i]) | non_finite(low[i]);
            down[i] = factor * (period - (i - lo_at)) as f64;
            up[i] = factor * (period - (i - hi_at)) as f64;
        });
    }
    !bad
}

/// The deques of the highest high and lowest low with their bars.
#[derive(Clone, Serialize, Deserialize)]
pub struct Aroon {
    period: u64,
    factor: f64,
    hi: RollingMax,
    lo: RollingMax,
    bar: u64,
}

impl Aroon {
    pub fn new(period: usize) -> Aroon {
        Aroon {
            period: period as u64,
            factor: 100.0 / period as f64,
            hi: RollingMax::new(period + 1),
            lo: RollingMax::new(period + 1),
            bar: 0,
        }
    }

    /// (aroondown, aroonup) once the window is full (meaningless before).
    #[inline(always)]
    fn push(&mut self, high: f64, low: f64) -> (f64, f64) {
        let i = self.bar;
        self.bar += 1;
        let (_, hi_at) = self.hi.push(i, high);
        let (_, lo_at) = self.lo.push(i, -low);
        let p = self.period;
        (
            self.factor * (p - (i - lo_at)) as f64,
            self.factor * (p - (i - hi_at)) as f64,
        )
    }

    pub fn next(&mut self, high: f64, low: f64) -> (f64, f64) {
        let v = self.push(high, low);
        if self.bar <= self.period {
            (f64::NAN, f64::NAN)
        } else {
            v
        }
    }
}

impl State for Aroon {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        (out[0], out[1]) = self.next(bar[0], bar[1]);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand_with_ties() {
        // period 3, window of 4 bars; ties go to the latest bar.
        let high = vec![1.0, 3.0, 2.0, 3.0, 1.0, 3.0, 0.5, 0.5];
        let low = vec![1.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.5, 0.5];
        // bar 3: max 3 at bars 1 and 3 -> bar 3, 0 bars ago: 100*(3-0)/3 = 100
        // bar 4: latest max at 3, 1 bar ago: 66.67; bar 5: at 5: 100;
        // bar 6: at 5: 66.67; bar 7: window 4..7, at 5: 33.33. Lows mirror.
        let out = run(&SPEC, &[high, low], &[3.0]);
        let want = [
            NAN,
            NAN,
            NAN,
            100.0,
            200.0 / 3.0,
            100.0,
            200.0 / 3.0,
            100.0 / 3.0,
        ];
        assert_close(&out[1], &want, 1e-15, "aroonup");
        assert_close(&out[0], &want, 1e-15, "aroondown");
    }

    #[test]
    fn flat_and_edges() {
        let x = vec![5.0; 6];
        let out = run(&SPEC, &[x.clone(), x], &[3.0]);
        assert_close(&out[1], &[NAN, NAN, NAN, 100.0, 100.0, 100.0], 0.0, "flat");
        for n in 0..6usize {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x.clone(), x], &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(3));
        }
    }
}
