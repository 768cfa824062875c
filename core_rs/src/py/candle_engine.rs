//! `core_rs.CandleEngine`: numpy in, numpy out, the GIL released around
//! every loop. The engine sits behind a mutex that is only taken after the
//! GIL is released, so a second Python thread waits instead of failing and
//! no thread ever holds the lock while waiting for the GIL.

use std::sync::{Mutex, MutexGuard, PoisonError};

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::arrays::{column, ids, IdSlice};
use crate::market::{self, CandleColumns};

const DEFAULT_INTERVALS_MS: [i64; 6] = [
    60_000,     // 1m
    300_000,    // 5m
    900_000,    // 15m
    3_600_000,  // 1h
    14_400_000, // 4h
    86_400_000, // 1d
];

/// Ticks to last quotes, OHLCV candles at several aligned intervals and
/// rolling 24h statistics, for symbols with dense ids 0..n_symbols-1.
#[pyclass(module = "core_rs._core", name = "CandleEngine", frozen)]
pub struct CandleEngine {
    inner: Mutex<market::CandleEngine>,
}

impl CandleEngine {
    fn lock(&self) -> MutexGuard<'_, market::CandleEngine> {
        // The kernels do not panic on any input; should one ever, its state
        // is still consistent enough to keep serving rather than wedging.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Candle rows as a dict of numpy columns (the shape `take_dirty_candles`
/// has always returned).
fn candle_rows_dict(py: Python<'_>, r: market::CandleRows) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("symbol_id", r.symbol_id.into_pyarray(py))?;
    d.set_item("interval_idx", r.interval_idx.into_pyarray(py))?;
    d.set_item("open_ms", r.open_ms.into_pyarray(py))?;
    d.set_item("open", r.open.into_pyarray(py))?;
    d.set_item("high", r.high.into_pyarray(py))?;
    d.set_item("low", r.low.into_pyarray(py))?;
    d.set_item("close", r.close.into_pyarray(py))?;
    d.set_item("volume", r.volume.into_pyarray(py))?;
    d.set_item("quote_volume", r.quote_volume.into_pyarray(py))?;
    d.set_item("trades", r.trades.into_pyarray(py))?;
    d.set_item("closed", r.closed.into_pyarray(py))?;
    Ok(d)
}

fn non_negative(name: &str, n: i64) -> PyResult<usize> {
    usize::try_from(n).map_err(|_| PyValueError::new_err(format!("{name} must be >= 0, got {n}")))
}

#[pymethods]
impl CandleEngine {
    #[new]
    #[pyo3(signature = (intervals_ms = DEFAULT_INTERVALS_MS.to_vec(), window_ms = 86_400_000, n_symbols = 0))]
    fn new(intervals_ms: Vec<i64>, window_ms: i64, n_symbols: i64) -> PyResult<Self> {
        let n = non_negative("n_symbols", n_symbols)?;
        let engine = market::CandleEngine::new(&intervals_ms, window_ms, n)?;
        Ok(CandleEngine {
            inner: Mutex::new(engine),
        })
    }

    /// Adds `n` symbols; returns the id of the first new one.
    fn add_symbols(&self, py: Python<'_>, n: i64) -> PyResult<usize> {
        let n = non_negative("n", n)?;
        Ok(py.detach(|| self.lock().add_symbols(n))?)
    }

    #[getter]
    fn n_symbols(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().n_symbols())
    }

    #[getter]
    fn intervals_ms(&self, py: Python<'_>) -> Vec<i64> {
        py.detach(|| self.lock().intervals_ms().to_vec())
    }

    #[getter]
    fn window_ms(&self, py: Python<'_>) -> i64 {
        py.detach(|| self.lock().window_ms())
    }

