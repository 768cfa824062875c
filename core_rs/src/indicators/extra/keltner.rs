//! Keltner channel: middle = EMA(close, timeperiod), bands = middle +/-
//! multiplier * ATR(atr_period) (Wilder's ATR as TA-Lib's). Every output is
//! NaN until both are defined: lookback max(timeperiod - 1, atr_period).

use serde::{Deserialize, Serialize};

use crate::indicators::hlc::atr::{atr_into, Atr};
use crate::indicators::ma::ema::{ema_into, Ema};
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "keltner",
    inputs: &["high", "low", "close"],
    outputs: &["upperband", "middleband", "lowerband"],
    params: &[
        Param::period("timeperiod", 20.0, 1.0),
        Param::period("atr_period", 10.0, 1.0),
        Param::real("multiplier", 2.0, 0.0, 1e6),
    ],
    lookback: |p| lookback(int_param(p, 0), int_param(p, 1)),
    run: |i, p, o| {
        let [up, mid, lo] = o else { unreachable!() };
        keltner_into(
            i[0],
            i[1],
            i[2],
            int_param(p, 0),
            int_param(p, 1),
            p[2],
            up,
            mid,
            lo,
        )
    },
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(Keltner::new(int_param(p, 0), int_param(p, 1), p[2]))),
    load_state: Some(load::<Keltner>),
};

fn lookback(period: usize, atr_period: usize) -> usize {
    (period - 1).max(atr_period)
}

/// Keltner channel of a gap-free series: EMA into the middle band, ATR into
/// the upper band, then one pass turning the ATR into both bands.
#[allow(clippy::too_many_arguments)]
pub fn keltner_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    atr_period: usize,
    multiplier: f64,
    upper: &mut [f64],
    middle: &mut [f64],
    lower: &mut [f64],
) {
    let lb = lookback(period, atr_period);
    ema_into(close, period, middle);
    atr_into(high, low, close, atr_period, upper);
    let outs = upper.iter_mut().zip(middle.iter()).zip(lower.iter_mut());
    for ((u, &m), d) in outs.skip(lb) {
        let w = multiplier * *u;
        *u = m + w;
        *d = m - w;
    }
    fill_nan(upper, lb);
    fill_nan(middle, lb);
    fill_nan(lower, lb);
}

/// The running EMA and ATR and the bar count.
#[derive(Clone, Serialize, Deserialize)]
pub struct Keltner {
    ema: Ema,
    atr: Atr,
    multiplier: f64,
    lookback: usize,
    seen: usize,
}

impl Keltner {
    pub fn new(period: usize, atr_period: usize, multiplier: f64) -> Keltner {
        Keltner {
            ema: Ema::new(period),
            atr: Atr::new(atr_period),
            multiplier,
            lookback: lookback(period, atr_period),
            seen: 0,
        }
    }
}

impl State for Keltner {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        let m = self.ema.next(bar[2]);
        let a = self.atr.next(bar[0], bar[1], bar[2]);
        self.seen += 1;
        if self.seen <= self.lookback {
            out.fill(f64::NAN);
        } else {
            let w = self.multiplier * a;
            out[0] = m + w;
            out[1] = m;
            out[2] = m - w;
        }
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
        // EMA(3), k = 0.5: seed (9.5+11+8.5)/3 = 29/3 at bar 2, then
        // (29/3 + 14)/2 = 71/6, (71/6 + 13.5)/2 = 38/3.
        // ATR(2) (see atr.rs): 2.75 at bar 2, 4.625, 2.8125. Lookback 2.
        // Multiplier 2: bands mid +/- 5.5, 9.25, 5.625.
        let out = run(&SPEC, &[high, low, close], &[3.0, 2.0, 2.0]);
        let mid = [29.0 / 3.0, 71.0 / 6.0, 38.0 / 3.0];
        let w = [5.5, 9.25, 5.625];
        let up: Vec<f64> = (0..3).map(|i| mid[i] + w[i]).collect();
        let lo: Vec<f64> = (0..3).map(|i| mid[i] - w[i]).collect();
        assert_close(&out[0], &[NAN, NAN, up[0], up[1], up[2]], 1e-14, "upper");
        assert_close(
            &out[1],
            &[NAN, NAN, mid[0], mid[1], mid[2]],
            1e-14,
            "middle",
        );
        assert_close(&out[2], &[NAN, NAN, lo[0], lo[1], lo[2]], 1e-14, "lower");
    }

    #[test]
    fn lookback_is_the_longer_warm_up() {
        let lb = |p: [f64; 3]| (SPEC.lookback)(&p);
        assert_eq!(lb([20.0, 10.0, 2.0]), 19);
        assert_eq!(lb([5.0, 10.0, 2.0]), 10);
        for n in [0usize, 1, 9, 10, 11] {
            let inputs = crate::indicators::testing::make_inputs(SPEC.inputs, n, 1);
            let out = run(&SPEC, &inputs, &[5.0, 10.0, 2.0]);
            for o in &out {
                assert_eq!(o.len(), n);
                assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(10));
            }
        }
    }
}
