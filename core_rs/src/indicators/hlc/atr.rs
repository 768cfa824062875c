//! ATR: Wilder's average true range. The first value (at `timeperiod`) is
//! the mean of the first `timeperiod` true ranges; then
//! atr = (atr * (n - 1) + tr) / n. A period of 1 is TRANGE, as in TA-Lib.

use serde::{Deserialize, Serialize};

use super::trange::{trange_checked, true_range_checked, witness_bad, Trange};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "atr",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 1.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| atr_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| atr_checked(i[0], i[1], i[2], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Atr::new(int_param(p, 0)))),
    load_state: Some(load::<Atr>),
};

/// Wilder's smoothing as `prev * a + x * b` with a = (n-1)/n and b = 1/n,
/// the multiply-add fused: one FMA on the dependency chain (TA-Lib's chain
/// multiplies, adds and divides).
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Wilder {
    pub a: f64,
    pub b: f64,
}

impl Wilder {
    pub fn new(period: usize) -> Wilder {
        let n = period as f64;
        Wilder {
            a: (n - 1.0) / n,
            b: 1.0 / n,
        }
    }

    #[inline(always)]
    pub fn step(self, prev: f64, x: f64) -> f64 {
        prev.mul_add(self.a, x * self.b)
    }
}

/// Wilder's smoothing two bars at a time: from the value `y` before a pair
/// with inputs `x1`, `x2`,
///   y1 = y * a + x1 * b                        (output only)
///   y2 = y * a^2 + (x1 * (a * b) + x2 * b)     (carried)
/// each a fused multiply-add, so the chain is one FMA per TWO bars. A lone
/// bar is the first half of a pair ([`Wilder::step`]); the incremental
/// state completes the pair on the next bar, so it matches the batch
/// bitwise. The two forms agree to a few ulps and the smoothing damps
/// rounding (within 1e-13 of TA-Lib's order).
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(super) struct Wilder2 {
    pub w: Wilder,
    a2: f64,
    ab: f64,
}

impl Wilder2 {
    pub fn new(period: usize) -> Wilder2 {
        let w = Wilder::new(period);
        Wilder2 {
            w,
            a2: w.a * w.a,
            ab: w.a * w.b,
        }
    }

    /// The value after `x1` (output only).
    #[inline(always)]
    pub fn half(self, y: f64, x1: f64) -> f64 {
        self.w.step(y, x1)
    }

    /// The value after `x1` then `x2`, from `y` before both.
    #[inline(always)]
    pub fn pair(self, y: f64, x1: f64, x2: f64) -> f64 {
        y.mul_add(self.a2, x1.mul_add(self.ab, x2 * self.w.b))
    }
}

/// ATR of a gap-free series, NaN for the first `period` values.
pub fn atr_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    atr_checked(high, low, close, period, out);
}

/// `atr_into` that also returns whether every input was finite, checked in
/// the same pass (see `RunCheckedFn`).
pub fn atr_checked(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    atr_generic::<false>(high, low, close, period, out)
}

/// How many bars the smoothing loop runs before NATR normalises them while
/// they are still in L1 (even, so the pairs line up across blocks).
const BLOCK: usize = 128;

