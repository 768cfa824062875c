//! `core_rs.portfolio_rows.decide_import`: a batch of parse_import's rows
//! decided against a book (`crate::portfolio_rows::decide`) and turned into
//! what the import writes: the insert tuples, the book's rows, and each
//! row's outcome. One call per batch instead of Python per row.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

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
    Bound<'py, PyDict>,
    Bound<'py, PyList>,
);

/// See ``core_rs.portfolio_rows.decide_import``.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn decide_import<'py>(
    py: Python<'py>,
    rows: PyRef<'py, ImportRows>,
    existing: &Bound<'py, PyDict>,
    uncommitted: &Bound<'py, PyDict>,
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
    let rows = &rows.rows;
    let mut batch = Vec::with_capacity(rows.len());
    for r in rows {
        let mut legs = Vec::with_capacity(r.legs.len());
        for g in &r.legs {
            // parse_import's quantities are in range; anything else is for
            // the general path, like a balance out of range.
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
        let found = match existing.get_item(cid)? {
            Some(found) => Some(found),
            None => uncommitted.get_item(cid)?,
        };
        match found {
            None => Ok(None),
            Some(found) => Ok(Some(found.get_item(0)?.extract::<&str>()? == hash)),
        }
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
    let mut inserts = InsertRows {
        portfolio_id: portfolio_id.to_owned(),
        record_ms,
        rows: Vec::with_capacity(decided.taken.len()),
    };
    let mut book_rows = BookRows {
        rows: Vec::with_capacity(decided.taken.len()),
    };
    let accepted = PyDict::new(py);
    for (k, &i) in decided.taken.iter().enumerate() {
        let r = &rows[i];
        let seq = first_seq + i64::try_from(k).map_err(PyValueError::new_err)?;
        let legs = stored_legs(&r.legs);
        book_rows.rows.push(BookRow {
            seq,
            id: ids[k].clone(),
            kind: r.kind.into(),
            time_ms: r.time_ms,
            income_kind: r.income_kind.into(),
            // What the database gives the book back: an INCOME's body only.
            body: if r.kind == INCOME {
                r.body.clone()
            } else {
                String::new()
            },
            valuation: r.valuation.clone(),
            legs_text: legs.clone(),
            legs: r.legs.clone(),
        });
        let id = PyString::new(py, &ids[k]);
        let original = untracked(PyTuple::new(py, [PyString::new(py, &r.content_hash), id])?);
        accepted.set_item(&r.client_id, original)?;
        inserts.rows.push(InsertRow {
            seq,
            id: ids[k].clone(),
            client_id: r.client_id.clone(),
            content_hash: r.content_hash.clone(),
            kind: r.kind.into(),
            time_ms: r.time_ms,
            asset: r.asset.clone(),
            wallet: r.wallet.clone(),
            to_asset: r.to_asset.clone(),
            to_wallet: r.to_wallet.clone(),
            body: r.body.clone(),
            valuation: r.valuation.clone(),
            legs,
        });
    }

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
                    let original = match existing.get_item(&r.client_id)? {
                        Some(found) => found,
                        None => uncommitted.get_item(&r.client_id)?.ok_or_else(|| {
                            PyValueError::new_err("a duplicate's original vanished")
                        })?,
                    };
                    let item =
                        (r.row, &r.client_id, original.get_item(1)?, false).into_pyobject(py)?;
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
    Ok(Some((
        written, created, duplicates, rejected, inserts, book_rows, accepted, changed,
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
