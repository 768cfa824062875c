//! `core_rs.portfolio_rows.parse_import` and `parse_import_rows`: the
//! ImportTransactions fast path (see `crate::portfolio_rows`). Rows are
//! parsed, checked, split into legs, encoded and copied out of the message
//! with the GIL released, a batch at a time through one reused buffer (a
//! whole message's rows at once would cost fresh pages every call).

use std::collections::HashSet;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::import_rows::{ImportRows, OwnedRow};
use crate::portfolio_rows::{Context, Rows};
use crate::wire::decode_import_request;

/// Rows per batch: a buffer of a few hundred KB.
const BATCH: usize = 256;

/// The message's portfolio_id, its number of transactions, the rows the
/// fast path took (numbered from `first_row`) and the positions of the others.
type Split = (String, usize, ImportRows, Vec<usize>);

fn split(
    py: Python<'_>,
    message: &[u8],
    base_currency: &str,
    now_ms: i64,
    future_skew_ms: i64,
    known_assets: &Bound<'_, PyAny>,
    first_row: i64,
) -> PyResult<Split> {
    let mut known = HashSet::new();
    for item in known_assets.try_iter()? {
        known.insert(item?.extract::<String>()?);
    }
    let ctx = Context {
        base_currency,
        now_ms,
        future_skew_ms,
        known_assets: &known,
    };
    py.detach(|| {
        let request = decode_import_request(message)?;
        let mut fast = Vec::with_capacity(request.transactions.len());
        let mut slow = Vec::new();
        let mut rows = Rows::default();
        for (i, batch) in request.transactions.chunks(BATCH).enumerate() {
            rows.clear();
            rows.extend(i * BATCH, batch, &ctx)?;
            fast.extend(
                rows.fast
                    .iter()
                    .map(|r| OwnedRow::of_fast(&rows, r, first_row)),
            );
            slow.extend_from_slice(&rows.slow);
        }
        Ok((
            request.portfolio_id.to_owned(),
            request.transactions.len(),
            ImportRows { rows: fast },
            slow,
        ))
    })
}

/// `(portfolio_id, fast_rows, slow_rows)` for one serialized
/// ImportTransactionsRequest, the fast rows as tuples; ValueError when the
/// message is malformed.
#[pyfunction]
pub fn parse_import<'py>(
    py: Python<'py>,
    message: &[u8],
    base_currency: &str,
    now_ms: i64,
    future_skew_ms: i64,
    known_assets: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyList>, Bound<'py, PyList>)> {
    let (portfolio_id, _, fast, slow) = split(
        py,
        message,
        base_currency,
        now_ms,
        future_skew_ms,
        known_assets,
        0,
    )?;
    let tuples = PyList::empty(py);
    for r in &fast.rows {
        tuples.append(r.tuple(py)?)?;
    }
    Ok((
        PyString::new(py, &portfolio_id),
        tuples,
        PyList::new(py, &slow)?,
    ))
}

/// `(portfolio_id, count, fast_rows, slow_rows)`: parse_import with the fast
/// rows kept in Rust as an `ImportRows`, numbered `first_row` + position, and
/// the message's number of transactions.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn parse_import_rows<'py>(
    py: Python<'py>,
    message: &[u8],
    base_currency: &str,
    now_ms: i64,
    future_skew_ms: i64,
    known_assets: &Bound<'py, PyAny>,
    first_row: i64,
) -> PyResult<(String, usize, ImportRows, Bound<'py, PyList>)> {
    let (portfolio_id, count, fast, slow) = split(
        py,
        message,
        base_currency,
        now_ms,
        future_skew_ms,
        known_assets,
        first_row,
    )?;
    Ok((portfolio_id, count, fast, PyList::new(py, &slow)?))
}

/// A new tuple of str, int and such tuples, which cannot be part of a
/// cycle, left out of the cyclic GC. CPython untracks such tuples itself,
/// but only once a collection has scanned them: rows that wait for their
/// batch would be scanned, and promoted, again and again, and their count
/// bring on full collections of the whole heap.
pub(super) fn untracked(t: Bound<'_, PyTuple>) -> Bound<'_, PyTuple> {
    // SAFETY: the GIL is held (the Bound proves it) and t is a tuple.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(t.as_ptr().cast()) };
    t
}
