//! `core_rs.Ledger` and `core_rs.Replay`: the lot-matching engine behind
//! the portfolio service. Columns come in as numpy arrays and amounts as
//! decimal strings; everything is parsed and checked, then the GIL is
//! released for the work. A `Replay` is an immutable result kept in Rust;
//! Python reads its rows as numpy columns and the amounts of the rows it
//! needs as strings.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use numpy::IntoPyArray;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::arrays::column;
use super::book_rows::BookRows;
use crate::ledger::engine::{self, Method, ReplayOptions, ReplayResult};
use crate::ledger::{self as core, fixed, preview, stored, LedgerError, LegInput};

impl From<LedgerError> for PyErr {
    fn from(err: LedgerError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

/// Python strings of a list (or any iterable), kept alive so their UTF-8
/// can be borrowed while the GIL is released.
fn strings<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Vec<Bound<'py, PyString>>> {
    let mut out = Vec::new();
    for (i, item) in obj
        .try_iter()
        .map_err(|_| PyValueError::new_err(format!("{name} must be a list of str")))?
        .enumerate()
    {
        let item = item?;
        let s = item.cast_into::<PyString>().map_err(|e| {
            PyValueError::new_err(format!(
                "leg {i}: {name} must be a str, got {}",
                e.into_inner()
                    .get_type()
                    .name()
                    .map_or("?".into(), |n| n.to_string())
            ))
        })?;
        out.push(s);
    }
    Ok(out)
}

fn borrow_all<'a>(v: &'a [Bound<'_, PyString>]) -> PyResult<Vec<&'a str>> {
    v.iter().map(|s| s.to_str()).collect()
}

/// (tx, asset, wallet, time_ms, shortfall).
type NegativeAt = (i64, u32, u32, i64, String);

type RawSelections<'py> = Vec<(usize, Vec<(i64, i64, Bound<'py, PyString>)>)>;

fn raw_selections<'py>(d: Option<&Bound<'py, PyDict>>) -> PyResult<RawSelections<'py>> {
    let Some(d) = d else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(d.len());
    for (key, value) in d.iter() {
        let pos: i64 = key.extract().map_err(|_| {
            PyValueError::new_err("selections: keys must be int positions in this batch")
        })?;
        let pos = usize::try_from(pos).map_err(|_| {
            PyValueError::new_err(format!("selections: position {pos} must be >= 0"))
        })?;
        let picks: Vec<(i64, i64, Bound<'py, PyString>)> = value.extract().map_err(|_| {
            PyValueError::new_err(format!(
                "leg {pos}: selections must be a list of (lot_tx: int, lot_leg: int, qty: str)"
            ))
        })?;
        out.push((pos, picks));
    }
    // Report problems in position order whatever the dict's order.
    out.sort_by_key(|(p, _)| *p);
    Ok(out)
}

fn int_list<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<i64>> {
    Ok(column::<i64>(obj, "idx", "int64")?.slice().to_vec())
}

fn decimal_or_empty(known: bool, v: i128) -> String {
    if known {
        fixed::format(v)
    } else {
        String::new()
    }
}

/// A portfolio's legs, kept in replay order (time_ms, tx, leg).
/// A Python interner (name -> id dict, id -> name list; id 0 is reserved)
/// with a local cache: a million legs name a few hundred assets and wallets.
struct Interning<'a, 'py> {
    ids: &'a Bound<'py, PyDict>,
    names: &'a Bound<'py, PyList>,
    seen: HashMap<String, u32>,
}

impl<'a, 'py> Interning<'a, 'py> {
    fn new(ids: &'a Bound<'py, PyDict>, names: &'a Bound<'py, PyList>) -> Self {
        Interning {
            ids,
            names,
            seen: HashMap::new(),
        }
    }

    fn id(&mut self, name: &str) -> PyResult<u32> {
        if let Some(&id) = self.seen.get(name) {
            return Ok(id);
        }
        let id = match self.ids.get_item(name)? {
            Some(id) => id.extract::<u32>()?,
            None => {
                let id = u32::try_from(self.names.len())
                    .map_err(|_| PyValueError::new_err("too many names"))?;
                self.names.append(name)?;
                self.ids.set_item(name, id)?;
                id
            }
        };
        self.seen.insert(name.to_owned(), id);
        Ok(id)
    }
}

