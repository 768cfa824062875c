//! The indicator entry points: one generic binding per call shape, driven by
//! the kernel registry. The Python package gives each kernel its TA-Lib
//! signature (`core_rs.sma(real, timeperiod=30)`) on top of these.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::arrays::{as_real_array, real_column, Column};
use crate::batch;
use crate::indicators::{self, Spec, StateBox};

fn spec_with(name: &str, params: &[f64]) -> PyResult<&'static Spec> {
    let spec = indicators::find(name)?;
    spec.validate(params)?;
    Ok(spec)
}

fn check_input_count(spec: &Spec, got: usize) -> PyResult<()> {
    if got == spec.inputs.len() {
        return Ok(());
    }
    Err(PyValueError::new_err(format!(
        "{} takes {} input arrays ({}), got {got}",
        spec.name,
        spec.inputs.len(),
        spec.inputs.join(", ")
    )))
}

/// Fresh float64 arrays, filled by the kernel without the GIL.
fn new_columns<'py>(py: Python<'py>, n: usize, k: usize) -> Vec<Bound<'py, PyArray1<f64>>> {
    // SAFETY: every kernel writes every element before the arrays are seen.
    (0..k)
        .map(|_| unsafe { PyArray1::new(py, n, false) })
        .collect()
}

/// Runs kernel `name` over one series per input; returns a tuple of arrays.
#[pyfunction]
pub fn run<'py>(
    py: Python<'py>,
    name: &str,
    inputs: Vec<Bound<'py, PyAny>>,
    params: Vec<f64>,
) -> PyResult<Bound<'py, PyTuple>> {
    let spec = spec_with(name, &params)?;
    check_input_count(spec, inputs.len())?;
    let columns = inputs
        .iter()
        .zip(spec.inputs)
        .map(|(obj, input)| real_column(obj, input))
        .collect::<PyResult<Vec<Column<f64>>>>()?;
    let slices: Vec<&[f64]> = columns.iter().map(Column::slice).collect();
    let n = slices.first().map_or(0, |s| s.len());
    for (s, input) in slices.iter().zip(spec.inputs) {
        if s.len() != n {
            return Err(PyValueError::new_err(format!(
                "{input} has {} values but {} has {n}; every input must have the same length",
                s.len(),
                spec.inputs[0]
            )));
        }
    }
    let k = spec.outputs.len();
    if k == 1 || n == 0 {
        let arrays = new_columns(py, n, k);
        {
            // SAFETY: the arrays are new, contiguous and not yet shared.
            let mut outs: Vec<&mut [f64]> = arrays
                .iter()
                .map(|a| unsafe { a.as_slice_mut() }.expect("new arrays are contiguous"))
                .collect();
            py.detach(|| spec.run_series(&slices, &params, &mut outs));
        }
        return PyTuple::new(py, arrays);
    }
    // Several outputs share one (k, n) block and are returned as its rows:
    // one allocation instead of k, which on arrays of a few hundred KB is
    // often the difference between reusing heap pages and faulting fresh
    // ones on every call.
    // SAFETY: run_series writes every element; the block is not yet shared.
    let block = unsafe { PyArray2::<f64>::new(py, [k, n], false) };
    {
        let all = unsafe { block.as_slice_mut() }.expect("new arrays are contiguous");
        let mut outs: Vec<&mut [f64]> = all.chunks_mut(n).collect();
        py.detach(|| spec.run_series(&slices, &params, &mut outs));
    }
    let rows = (0..k)
        .map(|i| block.get_item(i))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, rows)
}

/// One batch input: a C-contiguous 2-D array, or a list of 1-D columns.
pub(super) enum Rows<'py> {
    Matrix(PyReadonlyArray2<'py, f64>),
    List(Vec<Column<'py, f64>>),
}

impl Rows<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            Rows::Matrix(m) => m.shape()[0],
            Rows::List(l) => l.len(),
        }
    }

    pub(super) fn row(&self, i: usize) -> &[f64] {
        match self {
            Rows::Matrix(m) => {
                let width = m.shape()[1];
                let all = m.as_slice().expect("made contiguous");
                &all[i * width..(i + 1) * width]
            }
            Rows::List(l) => l[i].slice(),
        }
    }
}

