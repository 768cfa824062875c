//! `core_rs.TxIndex` and `core_rs.index_stored`: what the portfolio's book
//! remembers of each transaction besides its legs in the `Ledger`.
//!
//! A book holds one entry per transaction, a million for a large ledger. As
//! instances of a Python class they were the largest share of the cyclic
//! GC's work (every full pass walked them all) and of a book's load (a
//! bytecode loop per row). This class is not GC-tracked: an entry holds only
//! str, int and its legs (a tuple of the book's `Leg`s), none of which can
//! lead back to it, so it can never be part of a cycle. `index_stored`
//! registers a whole batch of stored rows in the book's dicts in one call.
//!
//! The legs of a stored transaction stay as their stored JSON text until
//! something asks for them; they are then parsed by the function registered
//! with `TxIndex.set_legs_parser` (services/portfolio registers
//! `legs.legs_from_json`: core_rs knows nothing of `Leg`).

use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PySet, PyString, PyTuple};
use serde::Deserialize;

static LEGS_PARSER: Mutex<Option<Py<PyAny>>> = Mutex::new(None);

enum Legs {
    /// The stored JSON text, not parsed yet.
    Stored(Py<PyString>),
    Parsed(Py<PyTuple>),
}

#[pyclass(module = "core_rs._core")]
pub struct TxIndex {
    #[pyo3(get)]
    seq: i64,
    #[pyo3(get)]
    tx_id: Py<PyString>,
    #[pyo3(get)]
    kind: i64,
    #[pyo3(get)]
    time_ms: i64,
    #[pyo3(get)]
    income_kind: i64,
    legs: Legs,
}

impl TxIndex {
    /// `TxIndex.stored`.
    pub(super) fn of_stored(
        seq: i64,
        tx_id: Bound<'_, PyString>,
        kind: i64,
        time_ms: i64,
        legs_text: Bound<'_, PyString>,
        income_kind: i64,
    ) -> Self {
        let legs = Legs::Stored(legs_text.unbind());
        TxIndex::with(seq, tx_id, kind, time_ms, income_kind, legs)
    }

    fn with(
        seq: i64,
        tx_id: Bound<'_, PyString>,
        kind: i64,
        time_ms: i64,
        income_kind: i64,
        legs: Legs,
    ) -> Self {
        TxIndex {
            seq,
            tx_id: tx_id.unbind(),
            kind,
            time_ms,
            income_kind,
            legs,
        }
    }

    /// Puts this entry in a book's index: `txs[seq]`, `seq_of[tx_id]`, and
    /// `unknown` when its valuation is "unknown".
    pub(super) fn register(
        self,
        py: Python<'_>,
        txs: &Bound<'_, PyDict>,
        seq_of: &Bound<'_, PyDict>,
        unknown: &Bound<'_, PySet>,
        valuation_unknown: bool,
    ) -> PyResult<()> {
        let (seq, tx_id) = (self.seq, self.tx_id.clone_ref(py));
        txs.set_item(seq, Py::new(py, self)?)?;
        seq_of.set_item(tx_id, seq)?;
        if valuation_unknown {
            unknown.add(seq)?;
        }
        Ok(())
    }
}

#[pymethods]
impl TxIndex {
    #[new]
    #[pyo3(signature = (seq, tx_id, kind, time_ms, legs, income_kind = 0))]
    fn new(
        seq: i64,
        tx_id: Bound<'_, PyString>,
        kind: i64,
        time_ms: i64,
        legs: Bound<'_, PyTuple>,
        income_kind: i64,
    ) -> Self {
        let legs = Legs::Parsed(legs.unbind());
        TxIndex::with(seq, tx_id, kind, time_ms, income_kind, legs)
    }

    /// An entry whose legs are still their stored JSON text.
    #[staticmethod]
    fn stored(
        seq: i64,
        tx_id: Bound<'_, PyString>,
        kind: i64,
        time_ms: i64,
        legs_text: Bound<'_, PyString>,
        income_kind: i64,
    ) -> Self {
        TxIndex::of_stored(seq, tx_id, kind, time_ms, legs_text, income_kind)
    }

