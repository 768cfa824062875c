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

/// The high-low range of a window, or `None` when TA-Lib calls the window
/// flat (range within `TA_EPSILON` of |highest| + |lowest|): STOCH, STOCHF
/// and WILLR then output 0.
#[inline(always)]
pub fn range_of(highest: f64, lowest: f64) -> Option<f64> {
    let range = highest - lowest;
    if is_zero_scaled(range, highest.abs() + lowest.abs()) {
        None
    } else {
        Some(range)
    }
}
