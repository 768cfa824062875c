//! Bundles (`core_rs.bundle`): several kernels per series in one task
//! (`bundle_run`) and per-symbol incremental states (`BundleSet`). The
//! members arrive from Python as plain tuples `(kernel, [(param, value)],
//! alias, [(kernel input, bar field)])`; `core_rs.bundle` builds them.

use std::sync::{Mutex, MutexGuard, PoisonError};

use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::arrays::{ids, real_column, Column, IdSlice, Ids};
use super::indicators::{rows, Rows};
use crate::bundle::{Bundle, BundleStates, MemberDef, INPUTS};

type MemberTuple = (
    String,
    Vec<(String, f64)>,
    Option<String>,
    Vec<(String, String)>,
);

fn defs(members: Vec<MemberTuple>) -> Vec<MemberDef> {
    members
        .into_iter()
        .map(|(kernel, params, alias, inputs)| MemberDef {
            kernel,
            params,
            alias,
            inputs,
        })
        .collect()
}

fn tuples(defs: Vec<MemberDef>) -> Vec<MemberTuple> {
    defs.into_iter()
        .map(|d| (d.kernel, d.params, d.alias, d.inputs))
        .collect()
}

/// Which bar fields the caller passed.
fn given<T>(fields: &[Option<T>; INPUTS.len()]) -> [bool; INPUTS.len()] {
    std::array::from_fn(|k| fields[k].is_some())
}

/// The output column names of a bundle of these members.
#[pyfunction]
pub fn bundle_columns(members: Vec<MemberTuple>) -> PyResult<Vec<String>> {
    Ok(Bundle::new(&defs(members))?.columns().to_vec())
}

/// Runs every member over many series (each field a 2-D array or a list of
/// 1-D arrays, shorter series right-aligned); returns {column: 2-D array}.
#[pyfunction]
#[pyo3(signature = (members, open=None, high=None, low=None, close=None, volume=None))]
#[allow(clippy::too_many_arguments)]
pub fn bundle_run<'py>(
    py: Python<'py>,
    members: Vec<MemberTuple>,
    open: Option<Bound<'py, PyAny>>,
    high: Option<Bound<'py, PyAny>>,
    low: Option<Bound<'py, PyAny>>,
    close: Option<Bound<'py, PyAny>>,
    volume: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let bundle = Bundle::new(&defs(members))?;
    let fields = [open, high, low, close, volume];
    bundle.check_given(given(&fields))?;
    let needed = bundle.needed();
    let mut read: Vec<Option<Rows<'py>>> = Vec::with_capacity(INPUTS.len());
    for (k, field) in fields.iter().enumerate() {
        read.push(match field {
            Some(obj) if needed[k] => Some(rows(obj, INPUTS[k])?),
            _ => None,
        });
    }
    let mut n_series: Option<(usize, usize)> = None;
    for (k, r) in read.iter().enumerate() {
        let Some(r) = r else { continue };
        match n_series {
            None => n_series = Some((k, r.len())),
            Some((first, n)) if r.len() != n => {
                return Err(PyValueError::new_err(format!(
                    "{} has {} series but {} has {n}",
                    INPUTS[k],
                    r.len(),
                    INPUTS[first]
                )))
            }
            Some(_) => {}
        }
    }
    let n = n_series.map_or(0, |(_, n)| n);
    let series: Vec<[&[f64]; INPUTS.len()]> = (0..n)
        .map(|i| std::array::from_fn(|k| read[k].as_ref().map_or(&[][..], |r| r.row(i))))
        .collect();
    let width = bundle.check_many(&series)?;
    // SAFETY: run_many writes every element of every row.
    let arrays: Vec<Bound<'py, PyArray2<f64>>> = bundle
        .columns()
        .iter()
        .map(|_| unsafe { PyArray2::new(py, [n, width], false) })
        .collect();
    {
        let mut outs: Vec<&mut [f64]> = arrays
            .iter()
            .map(|a| unsafe { a.as_slice_mut() }.expect("new arrays are contiguous"))
            .collect();
        py.detach(|| bundle.run_many(&series, width, &mut outs));
    }
    let dict = PyDict::new(py);
    for (name, array) in bundle.columns().iter().zip(arrays) {
        dict.set_item(name, array)?;
    }
    Ok(dict)
}

/// Symbol ids as int32 or int64; other integer arrays and lists are
/// converted, anything else is refused.
fn id_column<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Ids<'py>> {
    match ids(obj, "ids") {
        Ok(ids) => Ok(ids),
        Err(err) => {
            let numpy = obj.py().import("numpy")?;
            let Ok(array) = numpy.call_method1("asarray", (obj,)) else {
                return Err(err);
            };
            let kind: String = array.getattr("dtype")?.getattr("kind")?.extract()?;
            let ndim: usize = array.getattr("ndim")?.extract()?;
            let size: usize = array.getattr("size")?.extract()?;
            // An empty list comes out as float64: no ids.
            if ndim == 1 && (kind == "i" || kind == "u" || size == 0) {
                ids(&array.call_method1("astype", ("int64",))?, "ids")
            } else {
                Err(err)
            }
        }
    }
}

/// Incremental bundle states for many symbols; `core_rs.bundle.BundleSet`
/// subclasses it with friendly member arguments and pickling.
///
/// The states sit behind a mutex taken only after the GIL is released, so a
/// second Python thread waits instead of failing.
#[pyclass(module = "core_rs._core", name = "BundleSet", subclass, frozen)]
pub struct BundleSet {
    inner: Mutex<BundleStates>,
}

