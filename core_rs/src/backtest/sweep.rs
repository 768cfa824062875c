//! Many parameter sets over the same bars, in parallel on the crate's batch
//! pool: per (parameter set, window) the full statistics. Each cell equals a
//! single run with the same parameters bit for bit (the same code runs).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use super::engine::{atr_series, run_into, Bars, Config};
use super::stats::{compute, STAT_NAMES};
use super::strategy::Strategy;
use crate::batch;
use crate::CoreError;

/// Cancellation and progress, shared with the caller while a sweep runs.
#[derive(Debug, Default)]
pub struct SweepControl {
    cancelled: AtomicBool,
    done: AtomicUsize,
}

impl SweepControl {
    pub fn new() -> SweepControl {
        SweepControl::default()
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Parameter sets finished so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }
}

/// One parameter set: a strategy and the settings of its runs (the
/// window of `config` is replaced by each of the sweep's windows).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    pub strategy: Strategy,
    pub config: Config,
}

/// Why a sweep returned no results.
#[derive(Debug, PartialEq)]
pub enum SweepError {
    Invalid(CoreError),
    Cancelled,
}

impl From<CoreError> for SweepError {
    fn from(e: CoreError) -> Self {
        SweepError::Invalid(e)
    }
}

/// Runs every spec over every window; the result is row-major
/// `[specs.len(), windows.len(), STAT_NAMES.len()]`. Everything is
/// validated before any work starts. A cancel stops the sweep between
/// parameter sets.
pub fn sweep(
    bars: &Bars,
    series: Option<&[f64]>,
    direction: Option<&[i8]>,
    specs: &[SweepSpec],
    windows: &[(usize, usize)],
    control: &SweepControl,
) -> Result<Vec<f64>, SweepError> {
    bars.check()?;
    let n = bars.len();
    for spec in specs {
        spec.strategy.validate()?;
        for &(start, end) in windows {
            windowed(&spec.config, start, end).validate(n)?;
        }
    }
    if specs.iter().any(|s| s.strategy.needs_series()) && series.is_none() {
        return Err(CoreError::InvalidArgument {
            name: "series",
            reason: "is required by the threshold strategy".into(),
        }
        .into());
    }
    if specs.iter().any(|s| s.strategy.needs_direction()) && direction.is_none() {
        return Err(CoreError::InvalidArgument {
            name: "direction",
            reason: "is required by the direction strategy".into(),
        }
        .into());
    }
    let k = STAT_NAMES.len();
    let cell = windows.len() * k;
    let mut out = vec![f64::NAN; specs.len() * cell];
    let longest = windows.iter().map(|&(s, e)| e - s).max().unwrap_or(0);
    let result: Result<(), SweepError> = batch::pool().install(|| {
        out.par_chunks_mut(cell.max(1))
            .zip(specs.par_iter())
            .with_max_len(1)
            // Equity and position buffers reused by each worker's runs.
            .try_for_each_init(
                || (vec![0.0; longest], vec![0.0; longest]),
                |(equity, position), (row, spec)| {
                    if control.cancelled() {
                        return Err(SweepError::Cancelled);
                    }
                    let cond = spec.strategy.conditions(bars.close, series, direction)?;
                    let atr = if spec.config.needs_atr() {
                        atr_series(bars, spec.config.atr_period)
                    } else {
                        Vec::new()
                    };
                    for (w, &(start, end)) in windows.iter().enumerate() {
                        let cfg = windowed(&spec.config, start, end);
                        let m = end - start;
                        let (eq, pos) = (&mut equity[..m], &mut position[..m]);
                        let trades = run_into(bars, &cond, &cfg, &atr, start, end, eq, pos);
                        let stats = compute(
                            &bars.time_ms[start..end],
                            eq,
                            &bars.close[start..end],
                            &trades,
                            start,
                            cfg.bars_per_year,
                        );
                        row[w * k..(w + 1) * k].copy_from_slice(&stats.to_array());
                    }
                    control.done.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                },
            )
    });
    result?;
    if control.cancelled() {
        return Err(SweepError::Cancelled);
    }
    Ok(out)
}

