//! CCI: commodity channel index over the typical price tp = (h + l + c) / 3:
//! (tp - mean) / (0.015 * mean absolute deviation) over the last
//! `timeperiod` bars. 0 when the deviation of the last bar or the mean
//! deviation is within TA_EPSILON (1e-14) of |mean| (TA-Lib's flat test).
//!
//! The mean is summed afresh each bar (no running sum to drift), as TA-Lib
//! does, oldest value first; the mean absolute deviation needs the window
//! anyway, so the kernel is O(period) per bar like TA-Lib's. The batch
//! kernel computes [`GROUP`] consecutive bars at once: their windows are
//! shifted copies of one another in a block of typical prices, so each step
//! of the sums is one vector add over the group (independent chains, no
//! horizontal sums), in the same order as the state's scalar sums.

use serde::{Deserialize, Serialize};

use super::is_zero_scaled;
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "cci",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| cci_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| cci_checked(i[0], i[1], i[2], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Cci::new(int_param(p, 0)))),
    load_state: Some(load::<Cci>),
};

/// Bars computed together by the batch kernel (four AVX vectors).
const GROUP: usize = 16;

/// Typical prices computed per block (at least; a block also holds the
/// `period - 1` values before it).
const BLOCK: usize = 512;

#[inline(always)]
fn typical(h: f64, l: f64, c: f64) -> f64 {
    (h + l + c) / 3.0
}

/// CCI from the newest value, the window mean and the window's sum of
/// absolute deviations. Selects only, so a group of bars vectorizes.
#[inline(always)]
fn finish(last: f64, avg: f64, abs_sum: f64, inv: f64) -> f64 {
    let mad = abs_sum * inv;
    let dev = last - avg;
    let scale = avg.abs();
    let q = dev / (0.015 * mad);
    if is_zero_scaled(dev, scale) | is_zero_scaled(mad, scale) {
        0.0
    } else {
        q
    }
}

/// CCI of the window `older ++ newer` (oldest first), summed in order.
#[inline(always)]
fn cci_value(older: &[f64], newer: &[f64], inv: f64) -> f64 {
    let mut sum = 0.0;
    for &v in older.iter().chain(newer) {
        sum += v;
    }
    let avg = sum * inv;
    let mut abs_sum = 0.0;
    for &v in older.iter().chain(newer) {
        abs_sum += (v - avg).abs();
    }
    let last = match newer.last() {
        Some(&v) => v,
        None => older[older.len() - 1],
    };
    finish(last, avg, abs_sum, inv)
}

/// CCI of the windows `tp[j..j + period]` into `out[j]`, for every `j`.
#[inline(always)]
fn cci_block(tp: &[f64], period: usize, inv: f64, out: &mut [f64]) {
    let mut groups = out.chunks_exact_mut(GROUP);
    let mut j = 0;
    for o in groups.by_ref() {
        let w = &tp[j..j + period + GROUP - 1];
        let mut sum = [0.0; GROUP];
        for k in 0..period {
            let v: &[f64; GROUP] = w[k..k + GROUP].try_into().unwrap();
            for (s, &x) in sum.iter_mut().zip(v) {
                *s += x;
            }
        }
        let mut avg = [0.0; GROUP];
        for (a, &s) in avg.iter_mut().zip(&sum) {
            *a = s * inv;
        }
        let mut abs_sum = [0.0; GROUP];
        for k in 0..period {
            let v: &[f64; GROUP] = w[k..k + GROUP].try_into().unwrap();
            for ((s, &x), &a) in abs_sum.iter_mut().zip(v).zip(&avg) {
                *s += (x - a).abs();
            }
        }
        let last: &[f64; GROUP] = w[period - 1..].try_into().unwrap();
        for (((o, &l), &a), &s) in o.iter_mut().zip(last).zip(&avg).zip(&abs_sum) {
            *o = finish(l, a, s, inv);
        }
        j += GROUP;
    }
    for o in groups.into_remainder() {
        *o = cci_value(&tp[j..j + period], &[], inv);
        j += 1;
    }
}

/// CCI of a gap-free series, NaN for the first `period - 1` values.
pub fn cci_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    cci_checked(high, low, close, period, out);
}

/// `cci_into` that also returns whether every input was finite, checked as
/// the typical prices are computed (see `RunCheckedFn`).
pub fn cci_checked(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    let lb = period - 1;
    let n = out.len();
    fill_nan(out, lb);
    if n <= lb {
        return !(any_non_finite(high) | any_non_finite(low) | any_non_finite(close));
    }
    let (high, low, close) = (&high[..n], &low[..n], &close[..n]);
    let inv = 1.0 / period as f64;
    let block = BLOCK.max(period);
    let mut tp = vec![0.0; lb + block];
    let mut bad = false;
    let mut fill = |dst: &mut [f64], from: usize| {
        let m = dst.len();
        let bars = high[from..from + m]
            .iter()
            .zip(&low[from..from + m])
            .zip(&close[from..from + m]);
        let mut b = false;
        for (t, ((&h, &l), &c)) in dst.iter_mut().zip(bars) {
            b |= non_finite(h) | non_finite(l) | non_finite(c);
            *t = typical(h, l, c);
        }
        bad |= b;
    };
    fill(&mut tp[..lb], 0);
    let mut s = lb;
    while s < n {
        let m = block.min(n - s);
        fill(&mut tp[lb..lb + m], s);
        cci_block(&tp[..lb + m], period, inv, &mut out[s..s + m]);
        tp.copy_within(m..m + lb, 0);
        s += m;
    }
    !bad
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
            // The oldest value is at `pos`.
            let (newer, older) = self.ring.split_at(self.pos);
            cci_value(older, newer, 1.0 / self.ring.len() as f64)
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
