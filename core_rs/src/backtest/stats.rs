//! The statistics of a run: backtesting.py's `compute_stats` formulas, with
//! per-bar returns and `bars_per_year` where it resamples equity to days.
//! Each formula is written down in `docs/backtest.md`, "Statistics".

use super::engine::Trade;
use crate::CoreError;

macro_rules! stats_struct {
    ($($field:ident),* $(,)?) => {
        /// Every statistic; NaN where undefined (win rate with no trades,
        /// ...). Times and durations are in milliseconds.
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct Stats {
            $(pub $field: f64,)*
        }

        /// The field names in the order of [`Stats::to_array`].
        pub const STAT_NAMES: &[&str] = &[$(stringify!($field)),*];

        impl Stats {
            pub fn to_array(&self) -> Vec<f64> {
                vec![$(self.$field),*]
            }
        }
    };
}

stats_struct!(
    start_ms,
    end_ms,
    duration_ms,
    exposure_pct,
    equity_final,
    equity_peak,
    fees_total,
    return_pct,
    buy_hold_return_pct,
    return_ann_pct,
    volatility_ann_pct,
    cagr_pct,
    sharpe,
    sortino,
    calmar,
    max_drawdown_pct,
    avg_drawdown_pct,
    max_drawdown_duration_ms,
    avg_drawdown_duration_ms,
    n_trades,
    win_rate_pct,
    best_trade_pct,
    worst_trade_pct,
    avg_trade_pct,
    max_trade_duration_ms,
    avg_trade_duration_ms,
    profit_factor,
    expectancy_pct,
    sqn,
    kelly,
);

const MS_PER_YEAR: f64 = 365.25 * 86_400_000.0;

/// `a / b`, NaN when `b` is 0: Python's `a / (b or np.nan)`.
fn div_or_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut k) = (0.0, 0usize);
    for x in xs {
        s += x;
        k += 1;
    }
    if k == 0 {
        f64::NAN
    } else {
        s / k as f64
    }
}

/// Sample variance (ddof 1); NaN below two values.
fn var1(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs.iter().copied());
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// backtesting.py's `geometric_mean`: 0 when any 1 + r <= 0.
fn geometric_mean(rs: &[f64]) -> f64 {
    let mut log_sum = 0.0;
    for &r in rs {
        let g = if r.is_nan() { 1.0 } else { r + 1.0 };
        if g <= 0.0 {
            return 0.0;
        }
        log_sum += g.ln();
    }
    if rs.is_empty() {
        return f64::NAN;
    }
    (log_sum / rs.len() as f64).exp() - 1.0
}

fn nan_max(xs: impl Iterator<Item = f64>) -> f64 {
    xs.fold(f64::NAN, |m, x| if x > m || m.is_nan() { x } else { m })
}

/// The larger of two values, NaN only when both are (pandas' max).
#[inline]
fn max2(a: f64, b: f64) -> f64 {
    if b > a || a.is_nan() {
        b
    } else {
        a
    }
}

fn nan_min(xs: impl Iterator<Item = f64>) -> f64 {
    xs.fold(f64::NAN, |m, x| if x < m || m.is_nan() { x } else { m })
}

/// Bars held: the union of every trade's entry..=exit bars.
fn held_bars(trades: &[Trade], offset: usize) -> usize {
    let mut spans: Vec<(usize, usize)> = trades
        .iter()
        .map(|t| (t.entry_bar - offset, t.exit_bar - offset))
        .collect();
    spans.sort_unstable();
    let (mut held, mut next_free) = (0, 0);
    for (a, b) in spans {
        let a = a.max(next_free);
        if b + 1 > a {
            held += b + 1 - a;
            next_free = b + 1;
        }
    }
    held
}

/// The per-bar simple returns `E[j] / E[j-1] - 1` in one pass, NaN ones
/// (0 -> 0 after running out of money) dropped as pandas'
/// `pct_change().dropna()` does.
struct BarReturns {
    /// backtesting.py's `geometric_mean` of the returns.
    geometric_mean: f64,
    /// Sample variance (ddof 1).
    var: f64,
    /// `mean(min(r, 0)^2)`.
    downside: f64,
}

