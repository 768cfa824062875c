//! The built-in strategies as four condition arrays evaluated on each closed
//! bar, from the crate's indicator kernels (TA-Lib conventions; a NaN
//! warm-up compares false, so no condition holds before the indicators do).
//! Rules: `docs/backtest.md`, "Strategies".

use crate::indicators::ma::{bbands, ema, sma};
use crate::indicators::momentum::rsi;
use crate::indicators::Spec;
use crate::CoreError;

/// The conditions of every bar, evaluated on the closed bar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conditions {
    pub enter_long: Vec<bool>,
    pub exit_long: Vec<bool>,
    pub enter_short: Vec<bool>,
    pub exit_short: Vec<bool>,
}

impl Conditions {
    pub fn new(n: usize) -> Conditions {
        Conditions {
            enter_long: vec![false; n],
            exit_long: vec![false; n],
            enter_short: vec![false; n],
            exit_short: vec![false; n],
        }
    }

    pub fn check(&self, n: usize) -> Result<(), CoreError> {
        let cols: [(&'static str, usize); 4] = [
            ("enter_long", self.enter_long.len()),
            ("exit_long", self.exit_long.len()),
            ("enter_short", self.enter_short.len()),
            ("exit_short", self.exit_short.len()),
        ];
        for (name, len) in cols {
            if len != n {
                return Err(CoreError::LengthMismatch {
                    name,
                    other: "close",
                    len,
                    other_len: n,
                });
            }
        }
        Ok(())
    }

    /// Long conditions from `long(i) -> (enter, exit)`; the short side
    /// mirrors them (enter short = exit long, exit short = enter long).
    fn mirrored(n: usize, long: impl Fn(usize) -> (bool, bool)) -> Conditions {
        let mut c = Conditions::new(n);
        for i in 0..n {
            let (enter, exit) = long(i);
            c.enter_long[i] = enter;
            c.exit_long[i] = exit;
            c.enter_short[i] = exit;
            c.exit_short[i] = enter;
        }
        c
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaKind {
    Sma,
    Ema,
}

/// A built-in strategy with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    MaCross {
        fast: usize,
        slow: usize,
        kind: MaKind,
    },
    Rsi {
        period: usize,
        lower: f64,
        upper: f64,
    },
    Bollinger {
        period: usize,
        k: f64,
    },
    /// Over a given series (the trader grade).
    Threshold {
        enter_above: f64,
        exit_below: f64,
    },
    /// Over a given direction series (1 bullish, -1 bearish, 0 none).
    Direction,
}

const MAX_PERIOD: usize = 100_000;

fn invalid(name: &'static str, reason: String) -> CoreError {
    CoreError::InvalidArgument { name, reason }
}

fn check_period(name: &'static str, p: usize) -> Result<(), CoreError> {
    if (2..=MAX_PERIOD).contains(&p) {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("must be from 2 to {MAX_PERIOD}, got {p}"),
        ))
    }
}

fn run1(spec: &Spec, x: &[f64], params: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    spec.run_series(&[x], params, &mut [&mut out]);
    out
}

impl Strategy {
    pub fn validate(&self) -> Result<(), CoreError> {
        match *self {
            Strategy::MaCross { fast, slow, .. } => {
                check_period("fast", fast)?;
                check_period("slow", slow)?;
                if fast >= slow {
                    return Err(invalid(
                        "fast",
                        format!("must be less than slow ({fast} >= {slow})"),
                    ));
                }
            }
            Strategy::Rsi {
                period,
                lower,
                upper,
            } => {
                check_period("period", period)?;
                if !(lower > 0.0 && lower < 100.0) {
                    return Err(invalid(
                        "lower",
                        format!("must be between 0 and 100, got {lower}"),
                    ));
                }
                if !(upper > 0.0 && upper < 100.0) {
                    return Err(invalid(
                        "upper",
                        format!("must be between 0 and 100, got {upper}"),
                    ));
                }
                if lower >= upper {
                    return Err(invalid(
                        "lower",
                        format!("must be less than upper ({lower} >= {upper})"),
                    ));
                }
            }
            Strategy::Bollinger { period, k } => {
                check_period("period", period)?;
                if !(k > 0.0 && k.is_finite()) {
                    return Err(invalid("k", format!("must be positive, got {k}")));
                }
            }
            Strategy::Threshold {
                enter_above,
                exit_below,
            } => {
                if !enter_above.is_finite() {
                    return Err(invalid(
                        "enter_above",
                        format!("must be a finite number, got {enter_above}"),
                    ));
                }
                if !exit_below.is_finite() {
                    return Err(invalid(
                        "exit_below",
                        format!("must be a finite number, got {exit_below}"),
                    ));
                }
                if exit_below > enter_above {
                    return Err(invalid(
                        "exit_below",
                        format!("must be at most enter_above ({exit_below} > {enter_above})"),
                    ));
                }
            }
            Strategy::Direction => {}
        }
        Ok(())
    }

