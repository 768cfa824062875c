//! Momentum kernels over one price series: RSI, MACD, MOM, ROC, STOCHRSI.

mod gaps;
pub mod macd;
pub mod mom;
pub mod roc;
pub mod rsi;
pub mod stochrsi;

use super::Spec;

pub const SPECS: &[&Spec] = &[
    &rsi::SPEC,
    &macd::SPEC,
    &mom::SPEC,
    &roc::SPEC,
    &stochrsi::SPEC,
];