impl BarReturns {
    fn of(equity: &[f64]) -> BarReturns {
        let (mut k, mut sum, mut sum_sq, mut down) = (0usize, 0.0, 0.0, 0.0);
        let mut shift = f64::NAN;
        let mut all_positive = true;
        for w in equity.windows(2) {
            let r = w[1] / w[0] - 1.0;
            if r.is_nan() {
                all_positive = false;
                continue;
            }
            if k == 0 {
                // Sums about the first return keep the variance exact.
                shift = r;
            }
            k += 1;
            let x = r - shift;
            sum += x;
            sum_sq += x * x;
            down += r.min(0.0) * r.min(0.0);
            all_positive &= r + 1.0 > 0.0 && r.is_finite();
        }
        let kf = k as f64;
        let var = if k < 2 {
            f64::NAN
        } else {
            (sum_sq - sum * sum / kf) / (kf - 1.0)
        };
        let geometric_mean = if k == 0 {
            f64::NAN
        } else if all_positive {
            // The product of the (1 + r) telescopes to E[last] / E[0].
            ((equity[equity.len() - 1] / equity[0]).ln() / kf).exp() - 1.0
        } else {
            let rets: Vec<f64> = equity
                .windows(2)
                .map(|w| w[1] / w[0] - 1.0)
                .filter(|r| !r.is_nan())
                .collect();
            geometric_mean(&rets)
        };
        BarReturns {
            geometric_mean,
            var,
            downside: if k == 0 { f64::NAN } else { down / kf },
        }
    }
}

/// Drawdown `dd[j] = 1 - E[j] / max(E[..=j])` and its episodes as
/// backtesting.py's `compute_drawdown_duration_peaks` finds them: between
/// consecutive bars at a peak (dd 0) or the last bar, at least two apart.
struct Drawdowns {
    /// The deepest drawdown, a fraction (0 when there is none).
    max: f64,
    avg_depth: f64,
    max_duration: f64,
    avg_duration: f64,
}

impl Drawdowns {
    fn of(time_ms: &[i64], equity: &[f64]) -> Drawdowns {
        let m = equity.len();
        let mut peak = f64::NEG_INFINITY;
        let mut max = f64::NAN;
        let (mut nonzero_n, mut nonzero_sum) = (0usize, 0.0);
        let (mut episodes, mut depth_sum, mut dur_sum, mut dur_max) = (0usize, 0.0, 0.0, f64::NAN);
        let mut last_flat: Option<usize> = None;
        let mut deepest_since = f64::NAN;
        for (j, &e) in equity.iter().enumerate() {
            peak = peak.max(e);
            let dd = 1.0 - e / peak;
            max = max2(max, dd);
            if dd != 0.0 && !dd.is_nan() {
                nonzero_n += 1;
                nonzero_sum += dd;
            }
            deepest_since = max2(deepest_since, dd);
            if dd == 0.0 || j == m - 1 {
                if let Some(p) = last_flat {
                    if j > p + 1 {
                        let dur = (time_ms[j] - time_ms[p]) as f64;
                        episodes += 1;
                        depth_sum += deepest_since;
                        dur_sum += dur;
                        dur_max = max2(dur_max, dur);
                    }
                }
                last_flat = Some(j);
                deepest_since = dd;
            }
        }
        let max = if max.is_nan() { 0.0 } else { max };
        if episodes == 0 {
            // backtesting.py then averages every non-zero drawdown.
            let avg_depth = if nonzero_n == 0 {
                f64::NAN
            } else {
                nonzero_sum / nonzero_n as f64
            };
            return Drawdowns {
                max,
                avg_depth,
                max_duration: f64::NAN,
                avg_duration: f64::NAN,
            };
        }
        Drawdowns {
            max,
            avg_depth: depth_sum / episodes as f64,
            max_duration: dur_max,
            avg_duration: dur_sum / episodes as f64,
        }
    }
}

