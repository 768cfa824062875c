//! RSI: Wilder's relative strength index, as TA-Lib's `RSI`.
//!
//! The first value (at bar `timeperiod`) uses the means of the first
//! `timeperiod` gains and losses (bar-to-bar changes split by sign); then
//! each is smoothed as avg = (avg * (n - 1) + x) / n, and
//! rsi = 100 * gain / (gain + loss). A perfectly flat stretch (gain + loss
//! exactly 0) gives 0, as TA-Lib does.

use serde::{Deserialize, Serialize};

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
    run_checked: None,
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
/// mispredicted branch costs more than the whole step).
#[inline(always)]
fn split(d: f64) -> (f64, f64) {
    (d.max(0.0), (-d).max(0.0))
}

/// The Wilder averages of gains and losses; shared by the batch kernel, the
/// incremental state and STOCHRSI so all three do the same operations.
///
/// Bars are taken in pairs to halve the loop-carried chain: from the
/// averages `g` before a pair with gains `u1`, `u2`,
///   g1 = g * a + u1 * b                      (output only)
///   g2 = g * a^2 + (u1 * (a * b) + u2 * b)   (carried)
/// with a = (n - 1) / n and b = 1 / n, so the chain is one multiply and one
/// add per TWO bars (TA-Lib's chain multiplies, adds and divides every
/// bar). The two forms agree to a few ulps, and the smoothing damps
/// rounding, so the result stays within 1e-13 of TA-Lib's order. A lone
/// step (`half`) is the first half of a pair; the incremental state
/// completes the pair on the next bar, so it matches the batch bitwise.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct RsiCore {
    a: f64,
    b: f64,
    a2: f64,
    ab: f64,
    /// The averages before the current pair.
    pub gain: f64,
    pub loss: f64,
}

impl RsiCore {
    /// Seeds from the sums of the first `period` gains and losses.
    #[inline]
    pub fn seed(period: usize, gain_sum: f64, loss_sum: f64) -> RsiCore {
        let n = period as f64;
        let w = Wilder::new(period);
        RsiCore {
            a: w.a,
            b: w.b,
            a2: w.a * w.a,
            ab: w.a * w.b,
            gain: gain_sum / n,
            loss: loss_sum / n,
        }
    }

    /// The RSI after change `d` (the first of a pair); the carried
    /// averages do not move.
    #[inline(always)]
    pub fn half(&self, d: f64) -> f64 {
        let (up, down) = split(d);
        rsi_value(
            self.gain * self.a + up * self.b,
            self.loss * self.a + down * self.b,
        )
    }

    /// The RSIs after changes `d1` then `d2`; the averages advance by both.
    #[inline(always)]
    pub fn pair(&mut self, d1: f64, d2: f64) -> (f64, f64) {
        let (u1, n1) = split(d1);
        let (u2, n2) = split(d2);
        let g1 = self.gain * self.a + u1 * self.b;
        let l1 = self.loss * self.a + n1 * self.b;
        self.gain = self.gain * self.a2 + (u1 * self.ab + u2 * self.b);
        self.loss = self.loss * self.a2 + (n1 * self.ab + n2 * self.b);
        (rsi_value(g1, l1), rsi_value(self.gain, self.loss))
    }

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

/// Calls `emit` with the RSI of each bar from `period` on, in order
/// (`x.len() - period` calls; none if `x` is that short).
#[inline(always)]
pub fn rsi_each(x: &[f64], period: usize, mut emit: impl FnMut(f64)) {
    if x.len() <= period {
        return;
    }
    let (g, l) = seed_sums(&x[..=period]);
    let mut core = RsiCore::seed(period, g, l);
    emit(core.value());
    let mut prev = x[period];
    let mut pairs = x[period + 1..].chunks_exact(2);
    for p in pairs.by_ref() {
        let (r1, r2) = core.pair(p[0] - prev, p[1] - p[0]);
        prev = p[1];
        emit(r1);
        emit(r2);
    }
    if let [last] = pairs.remainder() {
        emit(core.half(last - prev));
    }
}

/// RSI of a gap-free series into `out`, NaN for the first `period` values.
pub fn rsi_into(x: &[f64], period: usize, out: &mut [f64]) {
    fill_nan(out, period);
    let mut slots = out.iter_mut().skip(period);
    rsi_each(x, period, |v| {
        if let Some(o) = slots.next() {
            *o = v;
        }
    });
}

/// The running RSI: the last price, the seed sums during warm-up, then the
/// Wilder averages, with the first change of an unfinished pair pending.
#[derive(Clone, Serialize, Deserialize)]
pub struct Rsi {
    period: usize,
    /// Bars seen, up to `period + 1` (then the averages are seeded).
    seen: usize,
    last: f64,
    gain_sum: f64,
    loss_sum: f64,
    core: RsiCore,
    pending: Option<f64>,
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
            pending: None,
        }
    }

    /// The next RSI, NaN until `period + 1` bars were seen.
    #[inline]
    pub fn next(&mut self, x: f64) -> f64 {
        let d = x - self.last;
        self.last = x;
        if self.seen > self.period {
            return match self.pending.take() {
                None => {
                    self.pending = Some(d);
                    self.core.half(d)
                }
                Some(d1) => self.core.pair(d1, d).1,
            };
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
