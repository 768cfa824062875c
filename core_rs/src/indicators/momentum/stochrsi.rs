//! STOCHRSI: the fast stochastic of the RSI, as TA-Lib's `STOCHRSI` (RSI
//! then `STOCHF` with the RSI as high, low and close).
//!
//! fastk = 100 * (rsi - lowest rsi) / (highest rsi - lowest rsi) over the
//! last `fastk_period` RSI values (0 when they are all equal), fastd = the
//! `fastd_matype` moving average of fastk over `fastd_period`. Both outputs
//! are NaN for the first `timeperiod + fastk_period - 1 + ma lookback` bars.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::gaps::Gaps;
use super::rsi::{rsi_checked, Rsi};
use crate::indicators::ma::matype::{ma_into, ma_lookback, matype_param, MaState};
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "stochrsi",
    inputs: &["real"],
    outputs: &["fastk", "fastd"],
    params: &[
        Param::period("timeperiod", 14.0, 2.0),
        Param::period("fastk_period", 5.0, 1.0),
        Param::period("fastd_period", 3.0, 1.0),
        matype_param("fastd_matype"),
    ],
    lookback: |p| {
        let (tp, fk, fd, mt) = params(p);
        tp + fk - 1 + ma_lookback(mt, fd)
    },
    run: |i, p, o| {
        let (tp, fk, fd, mt) = params(p);
        let [k, d] = o else {
            unreachable!("stochrsi has two outputs")
        };
        stochrsi_into(i[0], tp, fk, fd, mt, k, d)
    },
    run_checked: Some(|i, p, o| {
        let (tp, fk, fd, mt) = params(p);
        let [k, d] = o else {
            unreachable!("stochrsi has two outputs")
        };
        stochrsi_checked(i[0], tp, fk, fd, mt, k, d)
    }),
    check: None,
    new_state: Some(|p| {
        let (tp, fk, fd, mt) = params(p);
        Box::new(StochRsi::new(tp, fk, fd, mt))
    }),
    load_state: Some(load::<StochRsi>),
};

fn params(p: &[f64]) -> (usize, usize, usize, usize) {
    (
        int_param(p, 0),
        int_param(p, 1),
        int_param(p, 2),
        int_param(p, 3),
    )
}

/// One monotonic deque of (bar, value): values strictly decreasing from the
/// front for a max (increasing for a min), so the front is the extreme of
/// the window. Each value enters and leaves once: O(1) amortized per bar.
#[derive(Clone, Serialize, Deserialize)]
struct Extreme {
    q: VecDeque<(usize, f64)>,
}

impl Extreme {
    fn new(period: usize) -> Extreme {
        Extreme {
            q: VecDeque::with_capacity(period + 1),
        }
    }

    /// Adds bar `i`, drops bars older than `period`, returns the extreme.
    /// `dominated(old, new)`: `old` can never again be the extreme.
    #[inline(always)]
    fn push(&mut self, i: usize, v: f64, period: usize, dominated: fn(f64, f64) -> bool) -> f64 {
        while let Some(&(_, back)) = self.q.back() {
            if !dominated(back, v) {
                break;
            }
            self.q.pop_back();
        }
        self.q.push_back((i, v));
        // One bar enters per call, so at most one leaves.
        if let Some(&(j, _)) = self.q.front() {
            if j + period <= i {
                self.q.pop_front();
            }
        }
        // Never empty: bar `i` was just pushed and is inside the window.
        self.q.front().map_or(v, |&(_, e)| e)
    }
}

/// Up to this window length the extremes are found by scanning the window
/// each bar: a few branch-free `max`/`min` per bar beat the deques, whose
/// pops are data-dependent branches (RSI values are noise, so each bar
/// mispredicts about once per deque). Longer windows use the deques.
const SCAN_MAX: usize = 32;

