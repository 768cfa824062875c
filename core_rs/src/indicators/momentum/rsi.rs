//! RSI: Wilder's relative strength index, as TA-Lib's `RSI`.
//!
//! The first value (at bar `timeperiod`) uses the means of the first
//! `timeperiod` gains and losses (bar-to-bar changes split by sign); then
//! each is smoothed as avg = (avg * (n - 1) + x) / n, and
//! rsi = 100 * gain / (gain + loss). A perfectly flat stretch (gain + loss
//! exactly 0) gives 0, as TA-Lib does.

use serde::{Deserialize, Serialize};

use super::gaps::Gaps;

use crate::indicators::hlc::atr::Wilder;
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "rsi",
    inputs: &["real"],
    outputs: &["real"],
    // TA-Lib refuses a period of 1.
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| rsi_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| rsi_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Rsi::new(int_param(p, 0)))),
    load_state: Some(load::<Rsi>),
};

/// 100 * gain / (gain + loss), 0 when both are 0 (a flat series).
#[inline(always)]
pub fn rsi_value(gain: f64, loss: f64) -> f64 {
    let sum = gain + loss;
    if sum != 0.0 {
        100.0 * (gain / sum)
    } else {
        0.0
    }
}

/// The gain and loss parts of one change: (max(d, 0), max(-d, 0)),
/// without a branch (the sign of a price change is a coin flip, and a
/// mispredicted branch costs more than the whole step). Plain comparisons,
/// one `maxsd` each (`f64::max` adds NaN handling); both parts are +0 for
/// a zero change, as TA-Lib's.
#[inline(always)]
fn split(d: f64) -> (f64, f64) {
    let nd = -d;
    (
        if d > 0.0 { d } else { 0.0 },
        if nd > 0.0 { nd } else { 0.0 },
    )
}

/// Bars per block of the batch loop (see [`RsiCore`]).
const BLOCK: usize = 4;

/// The Wilder averages of gains and losses; shared by the batch kernel, the
/// incremental state and STOCHRSI so all three do the same operations.
///
/// Bars are taken in blocks of four to cut the loop-carried chain: from the
/// averages `g` before a block with gains `u1..u4`, bar `j` of the block has
///   g_j = g * a^j + w_j,  w_1 = u1 * b,  w_j = w_(j-1) * a + u_j * b
/// with a = (n - 1) / n and b = 1 / n (each step one fused multiply-add).
/// The `w` depend on the prices only, so the chain carried from block to
/// block is ONE FMA per four bars (TA-Lib's chain multiplies, adds and
/// divides every bar), and the four RSIs of a block are independent (their
/// divisions overlap). The forms agree with the one-bar recursion to a few
/// ulps, and the smoothing damps rounding: within 1e-13 of TA-Lib's order.
/// `step` takes one bar of a block (the incremental state and the batch's
/// last bars), with exactly the operations of `block`, so the state matches
/// the batch bitwise.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct RsiCore {
    a: f64,
    b: f64,
    /// a, a^2, a^3, a^4.
    ap: [f64; BLOCK],
    /// The averages before the current block.
    gain: f64,
    loss: f64,
    /// The current block's weighted gains and losses so far, and its bars.
    wg: f64,
    wl: f64,
    k: usize,
}

impl RsiCore {
    /// Seeds from the sums of the first `period` gains and losses.
    #[inline]
    pub fn seed(period: usize, gain_sum: f64, loss_sum: f64) -> RsiCore {
        let n = period as f64;
        let w = Wilder::new(period);
        let a = w.a;
        let a2 = a * a;
        RsiCore {
            a,
            b: w.b,
            ap: [a, a2, a2 * a, a2 * a2],
            gain: gain_sum / n,
            loss: loss_sum / n,
            wg: 0.0,
            wl: 0.0,
            k: 0,
        }
    }

    /// The RSIs after the four changes `d` (at a block boundary).
    #[inline(always)]
    pub fn block(&mut self, d: [f64; BLOCK]) -> [f64; BLOCK] {
        debug_assert_eq!(self.k, 0);
        let (mut wg, mut wl) = ([0.0; BLOCK], [0.0; BLOCK]);
        let (u, v) = split(d[0]);
        (wg[0], wl[0]) = (u * self.b, v * self.b);
        for j in 1..BLOCK {
            let (u, v) = split(d[j]);
            wg[j] = wg[j - 1].mul_add(self.a, u * self.b);
            wl[j] = wl[j - 1].mul_add(self.a, v * self.b);
        }
        let mut out = [0.0; BLOCK];
        let (mut g, mut l) = (0.0, 0.0);
        for j in 0..BLOCK {
            g = self.gain.mul_add(self.ap[j], wg[j]);
            l = self.loss.mul_add(self.ap[j], wl[j]);
            out[j] = rsi_value(g, l);
        }
        (self.gain, self.loss) = (g, l);
        out
    }

    /// The RSI after one change `d`, the next bar of the current block.
    #[inline(always)]
    pub fn step(&mut self, d: f64) -> f64 {
        let (u, v) = split(d);
        let (ub, vb) = (u * self.b, v * self.b);
        if self.k == 0 {
            (self.wg, self.wl) = (ub, vb);
        } else {
            self.wg = self.wg.mul_add(self.a, ub);
            self.wl = self.wl.mul_add(self.a, vb);
        }
        let g = self.gain.mul_add(self.ap[self.k], self.wg);
        let l = self.loss.mul_add(self.ap[self.k], self.wl);
        self.k += 1;
        if self.k == BLOCK {
            (self.gain, self.loss, self.k) = (g, l, 0);
        }
        rsi_value(g, l)
    }