fn windowed(cfg: &Config, start: usize, end: usize) -> Config {
    Config {
        start,
        end: Some(end),
        ..cfg.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::engine::run;
    use crate::backtest::stats::statistics;
    use crate::backtest::strategy::MaKind;
    use crate::backtest::StopRule;

    type Columns = (Vec<i64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

    fn walk(n: usize) -> Columns {
        let c: Vec<f64> = (0..n)
            .map(|i| {
                let x = i as f64;
                100.0 + 10.0 * (x / 13.0).sin() + 4.0 * (x / 3.1).cos()
            })
            .collect();
        let o: Vec<f64> = (0..n)
            .map(|i| if i == 0 { c[0] } else { c[i - 1] })
            .collect();
        let h: Vec<f64> = (0..n).map(|i| o[i].max(c[i]) + 0.5).collect();
        let l: Vec<f64> = (0..n).map(|i| o[i].min(c[i]) - 0.5).collect();
        ((0..n as i64).map(|i| i * 3_600_000).collect(), o, h, l, c)
    }

    #[test]
    fn cells_equal_single_runs_bit_for_bit() {
        let (t, o, h, l, c) = walk(800);
        let bars = Bars {
            time_ms: &t,
            open: &o,
            high: &h,
            low: &l,
            close: &c,
        };
        let base = Config {
            fee: 0.001,
            stop_loss: StopRule::Atr(1.5),
            ..Config::default()
        };
        let specs: Vec<SweepSpec> = [(3, 10), (5, 20), (8, 40)]
            .iter()
            .map(|&(fast, slow)| SweepSpec {
                strategy: Strategy::MaCross {
                    fast,
                    slow,
                    kind: MaKind::Ema,
                },
                config: base.clone(),
            })
            .collect();
        let windows = [(0, 800), (200, 500)];
        let out = sweep(&bars, None, None, &specs, &windows, &SweepControl::new()).unwrap();
        let k = STAT_NAMES.len();
        for (i, spec) in specs.iter().enumerate() {
            let cond = spec.strategy.conditions(&c, None, None).unwrap();
            for (w, &(start, end)) in windows.iter().enumerate() {
                let cfg = Config {
                    start,
                    end: Some(end),
                    ..spec.config.clone()
                };
                let bt = run(&bars, &cond, &cfg, None).unwrap();
                let s = statistics(
                    &t[start..end],
                    &bt.equity,
                    &c[start..end],
                    &bt.trades,
                    start,
                    cfg.bars_per_year,
                )
                .unwrap();
                let cell = &out[(i * windows.len() + w) * k..][..k];
                let same = cell
                    .iter()
                    .zip(s.to_array())
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "spec {i} window {w}");
                assert!(s.n_trades > 0.0);
            }
        }
    }

    #[test]
    fn a_cancelled_sweep_reports_it() {
        let (t, o, h, l, c) = walk(100);
        let bars = Bars {
            time_ms: &t,
            open: &o,
            high: &h,
            low: &l,
            close: &c,
        };
        let spec = SweepSpec {
            strategy: Strategy::Rsi {
                period: 14,
                lower: 30.0,
                upper: 70.0,
            },
            config: Config::default(),
        };
        let control = SweepControl::new();
        control.cancel();
        let got = sweep(
            &bars,
            None,
            None,
            std::slice::from_ref(&spec),
            &[(0, 100)],
            &control,
        );
        assert_eq!(got, Err(SweepError::Cancelled));
        assert_eq!(control.done(), 0);
        let direction = SweepSpec {
            strategy: Strategy::Direction,
            ..spec
        };
        let got = sweep(
            &bars,
            None,
            None,
            &[direction],
            &[(0, 100)],
            &SweepControl::new(),
        );
        assert!(matches!(got, Err(SweepError::Invalid(_))));
    }
}
