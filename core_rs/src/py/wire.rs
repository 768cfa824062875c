//! `decode_stream_candles(data: bytes) -> dict` for the signals follower.

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::wire;

/// Decodes one serialized StreamCandlesResponse into its header fields and
/// column arrays (symbols as a list of str).
#[pyfunction]
pub fn decode_stream_candles<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let c = wire::decode_stream_candles(data)?;
    let d = PyDict::new(py);
    d.set_item("sequence", c.sequence)?;
    d.set_item("snapshot", c.snapshot)?;
    d.set_item("heartbeat", c.heartbeat)?;
    d.set_item("more", c.more)?;
    d.set_item("symbol", PyList::new(py, c.symbols)?)?;
    d.set_item("interval", c.interval.into_pyarray(py))?;
    d.set_item("open_ms", c.open_ms.into_pyarray(py))?;
    d.set_item("open", c.open.into_pyarray(py))?;
    d.set_item("high", c.high.into_pyarray(py))?;
    d.set_item("low", c.low.into_pyarray(py))?;
    d.set_item("close", c.close.into_pyarray(py))?;
    d.set_item("volume", c.volume.into_pyarray(py))?;
    d.set_item("closed", c.closed.into_pyarray(py))?;
    Ok(d)
}
