//! `core_rs.portfolio_rows.parse_import`: the ImportTransactions fast path
//! (see `crate::portfolio_rows`). Rows are parsed, checked, split into legs
//! and encoded with the GIL released, a batch at a time into one reused
//! buffer (a whole message's rows at once would cost fresh pages every
//! call); only the Python tuples are built with the GIL held.

use std::collections::HashSet;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::portfolio_rows::{Context, FastRow, Rows};
use crate::wire::decode_import_request;

/// Rows per GIL-released batch: a buffer of a few hundred KB.
const BATCH: usize = 256;

type Parsed<'py> = (Bound<'py, PyString>, Bound<'py, PyList>, Bound<'py, PyList>);

/// `(portfolio_id, fast_rows, slow_rows)` for one serialized
/// ImportTransactionsRequest; ValueError when the message is malformed.
#[pyfunction]
pub fn parse_import<'py>(
    py: Python<'py>,
    message: &[u8],
    base_currency: &str,
    now_ms: i64,
    future_skew_ms: i64,
    known_assets: &Bound<'py, PyAny>,
) -> PyResult<Parsed<'py>> {
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
    let request = py.detach(|| decode_import_request(message))?;
    let fast = PyList::empty(py);
    let mut slow = Vec::new();
    let mut rows = Rows::default();
    for (i, batch) in request.transactions.chunks(BATCH).enumerate() {
        rows.clear();
        py.detach(|| rows.extend(i * BATCH, batch, &ctx))?;
        for row in &rows.fast {
            fast.append(row_tuple(py, &rows, row)?)?;
        }
        slow.extend_from_slice(&rows.slow);
    }
    let slow = PyList::new(py, &slow)?;
    Ok((PyString::new(py, request.portfolio_id), fast, slow))
}

fn row_tuple<'py>(
    py: Python<'py>,
    rows: &Rows<'_>,
    r: &FastRow<'_>,
) -> PyResult<Bound<'py, PyTuple>> {
    let s = |text: &str| PyString::new(py, text).into_any();
    let (c, t) = (&r.content, &r.text);
    let texts: [(&str, Bound<'py, PyAny>); 12] = [
        (c.asset.as_str(), s(c.asset.as_str())),
        (t.quantity.as_str(), s(t.quantity.as_str())),
        (t.price.as_str(), s(t.price.as_str())),
        (t.value.as_str(), s(t.value.as_str())),
        (c.fee_asset.as_str(), s(c.fee_asset.as_str())),
        (t.fee_amount.as_str(), s(t.fee_amount.as_str())),
        (t.fee_value.as_str(), s(t.fee_value.as_str())),
        (c.wallet, s(c.wallet)),
        (c.to_wallet, s(c.to_wallet)),
        (c.to_asset.as_str(), s(c.to_asset.as_str())),
        (t.to_quantity.as_str(), s(t.to_quantity.as_str())),
        ("", s("")),
    ];
    // A leg's strings are mostly the row's own (its asset, quantity, value,
    // wallets): the same objects, not copies.
    let text = |wanted: &str| match texts.iter().find(|(t, _)| *t == wanted) {
        Some((_, obj)) => obj.clone(),
        None => s(wanted),
    };
    let mut legs = Vec::with_capacity(3);
    for l in r.legs() {
        let leg = (
            l.leg.leg,
            l.leg.kind,
            text(l.leg.asset.as_str()),
            text(c.wallet),
            text(l.qty.as_str()),
            text(l.amount.as_str()),
            text(r.leg_to_wallet(&l.leg)),
        );
        legs.push(untracked(leg.into_pyobject(py)?));
    }
    let legs = untracked(PyTuple::new(py, legs)?);
    let [asset, quantity, price, value, fee_asset, fee_amount, fee_value, wallet, to_wallet, to_asset, to_quantity, empty] =
        texts.map(|(_, obj)| obj);
    let items: [Bound<'py, PyAny>; 21] = [
        r.position.into_pyobject(py)?.into_any(),
        s(c.client_id),
        c.kind.into_pyobject(py)?.into_any(),
        c.time_ms.into_pyobject(py)?.into_any(),
        asset,
        quantity,
        price,
        value,
        fee_asset,
        fee_amount,
        fee_value,
        wallet,
        to_wallet,
        to_asset,
        to_quantity,
        c.income_kind.into_pyobject(py)?.into_any(),
        s(c.note),
        s(r.content_hash()),
        s(rows.body(r)),
        empty,
        legs.into_any(),
    ];
    Ok(untracked(PyTuple::new(py, items)?))
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
