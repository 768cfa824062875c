//! `core_rs.portfolio_rows.BookRows`: a decided import batch's transactions
//! as the portfolio's in-memory book takes them, kept in Rust. The book
//! appends their legs to its `Ledger` (`Ledger.append_rows`) straight from
//! here, and registers their index entries (`BookRows.index`), instead of
//! reading back per row a Python tuple and the legs' stored JSON.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PyString};

use super::import_rows::OwnedLeg;
use super::tx_index::TxIndex;

#[derive(Debug, Clone)]
pub struct BookRow {
    pub seq: i64,
    pub id: String,
    pub kind: i64,
    pub time_ms: i64,
    pub income_kind: i64,
    /// The stored body for an INCOME (whose kind of income the book keeps),
    /// else "": what Repository.load_book_rows reads back.
    pub body: String,
    pub valuation: String,
    /// The legs' stored JSON (`legs.legs_json`), which an index entry keeps
    /// until something reads its legs.
    pub legs_text: String,
    pub legs: Vec<OwnedLeg>,
}

#[pyclass(module = "core_rs._core", frozen)]
#[derive(Debug, Default)]
pub struct BookRows {
    pub rows: Vec<BookRow>,
}

#[pymethods]
impl BookRows {
    fn __len__(&self) -> usize {
        self.rows.len()
    }

    /// The rows as Book.load's StoredTx tuples: (seq, tx_id, kind, time_ms,
    /// valuation, body, legs_text).
    fn tuples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in &self.rows {
            let row = (
                r.seq,
                &r.id,
                r.kind,
                r.time_ms,
                &r.valuation,
                &r.body,
                &r.legs_text,
            );
            out.append(row.into_pyobject(py)?)?;
        }
        Ok(out)
    }

    /// Registers the rows in a book's index: `txs[seq]` an entry whose legs
    /// are their stored text, `seq_of[tx_id]` its seq, `unknown` the seqs
    /// valued "unknown" (Book.load's index_stored for these rows).
    fn index<'py>(
        &self,
        py: Python<'py>,
        txs: &Bound<'py, PyDict>,
        seq_of: &Bound<'py, PyDict>,
        unknown: &Bound<'py, PySet>,
    ) -> PyResult<()> {
        for r in &self.rows {
            let entry = TxIndex::of_stored(
                r.seq,
                PyString::new(py, &r.id),
                r.kind,
                r.time_ms,
                PyString::new(py, &r.legs_text),
                r.income_kind,
            );
            entry.register(py, txs, seq_of, unknown, r.valuation == "unknown")?;
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("BookRows(rows={})", self.rows.len())
    }
}
