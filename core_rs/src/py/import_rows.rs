//! `core_rs.portfolio_rows.ImportRows`: rows the ImportTransactions fast path
//! parsed, kept in Rust from the parse to the insert. A batch's rows used to
//! cross into Python as a tuple of 21 objects each, and be read back field
//! by field for the decisions and again for the insert: that was most of
//! the per-row cost left in an import. Python now moves batches of rows
//! around as one object; it asks for tuples only where a batch has to go
//! through the general path (`tuples`), and builds rows from tuples only in
//! tests (`from_tuples`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::portfolio_rows::untracked;
use crate::portfolio_rows::{FastRow, Rows};

/// A leg: (leg, kind, asset, wallet, qty, amount, to_wallet), the decimals
/// in fmt form ("" for no amount).
#[derive(Debug, Clone)]
pub struct OwnedLeg {
    pub leg: u32,
    pub kind: u8,
    pub asset: String,
    pub wallet: String,
    pub qty: String,
    pub amount: String,
    pub to_wallet: String,
}

/// A row of parse_import's tuple (see `core_rs.portfolio_rows`), owned, and
/// its number in the whole import.
#[derive(Debug, Clone)]
pub struct OwnedRow {
    pub row: i64,
    pub position: i64,
    pub client_id: String,
    pub kind: i32,
    pub time_ms: i64,
    pub asset: String,
    pub quantity: String,
    pub price: String,
    pub value: String,
    pub fee_asset: String,
    pub fee_amount: String,
    pub fee_value: String,
    pub wallet: String,
    pub to_wallet: String,
    pub to_asset: String,
    pub to_quantity: String,
    pub income_kind: i32,
    pub note: String,
    pub content_hash: String,
    pub body: String,
    pub valuation: String,
    pub legs: Vec<OwnedLeg>,
}

impl OwnedRow {
    /// `r` of `rows`, the message's rows starting at import row `first_row`.
    pub fn of_fast(rows: &Rows<'_>, r: &FastRow<'_>, first_row: i64) -> Self {
        let (c, t) = (&r.content, &r.text);
        let position = r.position as i64;
        OwnedRow {
            row: first_row + position,
            position,
            client_id: c.client_id.to_owned(),
            kind: c.kind,
            time_ms: c.time_ms,
            asset: c.asset.as_str().to_owned(),
            quantity: t.quantity.as_str().to_owned(),
            price: t.price.as_str().to_owned(),
            value: t.value.as_str().to_owned(),
            fee_asset: c.fee_asset.as_str().to_owned(),
            fee_amount: t.fee_amount.as_str().to_owned(),
            fee_value: t.fee_value.as_str().to_owned(),
            wallet: c.wallet.to_owned(),
            to_wallet: c.to_wallet.to_owned(),
            to_asset: c.to_asset.as_str().to_owned(),
            to_quantity: t.to_quantity.as_str().to_owned(),
            income_kind: c.income_kind,
            note: c.note.to_owned(),
            content_hash: r.content_hash().to_owned(),
            body: rows.body(r).to_owned(),
            valuation: String::new(),
            legs: r
                .legs()
                .map(|l| OwnedLeg {
                    leg: l.leg.leg,
                    kind: l.leg.kind,
                    asset: l.leg.asset.as_str().to_owned(),
                    wallet: c.wallet.to_owned(),
                    qty: l.qty.as_str().to_owned(),
                    amount: l.amount.as_str().to_owned(),
                    to_wallet: r.leg_to_wallet(&l.leg).to_owned(),
                })
                .collect(),
        }
    }

