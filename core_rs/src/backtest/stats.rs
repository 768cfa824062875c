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

fn nan_min(xs: impl Iterator<Item = f64>) -> f64 {
    xs.fold(f64::NAN, |m, x| if x < m || m.is_nan() { x } else { m })
}

/// Drawdown episodes as backtesting.py's `compute_drawdown_duration_peaks`
/// finds them: from one bar at a peak (drawdown 0) to the next, or to the
/// last bar; returns (durations in ms, deepest drawdown of each).
fn drawdown_episodes(time_ms: &[i64], dd: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m = dd.len();
    let (mut durations, mut peaks) = (Vec::new(), Vec::new());
    let mut prev: Option<usize> = None;
    for j in 0..m {
        if !(dd[j] == 0.0 || j == m - 1) {
            continue;
        }
        if let Some(p) = prev {
            if j > p + 1 {
                durations.push((time_ms[j] - time_ms[p]) as f64);
                peaks.push(nan_max(dd[p..=j].iter().copied()));
            }
        }
        prev = Some(j);
    }
    (durations, peaks)
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

    // Exposure: bars from entry to exit inclusive, as a share of the bars.
    let mut held = vec![false; m];
    for t in trades {
        held[t.entry_bar - offset..=t.exit_bar - offset].fill(true);
    }
    s.exposure_pct = held.iter().filter(|&&h| h).count() as f64 / m as f64 * 100.0;

    let (e0, e_last) = (equity[0], equity[m - 1]);
    s.equity_final = e_last;
    s.equity_peak = nan_max(equity.iter().copied());
    s.fees_total = trades.iter().map(|t| t.fees).sum();
    s.return_pct = (e_last - e0) / e0 * 100.0;
    s.buy_hold_return_pct = (close[m - 1] - close[0]) / close[0] * 100.0;

    // Per-bar simple returns stand where backtesting.py has daily ones.
    // NaN returns (0 -> 0 after running out of money) are dropped, as
    // pandas' pct_change().dropna() does.
    let rets: Vec<f64> = equity
        .windows(2)
        .map(|w| w[1] / w[0] - 1.0)
        .filter(|r| !r.is_nan())
        .collect();
    let n_year = bars_per_year;
    let g = geometric_mean(&rets);
    let ann = (1.0 + g).powf(n_year) - 1.0;
    s.return_ann_pct = ann * 100.0;
    let var = var1(&rets);
    s.volatility_ann_pct =
        ((var + (1.0 + g).powi(2)).powf(n_year) - (1.0 + g).powf(2.0 * n_year)).sqrt() * 100.0;
    let years = s.duration_ms / MS_PER_YEAR;
    s.cagr_pct = if years != 0.0 {
        ((e_last / e0).powf(1.0 / years) - 1.0) * 100.0
    } else {
        f64::NAN
    };
    s.sharpe = div_or_nan(s.return_ann_pct, s.volatility_ann_pct);
    let downside = mean(rets.iter().map(|&r| r.min(0.0).powi(2)));
    s.sortino = ann / (downside.sqrt() * n_year.sqrt());

    // Drawdown: the fraction below the running peak.
    let mut peak = f64::NEG_INFINITY;
    let dd: Vec<f64> = equity
        .iter()
        .map(|&e| {
            peak = peak.max(e);
            1.0 - e / peak
        })
        .collect();
    let max_dd = nan_max(dd.iter().copied());
    let max_dd = if max_dd.is_nan() { 0.0 } else { max_dd };
    s.calmar = div_or_nan(ann, max_dd);
    s.max_drawdown_pct = -max_dd * 100.0;
    let (durations, peaks) = drawdown_episodes(time_ms, &dd);
    if durations.is_empty() {
        // backtesting.py then averages every non-zero drawdown.
        s.avg_drawdown_pct = -mean(dd.iter().copied().filter(|&d| d != 0.0 && !d.is_nan())) * 100.0;
        s.max_drawdown_duration_ms = f64::NAN;
        s.avg_drawdown_duration_ms = f64::NAN;
    } else {
        s.avg_drawdown_pct = -mean(peaks.iter().copied()) * 100.0;
        s.max_drawdown_duration_ms = nan_max(durations.iter().copied());
        s.avg_drawdown_duration_ms = mean(durations.iter().copied());
    }

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
