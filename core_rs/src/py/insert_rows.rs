//! `core_rs.portfolio_rows.InsertRows`: a decided import batch's transaction
//! rows, in Repository.INSERT_FIELDS order, kept in Rust for the native
//! SQLite writer (which reads them with the GIL released). Frozen, so the
//! writer can borrow them from another thread while Python holds the object.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString, PyTuple};

/// One row of the transactions table (the batch's portfolio id and record
/// time are the same for every row).
#[derive(Debug, Clone)]
pub struct InsertRow {
    pub seq: i64,
    pub id: String,
    pub client_id: String,
    pub content_hash: String,
    pub kind: i64,
    pub time_ms: i64,
    pub asset: String,
    pub wallet: String,
    pub to_asset: String,
    pub to_wallet: String,
    pub body: String,
    pub valuation: String,
    pub legs: String,
}

/// A value of a row, in Repository.INSERT_FIELDS order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    Text(&'a str),
    Int(i64),
}

#[pyclass(module = "core_rs._core", frozen)]
#[derive(Debug, Default)]
pub struct InsertRows {
    pub portfolio_id: String,
    pub record_ms: i64,
    pub rows: Vec<InsertRow>,
}

/// Repository.INSERT_FIELDS has 15 fields.
pub const FIELDS: usize = 15;

impl InsertRows {
    /// Row `r`'s values in Repository.INSERT_FIELDS order.
    pub fn values<'a>(&'a self, r: &'a InsertRow) -> [Field<'a>; FIELDS] {
        use Field::{Int, Text};
        [
            Text(&self.portfolio_id),
            Int(r.seq),
            Text(&r.id),
            Text(&r.client_id),
            Text(&r.content_hash),
            Int(r.kind),
            Int(r.time_ms),
            Text(&r.asset),
            Text(&r.wallet),
            Text(&r.to_asset),
            Text(&r.to_wallet),
            Text(&r.body),
            Text(&r.valuation),
            Int(self.record_ms),
            Text(&r.legs),
        ]
    }
}

#[pymethods]
impl InsertRows {
    fn __len__(&self) -> usize {
        self.rows.len()
    }

    /// The client ids, in order.
    fn client_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.rows.iter().map(|r| r.client_id.as_str()))
    }

    /// The rows as tuples in Repository.INSERT_FIELDS order (for a driver).
    fn tuples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in &self.rows {
            let items = self.values(r).map(|v| match v {
                Field::Text(text) => PyString::new(py, text).into_any(),
                Field::Int(n) => PyInt::new(py, n).into_any(),
            });
            out.append(PyTuple::new(py, items)?)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("InsertRows(rows={})", self.rows.len())
    }
}
