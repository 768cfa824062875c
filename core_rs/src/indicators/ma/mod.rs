//! Moving averages and the single-input kernels built on them.

pub mod ema;
pub mod matype;
pub mod sma;

use super::Spec;

pub const SPECS: &[&Spec] = &[&sma::SPEC, &ema::SPEC];
