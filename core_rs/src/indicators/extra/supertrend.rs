//! Supertrend (as TradingView's `ta.supertrend` and pandas-ta, direction +1
//! up / -1 down).
//!
//! With hl2 = (high + low) / 2 and atr = ATR(timeperiod) (Wilder's, as
//! TA-Lib's ATR), the basic bands are hl2 +/- multiplier * atr. The final
//! bands carry: upper = basic upper if it is below the previous final upper
//! or the previous close closed above that, else the previous final upper;
//! lower likewise mirrored. Direction: from up, turn down when the close
//! falls below the final lower band; from down, turn up when the close rises
//! above the final upper band. Supertrend is the final lower band in an
//! up trend, the final upper band in a down trend. The first value (at the
//! ATR lookback, `timeperiod`) uses the basic bands and starts up.

use serde::{Deserialize, Serialize};

use crate::indicators::hlc::atr::{atr_into, Atr};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, non_finite, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "supertrend",
    inputs: &["high", "low", "close"],
    outputs: &["supertrend", "direction"],
    params: &[
        Param::period("timeperiod", 10.0, 1.0),
        Param::real("multiplier", 3.0, 0.0, 1e6),
    ],
    lookback: |p| int_param(p, 0),
    run: |i, p, o| {
        let [st, dir] = o else { unreachable!() };
        supertrend_into(i[0], i[1], i[2], int_param(p, 0), p[1], st, dir);
    },
    run_checked: Some(|i, p, o| {
        let [st, dir] = o else { unreachable!() };
        supertrend_into(i[0], i[1], i[2], int_param(p, 0), p[1], st, dir)
    }),
    check: None,
    new_state: Some(|p| Box::new(Supertrend::new(int_param(p, 0), p[1]))),
    load_state: Some(load::<Supertrend>),
};

/// The carried bands and trend after a bar.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Trend {
    upper: f64,
    lower: f64,
    close: f64,
    up: bool,
}

impl Trend {
    /// The first bar: the basic bands, up.
    #[inline(always)]
    fn first(h: f64, l: f64, c: f64, atr: f64, m: f64) -> Trend {
        let hl2 = (h + l) * 0.5;
        let w = m * atr;
        Trend {
            upper: hl2 + w,
            lower: hl2 - w,
            close: c,
            up: true,
        }
    }

    /// The bar after `self`.
    #[inline(always)]
    fn next(self, h: f64, l: f64, c: f64, atr: f64, m: f64) -> Trend {
        let hl2 = (h + l) * 0.5;
        let w = m * atr;
        let (bu, bl) = (hl2 + w, hl2 - w);
        let upper = if bu < self.upper || self.close > self.upper {
            bu
        } else {
            self.upper
        };
        let lower = if bl > self.lower || self.close < self.lower {
            bl
        } else {
            self.lower
        };
        let up = if self.up { c >= lower } else { c > upper };
        Trend {
            upper,
            lower,
            close: c,
            up,
        }
    }

    #[inline(always)]
    fn values(self) -> (f64, f64) {
        if self.up {
            (self.lower, 1.0)
        } else {
            (self.upper, -1.0)
        }
    }
}

/// Supertrend of a gap-free series, NaN for the first `period` bars. The
/// ATR goes into the `supertrend` output first and is replaced in place.
/// Returns whether every input was finite: the bars after the first value
/// are checked in the trend pass, the others up front (see `RunCheckedFn`).
pub fn supertrend_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    multiplier: f64,
    st: &mut [f64],
    dir: &mut [f64],
) -> bool {
    let n = st.len();
    fill_nan(dir, period);
    atr_into(high, low, close, period, st);
    let (high, low, close) = (&high[..n], &low[..n], &close[..n]);
    let head = (period + 1).min(n);
    let bad = any_non_finite(&high[..head])
        | any_non_finite(&low[..head])
        | any_non_finite(&close[..head]);
    if n <= period {
        return !bad;
    }
    let mut t = Trend::first(
        high[period],
        low[period],
        close[period],
        st[period],
        multiplier,
    );
    (st[period], dir[period]) = t.values();
    let bars = high[period + 1..]
        .iter()
        .zip(&low[period + 1..])
        .zip(&close[period + 1..]);
    let outs = st[period + 1..]
        .iter_mut()
        .zip(dir[period + 1..].iter_mut());
    let mut b = false;
    for ((s, d), ((&h, &l), &c)) in outs.zip(bars) {
        b |= non_finite(h) | non_finite(l) | non_finite(c);
        t = t.next(h, l, c, *s, multiplier);
        (*s, *d) = t.values();
    }
    !(bad | b)
}

/// The running ATR and the carried trend.
#[derive(Clone, Serialize, Deserialize)]
pub struct Supertrend {
    atr: Atr,
    multiplier: f64,
    trend: Option<Trend>,
}

impl Supertrend {
    pub fn new(period: usize, multiplier: f64) -> Supertrend {
        Supertrend {
            atr: Atr::new(period),
            multiplier,
            trend: None,
        }
    }
}

impl State for Supertrend {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        let (h, l, c) = (bar[0], bar[1], bar[2]);
        let atr = self.atr.next(h, l, c);
        if atr.is_nan() {
            out.fill(f64::NAN);
            return;
        }
        let m = self.multiplier;
        let t = match self.trend {
            None => Trend::first(h, l, c, atr, m),
            Some(prev) => prev.next(h, l, c, atr, m),
        };
        self.trend = Some(t);
        (out[0], out[1]) = t.values();
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
        // ATR(1) is the true range. multiplier 1.
        // bar 1: h 12 l 10 (prev c 10): tr 2, hl2 11 -> bands 13 / 9, up, st 9.
        // bar 2: h 11 l 9 c 8.5: tr max(2, 1, 1) = 2, basic 12 / 8.
        //   upper 12 < 13 -> 12; lower 8 > 9? no, prev close 11 < 9? no -> 9.
        //   up and 8.5 < 9 -> down, st = upper 12.
        // bar 3: h 16 l 14 c 15.5: tr max(2, 7.5, 5.5) = 7.5, hl2 15,
        //   basic 22.5 / 7.5. upper: 22.5 < 12? no; prev close 8.5 > 12? no
        //   -> 12. lower: 7.5 > 9? no; 8.5 < 9 -> 7.5. down and 15.5 > 12
        //   -> up, st = lower 7.5.
        let high = vec![11.0, 12.0, 11.0, 16.0];
        let low = vec![9.0, 10.0, 9.0, 14.0];
        let close = vec![10.0, 11.0, 8.5, 15.5];
        let out = run(&SPEC, &[high, low, close], &[1.0, 1.0]);
        assert_close(&out[0], &[NAN, 9.0, 12.0, 7.5], 0.0, "supertrend");
        assert_close(&out[1], &[NAN, 1.0, -1.0, 1.0], 0.0, "direction");
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2, 3, 4] {
            let inputs = crate::indicators::testing::make_inputs(SPEC.inputs, n, 2);
            let out = run(&SPEC, &inputs, &[3.0, 3.0]);
            for o in &out {
                assert_eq!(o.len(), n);
                assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(3));
            }
        }
    }
}