/// The rolling highest and lowest of the last `period` values, and the fast
/// stochastic of the newest one. Both methods find the same (exact) values.
#[derive(Clone, Serialize, Deserialize)]
pub struct StochWindow {
    period: usize,
    bar: usize,
    /// The next ring slot (scan mode).
    pos: usize,
    /// The last `period` values, in ring order (scan mode).
    ring: Vec<f64>,
    /// Monotonic deques (deque mode).
    hi: Extreme,
    lo: Extreme,
}

impl StochWindow {
    pub fn new(period: usize) -> StochWindow {
        let scan = period <= SCAN_MAX;
        StochWindow {
            period,
            bar: 0,
            pos: 0,
            ring: vec![0.0; if scan { period } else { 0 }],
            hi: Extreme::new(if scan { 0 } else { period }),
            lo: Extreme::new(if scan { 0 } else { period }),
        }
    }

    /// Adds `v`; its fast %K once `period` values were seen, else NaN.
    #[inline(always)]
    pub fn push(&mut self, v: f64) -> f64 {
        let i = self.bar;
        self.bar += 1;
        let (hi, lo) = if self.ring.is_empty() {
            (
                self.hi.push(i, v, self.period, |old, new| old <= new),
                self.lo.push(i, v, self.period, |old, new| old >= new),
            )
        } else {
            self.ring[self.pos] = v;
            self.pos += 1;
            if self.pos == self.period {
                self.pos = 0;
            }
            if self.bar < self.period {
                return f64::NAN;
            }
            scan(&self.ring)
        };
        if self.bar < self.period {
            return f64::NAN;
        }
        stoch_value(v, hi, lo)
    }
}

/// 100 * (v - lo) / (hi - lo), 0 when the window is flat (TA-Lib), and
/// exactly 100 at the high (the division can land an ulp below, which a
/// KAMA fastd would amplify: its efficiency ratio jumps on flat stretches).
#[inline(always)]
fn stoch_value(v: f64, hi: f64, lo: f64) -> f64 {
    let diff = hi - lo;
    if v == hi && diff != 0.0 {
        100.0
    } else if diff != 0.0 {
        (v - lo) * 100.0 / diff
    } else {
        0.0
    }
}

/// (max, min) of a non-empty slice; selects compile to `maxsd`/`minsd`.
#[inline(always)]
fn scan(w: &[f64]) -> (f64, f64) {
    let (mut hi, mut lo) = (w[0], w[0]);
    for &v in &w[1..] {
        hi = if v > hi { v } else { hi };
        lo = if v < lo { v } else { lo };
    }
    (hi, lo)
}

/// STOCHRSI of a gap-free series into `fastk` and `fastd`. The RSI goes
/// into `fastd` as scratch, fastk is computed from it, then the moving
/// average of fastk overwrites `fastd`: no buffer of the series' length is
/// allocated, and each pass is a tight loop.
pub fn stochrsi_into(
    x: &[f64],
    timeperiod: usize,
    fastk_period: usize,
    fastd_period: usize,
    matype: usize,
    fastk: &mut [f64],
    fastd: &mut [f64],
) {
    stochrsi_checked(
        x,
        timeperiod,
        fastk_period,
        fastd_period,
        matype,
        fastk,
        fastd,
    );
}

/// `stochrsi_into` that also returns whether every input was finite: the
/// RSI pass reads (and checks) every input value.
pub fn stochrsi_checked(
    x: &[f64],
    timeperiod: usize,
    fastk_period: usize,
    fastd_period: usize,
    matype: usize,
    fastk: &mut [f64],
    fastd: &mut [f64],
) -> bool {
    let n = fastk.len();
    let k0 = timeperiod + fastk_period - 1;
    let lb = k0 + ma_lookback(matype, fastd_period);
    if n <= lb {
        fill_nan(fastk, n);
        fill_nan(fastd, n);
        let mut gaps = Gaps::default();
        gaps.see_all(x);
        return gaps.finite();
    }
    let finite = rsi_checked(x, timeperiod, fastd);
    let rsi = &fastd[timeperiod..];
    if fastk_period <= SCAN_MAX {
        for (o, w) in fastk[k0..].iter_mut().zip(rsi.windows(fastk_period)) {
            let (hi, lo) = scan(w);
            *o = stoch_value(w[fastk_period - 1], hi, lo);
        }
    } else {
        let mut win = StochWindow::new(fastk_period);
        for (o, &r) in fastk[timeperiod..].iter_mut().zip(rsi) {
            *o = win.push(r);
        }
    }
    fill_nan(fastd, k0);
    ma_into(matype, &fastk[k0..], fastd_period, &mut fastd[k0..]);
    fill_nan(fastk, lb);
    finite
}