pub(super) fn rows<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Rows<'py>> {
    let py = obj.py();
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj.try_iter()?.collect::<PyResult<Vec<_>>>()?;
        let columns = items
            .iter()
            .enumerate()
            .map(|(i, item)| real_column(item, &format!("{name}[{i}]")))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(Rows::List(columns));
    }
    let array = as_real_array(obj, name)?;
    if array.ndim() != 2 {
        return Err(PyValueError::new_err(format!(
            "{name} must be a 2-D array (series x time) or a list of 1-D arrays, got a {}-D array",
            array.ndim()
        )));
    }
    let numpy = py.import("numpy")?;
    let matrix = numpy
        .call_method1("ascontiguousarray", (array, "float64"))?
        .cast_into::<PyArray2<f64>>()
        .map_err(|_| PyValueError::new_err(format!("{name} could not be converted to float64")))?;
    Ok(Rows::Matrix(matrix.try_readonly().map_err(|e| {
        PyValueError::new_err(format!("{name} cannot be read: {e}"))
    })?))
}

/// Reads batch inputs into per-series slices, checking they line up.
fn series_of<'a>(spec: &Spec, inputs: &'a [Rows<'_>]) -> PyResult<Vec<Vec<&'a [f64]>>> {
    let n = inputs.first().map_or(0, Rows::len);
    for (r, input) in inputs.iter().zip(spec.inputs) {
        if r.len() != n {
            return Err(PyValueError::new_err(format!(
                "{input} has {} series but {} has {n}",
                r.len(),
                spec.inputs[0]
            )));
        }
    }
    (0..n)
        .map(|i| {
            let row: Vec<&[f64]> = inputs.iter().map(|r| r.row(i)).collect();
            let len = row.first().map_or(0, |x| x.len());
            for (x, input) in row.iter().zip(spec.inputs) {
                if x.len() != len {
                    return Err(PyValueError::new_err(format!(
                        "series {i}: {input} has {} values but {} has {len}",
                        x.len(),
                        spec.inputs[0]
                    )));
                }
            }
            Ok(row)
        })
        .collect()
}

/// Runs kernel `name` over many series on all cores; returns a tuple of
/// 2-D arrays (series x max length, shorter series right-aligned).
#[pyfunction]
pub fn run_batch<'py>(
    py: Python<'py>,
    name: &str,
    inputs: Vec<Bound<'py, PyAny>>,
    params: Vec<f64>,
) -> PyResult<Bound<'py, PyTuple>> {
    let spec = spec_with(name, &params)?;
    check_input_count(spec, inputs.len())?;
    let matrices = inputs
        .iter()
        .zip(spec.inputs)
        .map(|(obj, input)| rows(obj, input))
        .collect::<PyResult<Vec<_>>>()?;
    let series = series_of(spec, &matrices)?;
    let width = series
        .iter()
        .map(|s| s.first().map_or(0, |x| x.len()))
        .max()
        .unwrap_or(0);
    // SAFETY: run_many writes every element of every row.
    let arrays: Vec<Bound<PyArray2<f64>>> = (0..spec.outputs.len())
        .map(|_| unsafe { PyArray2::new(py, [series.len(), width], false) })
        .collect();
    {
        let mut outs: Vec<&mut [f64]> = arrays
            .iter()
            .map(|a| unsafe { a.as_slice_mut() }.expect("new arrays are contiguous"))
            .collect();
        py.detach(|| batch::run_many(spec, &params, &series, width, &mut outs));
    }
    PyTuple::new(py, arrays)
}

