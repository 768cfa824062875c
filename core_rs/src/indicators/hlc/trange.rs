//! TRANGE: true range, max(high - low, |high - prev close|, |low - prev close|).

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, non_finite, Spec, State};

pub const SPEC: Spec = Spec {
    name: "trange",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[],
    lookback: |_| 1,
    run: |i, _, o| trange_into(i[0], i[1], i[2], o[0]),
    run_checked: Some(|i, _, o| trange_checked(i[0], i[1], i[2], o[0])),
    check: None,
    new_state: Some(|_| Box::new(Trange::default())),
    load_state: Some(load::<Trange>),
};

/// The true range of bar `i` given the previous close.
#[inline(always)]
pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    true_range_checked(high, low, prev_close).0
}

/// The true range and its gap witness: `(h - l) + (c - h) + (c - l)`
/// times 0, which is ±0 when the three inputs are finite and NaN when any
/// is NaN or infinite (a NaN or infinity in an input makes at least one
/// difference non-finite, and a sum with a non-finite term is non-finite).
/// Finite inputs whose differences overflow also give NaN: a false alarm
/// that only sends the series down the gap-by-gap path, with the same
/// values. OR the witnesses' bits together and test once with
/// [`witness_bad`]: two adds, a multiply and an OR per bar, off any chain.
#[inline(always)]
pub fn true_range_checked(high: f64, low: f64, prev_close: f64) -> (f64, u64) {
    // Plain comparisons (TA-Lib's) compile to maxsd; f64::max's NaN rule
    // costs extra instructions, and inputs here are finite.
    let range = high - low;
    let to_high = prev_close - high;
    let to_low = prev_close - low;
    let up = to_high.abs();
    let down = to_low.abs();
    let m = if up > range { up } else { range };
    let tr = if down > m { down } else { m };
    (tr, witness(range + to_high + to_low))
}

/// ±0's bits for a finite `v`, NaN's for a non-finite one.
#[inline(always)]
pub fn witness(v: f64) -> u64 {
    (v * 0.0).to_bits()
}

/// Whether an OR of [`witness`] bits saw a non-finite value.
#[inline(always)]
pub fn witness_bad(bits: u64) -> bool {
    non_finite(f64::from_bits(bits))
}

/// TRANGE of a gap-free series; the first value is NaN (no previous close).
pub fn trange_into(high: &[f64], low: &[f64], close: &[f64], out: &mut [f64]) {
    trange_checked(high, low, close, out);
}

/// `trange_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`).
pub fn trange_checked(high: &[f64], low: &[f64], close: &[f64], out: &mut [f64]) -> bool {
    let n = out.len();
    fill_nan(out, 1);
    if n <= 1 {
        return !(any_non_finite(&high[..n])
            | any_non_finite(&low[..n])
            | any_non_finite(&close[..n]));
    }
    // Bar 0's high and low and the last close are read by no true range.
    let bad = non_finite(high[0]) | non_finite(low[0]) | non_finite(close[n - 1]);
    let mut w = 0u64;
    let bars = high[1..n].iter().zip(&low[1..n]).zip(&close[..n - 1]);
    for (o, ((&h, &l), &c)) in out[1..].iter_mut().zip(bars) {
        let (tr, x) = true_range_checked(h, l, c);
        w |= x;
        *o = tr;
    }
    !(bad | witness_bad(w))
}

/// The previous close, once one was seen.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Trange {
    prev_close: Option<f64>,
}

impl Trange {
    /// The true range of this bar, NaN for the first.
    pub fn next(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let tr = self.peek(high, low);
        self.prev_close = Some(close);
        tr
    }

    pub fn peek(&self, high: f64, low: f64) -> f64 {
        self.prev_close
            .map_or(f64::NAN, |c| true_range(high, low, c))
    }
}

impl State for Trange {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1], bar[2]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Trange::peek(self, bar[0], bar[1]);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    #[test]
    fn golden_values_by_hand() {
        let high = vec![10.0, 12.0, 11.0, 15.0];
        let low = vec![9.0, 10.5, 8.0, 13.0];
        let close = vec![9.5, 11.0, 8.5, 14.0];
        let out = run(&SPEC, &[high, low, close], &[]);
        // bar 1: max(1.5, |9.5-12|=2.5, |9.5-10.5|=1) = 2.5
        // bar 2: max(3, |11-11|=0, |11-8|=3) = 3; bar 3: max(2, 6.5, 4.5) = 6.5
        assert_close(&out[0], &[f64::NAN, 2.5, 3.0, 6.5], 0.0, "trange");
    }
}
