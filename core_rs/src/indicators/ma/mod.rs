//! Moving averages and the single-input kernels built on them.

pub mod bbands;
pub mod dema;
pub mod ema;
pub mod kama;
pub mod matype;
pub mod sma;
pub mod stddev;
pub mod tema;
pub mod trima;
pub mod wma;

use super::Spec;

pub const SPECS: &[&Spec] = &[
    &sma::SPEC,
    &ema::SPEC,
    &wma::SPEC,
    &dema::SPEC,
    &tema::SPEC,
    &trima::SPEC,
    &kama::SPEC,
    &stddev::SPEC,
    &bbands::SPEC,
];
