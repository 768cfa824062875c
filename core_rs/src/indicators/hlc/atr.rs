//! ATR: Wilder's average true range. The first value (at `timeperiod`) is
//! the mean of the first `timeperiod` true ranges; then
//! atr = (atr * (n - 1) + tr) / n. A period of 1 is TRANGE, as in TA-Lib.

use serde::{Deserialize, Serialize};

use super::trange::{trange_into, true_range, Trange};
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "atr",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 1.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| atr_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(Atr::new(int_param(p, 0)))),
    load_state: Some(load::<Atr>),
};

/// Wilder's smoothing as `prev * a + x * b` with a = (n-1)/n and b = 1/n:
/// one multiply and one add on the dependency chain instead of TA-Lib's
/// multiply, add and divide.
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
        prev * self.a + x * self.b
    }
}

/// ATR of a gap-free series, NaN for the first `period` values.
pub fn atr_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    if period == 1 {
        trange_into(high, low, close, out);
        return;
    }
    let n = out.len();
    fill_nan(out, period);
    if n <= period {
        return;
    }
    let mut sum = 0.0;
    for i in 1..=period {
        sum += true_range(high[i], low[i], close[i - 1]);
    }
    let mut prev = sum / period as f64;
    out[period] = prev;
    let w = Wilder::new(period);
    let bars = high[period + 1..]
        .iter()
        .zip(&low[period + 1..])
        .zip(&close[period..n - 1]);
    for (o, ((&h, &l), &c)) in out[period + 1..].iter_mut().zip(bars) {
        prev = w.step(prev, true_range(h, l, c));
        *o = prev;
    }
}

/// The running ATR: true ranges summed during warm-up, then the last value.
#[derive(Clone, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    wilder: Wilder,
    tr: Trange,
    seen: usize,
    sum: f64,
    prev: f64,
}

impl Atr {
    pub fn new(period: usize) -> Atr {
        Atr {
            period,
            wilder: Wilder::new(period),
            tr: Trange::default(),
            seen: 0,
            sum: 0.0,
            prev: f64::NAN,
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
        } else {
            self.prev = self.wilder.step(self.prev, tr);
        }
        self.prev
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
