//! Rolling VWAP: sum(tp * v) / sum(v) over the last `timeperiod` bars, tp
//! the typical price (h + l + c) / 3.
//!
//! Stable sums without drift: bars are cut into blocks of `timeperiod`. A
//! window ending at bar i is a suffix of the previous block plus a prefix of
//! the current one; the prefix is accumulated from zero and the suffix sums
//! of the previous block are computed afresh (backwards, O(period)) once per
//! block. Nothing is ever subtracted, so every output is a plain sum of its
//! window's terms with an error bounded by the window, never by the series
//! length (a running add/remove sum keeps the rounding of every value that
//! ever passed through it). Cost: two adds per value per quantity.

use serde::{Deserialize, Serialize};

use super::vwap::typical;
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "rolling_vwap",
    inputs: &["high", "low", "close", "volume"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 20.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| rolling_vwap_into(i[0], i[1], i[2], i[3], int_param(p, 0), o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(RollingVwap::new(int_param(p, 0)))),
    load_state: Some(load::<RollingVwap>),
};

/// sum(pv) / sum(v), or the bar's typical price if the window has no volume.
#[inline(always)]
fn ratio(pv: f64, v: f64, tp: f64) -> f64 {
    if v == 0.0 {
        tp
    } else {
        pv / v
    }
}

/// Suffix sums of one block: suf[j] = sum of block[j..], suf[len] = 0.
#[inline]
fn suffix_sums(block: &[(f64, f64)], suf: &mut [(f64, f64)]) {
    let (mut pv, mut v) = (0.0, 0.0);
    suf[block.len()] = (0.0, 0.0);
    for (s, &(bpv, bv)) in suf[..block.len()].iter_mut().zip(block).rev() {
        pv += bpv;
        v += bv;
        *s = (pv, v);
    }
}

/// Rolling VWAP of a gap-free series, NaN for the first `period - 1` bars;
/// where the window's volume is zero the output is the bar's typical price.
pub fn rolling_vwap_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    period: usize,
    out: &mut [f64],
) {
    let n = out.len();
    let lb = period - 1;
    let mut st = RollingVwap::new(period);
    let mut start = 0;
    while start < n {
        let end = (start + period).min(n);
        let bars = high[start..end]
            .iter()
            .zip(&low[start..end])
            .zip(&close[start..end])
            .zip(&volume[start..end]);
        // The block loop of `RollingVwap::next`, with the block end hoisted.
        let (mut pv, mut v) = (0.0, 0.0);
        for (o, (((&h, &l), &c), &vol)) in out[start..end].iter_mut().zip(bars) {
            let tp = typical(h, l, c);
            let x = tp * vol;
            pv += x;
            v += vol;
            st.ring[st.pos] = (x, vol);
            st.pos += 1;
            let (spv, sv) = st.suf[st.pos];
            *o = ratio(spv + pv, sv + v, tp);
        }
        if end - start == period {
            suffix_sums(&st.ring, &mut st.suf);
            st.pos = 0;
        }
        start = end;
    }
    fill_nan(out, lb);
}

/// The current block's (pv, v) values and the previous block's suffix sums.
#[derive(Clone, Serialize, Deserialize)]
pub struct RollingVwap {
    ring: Vec<(f64, f64)>,
    /// suf[j]: sums of the previous block from its j-th bar; all zero in the
    /// first block (the warm-up), suf[period] = 0 always.
    suf: Vec<(f64, f64)>,
    pos: usize,
    pv: f64,
    v: f64,
    seen: usize,
}

impl RollingVwap {
    pub fn new(period: usize) -> RollingVwap {
        RollingVwap {
            ring: vec![(0.0, 0.0); period],
            suf: vec![(0.0, 0.0); period + 1],
            pos: 0,
            pv: 0.0,
            v: 0.0,
            seen: 0,
        }
    }

    fn value(&self, h: f64, l: f64, c: f64, vol: f64) -> (f64, f64, f64, f64) {
        let tp = typical(h, l, c);
        let x = tp * vol;
        let pv = self.pv + x;
        let v = self.v + vol;
        let (spv, sv) = self.suf[self.pos + 1];
        let out = if self.seen + 1 < self.ring.len() {
            f64::NAN
        } else {
            ratio(spv + pv, sv + v, tp)
        };
        (out, x, pv, v)
    }

    pub fn next(&mut self, h: f64, l: f64, c: f64, vol: f64) -> f64 {
        let (out, x, pv, v) = self.value(h, l, c, vol);
        self.ring[self.pos] = (x, vol);
        self.pos += 1;
        self.seen += 1;
        if self.pos == self.ring.len() {
            suffix_sums(&self.ring, &mut self.suf);
            self.pos = 0;
            self.pv = 0.0;
            self.v = 0.0;
        } else {
            self.pv = pv;
            self.v = v;
        }
        out
    }
}

impl State for RollingVwap {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1], bar[2], bar[3]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.value(bar[0], bar[1], bar[2], bar[3]).0;
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
        // h = l = c so tp is the price. period 2:
        // bar 1: (10*1 + 20*3) / 4 = 17.5; bar 2: (60 + 30*1) / 4 = 22.5;
        // bar 3: (30 + 0) / 1 = 30; bar 4: both zero volume -> tp 50.
        let p = vec![10.0, 20.0, 30.0, 40.0, 50.0];
        let vol = vec![1.0, 3.0, 1.0, 0.0, 0.0];
        let out = run(&SPEC, &[p.clone(), p.clone(), p, vol], &[2.0]);
        assert_close(&out[0], &[NAN, 17.5, 22.5, 30.0, 50.0], 1e-15, "rvwap");
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4, 7] {
            let x = vec![2.0; n];
            let out = run(&SPEC, &[x.clone(), x.clone(), x.clone(), x], &[3.0]);
            assert_eq!(out[0].len(), n);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
            assert!(out[0].iter().skip(2).all(|&v| v == 2.0));
        }
    }

    #[test]
    fn no_drift_after_a_huge_volume() {
        // A 1e12 volume spike leaves no residue once it has left the window.
        let n = 50;
        let p: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
        let mut vol = vec![1.0; n];
        vol[5] = 1e12;
        let out = run(&SPEC, &[p.clone(), p.clone(), p.clone(), vol], &[4.0]);
        for i in 9..n {
            let want = (p[i - 3] + p[i - 2] + p[i - 1] + p[i]) / 4.0;
            assert_close(&out[0][i..=i], &[want], 1e-15, "after spike");
        }
    }
}
