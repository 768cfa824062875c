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
