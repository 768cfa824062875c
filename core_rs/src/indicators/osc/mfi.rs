//! MFI: money flow index. Typical price tp = (h + l + c) / 3, money flow
//! tp * volume, positive when tp rose from the previous bar and negative
//! when it fell; MFI = 100 * positive / (positive + negative) over the last
//! `timeperiod` flows. As TA-Lib 0.8.1: a tp change within 1e-14 of
//! |tp| + |previous tp| is no move (no flow); a window with no flow is 0; the
//! sums are running sums, reset to exactly 0 once a whole window carried no
//! flow, and the ratio is clamped into [0, 100]. The sums move by (entering
//! flow - leaving flow), one add on the loop-carried chain instead of
//! TA-Lib's two, so they round differently from TA-Lib's by a few ulp of
//! the window sums (far inside 1e-9 of the index).

use serde::{Deserialize, Serialize};

use super::is_zero_scaled;
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "mfi",
    inputs: &["high", "low", "close", "volume"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| mfi_into(i[0], i[1], i[2], i[3], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| mfi_checked(i[0], i[1], i[2], i[3], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Mfi::new(int_param(p, 0)))),
    load_state: Some(load::<Mfi>),
};

/// Bars per block of the batch kernel (at least; a block also keeps the
/// `period` flows before it).
const BLOCK: usize = 512;

#[inline(always)]
fn typical(h: f64, l: f64, c: f64) -> f64 {
    (h + l + c) / 3.0
}

/// (positive, negative) money flow of a bar with typical price `tp` after
/// one with `prev`. Selects only, so a block of bars vectorizes.
#[inline(always)]
fn flows(prev: f64, tp: f64, volume: f64) -> (f64, f64) {
    let diff = tp - prev;
    let scale = tp.abs() + prev.abs();
    let flow = if is_zero_scaled(diff, scale) {
        0.0
    } else {
        tp * volume
    };
    if diff < 0.0 {
        (0.0, flow)
    } else {
        (flow, 0.0)
    }
}

/// One bar of the running sums: flows `new` enter, `old` leave (zeros
/// before the first window is full). The sums move by `new - old`, computed
/// off the loop-carried chain, so each sum carries one add per bar. Once a
/// whole window carried no flow both are reset to exactly 0.
#[inline(always)]
fn advance(
    sums: &mut (f64, f64),
    null_run: &mut usize,
    new: (f64, f64),
    old: (f64, f64),
    period: usize,
) {
    let (dp, dn) = (new.0 - old.0, new.1 - old.1);
    let none = (new.0 == 0.0) & (new.1 == 0.0);
    *null_run = if none { *null_run + 1 } else { 0 };
    sums.0 += dp;
    sums.1 += dn;
    if *null_run >= period {
        *null_run = period;
        *sums = (0.0, 0.0);
    }
}

/// MFI from the positive and negative sums.
#[inline(always)]
fn value(pos_sum: f64, neg_sum: f64) -> f64 {
    let total = pos_sum + neg_sum;
    let pos = if pos_sum < 0.0 {
        0.0
    } else if pos_sum > total {
        total
    } else {
        pos_sum
    };
    let r = 100.0 * (pos / total);
    if total <= 0.0 {
        0.0
    } else {
        r
    }
}

/// MFI of a gap-free series, NaN for the first `period` values.
pub fn mfi_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    period: usize,
    out: &mut [f64],
) {
    mfi_checked(high, low, close, volume, period, out);
}

/// `mfi_into` that also returns whether every input was finite, checked as
/// the flows are computed (see `RunCheckedFn`). Block by block: the typical
/// prices and flows in vectorized passes, then the running sums (the only
/// sequential part), then the ratios in a vectorized pass.
pub fn mfi_checked(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    let n = out.len();
    fill_nan(out, period);
    if n <= period {
        return !(any_non_finite(high)
            | any_non_finite(low)
            | any_non_finite(close)
            | any_non_finite(volume));
    }
    let (high, low, close, volume) = (&high[..n], &low[..n], &close[..n], &volume[..n]);
    let p = period;
    let block = BLOCK.max(p);
    let mut tp = vec![0.0; block + 1];
    // The flows of the `p` bars before the block (zeros before bar 1), then
    // the block's.
    let mut pos = vec![0.0; p + block];
    let mut neg = vec![0.0; p + block];
    let mut pos_sums = vec![0.0; block];
    let mut neg_sums = vec![0.0; block];
    let mut bad = non_finite(volume[0]);
    let mut sums = (0.0, 0.0);
    let mut null_run = 0;
    // Bar 0 has no flow; bar s + j of a block is its j-th.
    let mut s = 1;
    while s < n {
        let m = block.min(n - s);
        let bars = s - 1..s + m;
        let hlc = high[bars.clone()]
            .iter()
            .zip(&low[bars.clone()])
            .zip(&close[bars]);
        let mut b = false;
        for (t, ((&h, &l), &c)) in tp[..=m].iter_mut().zip(hlc) {
            b |= non_finite(h) | non_finite(l) | non_finite(c);
            *t = typical(h, l, c);
        }
        let (pos_new, neg_new) = (&mut pos[p..p + m], &mut neg[p..p + m]);
        let tps = tp[1..=m].iter().zip(&tp[..m]).zip(&volume[s..s + m]);
        for ((pf, nf), ((&t, &t0), &v)) in pos_new.iter_mut().zip(neg_new.iter_mut()).zip(tps) {
            b |= non_finite(v);
            (*pf, *nf) = flows(t0, t, v);
        }
        bad |= b;
        let new = pos[p..p + m].iter().zip(&neg[p..p + m]);
        let old = pos[..m].iter().zip(&neg[..m]);
        let sums_out = pos_sums[..m].iter_mut().zip(&mut neg_sums[..m]);
        for ((ps, ns), ((&pn, &nn), (&po, &no))) in sums_out.zip(new.zip(old)) {
            advance(&mut sums, &mut null_run, (pn, nn), (po, no), p);
            (*ps, *ns) = sums;
        }
        // Outputs from bar `p` on.
        let skip = p.saturating_sub(s).min(m);
        let ratios = pos_sums[skip..m].iter().zip(&neg_sums[skip..m]);
        for (o, (&ps, &ns)) in out[s + skip..s + m].iter_mut().zip(ratios) {
            *o = value(ps, ns);
        }
        pos.copy_within(m..m + p, 0);
        neg.copy_within(m..m + p, 0);
        s += m;
    }
    !bad
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

    /// One bar after the first (the ring holds zeros until it is full, so
    /// the first window's bars subtract 0, as the batch kernel does).
    #[inline(always)]
    fn step(&mut self, h: f64, l: f64, c: f64, v: f64) {
        let period = self.pos_ring.len();
        let at = self.at;
        let tp = typical(h, l, c);
        let new = flows(self.prev, tp, v);
        self.prev = tp;
        let old = (self.pos_ring[at], self.neg_ring[at]);
        let mut sums = (self.pos_sum, self.neg_sum);
        advance(&mut sums, &mut self.null_run, new, old, period);
        (self.pos_sum, self.neg_sum) = sums;
        (self.pos_ring[at], self.neg_ring[at]) = new;
        self.at = if at + 1 == period { 0 } else { at + 1 };
        self.seen += 1;
    }

    pub fn next(&mut self, high: f64, low: f64, close: f64, volume: f64) -> f64 {
        let period = self.pos_ring.len();
        if self.seen == 0 {
            self.prev = typical(high, low, close);
            self.seen = 1;
            return f64::NAN;
        }
        self.step(high, low, close, volume);
        if self.seen > period {
            value(self.pos_sum, self.neg_sum)
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
