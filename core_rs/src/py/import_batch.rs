//! `core_rs.portfolio_rows.decide_import`: a batch of parse_import's rows
//! decided against a book (`crate::portfolio_rows::decide`) and turned into
//! what the import writes: the insert tuples, the book's rows, and each
//! row's outcome. One call per batch instead of Python per row.

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::book_rows::{BookRow, BookRows};
use super::import_rows::{ImportRows, OwnedLeg};
use super::insert_rows::{InsertRow, InsertRows};
use super::portfolio_rows::untracked;
use crate::ledger::fixed;
use crate::portfolio_rows::{
    decide, json_string, tx_ids, BatchLeg, BatchRow, Outcome, Unfit, INCOME, NEVER,
};

type Decision<'py> = (
    Bound<'py, PyList>,
    usize,
    usize,
    Bound<'py, PyList>,
    InsertRows,
    BookRows,
    Bound<'py, PyList>,
);

/// Client id -> (content hash, transaction id) of the rows of import batches
/// decided but not yet committed: bulk_import adds a batch's InsertRows once
/// its rows are in the book and removes them once committed. Kept in Rust so
/// that decide_import looks ids up without a Python string each.
#[pyclass(module = "core_rs._core")]
#[derive(Debug, Default)]
pub struct UncommittedIds {
    ids: HashMap<String, (String, String)>,
}

#[pymethods]
impl UncommittedIds {
    #[new]
    fn new() -> Self {
        UncommittedIds::default()
    }

    /// Adds the rows of a decided batch.
    fn add(&mut self, rows: &Bound<'_, InsertRows>) {
        for r in &rows.get().rows {
            self.ids
                .insert(r.client_id.clone(), (r.content_hash.clone(), r.id.clone()));
        }
    }

    /// Removes the rows of a batch (committed, or abandoned).
    fn remove(&mut self, rows: &Bound<'_, InsertRows>) {
        for r in &rows.get().rows {
            self.ids.remove(&r.client_id);
        }
    }

    /// Adds one id (a test's uncommitted row).
    fn insert(&mut self, client_id: String, content_hash: String, tx_id: String) {
        self.ids.insert(client_id, (content_hash, tx_id));
    }

    /// (content hash, transaction id) of `client_id`, or None.
    fn get(&self, client_id: &str) -> Option<(String, String)> {
        self.ids.get(client_id).cloned()
    }

    fn __len__(&self) -> usize {
        self.ids.len()
    }

    fn __contains__(&self, client_id: &str) -> bool {
        self.ids.contains_key(client_id)
    }
}

