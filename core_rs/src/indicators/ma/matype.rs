//! TA-Lib's `matype` parameter: which moving average a composite indicator
//! (BBANDS, STOCH, STOCHRSI...) uses. 0 SMA, 1 EMA, 2 WMA, 3 DEMA, 4 TEMA,
//! 5 TRIMA, 6 KAMA; TA-Lib's 7 (MAMA) and 8 (T3) are not provided.

use serde::{Deserialize, Serialize};

use super::{dema, ema, kama, sma, tema, trima, wma};
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
    match matype {
        3 => dema::dema_lookback(period),
        4 => tema::tema_lookback(period),
        6 => kama::kama_lookback(period),
        // SMA, EMA, WMA, TRIMA
        _ => period - 1,
    }
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
        2 => wma::wma_into(x, period, out),
        3 => dema::dema_into(x, period, out),
        4 => tema::tema_into(x, period, out),
        5 => trima::trima_into(x, period, out),
        6 => kama::kama_into(x, period, out),
        _ => sma::sma_into(x, period, out),
    }
}

/// The incremental form of `ma_into`, for composite states.
#[derive(Clone, Serialize, Deserialize)]
pub enum MaState {
    Copy,
    Sma(sma::Sma),
    Ema(ema::Ema),
    Wma(wma::Wma),
    Dema(dema::Dema),
    Tema(tema::Tema),
    Trima(trima::Trima),
    Kama(kama::Kama),
}

impl MaState {
    pub fn new(matype: usize, period: usize) -> MaState {
        if period == 1 {
            return MaState::Copy;
        }
        match matype {
            1 => MaState::Ema(ema::Ema::new(period)),
            2 => MaState::Wma(wma::Wma::new(period)),
            3 => MaState::Dema(dema::Dema::new(period)),
            4 => MaState::Tema(tema::Tema::new(period)),
            5 => MaState::Trima(trima::Trima::new(period)),
            6 => MaState::Kama(kama::Kama::new(period)),
            _ => MaState::Sma(sma::Sma::new(period)),
        }
    }

    pub fn next(&mut self, x: f64) -> f64 {
        match self {
            MaState::Copy => x,
            MaState::Sma(s) => s.next(x),
            MaState::Ema(s) => s.next(x),
            MaState::Wma(s) => s.next(x),
            MaState::Dema(s) => s.next(x),
            MaState::Tema(s) => s.next(x),
            MaState::Trima(s) => s.next(x),
            MaState::Kama(s) => s.next(x),
        }
    }

    pub fn peek(&self, x: f64) -> f64 {
        match self {
            MaState::Copy => x,
            MaState::Sma(s) => s.peek(x),
            MaState::Ema(s) => s.peek(x),
            MaState::Wma(s) => s.peek(x),
            MaState::Dema(s) => s.peek(x),
            MaState::Tema(s) => s.peek(x),
            MaState::Trima(s) => s.peek(x),
            MaState::Kama(s) => s.peek(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{close_enough, make_inputs};

    #[test]
    fn every_matype_state_matches_its_batch_and_lookback() {
        let x = make_inputs(&["close"], 300, 11).remove(0);
        for matype in 0..=6 {
            for period in [1usize, 2, 3, 7, 30] {
                let lb = ma_lookback(matype, period);
                let mut out = vec![0.0; x.len()];
                ma_into(matype, &x, period, &mut out);
                let mut st = MaState::new(matype, period);
                for (i, (&v, &want)) in x.iter().zip(&out).enumerate() {
                    let peeked = st.peek(v);
                    let got = st.next(v);
                    assert!(close_enough(got, want, 1e-12), "{matype}/{period} at {i}");
                    assert!(close_enough(peeked, got, 0.0), "{matype}/{period} peek {i}");
                    assert_eq!(want.is_nan(), i < lb, "{matype}/{period} lookback at {i}");
                }
            }
        }
    }
}
