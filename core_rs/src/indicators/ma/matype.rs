//! TA-Lib's `matype` parameter: which moving average a composite indicator
//! (BBANDS, STOCH, STOCHRSI...) uses. 0 SMA, 1 EMA, 2 WMA, 3 DEMA, 4 TEMA,
//! 5 TRIMA, 6 KAMA; TA-Lib's 7 (MAMA) and 8 (T3) are not provided.

use serde::{Deserialize, Serialize};

use super::{ema, sma};
use crate::indicators::Param;

/// The `matype` parameter as composite kernels declare it.
pub const fn matype_param(name: &'static str) -> Param {
    Param::int(name, 0.0, 0.0, 6.0)
}

/// Leading NaNs of the moving average `matype` over `period`.
pub fn ma_lookback(matype: usize, period: usize) -> usize {
    if period == 1 {
        return 0;
    }
    // TODO(ma group): WMA, DEMA, TEMA, TRIMA, KAMA.
    let _ = matype;
    period - 1
}

/// The moving average `matype` of a gap-free series into `out`. A period
/// of 1 copies the input, as TA-Lib's MA does.
pub fn ma_into(matype: usize, x: &[f64], period: usize, out: &mut [f64]) {
    if period == 1 {
        out.copy_from_slice(x);
        return;
    }
    match matype {
        1 => ema::ema_into(x, period, out),
        // TODO(ma group): WMA, DEMA, TEMA, TRIMA, KAMA.
        _ => sma::sma_into(x, period, out),
    }
}

/// The incremental form of `ma_into`, for composite states.
#[derive(Clone, Serialize, Deserialize)]
pub enum MaState {
    Copy,
    Sma(sma::Sma),
    Ema(ema::Ema),
}

impl MaState {
    pub fn new(matype: usize, period: usize) -> MaState {
        if period == 1 {
            return MaState::Copy;
        }
        match matype {
            1 => MaState::Ema(ema::Ema::new(period)),
            _ => MaState::Sma(sma::Sma::new(period)),
        }
    }

    pub fn next(&mut self, x: f64) -> f64 {
        match self {
            MaState::Copy => x,
            MaState::Sma(s) => s.next(x),
            MaState::Ema(s) => s.next(x),
        }
    }

    pub fn peek(&self, x: f64) -> f64 {
        match self {
            MaState::Copy => x,
            MaState::Sma(s) => s.peek(x),
            MaState::Ema(s) => s.peek(x),
        }
    }
}