/// The columns ``LegInput`` takes, built from stored legs.
struct StoredColumns<'a> {
    tx: Vec<i64>,
    leg: Vec<u8>,
    kind: Vec<u8>,
    time_ms: Vec<i64>,
    asset: Vec<u32>,
    wallet: Vec<u32>,
    to_wallet: Vec<u32>,
    qty: Vec<&'a str>,
    amount: Vec<&'a str>,
}

impl<'a> StoredColumns<'a> {
    /// One leg of transaction `tx`; names interned.
    fn push(
        &mut self,
        (tx, time_ms): (i64, i64),
        (leg, kind): (u8, u8),
        assets: &mut Interning<'_, '_>,
        wallets: &mut Interning<'_, '_>,
        (asset, wallet, to_wallet): (&str, &str, &str),
        (qty, amount): (&'a str, &'a str),
    ) -> PyResult<()> {
        self.tx.push(tx);
        self.leg.push(leg);
        self.kind.push(kind);
        self.time_ms.push(time_ms);
        self.asset.push(assets.id(asset)?);
        self.wallet.push(wallets.id(wallet)?);
        self.to_wallet.push(if to_wallet.is_empty() {
            0
        } else {
            wallets.id(to_wallet)?
        });
        self.qty.push(qty);
        self.amount.push(amount);
        Ok(())
    }

    /// Parses the legs and appends them to `ledger`, the GIL released.
    fn append_to(&self, py: Python<'_>, ledger: &Ledger) -> PyResult<()> {
        let input = LegInput {
            tx: &self.tx,
            leg: &self.leg,
            kind: &self.kind,
            time_ms: &self.time_ms,
            asset: &self.asset,
            wallet: &self.wallet,
            to_wallet: &self.to_wallet,
            qty: &self.qty,
            amount: &self.amount,
            selections: &[],
        };
        py.detach(|| {
            let legs = input.parse()?;
            ledger.lock().append(legs)
        })?;
        Ok(())
    }

    fn with_capacity(n: usize) -> Self {
        StoredColumns {
            tx: Vec::with_capacity(n),
            leg: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            time_ms: Vec::with_capacity(n),
            asset: Vec::with_capacity(n),
            wallet: Vec::with_capacity(n),
            to_wallet: Vec::with_capacity(n),
            qty: Vec::with_capacity(n),
            amount: Vec::with_capacity(n),
        }
    }
}

