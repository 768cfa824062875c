//! marketmesh's hot loops, free of Python: kernels take slices and fill
//! slices. The PyO3 bindings live in `py` and are compiled only with the
//! `python` feature (maturin turns it on), so `cargo test` needs no libpython.

pub mod backtest;
pub mod backtest_portfolio;
pub mod batch;
pub mod bundle;
pub mod error;
pub mod indicators;
pub mod ledger;
pub mod market;
pub mod portfolio_rows;
pub mod wire;

#[cfg(feature = "python")]
mod py;

pub use error::CoreError;
