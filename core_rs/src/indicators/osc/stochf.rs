//! STOCHF: fast stochastic. Fast-K = 100 * (close - lowest low) / (highest
//! high - lowest low) over the last `fastk_period` bars (0 for a flat
//! window, TA-Lib's scaled test, see [`super::range_of`]; not clamped, as in
//! TA-Lib); Fast-D = moving average `fastd_matype` of Fast-K. Both outputs
//! start at the total lookback.

use serde::{Deserialize, Serialize};

use super::is_zero_scaled;
use super::window::{rolling_high_low, HighLow};
use crate::indicators::ma::matype::{ma_into, ma_lookback, matype_param, MaState};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "stochf",
    inputs: &["high", "low", "close"],
    outputs: &["fastk", "fastd"],
    params: &[
        Param::period("fastk_period", 5.0, 1.0),
        Param::period("fastd_period", 3.0, 1.0),
        matype_param("fastd_matype"),
    ],
    lookback: |p| int_param(p, 0) - 1 + ma_lookback(int_param(p, 2), int_param(p, 1)),
    run: |i, p, o| {
        let (k, d) = o.split_at_mut(1);
        stochf_into(
            i[0],
            i[1],
            i[2],
            int_param(p, 0),
            int_param(p, 1),
            int_param(p, 2),
            k[0],
            d[0],
        );
    },
    run_checked: Some(|i, p, o| {
        let (k, d) = o.split_at_mut(1);
        stochf_into(
            i[0],
            i[1],
            i[2],
            int_param(p, 0),
            int_param(p, 1),
            int_param(p, 2),
            k[0],
            d[0],
        )
    }),
    check: None,
    new_state: Some(|p| {
        Box::new(StochF::new(
            int_param(p, 0),
            int_param(p, 1),
            int_param(p, 2),
        ))
    }),
    load_state: Some(load::<StochF>),
};

/// Fast-K from the window's extremes and the close. Selects only (the
/// quotient of a flat window is computed and dropped), so it vectorizes.
#[inline(always)]
pub fn fastk_value(highest: f64, lowest: f64, close: f64) -> f64 {
    let range = highest - lowest;
    let k = ((close - lowest) / range) * 100.0;
    if is_zero_scaled(range, highest.abs() + lowest.abs()) {
        0.0
    } else {
        k
    }
}

/// Fast-K of a gap-free series, NaN for the first `period - 1` values.
/// Returns whether every input was finite: each block's bars are checked as
/// its values are written (from L1), the bars before the first full window
/// up front (see `RunCheckedFn`).
pub fn fastk_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    let n = out.len();
    let lb = period - 1;
    fill_nan(out, lb);
    let (high, low, close) = (&high[..n], &low[..n], &close[..n]);
    let head = lb.min(n);
    let mut bad = any_non_finite(&high[..head])
        | any_non_finite(&low[..head])
        | any_non_finite(&close[..head]);
    rolling_high_low(high, low, period, |s, hh, ll| {
        let m = hh.len();
        let bars = hh
            .iter()
            .zip(ll)
            .zip(&close[s..s + m])
            .zip(high[s..s + m].iter().zip(&low[s..s + m]));
        let mut b = false;
        for (o, (((&hh, &ll), &c), (&h, &l))) in out[s..s + m].iter_mut().zip(bars) {
            b |= non_finite(h) | non_finite(l) | non_finite(c);
            *o = fastk_value(hh, ll, c);
        }
        bad |= b;
    });
    !bad
}

/// STOCHF of a gap-free series into `fastk` and `fastd`; whether every
/// input was finite (see [`fastk_into`]).
#[allow(clippy::too_many_arguments)]
pub fn stochf_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    fastk_period: usize,
    fastd_period: usize,
    fastd_matype: usize,
    fastk: &mut [f64],
    fastd: &mut [f64],
) -> bool {
    let lbk = fastk_period - 1;
    let lb = lbk + ma_lookback(fastd_matype, fastd_period);
    let finite = fastk_into(high, low, close, fastk_period, fastk);
    if fastk.len() > lbk {
        ma_into(fastd_matype, &fastk[lbk..], fastd_period, &mut fastd[lbk..]);
    }
    fill_nan(fastd, lbk);
    fill_nan(fastk, lb);
    finite
}

#[derive(Clone, Serialize, Deserialize)]
pub struct StochF {
    fastk_period: usize,
    w: HighLow,
    d: MaState,
}

impl StochF {
    pub fn new(fastk_period: usize, fastd_period: usize, fastd_matype: usize) -> StochF {
        StochF {
            fastk_period,
            w: HighLow::new(fastk_period),
            d: MaState::new(fastd_matype, fastd_period),
        }
    }

    pub fn next(&mut self, high: f64, low: f64, close: f64) -> (f64, f64) {
        let (hh, ll) = self.w.push(high, low);
        if (self.w.seen() as usize) < self.fastk_period {
            return (f64::NAN, f64::NAN);
        }
        let k = fastk_value(hh, ll, close);
        let d = self.d.next(k);
        if d.is_nan() {
            (f64::NAN, f64::NAN)
        } else {
            (k, d)
        }
    }
}

impl State for StochF {
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
        let high = vec![10.0, 12.0, 11.0, 9.0, 9.0];
        let low = vec![8.0, 9.0, 10.0, 7.0, 9.0];
        let close = vec![9.0, 11.0, 10.5, 8.0, 9.0];
        // fastk_period 3: K at bar 2 = 100*(10.5-8)/(12-8) = 62.5,
        // bar 3 = 100*(8-7)/(12-7) = 20, bar 4 = 100*(9-7)/(11-7) = 50.
        // fastd SMA(2): bar 3 (62.5+20)/2 = 41.25, bar 4 (20+50)/2 = 35.
        let out = run(&SPEC, &[high, low, close], &[3.0, 2.0, 0.0]);
        assert_close(&out[0], &[NAN, NAN, NAN, 20.0, 50.0], 1e-15, "fastk");
        assert_close(&out[1], &[NAN, NAN, NAN, 41.25, 35.0], 1e-15, "fastd");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..8usize {
            let x: Vec<f64> = (0..n).map(|i| (i * 7 % 5) as f64).collect();
            let out = run(&SPEC, &[x.clone(), x.clone(), x], &[5.0, 3.0, 0.0]);
            for o in &out {
                assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(6));
            }
        }
    }
}
