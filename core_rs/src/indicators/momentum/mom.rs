//! MOM: momentum, x[i] - x[i - timeperiod], as TA-Lib's `MOM`.

use serde::{Deserialize, Serialize};

use super::gaps::Gaps;

use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "mom",
    inputs: &["real"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 10.0, 1.0)],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| mom_into(i[0], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| mom_checked(i[0], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Mom(Lag::new(int_param(p, 0))))),
    load_state: Some(load::<Mom>),
};

/// MOM of a gap-free series into `out`, NaN for the first `period` values.
pub fn mom_into(x: &[f64], period: usize, out: &mut [f64]) {
    mom_checked(x, period, out);
}

/// `mom_into` that also returns whether every input was finite, checked in
/// the same pass (see `RunCheckedFn`). No loop-carried state: the loop,
/// check included, vectorizes.
pub fn mom_checked(x: &[f64], period: usize, out: &mut [f64]) -> bool {
    fill_nan(out, period);
    let mut gaps = Gaps::default();
    if x.len() <= period {
        gaps.see_all(x);
        return gaps.finite();
    }
    gaps.see_all(&x[..period]);
    for (o, (&cur, &old)) in out[period..].iter_mut().zip(x[period..].iter().zip(x)) {
        gaps.see(cur);
        *o = cur - old;
    }
    gaps.finite()
}

/// The last `period` values, for the lagged kernels (MOM, ROC).
#[derive(Clone, Serialize, Deserialize)]
pub struct Lag {
    ring: Vec<f64>,
    pos: usize,
    seen: usize,
}

impl Lag {
    pub fn new(period: usize) -> Lag {
        Lag {
            ring: vec![0.0; period],
            pos: 0,
            seen: 0,
        }
    }

    /// The value `period` bars before this one, if there was one.
    #[inline]
    pub fn lagged(&self) -> Option<f64> {
        (self.seen >= self.ring.len()).then(|| self.ring[self.pos])
    }

    /// Stores `x` and returns the value it replaces (`period` bars ago).
    #[inline]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let old = self.lagged();
        self.ring[self.pos] = x;
        self.pos = if self.pos + 1 == self.ring.len() {
            0
        } else {
            self.pos + 1
        };
        self.seen = (self.seen + 1).min(self.ring.len());
        old
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Mom(Lag);

impl State for Mom {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.0.push(bar[0]).map_or(f64::NAN, |old| bar[0] - old);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.0.lagged().map_or(f64::NAN, |old| bar[0] - old);
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
        // period 2: 4 - 1, 2 - 3, 10 - 4
        let out = run(&SPEC, &[vec![1.0, 3.0, 4.0, 2.0, 10.0]], &[2.0]);
        assert_close(&out[0], &[NAN, NAN, 3.0, -1.0, 6.0], 0.0, "mom");
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4] {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let out = run(&SPEC, &[x], &[2.0]);
            assert_eq!(out[0].len(), n);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(2));
        }
    }
}
