//! TEMA: Mulloy's triple EMA, 3 * (EMA1 - EMA2) + EMA3 where each EMA is
//! the EMA of the previous one, k = 2 / (n + 1). As in TA-Lib, each EMA is
//! seeded with the SMA of the first `timeperiod` values of its input, so
//! the warm-up is 3 * (timeperiod - 1).

use serde::{Deserialize, Serialize};

use super::ema::{ema_k, ema_step, Ema};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "tema",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 30.0, 1.0)],
    lookback: |p| tema_lookback(int_param(p, 0)),
    run: |i, p, o| tema_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| tema_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Tema::new(int_param(p, 0)))),
    load_state: Some(load::<Tema>),
};

pub fn tema_lookback(period: usize) -> usize {
    3 * (period - 1)
}

/// TEMA of a gap-free series, NaN for the first `3 * (period - 1)` values.
/// The warm-up runs the state; the rest is one pass carrying the three EMAs.
pub fn tema_into(x: &[f64], period: usize, out: &mut [f64]) {
    tema_checked(x, period, out);
}

/// `tema_into` that also returns whether every input was finite, checked
/// in the same pass (see `RunCheckedFn`).
pub fn tema_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    let lb = tema_lookback(period);
    fill_nan(out, lb);
    if x.len() <= lb {
        return !any_non_finite(x);
    }
    let mut bad = any_non_finite(&x[..=lb]);
    let mut st = Tema::new(period);
    for (o, &v) in out[..=lb].iter_mut().zip(x) {
        *o = st.next(v);
    }
    let k = ema_k(period);
    let omk = 1.0 - k;
    let (mut e1, mut e2, mut e3) = (st.e1.value(), st.e2.value(), st.e3.value());
    for (o, &v) in out[lb + 1..].iter_mut().zip(&x[lb + 1..]) {
        bad |= non_finite(v);
        e1 = ema_step(e1, v, k, omk);
        e2 = ema_step(e2, e1, k, omk);
        e3 = ema_step(e3, e2, k, omk);
        *o = 3.0 * (e1 - e2) + e3;
    }
    !bad
}

/// The running TEMA: three chained EMAs.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tema {
    e1: Ema,
    e2: Ema,
    e3: Ema,
}

impl Tema {
    pub fn new(period: usize) -> Tema {
        Tema {
            e1: Ema::new(period),
            e2: Ema::new(period),
            e3: Ema::new(period),
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
        let v3 = self.e3.next(v2);
        if v3.is_nan() {
            return f64::NAN;
        }
        3.0 * (v1 - v2) + v3
    }

    pub fn peek(&self, x: f64) -> f64 {
        self.clone().next(x)
    }
}

impl State for Tema {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Tema::peek(self, bar[0]);
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
        // period 2, k = 2/3, x = 1, 2, 3, 6, 0.
        // EMA1 (from bar 1): 1.5, 2.5, 29/6, 29/18.
        // EMA2 (from bar 2): seed (1.5+2.5)/2 = 2, 35/9, 64/27.
        // EMA3 (from bar 3): seed (2+35/9)/2 = 53/18, then 415/162.
        // TEMA: 3*(29/6 - 35/9) + 53/18 = 52/9; 3*(29/18 - 64/27) + 415/162 = 23/81.
        let out = run(&SPEC, &[vec![1.0, 2.0, 3.0, 6.0, 0.0]], &[2.0]);
        let want = [NAN, NAN, NAN, 52.0 / 9.0, 23.0 / 81.0];
        assert_close(&out[0], &want, 1e-14, "tema");
    }

    #[test]
    fn edge_lengths_and_period_one() {
        for n in [0usize, 1, 5, 6, 7, 8] {
            let x: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
            let out = run(&SPEC, std::slice::from_ref(&x), &[3.0]);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(6));
            assert_close(
                &run(&SPEC, std::slice::from_ref(&x), &[1.0])[0],
                &x,
                0.0,
                "tema(1)",
            );
        }
    }
}
