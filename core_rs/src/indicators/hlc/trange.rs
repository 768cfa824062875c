//! TRANGE: true range, max(high - low, |high - prev close|, |low - prev close|).

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{fill_nan, Spec, State};

pub const SPEC: Spec = Spec {
    name: "trange",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[],
    lookback: |_| 1,
    run: |i, _, o| trange_into(i[0], i[1], i[2], o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|_| Box::new(Trange::default())),
    load_state: Some(load::<Trange>),
};

/// The true range of bar `i` given the previous close.
#[inline(always)]
pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    // Plain comparisons (TA-Lib's) compile to maxsd; f64::max's NaN rule
    // costs extra instructions, and inputs here are finite.
    let range = high - low;
    let up = (prev_close - high).abs();
    let down = (prev_close - low).abs();
    let m = if up > range { up } else { range };
    if down > m {
        down
    } else {
        m
    }
}

/// TRANGE of a gap-free series; the first value is NaN (no previous close).
pub fn trange_into(high: &[f64], low: &[f64], close: &[f64], out: &mut [f64]) {
    fill_nan(out, 1);
    if out.len() <= 1 {
        return;
    }
    let bars = high[1..]
        .iter()
        .zip(&low[1..])
        .zip(&close[..close.len() - 1]);
    for (o, ((&h, &l), &c)) in out[1..].iter_mut().zip(bars) {
        *o = true_range(h, l, c);
    }
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