/// See ``core_rs.portfolio_rows.decide_import``.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn decide_import<'py>(
    py: Python<'py>,
    mut rows: PyRefMut<'py, ImportRows>,
    existing: &Bound<'py, PyDict>,
    uncommitted: PyRef<'py, UncommittedIds>,
    balances: &Bound<'py, PyDict>,
    last_ms: &Bound<'py, PyDict>,
    check: bool,
    portfolio_id: &str,
    first_seq: i64,
    clock_ms: i64,
    seed: u64,
    record_ms: i64,
    show: usize,
) -> PyResult<Option<Decision<'py>>> {
    let pending = &uncommitted.ids;
    // The transaction id of a client id already in: the ledger's, or an
    // uncommitted batch's (usually neither: most ids are new).
    let original = |cid: &str| -> PyResult<Option<(String, String)>> {
        if !existing.is_empty() {
            if let Some(found) = existing.get_item(cid)? {
                return Ok(Some(found.extract()?));
            }
        }
        Ok(pending.get(cid).cloned())
    };
    let (written, created, duplicates, rejected, changed, taken) = {
        let rows = &rows.rows;
        let mut batch = Vec::with_capacity(rows.len());
        for r in rows {
            let mut legs = Vec::with_capacity(r.legs.len());
            for g in &r.legs {
                // parse_import's quantities are in range; anything else is
                // for the general path, like a balance out of range.
                let Ok(qty) = fixed::parse(&g.qty) else {
                    return Ok(None);
                };
                legs.push(BatchLeg {
                    kind: g.kind,
                    asset: &g.asset,
                    wallet: &g.wallet,
                    to_wallet: &g.to_wallet,
                    qty,
                });
            }
            batch.push(BatchRow {
                row: r.row,
                client_id: &r.client_id,
                content_hash: &r.content_hash,
                time_ms: r.time_ms,
                legs,
            });
        }
        let known = |cid: &str, hash: &str| -> PyResult<Option<bool>> {
            Ok(original(cid)?.map(|(found, _)| found == hash))
        };
        let balance = |asset: &str, wallet: &str| -> PyResult<Option<(i128, i64)>> {
            let key = (asset, wallet);
            let last = match last_ms.get_item(key)? {
                Some(last) => last.extract::<i64>()?,
                None => NEVER,
            };
            let Some(value) = balances.get_item(key)? else {
                return Ok(Some((0, last)));
            };
            // Plain notation: str() of a Decimal may use an exponent.
            let text = value.call_method1("__format__", ("f",))?;
            Ok(fixed::parse(text.extract::<&str>()?)
                .ok()
                .map(|v| (v, last)))
        };
        let decided = match decide(&batch, check, known, balance) {
            Ok(decided) => decided,
            Err(Unfit::Lookup(err)) => return Err(err),
            Err(Unfit::Backdated | Unfit::OutOfRange) => return Ok(None),
        };
        let ids = tx_ids(decided.taken.len(), clock_ms, seed);

        let written = PyList::empty(py);
        let (mut created, mut duplicates) = (0, 0);
        let rejected = PyList::empty(py);
        let mut by_row: Vec<usize> = (0..rows.len()).collect();
        by_row.sort_by_key(|&i| rows[i].row);
        for i in by_row {
            let r = &rows[i];
            let mut outcome = &decided.outcomes[i];
            let mut source = i;
            if let Outcome::Twin(first) = outcome {
                source = *first;
                outcome = &decided.outcomes[source];
            }
            match outcome {
                Outcome::Taken(k) => {
                    let fresh = source == i;
                    if fresh {
                        created += 1;
                    } else {
                        duplicates += 1;
                    }
                    if written.len() < show {
                        let item = (r.row, &r.client_id, &ids[*k], fresh).into_pyobject(py)?;
                        written.append(untracked(item))?;
                    }
                }
                Outcome::Duplicate => {
                    duplicates += 1;
                    if written.len() < show {
                        let (_, id) = original(&r.client_id)?.ok_or_else(|| {
                            PyValueError::new_err("a duplicate's original vanished")
                        })?;
                        let item = (r.row, &r.client_id, id, false).into_pyobject(py)?;
                        written.append(untracked(item))?;
                    }
                }
                Outcome::Conflict => {
                    rejected.append((r.row, &r.client_id, r.row, py.None()))?;
                }
                Outcome::Short {
                    asset,
                    wallet,
                    shortfall,
                } => {
                    let short = (
                        *asset,
                        *wallet,
                        rows[source].time_ms,
                        fixed::format(*shortfall),
                    );
                    rejected.append((r.row, &r.client_id, rows[source].row, short))?;
                }
                Outcome::Twin(_) => unreachable!("a twin's first row is never a twin"),
            }
        }
        let changed = PyList::empty(py);
        for ((asset, wallet), (value, last)) in &decided.balances {
            changed.append(((*asset, *wallet), fixed::format(*value), *last))?;
        }
        let taken: Vec<(usize, String)> = decided.taken.iter().copied().zip(ids).collect();
        (written, created, duplicates, rejected, changed, taken)
    };

    // The taken rows' strings move into what is written and what the book
    // takes: the batch is consumed.
    let mut owned = std::mem::take(&mut rows.rows);
    let mut inserts = InsertRows {
        portfolio_id: portfolio_id.to_owned(),
        record_ms,
        rows: Vec::with_capacity(taken.len()),
    };
    let mut book_rows = BookRows {
        rows: Vec::with_capacity(taken.len()),
    };
    for (k, (i, id)) in taken.into_iter().enumerate() {
        let r = &mut owned[i];
        let seq = first_seq + i64::try_from(k).map_err(PyValueError::new_err)?;
        let legs_text = stored_legs(&r.legs);
        let take = std::mem::take::<String>;
        let body = take(&mut r.body);
        book_rows.rows.push(BookRow {
            seq,
            id: id.clone(),
            kind: r.kind.into(),
            time_ms: r.time_ms,
            income_kind: r.income_kind.into(),
            // What the database gives the book back: an INCOME's body only.
            body: if r.kind == INCOME {
                body.clone()
            } else {
                String::new()
            },
            valuation: r.valuation.clone(),
            legs_text: legs_text.clone(),
            legs: std::mem::take(&mut r.legs),
        });
        inserts.rows.push(InsertRow {
            seq,
            id,
            client_id: take(&mut r.client_id),
            content_hash: take(&mut r.content_hash),
            kind: r.kind.into(),
            time_ms: r.time_ms,
            asset: take(&mut r.asset),
            wallet: take(&mut r.wallet),
            to_asset: take(&mut r.to_asset),
            to_wallet: take(&mut r.to_wallet),
            body,
            valuation: take(&mut r.valuation),
            legs: legs_text,
        });
    }
    Ok(Some((
        written, created, duplicates, rejected, inserts, book_rows, changed,
    )))
}

/// What legs.legs_json writes for these legs (no lots named).
fn stored_legs(legs: &[OwnedLeg]) -> String {
    let mut out = String::with_capacity(64 * legs.len() + 2);
    out.push('[');
    for (n, g) in legs.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&format!("[{},{},", g.leg, g.kind));
        for text in [&g.asset, &g.wallet, &g.to_wallet, &g.qty] {
            json_string(text, &mut out);
            out.push(',');
        }
        if g.amount.is_empty() {
            out.push_str("null");
        } else {
            json_string(&g.amount, &mut out);
        }
        out.push_str(",null]");
    }
    out.push(']');
    out
}