    /// Registers `parser(legs_text) -> tuple of legs`, used by every entry
    /// whose legs are still stored text.
    #[staticmethod]
    fn set_legs_parser(parser: Bound<'_, PyAny>) -> PyResult<()> {
        if !parser.is_callable() {
            return Err(PyValueError::new_err("the legs parser must be callable"));
        }
        *LEGS_PARSER.lock().unwrap_or_else(|e| e.into_inner()) = Some(parser.unbind());
        Ok(())
    }

    /// The legs, parsed from the stored text on first use (and kept).
    #[getter]
    fn legs(slf: &Bound<'_, Self>) -> PyResult<Py<PyTuple>> {
        let py = slf.py();
        let text = match &slf.borrow().legs {
            Legs::Parsed(legs) => return Ok(legs.clone_ref(py)),
            Legs::Stored(text) => text.clone_ref(py),
        };
        let parser = LEGS_PARSER
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| PyRuntimeError::new_err("TxIndex.set_legs_parser was never called"))?;
        // The borrow is not held across the call: the parser is Python.
        let legs = parser
            .bind(py)
            .call1((text,))?
            .cast_into::<PyTuple>()?
            .unbind();
        slf.borrow_mut().legs = Legs::Parsed(legs.clone_ref(py));
        Ok(legs)
    }

    /// The same transaction with other legs.
    fn with_legs(&self, py: Python<'_>, legs: Bound<'_, PyTuple>) -> Self {
        TxIndex::new(
            self.seq,
            self.tx_id.bind(py).clone(),
            self.kind,
            self.time_ms,
            legs,
            self.income_kind,
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "TxIndex(seq={}, tx_id={}, kind={})",
            self.seq,
            self.tx_id.bind(py).repr()?,
            self.kind
        ))
    }
}

/// The only field of a stored body the index needs.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    income_kind: i64,
}

/// Book.load's index for `rows` (StoredTx tuples: seq, tx_id, kind,
/// time_ms, valuation, body, legs_text): `txs[seq]` an entry, `seq_of[tx_id]`
/// its seq, and `unknown` the seqs valued "unknown". The income kind comes
/// from the body, which is read only when not empty. Every row is checked
/// before anything is registered: on an error nothing is.
#[pyfunction]
pub fn index_stored<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
    txs: &Bound<'py, PyDict>,
    seq_of: &Bound<'py, PyDict>,
    unknown: &Bound<'py, PySet>,
) -> PyResult<()> {
    let mut entries = Vec::new();
    for (i, row) in rows.try_iter()?.enumerate() {
        // Tuples, or rows as the database driver returns them.
        let row = match row?.cast_into::<PyTuple>() {
            Ok(row) => row,
            Err(other) => PyTuple::new(
                py,
                other
                    .into_inner()
                    .try_iter()?
                    .collect::<PyResult<Vec<_>>>()?,
            )?,
        };
        if row.len() != 7 {
            return Err(PyValueError::new_err(format!(
                "row {i}: a stored transaction has 7 fields, not {}",
                row.len()
            )));
        }
        let seq: i64 = row.get_item(0)?.extract()?;
        let tx_id = row.get_item(1)?.cast_into::<PyString>()?;
        let body = row.get_item(5)?;
        let body = body.cast::<PyString>()?.to_str()?;
        let income_kind = if body.is_empty() {
            0
        } else {
            serde_json::from_str::<Body>(body)
                .map_err(|e| {
                    PyValueError::new_err(format!("transaction {seq}: body is not readable: {e}"))
                })?
                .income_kind
        };
        let valuation_unknown = row.get_item(4)?.cast::<PyString>()?.to_str()? == "unknown";
        let entry = TxIndex::of_stored(
            seq,
            tx_id,
            row.get_item(2)?.extract()?,
            row.get_item(3)?.extract()?,
            row.get_item(6)?.cast_into::<PyString>()?,
            income_kind,
        );
        entries.push((entry, valuation_unknown));
    }
    for (entry, valuation_unknown) in entries {
        entry.register(py, txs, seq_of, unknown, valuation_unknown)?;
    }
    Ok(())
}
