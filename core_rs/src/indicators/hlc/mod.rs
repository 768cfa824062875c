//! Kernels over high/low/close (and volume) bars.

pub mod adx;
pub mod atr;
mod dm;
pub mod minus_di;
pub mod natr;
pub mod plus_di;
pub mod sar;
pub mod trange;

use super::Spec;

pub const SPECS: &[&Spec] = &[
    &trange::SPEC,
    &atr::SPEC,
    &natr::SPEC,
    &adx::SPEC,
    &plus_di::SPEC,
    &minus_di::SPEC,
    &sar::SPEC,
];