#[pyclass(module = "core_rs._core", name = "Ledger", frozen)]
pub struct Ledger {
    inner: Mutex<core::Ledger>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, core::Ledger> {
        // Every change is validated before it is made, so a poisoned lock
        // still guards a consistent ledger.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl Ledger {
    #[new]
    fn new() -> Self {
        Ledger {
            inner: Mutex::new(core::Ledger::new()),
        }
    }

    /// Appends a batch of legs, all or nothing.
    #[pyo3(signature = (tx, leg, kind, time_ms, asset, wallet, to_wallet, qty, amount, selections = None))]
    #[allow(clippy::too_many_arguments)]
    fn append<'py>(
        &self,
        py: Python<'py>,
        tx: &Bound<'py, PyAny>,
        leg: &Bound<'py, PyAny>,
        kind: &Bound<'py, PyAny>,
        time_ms: &Bound<'py, PyAny>,
        asset: &Bound<'py, PyAny>,
        wallet: &Bound<'py, PyAny>,
        to_wallet: &Bound<'py, PyAny>,
        qty: &Bound<'py, PyAny>,
        amount: &Bound<'py, PyAny>,
        selections: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<()> {
        let tx = column::<i64>(tx, "tx", "int64")?;
        let leg = column::<u8>(leg, "leg", "uint8")?;
        let kind = column::<u8>(kind, "kind", "uint8")?;
        let time_ms = column::<i64>(time_ms, "time_ms", "int64")?;
        let asset = column::<u32>(asset, "asset", "uint32")?;
        let wallet = column::<u32>(wallet, "wallet", "uint32")?;
        let to_wallet = column::<u32>(to_wallet, "to_wallet", "uint32")?;
        let qty = strings(qty, "qty")?;
        let amount = strings(amount, "amount")?;
        let raw = raw_selections(selections)?;
        let qty = borrow_all(&qty)?;
        let amount = borrow_all(&amount)?;
        let sel = raw
            .iter()
            .map(|(pos, picks)| {
                let picks = picks
                    .iter()
                    .map(|(t, l, q)| Ok((*t, *l, q.to_str()?)))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok((*pos, picks))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let input = LegInput {
            tx: tx.slice(),
            leg: leg.slice(),
            kind: kind.slice(),
            time_ms: time_ms.slice(),
            asset: asset.slice(),
            wallet: wallet.slice(),
            to_wallet: to_wallet.slice(),
            qty: &qty,
            amount: &amount,
            selections: &sel,
        };
        py.detach(|| {
            let legs = input.parse()?;
            self.lock().append(legs)
        })?;
        Ok(())
    }

    /// Appends transactions as the portfolio stores their legs (one JSON
    /// text each, see ``ledger::stored``), all or nothing; names are
    /// interned into the caller's (dict, list) pairs. Returns the number of
    /// legs appended, or None (nothing done) when a leg names lots: those
    /// need the caller's lot ids resolved.
    #[allow(clippy::too_many_arguments)]
    fn append_stored<'py>(
        &self,
        py: Python<'py>,
        tx: &Bound<'py, PyAny>,
        time_ms: &Bound<'py, PyAny>,
        legs: &Bound<'py, PyAny>,
        asset_ids: &Bound<'py, PyDict>,
        asset_names: &Bound<'py, PyList>,
        wallet_ids: &Bound<'py, PyDict>,
        wallet_names: &Bound<'py, PyList>,
    ) -> PyResult<Option<usize>> {
        let tx = column::<i64>(tx, "tx", "int64")?;
        let time_ms = column::<i64>(time_ms, "time_ms", "int64")?;
        let texts = strings(legs, "legs")?;
        let texts = borrow_all(&texts)?;
        let (tx, time_ms) = (tx.slice(), time_ms.slice());
        if tx.len() != texts.len() || time_ms.len() != texts.len() {
            return Err(PyValueError::new_err(format!(
                "tx, time_ms and legs differ in length ({}, {}, {})",
                tx.len(),
                time_ms.len(),
                texts.len()
            )));
        }
        let parsed = py.detach(|| {
            texts
                .iter()
                .zip(tx)
                .map(|(text, t)| {
                    stored::parse_stored(text).map_err(|e| e.context(format!("tx {t}")))
                })
                .collect::<Result<Vec<_>, LedgerError>>()
        })?;
        if parsed.iter().flatten().any(|g| g.names_lots()) {
            return Ok(None);
        }
        let mut assets = Interning::new(asset_ids, asset_names);
        let mut wallets = Interning::new(wallet_ids, wallet_names);
        let n = parsed.iter().map(Vec::len).sum();
        let mut col = StoredColumns::with_capacity(n);
        for ((legs, &t), &ms) in parsed.iter().zip(tx).zip(time_ms) {
            for g in legs {
                col.push(
                    (t, ms),
                    (g.0, g.1),
                    &mut assets,
                    &mut wallets,
                    (&g.2, &g.3, &g.4),
                    (&g.5, g.6.as_deref().unwrap_or("")),
                )?;
            }
        }
        col.append_to(py, self)?;
        Ok(Some(n))
    }

    /// Appends the legs of a bulk import's decided rows (core_rs's
    /// ``BookRows``, no lots named) as :meth:`append_stored` would their
    /// stored text, names interned the same way; returns how many legs.
    fn append_rows<'py>(
        &self,
        py: Python<'py>,
        rows: &Bound<'py, BookRows>,
        asset_ids: &Bound<'py, PyDict>,
        asset_names: &Bound<'py, PyList>,
        wallet_ids: &Bound<'py, PyDict>,
        wallet_names: &Bound<'py, PyList>,
    ) -> PyResult<usize> {
        let rows = rows.get();
        let mut assets = Interning::new(asset_ids, asset_names);
        let mut wallets = Interning::new(wallet_ids, wallet_names);
        let n = rows.rows.iter().map(|r| r.legs.len()).sum();
        let mut col = StoredColumns::with_capacity(n);
        for r in &rows.rows {
            for g in &r.legs {
                col.push(
                    (r.seq, r.time_ms),
                    (u8::try_from(g.leg).map_err(PyValueError::new_err)?, g.kind),
                    &mut assets,
                    &mut wallets,
                    (&g.asset, &g.wallet, &g.to_wallet),
                    (&g.qty, &g.amount),
                )?;
            }
        }
        col.append_to(py, self)?;
        Ok(n)
    }

    /// Removes every leg of transaction `tx`; returns how many.
    fn remove_tx(&self, py: Python<'_>, tx: i64) -> usize {
        py.detach(|| self.lock().remove_tx(tx))
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().len())
    }

