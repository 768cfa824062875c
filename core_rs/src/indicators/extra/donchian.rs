//! Donchian channel: the highest high and lowest low of the last
//! `timeperiod` bars, and their midpoint.

use serde::{Deserialize, Serialize};

use super::window::{RollingMax, RollingMin};
use crate::indicators::osc::window::rolling_high_low;
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "donchian",
    inputs: &["high", "low"],
    outputs: &["upperband", "middleband", "lowerband"],
    params: &[Param::period("timeperiod", 20.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| {
        let [up, mid, lo] = o else { unreachable!() };
        donchian_into(i[0], i[1], int_param(p, 0), up, mid, lo);
    },
    run_checked: Some(|i, p, o| {
        let [up, mid, lo] = o else { unreachable!() };
        donchian_into(i[0], i[1], int_param(p, 0), up, mid, lo)
    }),
    check: None,
    new_state: Some(|p| Box::new(Donchian::new(int_param(p, 0)))),
    load_state: Some(load::<Donchian>),
};

/// Donchian channel of a gap-free series, NaN for the first `period - 1`
/// bars: the rolling extremes block by block (vectorized doubling passes,
/// see `osc::window`), the bands and midpoint written from each block.
/// Returns whether every input was finite, each bar checked as its block is
/// written, the bars before the first full window up front (see
/// `RunCheckedFn`).
pub fn donchian_into(
    high: &[f64],
    low: &[f64],
    period: usize,
    upper: &mut [f64],
    middle: &mut [f64],
    lower: &mut [f64],
) -> bool {
    let n = upper.len();
    let lb = period - 1;
    fill_nan(upper, lb);
    fill_nan(middle, lb);
    fill_nan(lower, lb);
    let (high, low) = (&high[..n], &low[..n]);
    let head = lb.min(n);
    let mut bad = any_non_finite(&high[..head]) | any_non_finite(&low[..head]);
    rolling_high_low(high, low, period, |s, hh, ll| {
        let m = hh.len();
        let outs = upper[s..s + m]
            .iter_mut()
            .zip(&mut middle[s..s + m])
            .zip(&mut lower[s..s + m]);
        let ins = hh
            .iter()
            .zip(ll)
            .zip(high[s..s + m].iter().zip(&low[s..s + m]));
        let mut b = false;
        for (((u, mid), lo), ((&hh, &ll), (&h, &l))) in outs.zip(ins) {
            b |= non_finite(h) | non_finite(l);
            *u = hh;
            *lo = ll;
            *mid = (hh + ll) * 0.5;
        }
        bad |= b;
    });
    !bad
}

/// The two rolling extremes and the bar count.
#[derive(Clone, Serialize, Deserialize)]
pub struct Donchian {
    period: usize,
    seen: usize,
    hi: RollingMax,
    lo: RollingMin,
}

impl Donchian {
    pub fn new(period: usize) -> Donchian {
        Donchian {
            period,
            seen: 0,
            hi: RollingMax::new(period),
            lo: RollingMin::new(period),
        }
    }

    #[inline(always)]
    fn extremes(&mut self, i: usize, high: f64, low: f64) -> (f64, f64) {
        (self.hi.push(i, high).0, self.lo.push(i, low).0)
    }

    fn write(&self, seen: usize, hi: f64, lo: f64, out: &mut [f64]) {
        if seen < self.period {
            out.fill(f64::NAN);
        } else {
            out[0] = hi;
            out[1] = (hi + lo) * 0.5;
            out[2] = lo;
        }
    }
}

impl State for Donchian {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        let (hi, lo) = self.extremes(self.seen, bar[0], bar[1]);
        self.seen += 1;
        self.write(self.seen, hi, lo, out);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        let hi = self.hi.peek(self.seen, bar[0]).0;
        let lo = self.lo.peek(self.seen, bar[1]).0;
        self.write(self.seen + 1, hi, lo, out);
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
        let high = vec![10.0, 12.0, 11.0, 15.0, 14.0, 13.0];
        let low = vec![9.0, 10.5, 8.0, 13.0, 13.0, 12.0];
        let out = run(&SPEC, &[high, low], &[3.0]);
        // windows [0..=2]: max(10,12,11)=12, min(9,10.5,8)=8, mid 10
        // [1..=3]: 15, 8, 11.5; [2..=4]: 15, 8, 11.5; [3..=5]: 15, 12, 13.5
        assert_close(&out[0], &[NAN, NAN, 12.0, 15.0, 15.0, 15.0], 0.0, "upper");
        assert_close(&out[1], &[NAN, NAN, 10.0, 11.5, 11.5, 13.5], 0.0, "middle");
        assert_close(&out[2], &[NAN, NAN, 8.0, 8.0, 8.0, 12.0], 0.0, "lower");
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x.clone(), x], &[3.0]);
            for o in &out {
                assert_eq!(o.len(), n);
                assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(2));
            }
        }
    }
}
