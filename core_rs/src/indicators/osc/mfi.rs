//! MFI: money flow index. Typical price tp = (h + l + c) / 3, money flow
//! tp * volume, positive when tp rose from the previous bar and negative
//! when it fell; MFI = 100 * positive / (positive + negative) over the last
//! `timeperiod` flows. As TA-Lib 0.8.1: a tp change within 1e-14 of
//! |tp| + |previous tp| is no move (no flow); a window with no flow is 0; the
//! sums are running sums (add the new flow, subtract the one leaving, in
//! TA-Lib's order, so values match it bit for bit), reset to exactly 0 once a
//! whole window carried no flow, and the ratio is clamped into [0, 100].

use serde::{Deserialize, Serialize};

use super::is_zero_scaled;
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "mfi",
    inputs: &["high", "low", "close", "volume"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| mfi_into(i[0], i[1], i[2], i[3], int_param(p, 0), o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(Mfi::new(int_param(p, 0)))),
    load_state: Some(load::<Mfi>),
};

/// MFI of a gap-free series, NaN for the first `period` values.
pub fn mfi_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    period: usize,
    out: &mut [f64],
) {
    fill_nan(out, period);
    if out.len() <= period {
        return;
    }
    let mut s = Mfi::new(period);
    s.prev = typical(high[0], low[0], close[0]);
    s.seen = 1;
    for i in 1..period {
        s.step::<false>(high[i], low[i], close[i], volume[i]);
    }
    let bars = high[period..]
        .iter()
        .zip(&low[period..])
        .zip(&close[period..])
        .zip(&volume[period..]);
    let mut first = true;
    for (o, (((&h, &l), &c), &v)) in out[period..].iter_mut().zip(bars) {
        if first {
            // The last bar of the first window: nothing leaves yet.
            s.step::<false>(h, l, c, v);
            first = false;
        } else {
            s.step::<true>(h, l, c, v);
        }
        *o = s.value();
    }
}

#[inline(always)]
fn typical(h: f64, l: f64, c: f64) -> f64 {
    (h + l + c) / 3.0
}

/// The flows of the window in a ring, their running sums, the previous
/// typical price and the count of trailing bars without flow.
#[derive(Clone, Serialize, Deserialize)]
pub struct Mfi {
    pos_ring: Vec<f64>,
    neg_ring: Vec<f64>,
    at: usize,
    seen: usize,
    pos_sum: f64,
    neg_sum: f64,
    prev: f64,
    null_run: usize,
}

impl Mfi {
    pub fn new(period: usize) -> Mfi {
        Mfi {
            pos_ring: vec![0.0; period],
            neg_ring: vec![0.0; period],
            at: 0,
            seen: 0,
            pos_sum: 0.0,
            neg_sum: 0.0,
            prev: 0.0,
            null_run: 0,
        }
    }

    /// One bar after the first; `LEAVE`: a flow leaves the window first.
    #[inline(always)]
    fn step<const LEAVE: bool>(&mut self, h: f64, l: f64, c: f64, v: f64) {
        let period = self.pos_ring.len();
        let at = self.at;
        if LEAVE {
            self.pos_sum -= self.pos_ring[at];
            self.neg_sum -= self.neg_ring[at];
        }
        let tp = typical(h, l, c);
        let diff = tp - self.prev;
        let scale = tp.abs() + self.prev.abs();
        self.prev = tp;
        let flow = if is_zero_scaled(diff, scale) {
            0.0
        } else {
            tp * v
        };
        let (pos, neg) = if diff < 0.0 { (0.0, flow) } else { (flow, 0.0) };
        self.pos_ring[at] = pos;
        self.neg_ring[at] = neg;
        self.pos_sum += pos;
        self.neg_sum += neg;
        self.null_run = if flow == 0.0 { self.null_run + 1 } else { 0 };
        if self.null_run >= period {
            self.null_run = period;
            self.pos_sum = 0.0;
            self.neg_sum = 0.0;
        }
        self.at = if at + 1 == period { 0 } else { at + 1 };
        self.seen += 1;
    }

    #[inline(always)]
    fn value(&self) -> f64 {
        let total = self.pos_sum + self.neg_sum;
        let pos = if self.pos_sum < 0.0 {
            0.0
        } else if self.pos_sum > total {
            total
        } else {
            self.pos_sum
        };
        if total <= 0.0 {
            0.0
        } else {
            100.0 * (pos / total)
        }
    }

    pub fn next(&mut self, high: f64, low: f64, close: f64, volume: f64) -> f64 {
        let period = self.pos_ring.len();
        if self.seen == 0 {
            self.prev = typical(high, low, close);
            self.seen = 1;
            return f64::NAN;
        }
        if self.seen > period {
            self.step::<true>(high, low, close, volume);
        } else {
            self.step::<false>(high, low, close, volume);
        }
        if self.seen > period {
            self.value()
        } else {
            f64::NAN
        }
    }
}

impl State for Mfi {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1], bar[2], bar[3]);
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
        // h = l = c, so tp is the value: 10, 11, 10, 12, 12, 11; volume 1, 2, 3, 4, 5, 6.
        // flows from bar 1: +22, -30, +48, none (12 -> 12), -66.
        // period 2: bar 2: 22/(22+30) = 42.3..%; bar 3: 48/(48+30) = 61.5..%;
        // bar 4: 48/48 = 100; bar 5: 0/66 = 0.
        let x = vec![10.0, 11.0, 10.0, 12.0, 12.0, 11.0];
        let v = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let out = run(&SPEC, &[x.clone(), x.clone(), x, v], &[2.0]);
        let want = [NAN, NAN, 2200.0 / 52.0, 4800.0 / 78.0, 100.0, 0.0];
        assert_close(&out[0], &want, 1e-15, "mfi");
    }

    #[test]
    fn flat_is_zero_and_edges() {
        let x = vec![3.0; 6];
        let v = vec![5.0; 6];
        let out = run(&SPEC, &[x.clone(), x.clone(), x, v], &[2.0]);
        assert_close(&out[0], &[NAN, NAN, 0.0, 0.0, 0.0, 0.0], 0.0, "flat");
        for n in 0..5usize {
            let x: Vec<f64> = (0..n).map(|i| (i % 3) as f64 + 1.0).collect();
            let out = run(&SPEC, &[x.clone(), x.clone(), x.clone(), x], &[2.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
        }
    }
}