    /// The first point in replay order where an (asset, wallet) balance goes
    /// below zero: (tx, asset, wallet, time_ms, shortfall), or None.
    fn first_negative(&self, py: Python<'_>) -> PyResult<Option<NegativeAt>> {
        let s = py.detach(|| self.lock().first_negative())?;
        Ok(s.map(|s| (s.tx, s.asset, s.wallet, s.time_ms, fixed::format(s.short))))
    }

    /// Every (asset, wallet) the legs touch: (asset, wallet, balance, time of
    /// the latest leg touching it), sorted.
    fn balances(&self, py: Python<'_>) -> PyResult<Vec<(u32, u32, String, i64)>> {
        let all = py.detach(|| self.lock().balances())?;
        Ok(all
            .into_iter()
            .map(|b| (b.asset, b.wallet, fixed::format(b.balance), b.last_ms))
            .collect())
    }

    /// Matches disposals against lots; see the stub for the rules.
    #[pyo3(signature = (methods, per_wallet, allow_negative, until_ms=None))]
    fn replay(
        &self,
        py: Python<'_>,
        methods: Vec<(i64, i64)>,
        per_wallet: bool,
        allow_negative: bool,
        until_ms: Option<i64>,
    ) -> PyResult<Replay> {
        let opts = ReplayOptions::new(&methods, per_wallet, allow_negative)?.until(until_ms);
        let result = py.detach(|| {
            let mut l = self.lock();
            engine::replay(&mut l, &opts)
        })?;
        Ok(Replay { result })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Ledger(legs={})", py.detach(|| self.lock().len()))
    }
}

/// The result of `Ledger.replay`: match rows and the open lots at the end.
#[pyclass(module = "core_rs._core", name = "Replay", frozen)]
pub struct Replay {
    result: ReplayResult,
}

macro_rules! put {
    ($py:expr, $d:expr, $name:literal, $v:expr) => {
        $d.set_item($name, $v.into_pyarray($py))?
    };
}

