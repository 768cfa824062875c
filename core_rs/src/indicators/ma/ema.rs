//! EMA: exponential moving average with k = 2 / (timeperiod + 1), seeded
//! with the SMA of the first `timeperiod` values (TA-Lib's default).

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "ema",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| ema_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| {
        let period = int_param(p, 0);
        ema_checked(i[0], period, ema_k(period), o[0])
    }),
    check: None,
    new_state: Some(|p| Box::new(Ema::new(int_param(p, 0)))),
    load_state: Some(load::<Ema>),
};

pub fn ema_k(period: usize) -> f64 {
    2.0 / (period as f64 + 1.0)
}

/// One EMA step. `prev * (1 - k) + x * k` as one fused multiply-add on the
/// dependency chain, `x * k` computed beside it (TA-Lib's
/// `(x - prev) * k + prev` chains three operations). The crate is built for
/// x86-64-v3, so `mul_add` is the FMA instruction, not a library call.
#[inline(always)]
pub fn ema_step(prev: f64, x: f64, k: f64, one_minus_k: f64) -> f64 {
    prev.mul_add(one_minus_k, x * k)
}

/// EMA of a gap-free series into `out`, NaN for the first `period - 1`.
pub fn ema_into(x: &[f64], period: usize, out: &mut [f64]) {
    ema_into_k(x, period, ema_k(period), out);
}

/// EMA with an explicit smoothing factor (MACD's fixed 12/26 use 0.15 and
/// 0.075; Wilder-style callers pass 1 / period).
pub fn ema_into_k(x: &[f64], period: usize, k: f64, out: &mut [f64]) {
    ema_checked(x, period, k, out);
}

/// `ema_into_k` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`).
pub fn ema_checked(x: &[f64], period: usize, k: f64, out: &mut [f64]) -> bool {
    let lb = period - 1;
    fill_nan(out, lb);
    if x.len() <= lb {
        return !any_non_finite(x);
    }
    let mut sum = 0.0;
    let mut bad = false;
    for &v in &x[..period] {
        sum += v;
        bad |= non_finite(v);
    }
    let mut prev = sum / period as f64;
    out[lb] = prev;
    let one_minus_k = 1.0 - k;
    for (o, &v) in out[period..].iter_mut().zip(&x[period..]) {
        bad |= non_finite(v);
        prev = ema_step(prev, v, k, one_minus_k);
        *o = prev;
    }
    !bad
}

/// The running EMA: the seed sum during warm-up, then the last value.
#[derive(Clone, Serialize, Deserialize)]
pub struct Ema {
    period: usize,
    k: f64,
    seen: usize,
    sum: f64,
    prev: f64,
}

impl Ema {
    pub fn new(period: usize) -> Ema {
        Ema::with_k(period, ema_k(period))
    }

    pub fn with_k(period: usize, k: f64) -> Ema {
        Ema {
            period,
            k,
            seen: 0,
            sum: 0.0,
            prev: f64::NAN,
        }
    }

    /// The next value, NaN until `period` values were seen.
    pub fn next(&mut self, x: f64) -> f64 {
        if self.seen < self.period {
            self.sum += x;
            self.seen += 1;
            if self.seen < self.period {
                return f64::NAN;
            }
            self.prev = self.sum / self.period as f64;
        } else {
            self.prev = ema_step(self.prev, x, self.k, 1.0 - self.k);
        }
        self.prev
    }

    pub fn peek(&self, x: f64) -> f64 {
        self.clone().next(x)
    }

    /// The last value (NaN during the warm-up).
    pub fn value(&self) -> f64 {
        self.prev
    }
}

impl State for Ema {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Ema::peek(self, bar[0]);
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
        // period 3: k = 0.5, seed (1+2+3)/3 = 2, then 2+(4-2)/2 = 3, 3+(10-3)/2 = 6.5
        let out = run(&SPEC, &[vec![1.0, 2.0, 3.0, 4.0, 10.0]], &[3.0]);
        assert_close(&out[0], &[NAN, NAN, 2.0, 3.0, 6.5], 1e-15, "ema");
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x], &[3.0]);
            assert_eq!(out[0].len(), n);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
        }
    }
}