    /// Whether the strategy reads the given `series` / `direction` input.
    pub fn needs_series(&self) -> bool {
        matches!(self, Strategy::Threshold { .. })
    }

    pub fn needs_direction(&self) -> bool {
        matches!(self, Strategy::Direction)
    }

    /// The four conditions over every bar. `series` and `direction` are
    /// required by Threshold and Direction (and must match `close`).
    pub fn conditions(
        &self,
        close: &[f64],
        series: Option<&[f64]>,
        direction: Option<&[i8]>,
    ) -> Result<Conditions, CoreError> {
        self.validate()?;
        let n = close.len();
        let same_len = |name: &'static str, len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(CoreError::LengthMismatch {
                    name,
                    other: "close",
                    len,
                    other_len: n,
                })
            }
        };
        Ok(match *self {
            Strategy::MaCross { fast, slow, kind } => {
                let spec = match kind {
                    MaKind::Sma => &sma::SPEC,
                    MaKind::Ema => &ema::SPEC,
                };
                let f = run1(spec, close, &[fast as f64]);
                let s = run1(spec, close, &[slow as f64]);
                Conditions::mirrored(n, |i| {
                    if i == 0 {
                        return (false, false);
                    }
                    let up = f[i] > s[i] && f[i - 1] <= s[i - 1];
                    let down = f[i] < s[i] && f[i - 1] >= s[i - 1];
                    (up, down)
                })
            }
            Strategy::Rsi {
                period,
                lower,
                upper,
            } => {
                let r = run1(&rsi::SPEC, close, &[period as f64]);
                Conditions::mirrored(n, |i| (r[i] < lower, r[i] > upper))
            }
            Strategy::Bollinger { period, k } => {
                let mut up = vec![0.0; n];
                let mut mid = vec![0.0; n];
                let mut lo = vec![0.0; n];
                bbands::SPEC.run_series(
                    &[close],
                    &[period as f64, k, k, 0.0],
                    &mut [&mut up, &mut mid, &mut lo],
                );
                let mut c = Conditions::new(n);
                for i in 0..n {
                    c.enter_long[i] = close[i] > up[i];
                    c.exit_long[i] = close[i] < mid[i];
                    c.enter_short[i] = close[i] < lo[i];
                    c.exit_short[i] = close[i] > mid[i];
                }
                c
            }
            Strategy::Threshold {
                enter_above,
                exit_below,
            } => {
                let s = series.ok_or_else(|| {
                    invalid("series", "is required by the threshold strategy".into())
                })?;
                same_len("series", s.len())?;
                let mut c = Conditions::new(n);
                for (i, &v) in s.iter().enumerate() {
                    c.enter_long[i] = v > enter_above;
                    c.exit_long[i] = v < exit_below;
                    c.enter_short[i] = v < exit_below;
                    c.exit_short[i] = v > enter_above;
                }
                c
            }
            Strategy::Direction => {
                let d = direction.ok_or_else(|| {
                    invalid("direction", "is required by the direction strategy".into())
                })?;
                same_len("direction", d.len())?;
                Conditions::mirrored(n, |i| (d[i] == 1, d[i] == -1))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ma_cross_fires_on_the_crossing_bar_only() {
        // SMA(2) vs SMA(3) of 5 4 3 4 6 7 3 2:
        // fast: nan 4.5 3.5 3.5 5 6.5 5 2.5
        // slow: nan nan 4 3.667 4.333 5.667 5.333 4
        // up at 4 (5 > 4.33, 3.5 <= 3.67); down at 6 (5 < 5.33, 6.5 >= 5.67).
        let close = [5.0, 4.0, 3.0, 4.0, 6.0, 7.0, 3.0, 2.0];
        let s = Strategy::MaCross {
            fast: 2,
            slow: 3,
            kind: MaKind::Sma,
        };
        let c = s.conditions(&close, None, None).unwrap();
        let at = |v: &[bool]| v.iter().positions();
        assert_eq!(at(&c.enter_long), vec![4]);
        assert_eq!(at(&c.exit_long), vec![6]);
        assert_eq!(c.enter_short, c.exit_long);
        assert_eq!(c.exit_short, c.enter_long);
    }

    trait Positions {
        fn positions(self) -> Vec<usize>;
    }
    impl<'a, I: Iterator<Item = &'a bool>> Positions for I {
        fn positions(self) -> Vec<usize> {
            self.enumerate()
                .filter(|(_, &b)| b)
                .map(|(i, _)| i)
                .collect()
        }
    }

    #[test]
    fn threshold_and_direction_rules() {
        let s = Strategy::Threshold {
            enter_above: 80.0,
            exit_below: 50.0,
        };
        let g = [81.0, 80.0, 49.0, f64::NAN, 50.0];
        let c = s.conditions(&[1.0; 5], Some(&g), None).unwrap();
        assert_eq!(c.enter_long, [true, false, false, false, false]);
        assert_eq!(c.exit_long, [false, false, true, false, false]);
        assert_eq!(c.enter_short, c.exit_long);
        let d = Strategy::Direction
            .conditions(&[1.0; 3], None, Some(&[1, 0, -1]))
            .unwrap();
        assert_eq!(d.enter_long, [true, false, false]);
        assert_eq!(d.exit_long, [false, false, true]);
        assert!(Strategy::Direction.conditions(&[1.0], None, None).is_err());
    }

    #[test]
    fn rsi_and_bollinger_follow_their_indicators() {
        let close: Vec<f64> = (0..60)
            .map(|i| 100.0 + (i as f64 * 0.7).sin() * 5.0)
            .collect();
        let r = run1(&rsi::SPEC, &close, &[14.0]);
        let c = Strategy::Rsi {
            period: 14,
            lower: 30.0,
            upper: 70.0,
        }
        .conditions(&close, None, None)
        .unwrap();
        for (i, &v) in r.iter().enumerate() {
            assert_eq!(c.enter_long[i], v < 30.0);
            assert_eq!(c.exit_long[i], v > 70.0);
            assert_eq!(c.enter_short[i], v > 70.0);
        }
        assert!(!c.enter_long[..14].iter().any(|&b| b) && !c.exit_long[..14].iter().any(|&b| b));
        let b = Strategy::Bollinger { period: 5, k: 1.0 }
            .conditions(&close, None, None)
            .unwrap();
        assert!(!b.enter_long[..4].iter().any(|&x| x));
        assert!(b.enter_long.iter().any(|&x| x) && b.enter_short.iter().any(|&x| x));
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let err = Strategy::MaCross {
            fast: 20,
            slow: 10,
            kind: MaKind::Ema,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert_eq!(err, "fast: must be less than slow (20 >= 10)");
        let bad = [
            Strategy::MaCross {
                fast: 1,
                slow: 10,
                kind: MaKind::Sma,
            },
            Strategy::Rsi {
                period: 14,
                lower: 70.0,
                upper: 30.0,
            },
            Strategy::Rsi {
                period: 14,
                lower: 0.0,
                upper: 30.0,
            },
            Strategy::Bollinger { period: 20, k: 0.0 },
            Strategy::Bollinger { period: 1, k: 2.0 },
            Strategy::Threshold {
                enter_above: 50.0,
                exit_below: 80.0,
            },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }
}