/// The statistics of a window: `time_ms`, `equity` and `close` are the
/// window's bars; `trades` hold bar indices into the full series and
/// `offset` is the window's first bar (0 when the arrays are whole).
pub fn statistics(
    time_ms: &[i64],
    equity: &[f64],
    close: &[f64],
    trades: &[Trade],
    offset: usize,
    bars_per_year: f64,
) -> Result<Stats, CoreError> {
    let m = equity.len();
    for (name, len) in [("time_ms", time_ms.len()), ("close", close.len())] {
        if len != m {
            return Err(CoreError::LengthMismatch {
                name,
                other: "equity",
                len,
                other_len: m,
            });
        }
    }
    if m == 0 {
        return Err(CoreError::InvalidArgument {
            name: "equity",
            reason: "must have at least one bar".into(),
        });
    }
    if !(bars_per_year > 0.0 && bars_per_year.is_finite()) {
        return Err(CoreError::InvalidArgument {
            name: "bars_per_year",
            reason: format!("must be positive, got {bars_per_year}"),
        });
    }
    for t in trades {
        if t.entry_bar < offset || t.exit_bar < t.entry_bar || t.exit_bar - offset >= m {
            return Err(CoreError::InvalidArgument {
                name: "trades",
                reason: format!(
                    "bars {}..{} are outside the {m} bars of the equity curve",
                    t.entry_bar, t.exit_bar
                ),
            });
        }
    }
    Ok(compute(
        time_ms,
        equity,
        close,
        trades,
        offset,
        bars_per_year,
    ))
}

