//! Oscillators and volume kernels: STOCH, STOCHF, WILLR, CCI, AROON, MFI, OBV.

pub mod aroon;
pub mod cci;
pub mod mfi;
pub mod obv;
pub mod stoch;
pub mod stochf;
pub mod willr;
pub mod window;

use super::Spec;

pub const SPECS: &[&Spec] = &[
    &stoch::SPEC,
    &stochf::SPEC,
    &willr::SPEC,
    &cci::SPEC,
    &aroon::SPEC,
    &mfi::SPEC,
    &obv::SPEC,
];

/// TA-Lib's `TA_EPSILON`.
pub const TA_EPSILON: f64 = 1e-14;

/// TA-Lib's `TA_IS_ZERO_SCALED`: `v` counts as zero within `TA_EPSILON` of
/// the magnitude `scale` of the operands it came from (~90 ulp).
#[inline(always)]
pub fn is_zero_scaled(v: f64, scale: f64) -> bool {
    v.abs() <= TA_EPSILON * scale
}