/// The running STOCHRSI: an RSI feeding the rolling window feeding the
/// moving average.
#[derive(Clone, Serialize, Deserialize)]
pub struct StochRsi {
    rsi: Rsi,
    win: StochWindow,
    ma: MaState,
}

impl StochRsi {
    pub fn new(timeperiod: usize, fastk_period: usize, fastd_period: usize, matype: usize) -> Self {
        StochRsi {
            rsi: Rsi::new(timeperiod),
            win: StochWindow::new(fastk_period),
            ma: MaState::new(matype, fastd_period),
        }
    }

    /// The next (fastk, fastd), NaN through the warm-up.
    pub fn next(&mut self, x: f64) -> [f64; 2] {
        let r = self.rsi.next(x);
        if r.is_nan() {
            return [f64::NAN; 2];
        }
        let k = self.win.push(r);
        if k.is_nan() {
            return [f64::NAN; 2];
        }
        let d = self.ma.next(k);
        if d.is_nan() {
            return [f64::NAN; 2];
        }
        [k, d]
    }
}

impl State for StochRsi {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&self.next(bar[0]));
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, make_inputs, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // timeperiod 2: RSI (see rsi.rs) of 10, 11, 9, 12, 12, 8 is
        // NaN, NaN, 100/3, 700/9, 700/9, then gain 0.4375, loss
        // (0.25 + 4) / 2 = 2.125 -> 100 * 0.4375 / 2.5625 = 700/41.
        // fastk_period 2: (700/9 - 100/3) / (700/9 - 100/3) * 100 = 100,
        // equal values -> 0, then 700/41 is the lowest -> 0.
        // fastd_period 2 (SMA): (100 + 0) / 2 = 50, (0 + 0) / 2 = 0.
        let x = vec![10.0, 11.0, 9.0, 12.0, 12.0, 8.0];
        let out = run(&SPEC, &[x], &[2.0, 2.0, 2.0, 0.0]);
        assert_close(&out[0], &[NAN, NAN, NAN, NAN, 0.0, 0.0], 1e-14, "fastk");
        assert_close(&out[1], &[NAN, NAN, NAN, NAN, 50.0, 0.0], 1e-14, "fastd");
    }

    #[test]
    fn window_extremes_match_a_scan() {
        let x = &make_inputs(&["close"], 300, 8)[0];
        for period in [1, 2, 5, 17, 32, 33, 60] {
            let mut w = StochWindow::new(period);
            for (i, &v) in x.iter().enumerate() {
                let k = w.push(v);
                if i + 1 < period {
                    assert!(k.is_nan());
                    continue;
                }
                let win = &x[i + 1 - period..=i];
                let hi = win.iter().copied().fold(f64::MIN, f64::max);
                let lo = win.iter().copied().fold(f64::MAX, f64::min);
                let want = if hi > lo && v == hi {
                    100.0
                } else if hi > lo {
                    (v - lo) * 100.0 / (hi - lo)
                } else {
                    0.0
                };
                assert_eq!(k, want, "period {period} bar {i}");
            }
        }
    }

    #[test]
    fn edge_lengths() {
        // lookback 2 + 2 - 1 + 1 = 4
        for n in [0usize, 1, 3, 4, 5, 6] {
            let x: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64).collect();
            let out = run(&SPEC, &[x], &[2.0, 2.0, 2.0, 0.0]);
            for o in &out {
                assert_eq!(o.len(), n);
                assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(4));
            }
        }
    }
}