/// ATR (or, `NORM`, NATR) with the gap check fused. The smoothing chain is
/// one FMA per two bars; NATR divides by the close in vector blocks after
/// the chain has run over them (a division per bar inside the chain loop
/// would bound it by the divider's throughput).
#[inline(always)]
pub(super) fn atr_generic<const NORM: bool>(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    if period == 1 {
        // TA-Lib's ATR(1) and NATR(1) are the raw true range.
        return trange_checked(high, low, close, out);
    }
    let n = out.len();
    fill_nan(out, period);
    if n <= period {
        return !(any_non_finite(&high[..n])
            | any_non_finite(&low[..n])
            | any_non_finite(&close[..n]));
    }
    // Bar 0's high and low and the last close are read by no true range.
    let bad = non_finite(high[0]) | non_finite(low[0]) | non_finite(close[n - 1]);
    let mut w = 0u64;
    let mut sum = 0.0;
    for i in 1..=period {
        let (tr, x) = true_range_checked(high[i], low[i], close[i - 1]);
        sum += tr;
        w |= x;
    }
    let mut y = sum / period as f64;
    out[period] = if NORM { normalise(y, close[period]) } else { y };
    let k = Wilder2::new(period);
    let mut from = period + 1;
    for block in out[period + 1..].chunks_mut(BLOCK) {
        let m = block.len();
        // The true ranges first, in vector registers, into the block (it
        // stays in L1); then the chain over them in place.
        let bars = high[from..from + m]
            .iter()
            .zip(&low[from..from + m])
            .zip(&close[from - 1..from - 1 + m]);
        for (o, ((&h, &l), &c)) in block.iter_mut().zip(bars) {
            let (tr, x) = true_range_checked(h, l, c);
            w |= x;
            *o = tr;
        }
        let mut pairs = block.chunks_exact_mut(2);
        for o in pairs.by_ref() {
            let (x1, x2) = (o[0], o[1]);
            o[0] = k.half(y, x1);
            y = k.pair(y, x1, x2);
            o[1] = y;
        }
        if let [o] = pairs.into_remainder() {
            // the last bar of the series (blocks are even)
            *o = k.half(y, *o);
        }
        if NORM {
            for (o, &c) in block.iter_mut().zip(&close[from..from + m]) {
                *o = normalise(*o, c);
            }
        }
        from += m;
    }
    !(bad | witness_bad(w))
}

/// NATR's 100 * atr / close, 0 when the close is 0 (TA-Lib's).
#[inline(always)]
pub(super) fn normalise(atr: f64, close: f64) -> f64 {
    if close != 0.0 {
        (atr / close) * 100.0
    } else {
        0.0
    }
}

/// The running ATR: true ranges summed during warm-up, then the smoothing
/// in pairs as the batch kernel does (see [`Wilder2`]): `prev` is the value
/// before the current pair, `pending` the pair's first true range.
#[derive(Clone, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    wilder: Wilder2,
    tr: Trange,
    seen: usize,
    sum: f64,
    prev: f64,
    pending: Option<f64>,
}

impl Atr {
    pub fn new(period: usize) -> Atr {
        Atr {
            period,
            wilder: Wilder2::new(period),
            tr: Trange::default(),
            seen: 0,
            sum: 0.0,
            prev: f64::NAN,
            pending: None,
        }
    }

    /// The next ATR, NaN until `period` true ranges were seen.
    pub fn next(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let tr = self.tr.next(high, low, close);
        if tr.is_nan() || self.period == 1 {
            return tr;
        }
        if self.seen < self.period {
            self.sum += tr;
            self.seen += 1;
            if self.seen < self.period {
                return f64::NAN;
            }
            self.prev = self.sum / self.period as f64;
            return self.prev;
        }
        match self.pending.take() {
            None => {
                self.pending = Some(tr);
                self.wilder.half(self.prev, tr)
            }
            Some(x1) => {
                self.prev = self.wilder.pair(self.prev, x1, tr);
                self.prev
            }
        }
    }

    pub fn peek(&self, high: f64, low: f64, close: f64) -> f64 {
        self.clone().next(high, low, close)
    }
}

impl State for Atr {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1], bar[2]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Atr::peek(self, bar[0], bar[1], bar[2]);
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
        let high = vec![10.0, 12.0, 11.0, 15.0, 14.0];
        let low = vec![9.0, 10.5, 8.0, 13.0, 13.0];
        let close = vec![9.5, 11.0, 8.5, 14.0, 13.5];
        // true ranges from bar 1: 2.5, 3, 6.5, 1; period 2: seed (2.5+3)/2 = 2.75,
        // then (2.75*1 + 6.5)/2 = 4.625, (4.625 + 1)/2 = 2.8125
        let out = run(&SPEC, &[high, low, close], &[2.0]);
        assert_close(&out[0], &[NAN, NAN, 2.75, 4.625, 2.8125], 1e-15, "atr");
    }

    #[test]
    fn period_one_is_trange() {
        let inputs = crate::indicators::testing::make_inputs(SPEC.inputs, 50, 3);
        let atr1 = run(&SPEC, &inputs, &[1.0]);
        let tr = run(&super::super::trange::SPEC, &inputs, &[]);
        assert_close(&atr1[0], &tr[0], 0.0, "atr(1)");
    }
}