    /// parse_import's tuple for this row.
    pub fn tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let s = |text: &str| PyString::new(py, text).into_any();
        let mut legs = Vec::with_capacity(self.legs.len());
        for l in &self.legs {
            let leg = (
                l.leg,
                l.kind,
                s(&l.asset),
                s(&l.wallet),
                s(&l.qty),
                s(&l.amount),
                s(&l.to_wallet),
            );
            legs.push(untracked(leg.into_pyobject(py)?));
        }
        let legs = untracked(PyTuple::new(py, legs)?);
        let items: [Bound<'py, PyAny>; 21] = [
            self.position.into_pyobject(py)?.into_any(),
            s(&self.client_id),
            self.kind.into_pyobject(py)?.into_any(),
            self.time_ms.into_pyobject(py)?.into_any(),
            s(&self.asset),
            s(&self.quantity),
            s(&self.price),
            s(&self.value),
            s(&self.fee_asset),
            s(&self.fee_amount),
            s(&self.fee_value),
            s(&self.wallet),
            s(&self.to_wallet),
            s(&self.to_asset),
            s(&self.to_quantity),
            self.income_kind.into_pyobject(py)?.into_any(),
            s(&self.note),
            s(&self.content_hash),
            s(&self.body),
            s(&self.valuation),
            legs.into_any(),
        ];
        Ok(untracked(PyTuple::new(py, items)?))
    }

    /// The row of parse_import's tuple `t`, numbered `row` in the import.
    fn of_tuple(row: i64, t: &Bound<'_, PyTuple>) -> PyResult<Self> {
        if t.len() != 21 {
            return Err(PyValueError::new_err(format!(
                "row {row}: a parsed row has 21 fields, not {}",
                t.len()
            )));
        }
        let text = |i: usize| -> PyResult<String> { t.get_item(i)?.extract::<String>() };
        let mut legs = Vec::new();
        for g in t.get_item(20)?.try_iter()? {
            let g = g?;
            let g = g.cast::<PyTuple>()?;
            let gtext = |i: usize| -> PyResult<String> { g.get_item(i)?.extract::<String>() };
            legs.push(OwnedLeg {
                leg: g.get_item(0)?.extract()?,
                kind: g.get_item(1)?.extract()?,
                asset: gtext(2)?,
                wallet: gtext(3)?,
                qty: gtext(4)?,
                amount: gtext(5)?,
                to_wallet: gtext(6)?,
            });
        }
        Ok(OwnedRow {
            row,
            position: t.get_item(0)?.extract()?,
            client_id: text(1)?,
            kind: t.get_item(2)?.extract()?,
            time_ms: t.get_item(3)?.extract()?,
            asset: text(4)?,
            quantity: text(5)?,
            price: text(6)?,
            value: text(7)?,
            fee_asset: text(8)?,
            fee_amount: text(9)?,
            fee_value: text(10)?,
            wallet: text(11)?,
            to_wallet: text(12)?,
            to_asset: text(13)?,
            to_quantity: text(14)?,
            income_kind: t.get_item(15)?.extract()?,
            note: text(16)?,
            content_hash: text(17)?,
            body: text(18)?,
            valuation: text(19)?,
            legs,
        })
    }
}

/// Parsed import rows, in the order they arrived.
#[pyclass(module = "core_rs._core")]
#[derive(Default)]
pub struct ImportRows {
    pub rows: Vec<OwnedRow>,
}

#[pymethods]
impl ImportRows {
    /// No rows.
    #[new]
    fn new() -> Self {
        ImportRows::default()
    }

    /// Rows from ``(row number, parse_import tuple)`` pairs.
    #[staticmethod]
    fn from_tuples(pairs: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut rows = Vec::new();
        for pair in pairs.try_iter()? {
            let (row, t): (i64, Bound<'_, PyTuple>) = pair?.extract()?;
            rows.push(OwnedRow::of_tuple(row, &t)?);
        }
        Ok(ImportRows { rows })
    }

    fn __len__(&self) -> usize {
        self.rows.len()
    }

    /// Removes the first `n` rows (all when fewer) and returns them.
    fn take(&mut self, n: usize) -> ImportRows {
        let n = n.min(self.rows.len());
        ImportRows {
            rows: self.rows.drain(..n).collect(),
        }
    }

    /// Moves every row of `other` to the end of these.
    fn extend(&mut self, mut other: PyRefMut<'_, ImportRows>) {
        self.rows.append(&mut other.rows);
    }

    /// The client ids, in order.
    fn client_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.rows.iter().map(|r| r.client_id.as_str()))
    }

    /// ``(row number, parse_import tuple)`` pairs, in order.
    fn tuples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for r in &self.rows {
            out.append((r.row, r.tuple(py)?))?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("ImportRows(rows={})", self.rows.len())
    }
}
