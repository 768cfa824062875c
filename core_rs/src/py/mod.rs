//! The Python module `core_rs._core`. Wrappers extract arguments, release the
//! GIL around the kernel and convert results; no arithmetic lives here.

mod arrays;
mod backtest;
mod backtest_portfolio;
mod book_rows;
mod bundle;
mod candle_engine;
mod import_batch;
mod import_rows;
mod indicators;
mod insert_rows;
mod ledger;
mod portfolio_rows;
mod sqlite_writer;
mod tx_index;
mod wire;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::CoreError;

// The import path allocates and frees many small strings per row (rows kept
// in Rust from parse to insert, across threads); glibc's malloc took a sixth
// of an import's CPU. Only Rust's own allocations use it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

#[pymodule]
mod _core {
    use crate::market::reject;

    #[pymodule_export]
    const VERSION: &str = env!("CARGO_PKG_VERSION");

    #[pymodule_export]
    use super::candle_engine::CandleEngine;

    #[pymodule_export]
    use super::backtest_portfolio::portfolio_backtest;

    #[pymodule_export]
    use super::bundle::{bundle_columns, bundle_run, BundleSet};

    #[pymodule_export]
    use super::indicators::{batch_threads, kernels, lookback, run, run_batch, Incremental};

    #[pymodule_export]
    use super::wire::decode_stream_candles;

    #[pymodule_export]
    use super::backtest::{run_backtest, stat_names, statistics, sweep, SweepControl};

    #[pymodule_export]
    use super::ledger::{Ledger, Replay};

    #[pymodule_export]
    use super::portfolio_rows::{parse_import, parse_import_rows};

    #[pymodule_export]
    use super::import_rows::ImportRows;

    #[pymodule_export]
    use super::insert_rows::InsertRows;

    #[pymodule_export]
    use super::book_rows::BookRows;

    #[pymodule_export]
    use super::import_batch::{decide_import, UncommittedIds};

    #[pymodule_export]
    use super::sqlite_writer::SqliteWriter;

    #[pymodule_export]
    use super::tx_index::{index_stored, TxIndex};

    // Tick codes of CandleEngine.ingest, equal to TickRejectionReason.
    #[pymodule_export]
    const ACCEPTED: u8 = reject::ACCEPTED;
    #[pymodule_export]
    const REJECT_UNKNOWN_SYMBOL: u8 = reject::REJECT_UNKNOWN_SYMBOL;
    #[pymodule_export]
    const REJECT_NON_POSITIVE_PRICE: u8 = reject::REJECT_NON_POSITIVE_PRICE;
    #[pymodule_export]
    const REJECT_NON_FINITE_PRICE: u8 = reject::REJECT_NON_FINITE_PRICE;
    #[pymodule_export]
    const REJECT_INVALID_VOLUME: u8 = reject::REJECT_INVALID_VOLUME;
    #[pymodule_export]
    const REJECT_TIME_IN_FUTURE: u8 = reject::REJECT_TIME_IN_FUTURE;
    #[pymodule_export]
    const REJECT_TIME_BEFORE_CLOSED_CANDLE: u8 = reject::REJECT_TIME_BEFORE_CLOSED_CANDLE;
}