/// The registry: one dict per kernel (name, inputs, outputs, params with
/// default/min/max/integer, has_state).
#[pyfunction]
pub fn kernels(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for spec in indicators::all() {
        let d = PyDict::new(py);
        d.set_item("name", spec.name)?;
        d.set_item("inputs", spec.inputs.to_vec())?;
        d.set_item("outputs", spec.outputs.to_vec())?;
        let params = PyList::empty(py);
        for p in spec.params {
            let pd = PyDict::new(py);
            pd.set_item("name", p.name)?;
            pd.set_item("default", p.default)?;
            pd.set_item("min", p.min)?;
            pd.set_item("max", p.max)?;
            pd.set_item("integer", p.integer)?;
            params.append(pd)?;
        }
        d.set_item("params", params)?;
        d.set_item("has_state", spec.new_state.is_some())?;
        list.append(d)?;
    }
    Ok(list)
}

/// The number of leading NaN outputs of `name` with these parameters.
#[pyfunction]
pub fn lookback(name: &str, params: Vec<f64>) -> PyResult<usize> {
    let spec = spec_with(name, &params)?;
    Ok((spec.lookback)(&params))
}

/// Threads the batch functions run on (MM_CORE_THREADS or one per core).
#[pyfunction]
pub fn batch_threads(py: Python<'_>) -> usize {
    py.detach(batch::threads)
}

/// One indicator's incremental state; `core_rs.incremental` subclasses it
/// per indicator with TA-Lib's keyword arguments.
#[pyclass(module = "core_rs._core", name = "Incremental", subclass)]
pub struct Incremental {
    state: StateBox,
    out: Vec<f64>,
}

impl Incremental {
    fn bar(&self, values: &Bound<'_, PyTuple>) -> PyResult<Vec<f64>> {
        let spec = self.state.spec;
        if values.len() != spec.inputs.len() {
            return Err(PyValueError::new_err(format!(
                "{} takes one value per input ({}), got {}",
                spec.name,
                spec.inputs.join(", "),
                values.len()
            )));
        }
        values
            .iter()
            .zip(spec.inputs)
            .map(|(v, input)| {
                v.extract::<f64>().map_err(|_| {
                    PyValueError::new_err(format!("{input} must be a number, got {v:?}"))
                })
            })
            .collect()
    }

    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.out.len() == 1 {
            Ok(self.out[0].into_pyobject(py)?.into_any())
        } else {
            Ok(PyTuple::new(py, &self.out)?.into_any())
        }
    }
}

#[pymethods]
impl Incremental {
    #[new]
    fn new(name: &str, params: Vec<f64>) -> PyResult<Self> {
        let spec = indicators::find(name)?;
        let state = spec.new_state(&params)?;
        Ok(Incremental {
            out: vec![f64::NAN; spec.outputs.len()],
            state,
        })
    }

    /// Feeds one closed bar (one value per input) and returns the new
    /// value, or a tuple when the indicator has several outputs.
    #[pyo3(signature = (*values))]
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        values: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bar = self.bar(values)?;
        let mut out = std::mem::take(&mut self.out);
        self.state.update(&bar, &mut out);
        self.out = out;
        self.result(py)
    }

    /// The value(s) if this bar closed now, leaving the state unchanged:
    /// for the forming candle.
    #[pyo3(signature = (*values))]
    fn peek<'py>(
        &mut self,
        py: Python<'py>,
        values: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bar = self.bar(values)?;
        let mut out = std::mem::take(&mut self.out);
        self.state.peek(&bar, &mut out);
        self.out = out;
        self.result(py)
    }

    /// Forgets every bar seen.
    fn reset(&mut self) {
        self.state.reset();
    }

    #[getter]
    fn name(&self) -> &'static str {
        self.state.spec.name
    }

    #[getter]
    fn params(&self) -> Vec<f64> {
        self.state.params.clone()
    }

    /// The state as bytes; `_restore` reads them back into a state built
    /// with the same name and parameters.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.state.save())
    }

    fn _restore(&mut self, data: &[u8]) -> PyResult<()> {
        let spec = self.state.spec;
        self.state = spec.load_state(&self.state.params.clone(), data)?;
        Ok(())
    }
}
