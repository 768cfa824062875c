//! `core_rs.portfolio_rows.decide_import`: a batch of parse_import's rows
//! decided against a book (`crate::portfolio_rows::decide`) and turned into
//! what the import writes: the insert tuples, the book's rows, and each
//! row's outcome. One call per batch instead of Python per row.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::portfolio_rows::untracked;
use crate::ledger::fixed;
use crate::portfolio_rows::{
    decide, json_string, tx_ids, BatchLeg, BatchRow, Outcome, Unfit, INCOME, NEVER,
};

// parse_import's row tuple (core_rs.portfolio_rows documents it).
const CLIENT_ID: usize = 1;
const KIND: usize = 2;
const TIME_MS: usize = 3;
const ASSET: usize = 4;
const WALLET: usize = 11;
const TO_WALLET: usize = 12;
const TO_ASSET: usize = 13;
const CONTENT_HASH: usize = 17;
const BODY: usize = 18;
const VALUATION: usize = 19;
const LEGS: usize = 20;

type Decision<'py> = (
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    Bound<'py, PyList>,
    Bound<'py, PyDict>,
    Bound<'py, PyList>,
);

/// See ``core_rs.portfolio_rows.decide_import``.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn decide_import<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyList>,
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
) -> PyResult<Option<Decision<'py>>> {
    let mut tuples: Vec<(i64, Bound<'py, PyTuple>)> = Vec::with_capacity(rows.len());
    for item in rows.iter() {
        let (row, r): (i64, Bound<'py, PyTuple>) = item.extract()?;
        tuples.push((row, r));
    }
    let mut texts: Vec<[Bound<'py, PyString>; 2]> = Vec::with_capacity(tuples.len());
    let mut legs_of: Vec<Vec<Bound<'py, PyTuple>>> = Vec::with_capacity(tuples.len());
    let mut times = Vec::with_capacity(tuples.len());
    for (_, r) in &tuples {
        texts.push([str_at(r, CLIENT_ID)?, str_at(r, CONTENT_HASH)?]);
        times.push(r.get_item(TIME_MS)?.extract::<i64>()?);
        let mut legs = Vec::with_capacity(3);
        for g in r.get_item(LEGS)?.try_iter()? {
            legs.push(g?.cast_into::<PyTuple>()?);
        }
        legs_of.push(legs);
    }
    // Borrowed &str of the Python strings, which the tuples keep alive.
    let mut leg_texts: Vec<Vec<[Bound<'py, PyString>; 4]>> = Vec::with_capacity(tuples.len());
    for legs in &legs_of {
        let mut row = Vec::with_capacity(legs.len());
        for g in legs {
            row.push([str_at(g, 2)?, str_at(g, 3)?, str_at(g, 6)?, str_at(g, 4)?]);
        }
        leg_texts.push(row);
    }
    let mut batch = Vec::with_capacity(tuples.len());
    for (i, (row, _)) in tuples.iter().enumerate() {
        let mut legs = Vec::with_capacity(leg_texts[i].len());
        for (g, [asset, wallet, to_wallet, qty]) in legs_of[i].iter().zip(&leg_texts[i]) {
            // parse_import's quantities are in range; anything else is for
            // the general path, like a balance out of range.
            let Ok(qty) = fixed::parse(qty.to_str()?) else {
                return Ok(None);
            };
            legs.push(BatchLeg {
                kind: g.get_item(1)?.extract()?,
                asset: asset.to_str()?,
                wallet: wallet.to_str()?,
                to_wallet: to_wallet.to_str()?,
                qty,
            });
        }
        batch.push(BatchRow {
            row: *row,
            client_id: texts[i][0].to_str()?,
            content_hash: texts[i][1].to_str()?,
            time_ms: times[i],
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
    let ids: Vec<Bound<'py, PyString>> = ids.iter().map(|id| PyString::new(py, id)).collect();
    let inserts = PyList::empty(py);
    let book_rows = PyList::empty(py);
    let accepted = PyDict::new(py);
    let portfolio_id = PyString::new(py, portfolio_id);
    let empty = PyString::new(py, "");
    let mut legs_text = String::with_capacity(256);
    for (k, &i) in decided.taken.iter().enumerate() {
        let r = &tuples[i].1;
        let seq = first_seq + i64::try_from(k).map_err(PyValueError::new_err)?;
        stored_legs(&legs_of[i], &leg_texts[i], &mut legs_text)?;
        let text = PyString::new(py, &legs_text);
        let at = |n: usize| r.get_item(n);
        // Repository.INSERT_FIELDS order.
        let insert = PyTuple::new(
            py,
            [
                portfolio_id.clone().into_any(),
                seq.into_pyobject(py)?.into_any(),
                ids[k].clone().into_any(),
                at(CLIENT_ID)?,
                at(CONTENT_HASH)?,
                at(KIND)?,
                at(TIME_MS)?,
                at(ASSET)?,
                at(WALLET)?,
                at(TO_ASSET)?,
                at(TO_WALLET)?,
                at(BODY)?,
                at(VALUATION)?,
                record_ms.into_pyobject(py)?.into_any(),
                text.clone().into_any(),
            ],
        )?;
        inserts.append(untracked(insert))?;
        // Book.load's StoredTx; the book reads an INCOME's kind of income from its body.
        let body = if at(KIND)?.extract::<i32>()? == INCOME {
            at(BODY)?
        } else {
            empty.clone().into_any()
        };
        let book_row = PyTuple::new(
            py,
            [
                seq.into_pyobject(py)?.into_any(),
                ids[k].clone().into_any(),
                at(KIND)?,
                at(TIME_MS)?,
                at(VALUATION)?,
                body,
                text.into_any(),
            ],
        )?;
        book_rows.append(untracked(book_row))?;
        let original = untracked(PyTuple::new(
            py,
            [at(CONTENT_HASH)?, ids[k].clone().into_any()],
        )?);
        accepted.set_item(at(CLIENT_ID)?, original)?;
    }

    let written = PyList::empty(py);
    let rejected = PyList::empty(py);
    let mut by_row: Vec<usize> = (0..tuples.len()).collect();
    by_row.sort_by_key(|&i| tuples[i].0);
    for i in by_row {
        let (row, r) = &tuples[i];
        let cid = r.get_item(CLIENT_ID)?;
        let mut outcome = &decided.outcomes[i];
        let mut source = i;
        if let Outcome::Twin(first) = outcome {
            source = *first;
            outcome = &decided.outcomes[source];
        }
        match outcome {
            Outcome::Taken(k) => {
                let created = source == i;
                let item = (*row, cid, ids[*k].clone(), created).into_pyobject(py)?;
                written.append(untracked(item))?;
            }
            Outcome::Duplicate => {
                let original = match existing.get_item(&cid)? {
                    Some(found) => found,
                    None => uncommitted
                        .get_item(&cid)?
                        .ok_or_else(|| PyValueError::new_err("a duplicate's original vanished"))?,
                };
                let item = (*row, cid, original.get_item(1)?, false).into_pyobject(py)?;
                written.append(untracked(item))?;
            }
            Outcome::Conflict => {
                rejected.append((*row, cid, *row, py.None()))?;
            }
            Outcome::Short {
                asset,
                wallet,
                shortfall,
            } => {
                let short = (*asset, *wallet, times[source], fixed::format(*shortfall));
                rejected.append((*row, cid, tuples[source].0, short))?;
            }
            Outcome::Twin(_) => unreachable!("a twin's first row is never a twin"),
        }
    }
    let changed = PyList::empty(py);
    for ((asset, wallet), (value, last)) in &decided.balances {
        changed.append(((*asset, *wallet), fixed::format(*value), *last))?;
    }
    Ok(Some((
        written, rejected, inserts, book_rows, accepted, changed,
    )))
}

fn str_at<'py>(t: &Bound<'py, PyTuple>, i: usize) -> PyResult<Bound<'py, PyString>> {
    Ok(t.get_item(i)?.cast_into::<PyString>()?)
}

/// What legs.legs_json writes for these legs (parse_import's leg tuples:
/// leg, kind, asset, wallet, qty, amount, to_wallet; no lots named).
fn stored_legs<'py>(
    legs: &[Bound<'py, PyTuple>],
    texts: &[[Bound<'py, PyString>; 4]],
    out: &mut String,
) -> PyResult<()> {
    out.clear();
    out.push('[');
    for (n, (g, [asset, wallet, to_wallet, qty])) in legs.iter().zip(texts).enumerate() {
        if n > 0 {
            out.push(',');
        }
        let leg: u8 = g.get_item(0)?.extract()?;
        let kind: u8 = g.get_item(1)?.extract()?;
        out.push_str(&format!("[{leg},{kind},"));
        for text in [asset, wallet, to_wallet, qty] {
            json_string(text.to_str()?, out);
            out.push(',');
        }
        let amount = g.get_item(5)?;
        let amount = amount.cast::<PyString>()?.to_str()?;
        if amount.is_empty() {
            out.push_str("null");
        } else {
            json_string(amount, out);
        }
        out.push_str(",null]");
    }
    out.push(']');
    Ok(())
}
