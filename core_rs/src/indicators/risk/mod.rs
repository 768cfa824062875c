//! Rolling risk statistics over prices (closes): log returns, annualized
//! volatility, Sharpe and Sortino ratios, maximum drawdown, historical VaR
//! and CVaR. There is no TA-Lib counterpart; the Python tests compare with
//! numpy/pandas. Returns are log returns r[i] = ln(p[i] / p[i-1]). A price
//! that is zero or negative has no log return: it is treated like a gap
//! (NaN output, the kernel restarts after it).
//!
//! Each kernel's state steps one price at a time and the batch kernel runs
//! the very same step over the series, so incremental equals batch
//! bitwise.

pub mod historical_cvar;
pub mod historical_var;
pub mod log_returns;
pub mod max_drawdown;
pub mod sharpe;
pub mod sorted;
pub mod sortino;
pub mod volatility;
pub mod window;

use super::{Param, Spec};
use crate::CoreError;

pub const SPECS: &[&Spec] = &[
    &log_returns::SPEC,
    &volatility::SPEC,
    &sharpe::SPEC,
    &sortino::SPEC,
    &max_drawdown::SPEC,
    &historical_var::SPEC,
    &historical_cvar::SPEC,
];

/// The number of bars per year, to annualize: 365 for daily crypto bars,
/// 252 for daily equity bars, 365 * 24 for hourly crypto bars.
pub const PERIODS_PER_YEAR: Param = Param::real("periods_per_year", 365.0, 0.0, 1e12);

/// An annual rate as a fraction (0.05 = 5 %); per bar it is
/// `risk_free / periods_per_year`.
pub const RISK_FREE: Param = Param::real("risk_free", 0.0, -1.0, 100.0);

/// `params[i]` (named `name`) must be greater than zero.
pub fn positive(params: &[f64], i: usize, name: &'static str) -> Result<(), CoreError> {
    if params[i] > 0.0 {
        Ok(())
    } else {
        Err(CoreError::InvalidArgument {
            name,
            reason: format!("must be greater than 0, got {}", params[i]),
        })
    }
}

/// Implements [`State`](super::State) for a one-input kernel state with
/// `next(&mut self, price) -> f64` and `peek(&self, price) -> f64`.
macro_rules! price_state {
    ($t:ty) => {
        impl $crate::indicators::State for $t {
            fn update(&mut self, bar: &[f64], out: &mut [f64]) {
                out[0] = self.next(bar[0]);
            }

            fn peek(&self, bar: &[f64], out: &mut [f64]) {
                out[0] = <$t>::peek(self, bar[0]);
            }

            $crate::state_boilerplate!();
        }
    };
}
pub(crate) use price_state;
