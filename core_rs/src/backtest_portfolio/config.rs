//! The settings of a portfolio backtest and the checks of its inputs: every
//! refusal is a `CoreError` naming the field or array to fix.

use super::{Inputs, Matrix};
use crate::CoreError;

/// Integers stay `i64` until checked so a negative value from Python gets
/// the same message as a zero ("top_k: must be at least 1").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub cash: f64,
    /// Fraction of the notional paid per fill.
    pub fee: f64,
    /// Buys fill at `open * (1 + slippage)`, sells at `open * (1 - slippage)`.
    pub slippage: f64,
    pub top_k: i64,
    pub rebalance_every: i64,
    pub min_score: f64,
    pub whole_units: bool,
    pub start: i64,
    /// Exclusive; `None` is the number of bars.
    pub end: Option<i64>,
}

impl Config {
    /// The defaults for everything but the two choices with no sensible
    /// default.
    pub fn new(top_k: i64, rebalance_every: i64) -> Self {
        Config {
            cash: 10_000.0,
            fee: 0.0,
            slippage: 0.0,
            top_k,
            rebalance_every,
            min_score: 0.0,
            whole_units: false,
            start: 0,
            end: None,
        }
    }
}

/// A checked config: counts and the bar window as `usize`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checked {
    pub cash: f64,
    pub fee: f64,
    pub slippage: f64,
    pub top_k: usize,
    pub rebalance_every: usize,
    pub min_score: f64,
    pub whole_units: bool,
    pub start: usize,
    pub end: usize,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> CoreError {
    CoreError::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

fn fraction(name: &'static str, v: f64) -> Result<f64, CoreError> {
    if v.is_finite() && (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(name, format!("must be in [0, 1), got {v}")))
    }
}

fn check_matrix(
    name: &'static str,
    m: &Matrix<'_>,
    rows: usize,
    cols: usize,
) -> Result<(), CoreError> {
    if m.rows != rows || m.cols != cols {
        return Err(invalid(
            name,
            format!(
                "must have shape (bars, assets) = ({rows}, {cols}) (bars: len(time_ms), assets: columns of open), got ({}, {})",
                m.rows, m.cols
            ),
        ));
    }
    if m.data.len() != rows * cols {
        return Err(invalid(
            name,
            format!("holds {} values, not {rows} x {cols}", m.data.len()),
        ));
    }
    Ok(())
}

/// NaN (no candle) or a positive finite price.
#[inline]
fn usable(p: f64) -> bool {
    // Non-short-circuit operators keep the scan branch-free (it reads every
    // price once, so it is as long as the backtest itself otherwise).
    p.is_nan() | ((p > 0.0) & (p != f64::INFINITY))
}

fn check_prices(name: &'static str, m: &Matrix<'_>) -> Result<(), CoreError> {
    let all_usable = m
        .data
        .chunks(4096)
        .all(|c| c.iter().fold(true, |ok, &p| ok & usable(p)));
    if all_usable {
        return Ok(());
    }
    let k = m.data.iter().position(|&p| !usable(p)).unwrap_or(0);
    let (bar, asset) = (k / m.cols.max(1), k % m.cols.max(1));
    Err(invalid(
        name,
        format!(
            "prices must be positive and finite, or NaN for no candle; bar {bar} asset {asset} is {}",
            m.data[k]
        ),
    ))
}

impl Config {
    pub(crate) fn check(&self, inputs: &Inputs<'_>) -> Result<Checked, CoreError> {
        let n = inputs.time_ms.len();
        let m = inputs.open.cols;
        if n == 0 {
            return Err(invalid("time_ms", "is empty: there is no bar to backtest"));
        }
        check_matrix("open", &inputs.open, n, m)?;
        check_matrix("close", &inputs.close, n, m)?;
        check_matrix("score", &inputs.score, n, m)?;
        if inputs.bear.len() != n {
            return Err(CoreError::LengthMismatch {
                name: "bear",
                other: "time_ms",
                len: inputs.bear.len(),
                other_len: n,
            });
        }
        if let Some(i) = inputs.time_ms.windows(2).position(|w| w[1] <= w[0]) {
            return Err(invalid(
                "time_ms",
                format!(
                    "must be strictly ascending; bar {} ({}) is not after bar {i} ({})",
                    i + 1,
                    inputs.time_ms[i + 1],
                    inputs.time_ms[i]
                ),
            ));
        }
        check_prices("open", &inputs.open)?;
        check_prices("close", &inputs.close)?;
        if !(self.cash.is_finite() && self.cash > 0.0) {
            return Err(invalid(
                "cash",
                format!("must be positive, got {}", self.cash),
            ));
        }
        let fee = fraction("fee", self.fee)?;
        let slippage = fraction("slippage", self.slippage)?;
        if self.top_k < 1 {
            return Err(invalid(
                "top_k",
                format!("must be at least 1, got {}", self.top_k),
            ));
        }
        if self.rebalance_every < 1 {
            return Err(invalid(
                "rebalance_every",
                format!("must be at least 1, got {}", self.rebalance_every),
            ));
        }
        if self.min_score.is_nan() {
            return Err(invalid("min_score", "must be a number, got NaN"));
        }
        let end = self.end.unwrap_or(n as i64);
        if end < 0 || end > n as i64 {
            return Err(invalid(
                "end",
                format!("must be in [1, {n}] (the bars), got {end}"),
            ));
        }
        if self.start < 0 || self.start >= end {
            return Err(invalid(
                "start",
                format!("must be in [0, end) = [0, {end}), got {}", self.start),
            ));
        }
        Ok(Checked {
            cash: self.cash,
            fee,
            slippage,
            top_k: self.top_k as usize,
            rebalance_every: self.rebalance_every as usize,
            min_score: self.min_score,
            whole_units: self.whole_units,
            start: self.start as usize,
            end: end as usize,
        })
    }
}
