//! Indicators beyond TA-Lib: session and rolling VWAP, Ichimoku, Donchian
//! and Keltner channels, Fibonacci retracements, Supertrend.

pub mod donchian;
pub mod fibonacci;
pub mod ichimoku;
pub mod keltner;
pub mod rolling_vwap;
pub mod supertrend;
pub mod vwap;
pub mod window;

use super::Spec;

pub const SPECS: &[&Spec] = &[
    &vwap::SPEC,
    &rolling_vwap::SPEC,
    &ichimoku::SPEC,
    &donchian::SPEC,
    &keltner::SPEC,
    &fibonacci::SPEC,
    &supertrend::SPEC,
];