impl BundleSet {
    fn lock(&self) -> MutexGuard<'_, BundleStates> {
        // The kernels do not panic; should one ever, keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[allow(clippy::too_many_arguments)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        ids_obj: &Bound<'py, PyAny>,
        fields: [Option<Bound<'py, PyAny>>; INPUTS.len()],
        out: Option<Bound<'py, PyArray2<f64>>>,
        peek: bool,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let flags = given(&fields);
        let (needed, nc, check) = py.detach(|| {
            let set = self.lock();
            let bundle = set.bundle();
            (bundle.needed(), set.n_columns(), bundle.check_given(flags))
        });
        check?;
        let ids = id_column(ids_obj)?;
        let ids = ids.slice();
        let n = ids.len();
        let mut columns: Vec<Option<Column<'py, f64>>> = Vec::with_capacity(INPUTS.len());
        for (k, field) in fields.iter().enumerate() {
            columns.push(match field {
                Some(obj) if needed[k] => Some(real_column(obj, INPUTS[k])?),
                _ => None,
            });
        }
        let inputs: [&[f64]; INPUTS.len()] =
            std::array::from_fn(|k| columns[k].as_ref().map_or(&[][..], Column::slice));
        let array = match out {
            Some(a) => {
                if a.shape() != [n, nc] {
                    return Err(PyValueError::new_err(format!(
                        "out must have shape ({n}, {nc}), got {:?}",
                        a.shape()
                    )));
                }
                a
            }
            None => PyArray2::zeros(py, [n, nc], false),
        };
        {
            let mut rw = array
                .try_readwrite()
                .map_err(|e| PyValueError::new_err(format!("out cannot be written: {e}")))?;
            let slice = rw
                .as_slice_mut()
                .map_err(|_| PyValueError::new_err("out must be a C-contiguous float64 array"))?;
            py.detach(|| {
                let mut set = self.lock();
                match (ids, peek) {
                    (IdSlice::I32(s), false) => set.update(s, &inputs, slice),
                    (IdSlice::I64(s), false) => set.update(s, &inputs, slice),
                    (IdSlice::I32(s), true) => set.peek(s, &inputs, slice),
                    (IdSlice::I64(s), true) => set.peek(s, &inputs, slice),
                }
            })?;
        }
        Ok(array)
    }
}

#[pymethods]
impl BundleSet {
    #[new]
    #[pyo3(signature = (members, n_symbols = 0))]
    fn new(members: Vec<MemberTuple>, n_symbols: i64) -> PyResult<Self> {
        let n = usize::try_from(n_symbols).map_err(|_| {
            PyValueError::new_err(format!("n_symbols must be >= 0, got {n_symbols}"))
        })?;
        let states = BundleStates::new(Bundle::new(&defs(members))?, n)?;
        Ok(BundleSet {
            inner: Mutex::new(states),
        })
    }

    /// Adds `n` symbols with fresh states; returns the id of the first.
    fn add_symbols(&self, py: Python<'_>, n: i64) -> PyResult<usize> {
        let n = usize::try_from(n)
            .map_err(|_| PyValueError::new_err(format!("n must be >= 0, got {n}")))?;
        Ok(py.detach(|| self.lock().add_symbols(n)))
    }

    #[getter]
    fn n_symbols(&self, py: Python<'_>) -> usize {
        py.detach(|| self.lock().n_symbols())
    }

    /// The output column names, in the order of each row.
    #[getter]
    fn columns(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| self.lock().bundle().columns().to_vec())
    }

    /// The members as tuples, every parameter spelled out.
    #[getter]
    fn _members(&self, py: Python<'_>) -> Vec<MemberTuple> {
        tuples(py.detach(|| self.lock().bundle().defs()))
    }

    /// Feeds one closed bar per listed id; returns (len(ids), n_columns).
    #[pyo3(signature = (ids, open=None, high=None, low=None, close=None, volume=None, out=None))]
    #[allow(clippy::too_many_arguments)]
    fn update<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        open: Option<Bound<'py, PyAny>>,
        high: Option<Bound<'py, PyAny>>,
        low: Option<Bound<'py, PyAny>>,
        close: Option<Bound<'py, PyAny>>,
        volume: Option<Bound<'py, PyAny>>,
        out: Option<Bound<'py, PyArray2<f64>>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.step(py, ids, [open, high, low, close, volume], out, false)
    }

    /// What `update` would return; no state changes.
    #[pyo3(signature = (ids, open=None, high=None, low=None, close=None, volume=None, out=None))]
    #[allow(clippy::too_many_arguments)]
    fn peek<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        open: Option<Bound<'py, PyAny>>,
        high: Option<Bound<'py, PyAny>>,
        low: Option<Bound<'py, PyAny>>,
        close: Option<Bound<'py, PyAny>>,
        volume: Option<Bound<'py, PyAny>>,
        out: Option<Bound<'py, PyArray2<f64>>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.step(py, ids, [open, high, low, close, volume], out, true)
    }

    /// Starts the listed symbols over, as if they had seen no bar.
    fn reset(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<()> {
        let ids = id_column(ids)?;
        let ids = ids.slice();
        Ok(py.detach(|| {
            let mut set = self.lock();
            match ids {
                IdSlice::I32(s) => set.reset(s),
                IdSlice::I64(s) => set.reset(s),
            }
        })?)
    }

    /// The members and every state as bytes (`BundleSet.from_bytes`).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| self.lock().save());
        PyBytes::new(py, &bytes)
    }

    /// Replaces members and states with those saved in `data`.
    fn _restore(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let loaded = py.detach(|| BundleStates::load(data))?;
        py.detach(|| *self.lock() = loaded);
        Ok(())
    }
}
