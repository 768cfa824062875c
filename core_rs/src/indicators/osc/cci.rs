//! CCI: commodity channel index over the typical price tp = (h + l + c) / 3:
//! (tp - mean) / (0.015 * mean absolute deviation) over the last
//! `timeperiod` bars. 0 when the deviation of the last bar or the mean
//! deviation is within TA_EPSILON (1e-14) of |mean| (TA-Lib's flat test).
//!
//! The mean is summed afresh each bar (no running sum to drift), as TA-Lib
//! does; both sums use four accumulators so they are not one long chain of
//! dependent adds. The mean absolute deviation needs the window anyway, so
//! the kernel is O(period) per bar like TA-Lib's.

use serde::{Deserialize, Serialize};

use super::is_zero_scaled;
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "cci",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| cci_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(Cci::new(int_param(p, 0)))),
    load_state: Some(load::<Cci>),
};

#[inline(always)]
fn typical(h: f64, l: f64, c: f64) -> f64 {
    (h + l + c) / 3.0
}

/// Sum of `f(x)` over `x` with four independent accumulators.
#[inline(always)]
fn sum4(x: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0; 4];
    let mut chunks = x.chunks_exact(4);
    for c in chunks.by_ref() {
        acc[0] += f(c[0]);
        acc[1] += f(c[1]);
        acc[2] += f(c[2]);
        acc[3] += f(c[3]);
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// CCI of a full window `ring` (any rotation) whose newest value is `last`.
#[inline(always)]
pub fn cci_value(ring: &[f64], last: f64) -> f64 {
    let p = ring.len() as f64;
    let avg = sum4(ring, |v| v) / p;
    let mad = sum4(ring, |v| (v - avg).abs()) / p;
    let dev = last - avg;
    let scale = avg.abs();
    if is_zero_scaled(dev, scale) || is_zero_scaled(mad, scale) {
        0.0
    } else {
        dev / (0.015 * mad)
    }
}

/// CCI of a gap-free series, NaN for the first `period - 1` values.
pub fn cci_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    let lb = period - 1;
    fill_nan(out, lb);
    if out.len() <= lb {
        return;
    }
    let mut state = Cci::new(period);
    for i in 0..lb {
        state.push(typical(high[i], low[i], close[i]));
    }
    let bars = high[lb..].iter().zip(&low[lb..]).zip(&close[lb..]);
    for (o, ((&h, &l), &c)) in out[lb..].iter_mut().zip(bars) {
        let tp = typical(h, l, c);
        state.push(tp);
        *o = cci_value(&state.ring, tp);
    }
}

/// The window of typical prices, in a ring.
#[derive(Clone, Serialize, Deserialize)]
pub struct Cci {
    ring: Vec<f64>,
    pos: usize,
    seen: usize,
}

impl Cci {
    pub fn new(period: usize) -> Cci {
        Cci {
            ring: vec![0.0; period],
            pos: 0,
            seen: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, tp: f64) {
        self.ring[self.pos] = tp;
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
        }
        self.seen += 1;
    }

    pub fn next(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let tp = typical(high, low, close);
        self.push(tp);
        if self.seen < self.ring.len() {
            f64::NAN
        } else {
            cci_value(&self.ring, tp)
        }
    }
}

impl State for Cci {
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
        // h = l = c so tp is the value itself: 1, 2, 3, 4, 10.
        // period 3, bar 2: mean 2, mad (1+0+1)/3 = 2/3, cci = (3-2)/(0.015*2/3) = 100.
        // bar 3: mean 3, same mad, cci = 100.
        // bar 4: mean 17/3, mad (8/3 + 5/3 + 13/3)/3 = 26/9,
        //   cci = (10 - 17/3) / (0.015 * 26/9) = (13/3) * 9 / 0.39 = 100.
        let x = vec![1.0, 2.0, 3.0, 4.0, 10.0];
        let out = run(&SPEC, &[x.clone(), x.clone(), x], &[3.0]);
        assert_close(&out[0], &[NAN, NAN, 100.0, 100.0, 100.0], 1e-13, "cci");
    }

    #[test]
    fn flat_is_zero_and_edges() {
        let x = vec![7.3; 6];
        let out = run(&SPEC, &[x.clone(), x.clone(), x], &[3.0]);
        assert_close(&out[0], &[NAN, NAN, 0.0, 0.0, 0.0, 0.0], 0.0, "flat");
        for n in 0..5usize {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x.clone(), x.clone(), x], &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
        }
    }
}