/// [`statistics`] on checked inputs.
pub(crate) fn compute(
    time_ms: &[i64],
    equity: &[f64],
    close: &[f64],
    trades: &[Trade],
    offset: usize,
    bars_per_year: f64,
) -> Stats {
    let m = equity.len();
    let mut s = Stats {
        start_ms: time_ms[0] as f64,
        end_ms: time_ms[m - 1] as f64,
        duration_ms: (time_ms[m - 1] - time_ms[0]) as f64,
        ..Stats::default()
    };

    s.exposure_pct = held_bars(trades, offset) as f64 / m as f64 * 100.0;

    let (e0, e_last) = (equity[0], equity[m - 1]);
    s.equity_final = e_last;
    s.equity_peak = nan_max(equity.iter().copied());
    s.fees_total = trades.iter().map(|t| t.fees).sum();
    s.return_pct = (e_last - e0) / e0 * 100.0;
    s.buy_hold_return_pct = (close[m - 1] - close[0]) / close[0] * 100.0;

    let r = BarReturns::of(equity);
    let n_year = bars_per_year;
    let g = r.geometric_mean;
    let ann = (1.0 + g).powf(n_year) - 1.0;
    s.return_ann_pct = ann * 100.0;
    s.volatility_ann_pct =
        ((r.var + (1.0 + g).powi(2)).powf(n_year) - (1.0 + g).powf(2.0 * n_year)).sqrt() * 100.0;
    let years = s.duration_ms / MS_PER_YEAR;
    s.cagr_pct = if years != 0.0 {
        ((e_last / e0).powf(1.0 / years) - 1.0) * 100.0
    } else {
        f64::NAN
    };
    s.sharpe = div_or_nan(s.return_ann_pct, s.volatility_ann_pct);
    s.sortino = ann / (r.downside.sqrt() * n_year.sqrt());

    let dd = Drawdowns::of(time_ms, equity);
    s.calmar = div_or_nan(ann, dd.max);
    s.max_drawdown_pct = -dd.max * 100.0;
    s.avg_drawdown_pct = -dd.avg_depth * 100.0;
    s.max_drawdown_duration_ms = dd.max_duration;
    s.avg_drawdown_duration_ms = dd.avg_duration;

    // Trades.
    let n = trades.len();
    s.n_trades = n as f64;
    let win_rate = if n == 0 {
        f64::NAN
    } else {
        trades.iter().filter(|t| t.pnl > 0.0).count() as f64 / n as f64
    };
    s.win_rate_pct = win_rate * 100.0;
    let rs: Vec<f64> = trades.iter().map(|t| t.ret).collect();
    s.best_trade_pct = nan_max(rs.iter().copied()) * 100.0;
    s.worst_trade_pct = nan_min(rs.iter().copied()) * 100.0;
    s.avg_trade_pct = geometric_mean(&rs) * 100.0;
    s.max_trade_duration_ms = nan_max(trades.iter().map(|t| t.duration_ms as f64));
    s.avg_trade_duration_ms = mean(trades.iter().map(|t| t.duration_ms as f64));
    let gains: f64 = rs.iter().filter(|&&r| r > 0.0).sum();
    let losses: f64 = rs.iter().filter(|&&r| r < 0.0).sum();
    s.profit_factor = div_or_nan(gains, losses.abs());
    s.expectancy_pct = mean(rs.iter().copied()) * 100.0;
    let pl: Vec<f64> = trades.iter().map(|t| t.pnl).collect();
    s.sqn = (n as f64).sqrt() * mean(pl.iter().copied()) / {
        let sd = var1(&pl).sqrt();
        if sd == 0.0 {
            f64::NAN
        } else {
            sd
        }
    };
    let avg_win = mean(pl.iter().copied().filter(|&p| p > 0.0));
    let avg_loss = -mean(pl.iter().copied().filter(|&p| p < 0.0));
    s.kelly = win_rate - (1.0 - win_rate) / (avg_win / avg_loss);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::engine::ExitReason;

    fn trade(entry_bar: usize, exit_bar: usize, pnl: f64, ret: f64, dur: i64) -> Trade {
        Trade {
            entry_bar,
            exit_bar,
            entry_time_ms: 0,
            exit_time_ms: dur,
            entry_price: 1.0,
            exit_price: 1.0,
            size: 1.0,
            pnl,
            ret,
            fees: 0.5,
            duration_ms: dur,
            exit_reason: ExitReason::Signal,
        }
    }

    #[test]
    fn hand_worked_statistics() {
        // Equity 100 110 99 121 over four days; bars_per_year 365.
        let day = 86_400_000;
        let t = [0, day, 2 * day, 3 * day];
        let eq = [100.0, 110.0, 99.0, 121.0];
        let close = [10.0, 11.0, 9.0, 12.0];
        let trades = [trade(0, 1, 10.0, 0.10, day), trade(2, 3, -5.0, -0.05, day)];
        let s = statistics(&t, &eq, &close, &trades, 0, 365.0).unwrap();
        assert_eq!(s.duration_ms, 3.0 * day as f64);
        assert_eq!(s.exposure_pct, 100.0);
        assert_eq!(s.equity_final, 121.0);
        assert_eq!(s.equity_peak, 121.0);
        assert_eq!(s.fees_total, 1.0);
        assert!((s.return_pct - 21.0).abs() < 1e-12);
        assert!((s.buy_hold_return_pct - 20.0).abs() < 1e-12);
        // Returns 0.1, -0.1, 0.2222: geometric mean = 1.21^(1/3) - 1.
        let g = 1.21f64.powf(1.0 / 3.0) - 1.0;
        assert!((s.return_ann_pct - ((1.0 + g).powf(365.0) - 1.0) * 100.0).abs() < 1e-6);
        // Drawdown 1 - 99/110 = 0.1 from bar 1 to bar 3 (2 days).
        assert!((s.max_drawdown_pct + 10.0).abs() < 1e-12);
        assert!((s.avg_drawdown_pct + 10.0).abs() < 1e-12);
        assert_eq!(s.max_drawdown_duration_ms, 2.0 * day as f64);
        assert_eq!(s.n_trades, 2.0);
        assert_eq!(s.win_rate_pct, 50.0);
        assert!((s.best_trade_pct - 10.0).abs() < 1e-12);
        assert!((s.worst_trade_pct + 5.0).abs() < 1e-12);
        assert!((s.avg_trade_pct - ((1.1f64 * 0.95).sqrt() - 1.0) * 100.0).abs() < 1e-12);
        assert!((s.profit_factor - 2.0).abs() < 1e-12);
        assert!((s.expectancy_pct - 2.5).abs() < 1e-12);
        // pnl 10, -5: mean 2.5, sd sqrt(112.5); SQN = sqrt(2) * 2.5 / sd.
        assert!((s.sqn - 2f64.sqrt() * 2.5 / 112.5f64.sqrt()).abs() < 1e-12);
        // Kelly = 0.5 - 0.5 / (10 / 5) = 0.25.
        assert!((s.kelly - 0.25).abs() < 1e-12);
        // CAGR over 3/365.25 years.
        let years = 3.0 / 365.25;
        assert!((s.cagr_pct - (1.21f64.powf(1.0 / years) - 1.0) * 100.0).abs() < 1e-6);
    }

    #[test]
    fn exposure_counts_each_bar_once() {
        // Bars 0..=2, 1..=3 and 5 of 8: {0, 1, 2, 3, 5} = 5 bars, 62.5 %.
        let trades = [
            trade(1, 3, 1.0, 0.1, 1),
            trade(0, 2, 1.0, 0.1, 1),
            trade(5, 5, 1.0, 0.1, 1),
        ];
        let t: Vec<i64> = (0..8).collect();
        let s = statistics(&t, &[1.0; 8], &[1.0; 8], &trades, 0, 365.0).unwrap();
        assert_eq!(s.exposure_pct, 62.5);
        // The same trades seen from a window starting at bar 10.
        let shifted: Vec<Trade> = trades
            .iter()
            .map(|t| Trade {
                entry_bar: t.entry_bar + 10,
                exit_bar: t.exit_bar + 10,
                ..*t
            })
            .collect();
        let s = statistics(&t, &[1.0; 8], &[1.0; 8], &shifted, 10, 365.0).unwrap();
        assert_eq!(s.exposure_pct, 62.5);
    }

    #[test]
    fn drawdown_episodes_by_brute_force() {
        // Episodes between bars at a peak (or the last bar), two or more
        // apart, found by scanning every pair.
        // A rising wave: new peaks, then dips of varying depth.
        let e: Vec<f64> = (0..300)
            .map(|j| {
                let j = j as f64;
                100.0 + 0.2 * j + 8.0 * (j / 7.0).sin() + 3.0 * (j * 1.3).cos()
            })
            .collect();
        let t: Vec<i64> = (0..e.len() as i64).map(|i| i * 10).collect();
        let mut peak = 0.0f64;
        let dd: Vec<f64> = e
            .iter()
            .map(|&v| {
                peak = peak.max(v);
                1.0 - v / peak
            })
            .collect();
        let ends: Vec<usize> = (0..dd.len())
            .filter(|&j| dd[j] == 0.0 || j == dd.len() - 1)
            .collect();
        let eps: Vec<(f64, f64)> = ends
            .windows(2)
            .filter(|w| w[1] > w[0] + 1)
            .map(|w| {
                (
                    (t[w[1]] - t[w[0]]) as f64,
                    dd[w[0]..=w[1]].iter().cloned().fold(0.0, f64::max),
                )
            })
            .collect();
        assert!(eps.len() > 3);
        let s = statistics(&t, &e, &e, &[], 0, 365.0).unwrap();
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            (s.avg_drawdown_duration_ms - mean(eps.iter().map(|p| p.0).collect())).abs() < 1e-9
        );
        assert!(
            (s.avg_drawdown_pct + 100.0 * mean(eps.iter().map(|p| p.1).collect())).abs() < 1e-9
        );
        let max_dur = eps.iter().map(|p| p.0).fold(0.0, f64::max);
        assert_eq!(s.max_drawdown_duration_ms, max_dur);
        assert!(
            (s.max_drawdown_pct + 100.0 * dd.iter().cloned().fold(0.0, f64::max)).abs() < 1e-12
        );
    }

    #[test]
    fn no_trades_give_nan_trade_statistics() {
        let s = statistics(&[0, 1], &[5.0, 5.0], &[1.0, 2.0], &[], 0, 365.0).unwrap();
        assert_eq!(s.n_trades, 0.0);
        for v in [
            s.win_rate_pct,
            s.best_trade_pct,
            s.sqn,
            s.kelly,
            s.profit_factor,
        ] {
            assert!(v.is_nan());
        }
        assert_eq!(s.max_drawdown_pct, 0.0);
        assert!(s.calmar.is_nan() && s.max_drawdown_duration_ms.is_nan());
        assert_eq!(s.return_ann_pct, 0.0);
        assert!(statistics(&[0], &[1.0, 2.0], &[1.0], &[], 0, 365.0).is_err());
        assert!(statistics(
            &[0, 1],
            &[1.0, 2.0],
            &[1.0, 1.0],
            &[trade(0, 2, 1.0, 0.1, 1)],
            0,
            365.0
        )
        .is_err());
    }
}
