//! BBANDS: Bollinger bands. The middle band is the moving average
//! `matype` over `timeperiod`; the upper and lower bands add
//! `nbdevup` and subtract `nbdevdn` population standard deviations of the
//! same window (always around the window's plain mean, as in TA-Lib).

use serde::{Deserialize, Serialize};

use super::matype::{ma_into, ma_lookback, matype_param, MaState};
use super::stddev::{rolling_var, std_of, stddev_checked, RollWindow, REAL_RANGE};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, int_param, Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "bbands",
    inputs: &["real"],
    outputs: &["upperband", "middleband", "lowerband"],
    params: &[
        Param::period("timeperiod", 20.0, 2.0),
        Param::real("nbdevup", 2.0, -REAL_RANGE, REAL_RANGE),
        Param::real("nbdevdn", 2.0, -REAL_RANGE, REAL_RANGE),
        matype_param("matype"),
    ],
    lookback: |p| ma_lookback(int_param(p, 3), int_param(p, 0)),
    run: |i, p, o| {
        let [upper, middle, lower] = o else {
            unreachable!("bbands has three outputs")
        };
        bbands_checked(
            i[0],
            int_param(p, 0),
            p[1],
            p[2],
            int_param(p, 3),
            upper,
            middle,
            lower,
        );
    },
    run_checked: Some(|i, p, o| {
        let [upper, middle, lower] = o else {
            unreachable!("bbands has three outputs")
        };
        bbands_checked(
            i[0],
            int_param(p, 0),
            p[1],
            p[2],
            int_param(p, 3),
            upper,
            middle,
            lower,
        )
    }),
    check: None,
    new_state: Some(|p| Box::new(Bbands::new(int_param(p, 0), p[1], p[2], int_param(p, 3)))),
    load_state: Some(load::<Bbands>),
};

/// BBANDS of a gap-free series, NaN through the moving average's lookback,
/// also returning whether every input was finite (see `RunCheckedFn`).
///
/// matype 0 is one fused pass: the rolling variance already carries the
/// window mean, which is the SMA. Other matypes write the moving average
/// into `middle` and the deviation into `upper` (that pass checks the
/// inputs), then form the bands.
#[allow(clippy::too_many_arguments)]
pub fn bbands_checked(
    x: &[f64],
    period: usize,
    nbdevup: f64,
    nbdevdn: f64,
    matype: usize,
    upper: &mut [f64],
    middle: &mut [f64],
    lower: &mut [f64],
) -> bool {
    let n = x.len();
    let lb = ma_lookback(matype, period);
    for out in [&mut *upper, &mut *middle, &mut *lower] {
        fill_nan(out, lb);
    }
    if n <= lb {
        return !any_non_finite(x);
    }
    if matype == 0 {
        let mut bands = upper[lb..n]
            .iter_mut()
            .zip(&mut middle[lb..n])
            .zip(&mut lower[lb..n]);
        return rolling_var(x, period, |_, mean, var| {
            if let Some(((u, m), l)) = bands.next() {
                let sd = std_of(var);
                *u = mean + sd * nbdevup;
                *m = mean;
                *l = mean - sd * nbdevdn;
            }
        });
    }
    ma_into(matype, x, period, middle);
    let good = stddev_checked(x, period, 1.0, upper);
    fill_nan(upper, lb);
    let bands = upper[lb..].iter_mut().zip(&middle[lb..]);
    for ((u, &m), l) in bands.zip(&mut lower[lb..]) {
        let sd = *u;
        *u = m + sd * nbdevup;
        *l = m - sd * nbdevdn;
    }
    good
}

/// The running bands: the window's mean and deviation, and for matype > 0
/// the moving average's own state.
#[derive(Clone, Serialize, Deserialize)]
pub struct Bbands {
    window: RollWindow,
    ma: Option<MaState>,
    nbdevup: f64,
    nbdevdn: f64,
}

impl Bbands {
    pub fn new(period: usize, nbdevup: f64, nbdevdn: f64, matype: usize) -> Bbands {
        Bbands {
            window: RollWindow::new(period),
            ma: (matype != 0).then(|| MaState::new(matype, period)),
            nbdevup,
            nbdevdn,
        }
    }
}

impl State for Bbands {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        let x = bar[0];
        let stats = self.window.next(x);
        let ma = self.ma.as_mut().map(|m| m.next(x));
        match (stats, ma) {
            (Some((mean, sd)), None) => {
                out[0] = mean + sd * self.nbdevup;
                out[1] = mean;
                out[2] = mean - sd * self.nbdevdn;
            }
            (Some((_, sd)), Some(m)) if !m.is_nan() => {
                out[0] = m + sd * self.nbdevup;
                out[1] = m;
                out[2] = m - sd * self.nbdevdn;
            }
            _ => out.fill(f64::NAN),
        }
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, close_enough, make_inputs, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // period 2: mean of (1, 3) = 2, deviation 1; of (3, 3) = 3, deviation 0.
        // nbdevup 2, nbdevdn 1: upper 4, 3; lower 1, 3.
        let out = run(&SPEC, &[vec![1.0, 3.0, 3.0]], &[2.0, 2.0, 1.0, 0.0]);
        assert_close(&out[0], &[NAN, 4.0, 3.0], 1e-15, "upper");
        assert_close(&out[1], &[NAN, 2.0, 3.0], 1e-15, "middle");
        assert_close(&out[2], &[NAN, 1.0, 3.0], 1e-15, "lower");
        // EMA middle (k = 2/3): seed 2, then 2 + (5-2)*2/3 = 4; the deviation of
        // (3, 5) is 1: upper 4 + 2 = 6, lower 4 - 1 = 3.
        let out = run(&SPEC, &[vec![1.0, 3.0, 5.0]], &[2.0, 2.0, 1.0, 1.0]);
        assert_close(&out[0], &[NAN, 4.0, 6.0], 1e-15, "ema upper");
        assert_close(&out[1], &[NAN, 2.0, 4.0], 1e-15, "ema middle");
        assert_close(&out[2], &[NAN, 1.0, 3.0], 1e-15, "ema lower");
    }

    #[test]
    fn every_matype_has_its_lookback_and_state() {
        for matype in 0..=6 {
            let params = [5.0, 2.0, 1.5, matype as f64];
            let lb = (SPEC.lookback)(&params);
            for n in [0, 1, lb, lb + 1, lb + 40] {
                let x = make_inputs(&["close"], n, 3);
                let out = run(&SPEC, &x, &params);
                for o in &out {
                    assert_eq!(o.iter().filter(|v| v.is_nan()).count(), n.min(lb));
                }
                let mut st = SPEC.new_state(&params).unwrap();
                let mut got = [0.0; 3];
                for i in 0..n {
                    st.update(&[x[0][i]], &mut got);
                    for k in 0..3 {
                        assert!(close_enough(got[k], out[k][i], 1e-12), "{matype} {i}");
                    }
                }
            }
        }
    }
}
