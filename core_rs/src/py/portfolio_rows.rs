//! `core_rs.portfolio_rows.parse_import`: the ImportTransactions fast path
//! (see `crate::portfolio_rows`). The message is parsed, checked, split into
//! legs and encoded with the GIL released; only the Python tuples are built
//! with it held.

use std::collections::HashSet;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::portfolio_rows::{self as rows, Context, FastRow};

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
    let parsed = py.detach(|| rows::parse_import(message, &ctx))?;
    let fast = PyList::empty(py);
    for row in &parsed.fast {
        fast.append(row_tuple(py, row)?)?;
    }
    let slow = PyList::new(py, &parsed.slow)?;
    Ok((PyString::new(py, parsed.portfolio_id), fast, slow))
}

fn row_tuple<'py>(py: Python<'py>, r: &FastRow<'_>) -> PyResult<Bound<'py, PyTuple>> {
    let s = |text: &str| PyString::new(py, text).into_any();
    let legs = PyList::empty(py);
    for l in &r.legs {
        let leg = (
            l.leg,
            l.kind,
            s(&l.asset),
            s(&l.wallet),
            s(&l.qty),
            s(&l.amount),
            s(&l.to_wallet),
        );
        legs.append(leg.into_pyobject(py)?)?;
    }
    let items: [Bound<'py, PyAny>; 21] = [
        r.position.into_pyobject(py)?.into_any(),
        s(r.client_id),
        r.kind.into_pyobject(py)?.into_any(),
        r.time_ms.into_pyobject(py)?.into_any(),
        s(&r.asset),
        s(&r.quantity),
        s(&r.price),
        s(&r.value),
        s(&r.fee_asset),
        s(&r.fee_amount),
        s(&r.fee_value),
        s(r.wallet),
        s(r.to_wallet),
        s(&r.to_asset),
        s(&r.to_quantity),
        r.income_kind.into_pyobject(py)?.into_any(),
        s(r.note),
        s(&r.content_hash),
        s(&r.body),
        s(""),
        legs.into_any(),
    ];
    PyTuple::new(py, items)
}
