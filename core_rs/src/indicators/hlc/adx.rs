//! ADX: Wilder's average directional index, as TA-Lib computes it.
//!
//! From the DM and TR sums of [`super::dm`] (seeded with bars 1 to n - 1,
//! smoothed from bar n), each bar's DX = 100 * |+DI - -DI| / (+DI + -DI).
//! The first ADX (bar 2n - 1, the lookback) is the sum of the DX of bars n
//! to 2n - 1 divided by n, a skipped DX counting as 0; then
//! adx = (adx * (n - 1) + dx) / n, left unchanged where the DX is skipped
//! (TR sum 0, or +DI + -DI below 1e-14). Periods from 2, as in TA-Lib.

use serde::{Deserialize, Serialize};

use super::dm::{edges_bad, moves_checked, DmState, DmSums};
use super::trange::witness_bad;
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "adx",
    inputs: &["high", "low", "close"],
    outputs: &["real"],
    params: &[Param::period("timeperiod", 14.0, 2.0)],
    lookback: |p| 2 * int_param(p, 0) - 1,
    run: |i, p, o| adx_into(i[0], i[1], i[2], int_param(p, 0), o[0]),
    run_checked: Some(|i, p, o| adx_checked(i[0], i[1], i[2], int_param(p, 0), o[0])),
    check: None,
    new_state: Some(|p| Box::new(Adx::new(int_param(p, 0)))),
    load_state: Some(load::<Adx>),
};

/// ADX of a gap-free series, NaN for the first `2 * period - 1` values.
///
/// Kept as the Wilder sum S = n * ADX / 100 of the unit DX q = DX / 100:
/// S = S * a + q with a = (n - 1) / n (one FMA on the dependency chain;
/// the division making q is off it), output S * 100 / n.
/// (`adx * a + dx * b` let the compiler pack both products into one vector
/// multiply plus shuffles, a longer chain.) The first S is the sum of the
/// first n unit DX.
pub fn adx_into(high: &[f64], low: &[f64], close: &[f64], period: usize, out: &mut [f64]) {
    adx_checked(high, low, close, period, out);
}

/// `adx_into` that also returns whether every input was finite, checked in
/// the same pass (see `RunCheckedFn`).
pub fn adx_checked(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    let lb = 2 * period - 1;
    let n = out.len();
    fill_nan(out, lb);
    let bad = edges_bad(high, low, close, n, n <= lb);
    if n <= lb {
        return !bad;
    }
    let c = AdxConsts::new(period);
    let (mut s, mut w) = DmSums::seeded(high, low, close, period);
    let mut sum = 0.0;
    for (x, xw) in moves_checked(high, low, close, period).take(period) {
        w |= xw;
        s.step(x);
        if let Some(q) = s.dx_unit() {
            sum += q;
        }
    }
    out[lb] = sum * c.scale;
    for (o, (x, xw)) in out[lb + 1..]
        .iter_mut()
        .zip(moves_checked(high, low, close, lb + 1))
    {
        w |= xw;
        s.step(x);
        if let Some(q) = s.dx_unit() {
            sum = sum.mul_add(c.a, q);
        }
        *o = sum * c.scale;
    }
    !(bad | witness_bad(w))
}

/// a = (n - 1) / n and the output scale 100 / n.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct AdxConsts {
    a: f64,
    scale: f64,
}

impl AdxConsts {
    fn new(period: usize) -> AdxConsts {
        let n = period as f64;
        AdxConsts {
            a: (n - 1.0) / n,
            scale: 100.0 / n,
        }
    }
}

/// The running ADX: the DM/TR sums, the count of smoothed bars and the sum
/// S of the unit DX (see [`adx_into`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct Adx {
    period: usize,
    dm: DmState,
    c: AdxConsts,
    smoothed: usize,
    sum: f64,
}

impl Adx {
    pub fn new(period: usize) -> Adx {
        Adx {
            period,
            dm: DmState::new(period),
            c: AdxConsts::new(period),
            smoothed: 0,
            sum: 0.0,
        }
    }

    /// The next ADX, NaN until `2 * period` bars were seen.
    pub fn next(&mut self, high: f64, low: f64, close: f64) -> f64 {
        match self.dm.next(high, low, close) {
            Some((_, true)) => {}
            _ => return f64::NAN,
        }
        let q = self.dm.sums.dx_unit();
        if self.smoothed < self.period {
            self.smoothed += 1;
            if let Some(q) = q {
                self.sum += q;
            }
            if self.smoothed < self.period {
                return f64::NAN;
            }
        } else if let Some(q) = q {
            self.sum = self.sum.mul_add(self.c.a, q);
        }
        self.sum * self.c.scale
    }
}

impl State for Adx {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1], bar[2]);
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
        let high = vec![10.0, 12.0, 11.0, 15.0, 14.0, 16.0];
        let low = vec![9.0, 10.5, 8.0, 13.0, 13.0, 12.0];
        let close = vec![9.5, 11.0, 8.5, 14.0, 13.5, 15.0];
        // (+DM, -DM, TR) from bar 1: (2, 0, 2.5), (0, 2.5, 3), (4, 0, 6.5),
        // (0, 0, 1), bar 5: up 2, down 1 -> (2, 0, max(4, 2.5, 1.5) = 4).
        // period 2, sums seeded with bar 1: (2, 0, 2.5).
        // bar 2: (1, 2.5, 4.25) -> DX = 100 * 1.5 / 3.5
        // bar 3: (4.5, 1.25, 8.625) -> DX = 100 * 3.25 / 5.75
        // first ADX (bar 3) = (150/3.5 + 325/5.75) / 2
        // bar 4: (2.25, 0.625, 5.3125) -> DX = 100 * 1.625 / 2.875
        // bar 5: (3.125, 0.3125, 6.65625) -> DX = 100 * 2.8125 / 3.4375
        let adx3 = (150.0 / 3.5 + 325.0 / 5.75) / 2.0;
        let adx4 = (adx3 + 162.5 / 2.875) / 2.0;
        let adx5 = (adx4 + 281.25 / 3.4375) / 2.0;
        let out = run(&SPEC, &[high, low, close], &[2.0]);
        assert_close(&out[0], &[NAN, NAN, NAN, adx3, adx4, adx5], 1e-14, "adx");
    }

    #[test]
    fn flat_start_skips_dx_and_keeps_adx() {
        // Flat bars: TR sums are 0, every DX is skipped: ADX 0 and stays 0
        // until a move; then it follows the DX.
        let mut high = vec![5.0; 8];
        high.push(6.0);
        let low = vec![5.0; 9];
        let close = vec![5.0; 9];
        let out = run(&SPEC, &[high, low, close], &[2.0]);
        // bar 8: sums (1, 0, 1) -> DX 100 -> ADX (0 + 100) / 2 = 50
        assert_close(
            &out[0],
            &[NAN, NAN, NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 50.0],
            0.0,
            "adx flat",
        );
    }

    #[test]
    fn edge_lengths() {
        for n in 0..8 {
            let x = crate::indicators::testing::make_inputs(SPEC.inputs, n, 1);
            let out = run(&SPEC, &x, &[3.0]);
            assert_eq!(out[0].len(), n);
            for (i, v) in out[0].iter().enumerate() {
                assert_eq!(v.is_nan(), i < 5, "{n} {i} {v}");
            }
        }
    }
}
