//! STOCH: slow stochastic. Fast-K as in [`super::stochf`]; Slow-K = moving
//! average `slowk_matype` of Fast-K over `slowk_period`; Slow-D = moving
//! average `slowd_matype` of Slow-K over `slowd_period`. Both outputs start
//! at the total lookback.

use serde::{Deserialize, Serialize};

use super::stochf::{fastk_into, fastk_value};
use super::window::HighLow;
use crate::indicators::ma::matype::{ma_into, ma_lookback, matype_param, MaState};
use crate::indicators::state::load;
use crate::indicators::{fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "stoch",
    inputs: &["high", "low", "close"],
    outputs: &["slowk", "slowd"],
    params: &[
        Param::period("fastk_period", 5.0, 1.0),
        Param::period("slowk_period", 3.0, 1.0),
        matype_param("slowk_matype"),
        Param::period("slowd_period", 3.0, 1.0),
        matype_param("slowd_matype"),
    ],
    lookback: |p| {
        int_param(p, 0) - 1
            + ma_lookback(int_param(p, 2), int_param(p, 1))
            + ma_lookback(int_param(p, 4), int_param(p, 3))
    },
    run: |i, p, o| {
        let (k, d) = o.split_at_mut(1);
        stoch_into(i[0], i[1], i[2], &Params::from(p), k[0], d[0]);
    },
    run_checked: Some(|i, p, o| {
        let (k, d) = o.split_at_mut(1);
        stoch_into(i[0], i[1], i[2], &Params::from(p), k[0], d[0])
    }),
    check: None,
    new_state: Some(|p| Box::new(Stoch::new(&Params::from(p)))),
    load_state: Some(load::<Stoch>),
};

/// STOCH's parameters, in TA-Lib's order.
#[derive(Clone, Copy)]
pub struct Params {
    pub fastk_period: usize,
    pub slowk_period: usize,
    pub slowk_matype: usize,
    pub slowd_period: usize,
    pub slowd_matype: usize,
}

impl Params {
    pub fn from(p: &[f64]) -> Params {
        Params {
            fastk_period: int_param(p, 0),
            slowk_period: int_param(p, 1),
            slowk_matype: int_param(p, 2),
            slowd_period: int_param(p, 3),
            slowd_matype: int_param(p, 4),
        }
    }
}

/// STOCH of a gap-free series into `slowk` and `slowd`. Fast-K is built in
/// `slowd` (scratch), smoothed into `slowk`, which is smoothed into `slowd`:
/// no temporary buffer. Returns whether every input was finite (see
/// [`fastk_into`]).
pub fn stoch_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    p: &Params,
    slowk: &mut [f64],
    slowd: &mut [f64],
) -> bool {
    let n = slowk.len();
    let lbk = p.fastk_period - 1;
    let lbs = lbk + ma_lookback(p.slowk_matype, p.slowk_period);
    let lb = lbs + ma_lookback(p.slowd_matype, p.slowd_period);
    let finite = fastk_into(high, low, close, p.fastk_period, slowd);
    if n > lbk {
        ma_into(
            p.slowk_matype,
            &slowd[lbk..],
            p.slowk_period,
            &mut slowk[lbk..],
        );
    }
    if n > lbs {
        ma_into(
            p.slowd_matype,
            &slowk[lbs..],
            p.slowd_period,
            &mut slowd[lbs..],
        );
    }
    fill_nan(slowk, lb);
    fill_nan(slowd, lb);
    finite
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Stoch {
    fastk_period: usize,
    w: HighLow,
    k: MaState,
    d: MaState,
}

impl Stoch {
    pub fn new(p: &Params) -> Stoch {
        Stoch {
            fastk_period: p.fastk_period,
            w: HighLow::new(p.fastk_period),
            k: MaState::new(p.slowk_matype, p.slowk_period),
            d: MaState::new(p.slowd_matype, p.slowd_period),
        }
    }

    pub fn next(&mut self, high: f64, low: f64, close: f64) -> (f64, f64) {
        const NONE: (f64, f64) = (f64::NAN, f64::NAN);
        let (hh, ll) = self.w.push(high, low);
        if (self.w.seen() as usize) < self.fastk_period {
            return NONE;
        }
        let k = self.k.next(fastk_value(hh, ll, close));
        if k.is_nan() {
            return NONE;
        }
        let d = self.d.next(k);
        if d.is_nan() {
            NONE
        } else {
            (k, d)
        }
    }
}

impl State for Stoch {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        (out[0], out[1]) = self.next(bar[0], bar[1], bar[2]);
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
        let high = vec![10.0, 12.0, 11.0, 9.0, 9.0, 10.0];
        let low = vec![8.0, 9.0, 10.0, 7.0, 9.0, 8.0];
        let close = vec![9.0, 11.0, 10.5, 8.0, 9.0, 10.0];
        // fastk_period 3: K = 62.5, 20, 50 at bars 2..4 (see stochf), bar 5:
        // window bars 3..5, high 10 low 7: 100*(10-7)/3 = 100.
        // slowk SMA(2): bar 3 41.25, bar 4 35, bar 5 75.
        // slowd SMA(2): bar 4 (41.25+35)/2 = 38.125, bar 5 (35+75)/2 = 55.
        let out = run(&SPEC, &[high, low, close], &[3.0, 2.0, 0.0, 2.0, 0.0]);
        assert_close(&out[0], &[NAN, NAN, NAN, NAN, 35.0, 75.0], 1e-15, "slowk");
        assert_close(&out[1], &[NAN, NAN, NAN, NAN, 38.125, 55.0], 1e-15, "slowd");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..11usize {
            let x: Vec<f64> = (0..n).map(|i| (i * 7 % 5) as f64).collect();
            let out = run(&SPEC, &[x.clone(), x.clone(), x], &SPEC.defaults());
            for o in &out {
                assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(8));
            }
        }
    }
}
