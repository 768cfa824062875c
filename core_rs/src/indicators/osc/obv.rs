//! OBV: on-balance volume. Starts at the first bar's volume (TA-Lib), then
//! adds the volume when `real` rose from the previous bar, subtracts it when
//! it fell, and keeps it when equal. No warm-up.

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{non_finite, Spec, State};

pub const SPEC: Spec = Spec {
    name: "obv",
    inputs: &["real", "volume"],
    outputs: &["real"],
    params: &[],
    lookback: |_| 0,
    run: |i, _, o| obv_into(i[0], i[1], o[0]),
    run_checked: Some(|i, _, o| obv_checked(i[0], i[1], o[0])),
    check: None,
    new_state: Some(|_| Box::new(Obv::default())),
    load_state: Some(load::<Obv>),
};

/// `obv + v` if `x` rose, `obv - v` if it fell, else `obv`, without a
/// branch (a price's direction is a coin flip a branch mispredicts):
/// `v * 1 - v * 0 = v`, `v * 0 - v * 1 = -v` and `0 - 0 = 0` are exact, so
/// this equals TA-Lib's branching form.
#[inline(always)]
fn obv_step(obv: f64, x: f64, prev: f64, v: f64) -> f64 {
    let up = f64::from(u8::from(x > prev));
    let down = f64::from(u8::from(x < prev));
    obv + (v * up - v * down)
}

/// OBV of a gap-free series.
pub fn obv_into(real: &[f64], volume: &[f64], out: &mut [f64]) {
    obv_checked(real, volume, out);
}

/// `obv_into` that also returns whether every input was finite, checked in
/// the same pass (see `RunCheckedFn`).
pub fn obv_checked(real: &[f64], volume: &[f64], out: &mut [f64]) -> bool {
    let n = out.len();
    if n == 0 {
        return true;
    }
    let (real, volume) = (&real[..n], &volume[..n]);
    let mut obv = volume[0];
    let mut bad = non_finite(real[0]) | non_finite(obv);
    out[0] = obv;
    let bars = real[1..]
        .iter()
        .zip(&real[..real.len() - 1])
        .zip(&volume[1..]);
    for (o, ((&x, &prev), &v)) in out[1..].iter_mut().zip(bars) {
        bad |= non_finite(x) | non_finite(v);
        obv = obv_step(obv, x, prev, v);
        *o = obv;
    }
    !bad
}

/// The running OBV and the previous value, once a bar was seen.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Obv {
    last: Option<(f64, f64)>,
}

impl Obv {
    pub fn next(&mut self, x: f64, v: f64) -> f64 {
        let obv = match self.last {
            None => v,
            Some((obv, prev)) => obv_step(obv, x, prev, v),
        };
        self.last = Some((obv, x));
        obv
    }
}

impl State for Obv {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1]);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    #[test]
    fn golden_values_by_hand() {
        // 10, +20 (up), =, -40 (down), +50 (up)
        let x = vec![1.0, 2.0, 2.0, 1.0, 3.0];
        let v = vec![10.0, 20.0, 30.0, 40.0, 50.0];
        let out = run(&SPEC, &[x, v], &[]);
        assert_close(&out[0], &[10.0, 30.0, 30.0, -10.0, 40.0], 0.0, "obv");
    }

    #[test]
    fn edge_lengths() {
        assert!(run(&SPEC, &[vec![], vec![]], &[])[0].is_empty());
        assert_eq!(run(&SPEC, &[vec![1.0], vec![7.0]], &[])[0], vec![7.0]);
    }
}