    /// The RSI of the seed (before any step).
    #[inline(always)]
    pub fn value(&self) -> f64 {
        rsi_value(self.gain, self.loss)
    }
}

/// The sums of the gains and losses of `x[1..]` over `x[..len-1]`,
/// accumulated from 0 in bar order as TA-Lib does.
#[inline]
pub fn seed_sums(x: &[f64]) -> (f64, f64) {
    let (mut gain, mut loss) = (0.0, 0.0);
    for w in x.windows(2) {
        let (up, down) = split(w[1] - w[0]);
        gain += up;
        loss += down;
    }
    (gain, loss)
}

/// RSI of a gap-free series into `out`, NaN for the first `period` values.
pub fn rsi_into(x: &[f64], period: usize, out: &mut [f64]) {
    rsi_checked(x, period, out);
}

/// `rsi_into` that also returns whether every input was finite, checked
/// as it reads (see `RunCheckedFn`).
pub fn rsi_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    fill_nan(out, period);
    let mut gaps = Gaps::default();
    if x.len() <= period {
        gaps.see_all(x);
        return gaps.finite();
    }
    gaps.see_all(&x[..=period]);
    let (g, l) = seed_sums(&x[..=period]);
    let mut core = RsiCore::seed(period, g, l);
    out[period] = core.value();
    let mut prev = x[period];
    let mut bars = x[period + 1..].chunks_exact(BLOCK);
    let mut outs = out[period + 1..].chunks_exact_mut(BLOCK);
    for (o, c) in outs.by_ref().zip(bars.by_ref()) {
        gaps.see_all(c);
        let d = [c[0] - prev, c[1] - c[0], c[2] - c[1], c[3] - c[2]];
        prev = c[3];
        o.copy_from_slice(&core.block(d));
    }
    for (o, &v) in outs.into_remainder().iter_mut().zip(bars.remainder()) {
        gaps.see(v);
        *o = core.step(v - prev);
        prev = v;
    }
    gaps.finite()
}

/// The running RSI: the last price, the seed sums during warm-up, then the
/// Wilder averages (stepped in the batch's blocks).
#[derive(Clone, Serialize, Deserialize)]
pub struct Rsi {
    period: usize,
    /// Bars seen, up to `period + 1` (then the averages are seeded).
    seen: usize,
    last: f64,
    gain_sum: f64,
    loss_sum: f64,
    core: RsiCore,
}

impl Rsi {
    pub fn new(period: usize) -> Rsi {
        Rsi {
            period,
            seen: 0,
            last: f64::NAN,
            gain_sum: 0.0,
            loss_sum: 0.0,
            core: RsiCore::seed(period, 0.0, 0.0),
        }
    }

    /// The next RSI, NaN until `period + 1` bars were seen.
    #[inline]
    pub fn next(&mut self, x: f64) -> f64 {
        let d = x - self.last;
        self.last = x;
        if self.seen > self.period {
            return self.core.step(d);
        }
        self.seen += 1;
        if self.seen == 1 {
            return f64::NAN;
        }
        let (up, down) = split(d);
        self.gain_sum += up;
        self.loss_sum += down;
        if self.seen <= self.period {
            return f64::NAN;
        }
        self.core = RsiCore::seed(self.period, self.gain_sum, self.loss_sum);
        self.core.value()
    }
}

impl State for Rsi {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        // Plain numbers only: the copy is cheap.
        out[0] = self.clone().next(bar[0]);
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
        // period 2, changes +1, -2, +3, 0.
        // seed: gain (1 + 0) / 2 = 0.5, loss (0 + 2) / 2 = 1 -> 100 * 0.5 / 1.5
        // then gain (0.5 + 3) / 2 = 1.75, loss (1 + 0) / 2 = 0.5 -> 100 * 1.75 / 2.25
        // then gain 1.75 / 2 = 0.875, loss 0.25 -> 100 * 0.875 / 1.125
        let out = run(&SPEC, &[vec![10.0, 11.0, 9.0, 12.0, 12.0]], &[2.0]);
        let want = [
            NAN,
            NAN,
            100.0 / 3.0,
            100.0 * 1.75 / 2.25,
            100.0 * 0.875 / 1.125,
        ];
        assert_close(&out[0], &want, 1e-14, "rsi");
    }

    #[test]
    fn flat_is_zero_and_rising_is_hundred() {
        let out = run(&SPEC, &[vec![5.0; 6]], &[3.0]);
        assert_close(&out[0], &[NAN, NAN, NAN, 0.0, 0.0, 0.0], 0.0, "flat");
        let out = run(&SPEC, &[vec![1.0, 2.0, 3.0, 4.0, 4.0]], &[3.0]);
        assert_close(&out[0], &[NAN, NAN, NAN, 100.0, 100.0], 0.0, "rising");
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4, 5] {
            let x: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
            let out = run(&SPEC, &[x], &[3.0]);
            assert_eq!(out[0].len(), n);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(3));
        }
    }
}