    /// Applies ticks in order; returns one uint8 code per tick (0 accepted).
    #[pyo3(signature = (symbol_ids, times_ms, prices, volumes, now_ms, max_future_ms = 5_000))]
    #[allow(clippy::too_many_arguments)]
    fn ingest<'py>(
        &self,
        py: Python<'py>,
        symbol_ids: &Bound<'py, PyAny>,
        times_ms: &Bound<'py, PyAny>,
        prices: &Bound<'py, PyAny>,
        volumes: &Bound<'py, PyAny>,
        now_ms: i64,
        max_future_ms: i64,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let ids = ids(symbol_ids, "symbol_ids")?;
        let times = column::<i64>(times_ms, "times_ms", "int64")?;
        let prices = column::<f64>(prices, "prices", "float64")?;
        let volumes = column::<f64>(volumes, "volumes", "float64")?;
        let (ids, times, prices, volumes) =
            (ids.slice(), times.slice(), prices.slice(), volumes.slice());
        let mut codes = vec![0u8; ids.len()];
        py.detach(|| {
            let mut eng = self.lock();
            match ids {
                IdSlice::I32(s) => {
                    eng.ingest(s, times, prices, volumes, now_ms, max_future_ms, &mut codes)
                }
                IdSlice::I64(s) => {
                    eng.ingest(s, times, prices, volumes, now_ms, max_future_ms, &mut codes)
                }
            }
        })?;
        Ok(codes.into_pyarray(py))
    }

    /// Closes every current candle whose end (open + width) is <= cutoff_ms;
    /// returns how many.
    fn close_expired(&self, py: Python<'_>, cutoff_ms: i64) -> usize {
        py.detach(|| self.lock().close_expired(cutoff_ms))
    }

    /// Candles touched since the previous call, latest state, ordered by
    /// (symbol_id, interval_idx, open_ms).
    fn take_dirty_candles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = py.detach(|| self.lock().take_dirty_candles());
        candle_rows_dict(py, r)
    }

    /// The current candle (forming, else last closed) of each id at each
    /// interval index, ordered by (id, interval) as given; ids without a
    /// candle at an interval are left out. Marks nothing taken.
    fn current_candles<'py>(
        &self,
        py: Python<'py>,
        symbol_ids: &Bound<'py, PyAny>,
        interval_idx: Vec<u8>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = ids(symbol_ids, "symbol_ids")?;
        let ids = ids.slice();
        let r = py.detach(|| {
            let eng = self.lock();
            match ids {
                IdSlice::I32(s) => eng.current_candles(s, &interval_idx),
                IdSlice::I64(s) => eng.current_candles(s, &interval_idx),
            }
        })?;
        candle_rows_dict(py, r)
    }

    /// Sorted ids whose last price/time changed since the previous call.
    fn take_dirty_quotes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i32>> {
        py.detach(|| self.lock().take_dirty_quotes())
            .into_pyarray(py)
    }

    /// Last quote and rolling-window statistics at now_ms for each id.
    fn quotes<'py>(
        &self,
        py: Python<'py>,
        symbol_ids: &Bound<'py, PyAny>,
        now_ms: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = ids(symbol_ids, "symbol_ids")?;
        let ids = ids.slice();
        let r = py.detach(|| {
            let mut eng = self.lock();
            match ids {
                IdSlice::I32(s) => eng.quotes(s, now_ms),
                IdSlice::I64(s) => eng.quotes(s, now_ms),
            }
        })?;
        let d = PyDict::new(py);
        d.set_item("price", r.price.into_pyarray(py))?;
        d.set_item("time_ms", r.time_ms.into_pyarray(py))?;
        d.set_item("volume_24h", r.volume_24h.into_pyarray(py))?;
        d.set_item("quote_volume_24h", r.quote_volume_24h.into_pyarray(py))?;
        d.set_item("open_24h", r.open_24h.into_pyarray(py))?;
        d.set_item("high_24h", r.high_24h.into_pyarray(py))?;
        d.set_item("low_24h", r.low_24h.into_pyarray(py))?;
        d.set_item("change_24h_pct", r.change_24h_pct.into_pyarray(py))?;
        d.set_item("has_price", r.has_price.into_pyarray(py))?;
        Ok(d)
    }

    /// Loads persisted candles of one symbol and interval, ascending by open.
    #[allow(clippy::too_many_arguments)]
    fn restore_candles<'py>(
        &self,
        py: Python<'py>,
        symbol_id: i64,
        interval_idx: i64,
        open_ms: &Bound<'py, PyAny>,
        open: &Bound<'py, PyAny>,
        high: &Bound<'py, PyAny>,
        low: &Bound<'py, PyAny>,
        close: &Bound<'py, PyAny>,
        volume: &Bound<'py, PyAny>,
        quote_volume: &Bound<'py, PyAny>,
        trades: &Bound<'py, PyAny>,
        closed: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let open_ms = column::<i64>(open_ms, "open_ms", "int64")?;
        let open = column::<f64>(open, "open", "float64")?;
        let high = column::<f64>(high, "high", "float64")?;
        let low = column::<f64>(low, "low", "float64")?;
        let close = column::<f64>(close, "close", "float64")?;
        let volume = column::<f64>(volume, "volume", "float64")?;
        let quote_volume = column::<f64>(quote_volume, "quote_volume", "float64")?;
        let trades = column::<i64>(trades, "trades", "int64")?;
        let closed = column::<bool>(closed, "closed", "bool_")?;
        let cols = CandleColumns {
            open_ms: open_ms.slice(),
            open: open.slice(),
            high: high.slice(),
            low: low.slice(),
            close: close.slice(),
            volume: volume.slice(),
            quote_volume: quote_volume.slice(),
            trades: trades.slice(),
            closed: closed.slice(),
        };
        Ok(py.detach(|| self.lock().restore_candles(symbol_id, interval_idx, cols))?)
    }

    /// Restores the last quote of a symbol (not marked dirty).
    fn set_last(&self, py: Python<'_>, symbol_id: i64, price: f64, time_ms: i64) -> PyResult<()> {
        Ok(py.detach(|| self.lock().set_last(symbol_id, price, time_ms))?)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        py.detach(|| {
            let eng = self.lock();
            format!(
                "CandleEngine(intervals_ms={:?}, window_ms={}, n_symbols={})",
                eng.intervals_ms(),
                eng.window_ms(),
                eng.n_symbols()
            )
        })
    }
}
