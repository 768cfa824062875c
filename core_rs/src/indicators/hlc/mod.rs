//! Kernels over high/low/close (and volume) bars.

pub mod atr;
pub mod trange;

use super::Spec;

pub const SPECS: &[&Spec] = &[&trange::SPEC, &atr::SPEC];
