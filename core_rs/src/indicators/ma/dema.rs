//! DEMA: Mulloy's double EMA, 2 * EMA(x) - EMA(EMA(x)), k = 2 / (n + 1).
//! As in TA-Lib, the first EMA is seeded with the SMA of the first
//! `timeperiod` values and the second with the SMA of the first
//! `timeperiod` values of the first, so the warm-up is 2 * (timeperiod - 1).

use serde::{Deserialize, Serialize};

use super::ema::{ema_k, ema_step, Ema};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "dema",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| dema_lookback(int_param(p, 0)),
    run: |i, p, o| dema_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| dema_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Dema::new(int_param(p, 0)))),
    load_state: Some(load::<Dema>),
};

pub fn dema_lookback(period: usize) -> usize {
    2 * (period - 1)
}

/// DEMA of a gap-free series, NaN for the first `2 * (period - 1)` values.
/// The warm-up runs the state; the rest is one pass carrying both EMAs.
pub fn dema_into(x: &[f64], period: usize, out: &mut [f64]) {
    dema_checked(x, period, out);
}

/// `dema_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`).
pub fn dema_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    let lb = dema_lookback(period);
    fill_nan(out, lb);
    if x.len() <= lb {
        return !any_non_finite(x);
    }
    let mut bad = any_non_finite(&x[..=lb]);
    let mut st = Dema::new(period);
    for (o, &v) in out[..=lb].iter_mut().zip(x) {
        *o = st.next(v);
    }
    let k = ema_k(period);
    let omk = 1.0 - k;
    let (mut e1, mut e2) = (st.e1.value(), st.e2.value());
    for (o, &v) in out[lb + 1..].iter_mut().zip(&x[lb + 1..]) {
        bad |= non_finite(v);
        e1 = ema_step(e1, v, k, omk);
        e2 = ema_step(e2, e1, k, omk);
        *o = 2.0 * e1 - e2;
    }
    !bad
}

/// The running DEMA: the two chained EMAs.
#[derive(Clone, Serialize, Deserialize)]
pub struct Dema {
    e1: Ema,
    e2: Ema,
}

impl Dema {
    pub fn new(period: usize) -> Dema {
        Dema {
            e1: Ema::new(period),
            e2: Ema::new(period),
        }
    }

    /// The next value, NaN during the warm-up.
    pub fn next(&mut self, x: f64) -> f64 {
        let v1 = self.e1.next(x);
        if v1.is_nan() {
            return f64::NAN;
        }
        let v2 = self.e2.next(v1);
        if v2.is_nan() {
            return f64::NAN;
        }
        2.0 * v1 - v2
    }

    pub fn peek(&self, x: f64) -> f64 {
        self.clone().next(x)
    }
}

impl State for Dema {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Dema::peek(self, bar[0]);
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
        // period 2, k = 2/3. EMA1: seed (1+2)/2 = 1.5, then 1.5 + (3-1.5)*2/3 = 2.5,
        // 2.5 + (6-2.5)*2/3 = 29/6. EMA2: seed (1.5+2.5)/2 = 2 at bar 2, then
        // 2 + (29/6 - 2)*2/3 = 35/9. DEMA: 2*2.5 - 2 = 3, 2*29/6 - 35/9 = 52/9.
        let out = run(&SPEC, &[vec![1.0, 2.0, 3.0, 6.0]], &[2.0]);
        assert_close(&out[0], &[NAN, NAN, 3.0, 52.0 / 9.0], 1e-15, "dema");
    }

    #[test]
    fn edge_lengths_and_period_one() {
        for n in [0usize, 1, 2, 3, 4, 5, 6] {
            let x: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
            let out = run(&SPEC, std::slice::from_ref(&x), &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(4));
            assert_close(
                &run(&SPEC, std::slice::from_ref(&x), &[1.0])[0],
                &x,
                0.0,
                "dema(1)",
            );
        }
    }
}