#[pymethods]
impl Replay {
    /// One numpy column per field, one row per consumed lot piece.
    fn match_arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.result.matches;
        let d = PyDict::new(py);
        put!(py, d, "tx", m.col(|r| r.tx));
        put!(py, d, "leg", m.col(|r| r.leg));
        put!(py, d, "kind", m.col(|r| r.kind));
        put!(py, d, "lot_tx", m.col(|r| r.lot_tx));
        put!(py, d, "lot_leg", m.col(|r| r.lot_leg));
        put!(py, d, "disposed_ms", m.col(|r| r.disposed_ms));
        put!(py, d, "acquired_ms", m.col(|r| r.acquired_ms));
        put!(py, d, "asset", m.col(|r| r.asset));
        put!(py, d, "wallet", m.col(|r| r.wallet));
        put!(py, d, "long_term", m.col(|r| r.long_term));
        put!(py, d, "unknown", m.col(|r| r.unknown()));
        put!(py, d, "method", m.col(|r| r.method));
        Ok(d)
    }

    /// (qty, cost_basis, proceeds, gain) of rows `idx` as decimal strings.
    #[allow(clippy::type_complexity)]
    fn match_amounts<'py>(
        &self,
        py: Python<'py>,
        idx: &Bound<'py, PyAny>,
    ) -> PyResult<(Vec<String>, Vec<String>, Vec<String>, Vec<String>)> {
        let idx = int_list(idx)?;
        let m = &self.result.matches;
        Ok(py.detach(|| -> Result<_, LedgerError> {
            let n = idx.len();
            let (mut q, mut b, mut p, mut g) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for &i in &idx {
                let r = &m.rows[engine::row_index(i, m.len())?];
                q.push(fixed::format(r.qty));
                b.push(decimal_or_empty(r.basis_known, r.basis));
                p.push(decimal_or_empty(r.proceeds_known, r.proceeds));
                g.push(r.gain()?.map_or_else(String::new, fixed::format));
            }
            Ok((q, b, p, g))
        })?)
    }

    /// Short- and long-term totals over the disposals among rows `idx`.
    fn sum_matches<'py>(
        &self,
        py: Python<'py>,
        idx: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let idx = int_list(idx)?;
        let t = py.detach(|| engine::sum_matches(&self.result.matches, &idx))?;
        let d = PyDict::new(py);
        for (name, t) in [("short", &t[0]), ("long", &t[1])] {
            d.set_item(
                name,
                (
                    fixed::format(t.proceeds),
                    fixed::format(t.basis),
                    fixed::format(t.gain),
                    t.rows,
                ),
            )?;
        }
        Ok(d)
    }

    /// The open lots at the end, by (asset, wallet) then first in first.
    fn lot_arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = &self.result.lots;
        let d = PyDict::new(py);
        put!(py, d, "lot_tx", l.lot_tx.clone());
        put!(py, d, "lot_leg", l.lot_leg.clone());
        put!(py, d, "asset", l.asset.clone());
        put!(py, d, "wallet", l.wallet.clone());
        put!(py, d, "acquired_ms", l.acquired_ms.clone());
        put!(py, d, "unknown", l.unknown.clone());
        Ok(d)
    }

    /// (qty, cost_basis, original_qty) of open lots `idx`.
    fn lot_amounts<'py>(
        &self,
        py: Python<'py>,
        idx: &Bound<'py, PyAny>,
    ) -> PyResult<(Vec<String>, Vec<String>, Vec<String>)> {
        let idx = int_list(idx)?;
        let l = &self.result.lots;
        Ok(py.detach(|| -> Result<_, LedgerError> {
            let (mut q, mut c, mut o) = (Vec::new(), Vec::new(), Vec::new());
            for &i in &idx {
                let i = engine::row_index(i, l.len())?;
                q.push(fixed::format(l.qty[i]));
                c.push(decimal_or_empty(!l.unknown[i], l.cost[i]));
                o.push(fixed::format(l.original_qty[i]));
            }
            Ok((q, c, o))
        })?)
    }

    /// What selling `qty` of `asset` from `wallet` at `time_ms` for
    /// `proceeds` would realize under `method`, without changing anything.
    #[allow(clippy::too_many_arguments)]
    fn preview_disposal<'py>(
        &self,
        py: Python<'py>,
        asset: u32,
        wallet: u32,
        qty: &str,
        proceeds: &str,
        time_ms: i64,
        method: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let q = fixed::parse(qty).map_err(|e| e.subject("qty"))?;
        let p = fixed::parse(proceeds).map_err(|e| e.subject("proceeds"))?;
        let method = Method::from_code(method)?;
        let r = py.detach(|| {
            preview::preview_disposal(&self.result, asset, wallet, q, p, time_ms, method)
        })?;
        let opt = |v: Option<i128>| v.map_or_else(String::new, fixed::format);
        let gain = match (r.short_gain, r.long_gain) {
            (Some(s), Some(l)) => Some(fixed::add(s, l)?),
            _ => None,
        };
        let d = PyDict::new(py);
        d.set_item("cost_basis", opt(r.basis))?;
        d.set_item("proceeds", fixed::format(r.proceeds))?;
        d.set_item("short_gain", opt(r.short_gain))?;
        d.set_item("long_gain", opt(r.long_gain))?;
        d.set_item("gain", opt(gain))?;
        Ok(d)
    }

    #[getter]
    fn n_matches(&self) -> usize {
        self.result.matches.len()
    }

    #[getter]
    fn n_lots(&self) -> usize {
        self.result.lots.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Replay(matches={}, open_lots={})",
            self.result.matches.len(),
            self.result.lots.len()
        )
    }
}
