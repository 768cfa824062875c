//! Fibonacci retracement levels of the swing in the trailing window.
//!
//! Over the last `timeperiod` bars take the highest high H (bar ih) and the
//! lowest low L (bar il), ties going to the most recent bar. If ih >= il the
//! swing is up and level_r = H - r * (H - L) (level_0 = H, level_1000 = L);
//! otherwise it is down and level_r = L + r * (H - L) (level_0 = L,
//! level_1000 = H). r is 0, 0.236, 0.382, 0.5, 0.618, 0.786, 1.

use serde::{Deserialize, Serialize};

use super::window::{rolling_arg_into, RollingMax, RollingMin};
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "fibonacci",
    inputs: &["high", "low"],
    outputs: &[
        "level_0",
        "level_236",
        "level_382",
        "level_500",
        "level_618",
        "level_786",
        "level_1000",
    ],
    params: &[Param::period("timeperiod", 55.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| fibonacci_into(i[0], i[1], int_param(p, 0), o),
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(Fibonacci::new(int_param(p, 0)))),
    load_state: Some(load::<Fibonacci>),
};

/// The inner ratios (level_0 and level_1000 are the swing's ends, exactly).
const RATIOS: [f64; 5] = [0.236, 0.382, 0.5, 0.618, 0.786];

/// The seven levels for a window's extremes; `up`: the high came at or
/// after the low.
#[inline(always)]
fn levels(h: f64, l: f64, up: bool) -> [f64; 7] {
    let range = h - l;
    if up {
        let [a, b, c, d, e] = RATIOS.map(|r| h - r * range);
        [h, a, b, c, d, e, l]
    } else {
        let [a, b, c, d, e] = RATIOS.map(|r| l + r * range);
        [l, a, b, c, d, e, h]
    }
}

/// Fibonacci levels of a gap-free series into the seven outputs, NaN for
/// the first `period - 1` bars. The rolling extremes and their indices go
/// to spare outputs first (blocks, O(1) per bar, see `window`), then one
/// pass turns them into the levels.
pub fn fibonacci_into(high: &[f64], low: &[f64], period: usize, outs: &mut [&mut [f64]]) {
    let [l0, l236, l382, l500, l618, l786, l1000] = outs else {
        unreachable!("seven outputs")
    };
    rolling_arg_into::<true>(high, period, l0, l236);
    rolling_arg_into::<false>(low, period, l1000, l382);
    for i in 0..l0.len() {
        let v = levels(l0[i], l1000[i], l236[i] >= l382[i]);
        [l0[i], l236[i], l382[i], l500[i], l618[i], l786[i], l1000[i]] = v;
    }
    for o in outs.iter_mut() {
        fill_nan(o, period - 1);
    }
}

/// The two rolling extremes (with indices) and the bar count.
#[derive(Clone, Serialize, Deserialize)]
pub struct Fibonacci {
    period: usize,
    seen: usize,
    hi: RollingMax,
    lo: RollingMin,
}

impl Fibonacci {
    pub fn new(period: usize) -> Fibonacci {
        Fibonacci {
            period,
            seen: 0,
            hi: RollingMax::new(period),
            lo: RollingMin::new(period),
        }
    }
}

fn both(hi: (f64, usize), lo: (f64, usize)) -> [f64; 7] {
    levels(hi.0, lo.0, hi.1 >= lo.1)
}

fn write(ready: bool, v: [f64; 7], out: &mut [f64]) {
    if ready {
        out.copy_from_slice(&v);
    } else {
        out.fill(f64::NAN);
    }
}

impl State for Fibonacci {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        let i = self.seen;
        let v = both(self.hi.push(i, bar[0]), self.lo.push(i, bar[1]));
        self.seen += 1;
        write(self.seen >= self.period, v, out);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        let i = self.seen;
        let v = both(self.hi.peek(i, bar[0]), self.lo.peek(i, bar[1]));
        write(i + 1 >= self.period, v, out);
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
        // period 3. Bar 2: window high 20 at bar 1, low 10 at bar 0: up
        // swing, level_r = 20 - r * 10. Bar 3: high 20 (bar 1), low 0 (bar 3):
        // down swing, level_r = 0 + r * 20.
        let high = vec![12.0, 20.0, 15.0, 5.0];
        let low = vec![10.0, 14.0, 11.0, 0.0];
        let out = run(&SPEC, &[high, low], &[3.0]);
        let want2 = [20.0, 17.64, 16.18, 15.0, 13.82, 12.14, 10.0];
        let want3 = [0.0, 4.72, 7.64, 10.0, 12.36, 15.72, 20.0];
        for k in 0..7 {
            assert_close(&out[k], &[NAN, NAN, want2[k], want3[k]], 1e-14, "fib");
        }
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
