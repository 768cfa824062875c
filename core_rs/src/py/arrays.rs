//! Reading numpy arguments: exact dtype, one dimension, any strides. A wrong
//! argument is a ValueError that names it and says how to fix it.

use numpy::PyArrayDescrMethods;
use numpy::{
    Element, PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A 1-D numpy argument: borrowed when contiguous, copied otherwise.
pub(crate) enum Column<'py, T: Element> {
    View(PyReadonlyArray1<'py, T>),
    Owned(Vec<T>),
}

impl<T: Element + Copy> Column<'_, T> {
    pub(crate) fn slice(&self) -> &[T] {
        match self {
            Column::View(a) => a
                .as_slice()
                .expect("only contiguous arrays are kept as views"),
            Column::Owned(v) => v,
        }
    }
}

/// What `obj` is, for error messages: "a 2-D array of float32", "a list".
fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => {
            let dtype = a
                .dtype()
                .str()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "?".into());
            format!("a {}-D array of {dtype}", a.ndim())
        }
        Err(_) => match obj.get_type().name() {
            Ok(name) => format!("a {name}"),
            Err(_) => "an object of unknown type".into(),
        },
    }
}

/// `obj` as a 1-D array of `T`, or None if it is not one.
fn try_column<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Option<Column<'py, T>>> {
    let Ok(array) = obj.cast::<PyArray1<T>>() else {
        return Ok(None);
    };
    let view = array
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name} cannot be read: {e}")))?;
    if view.as_slice().is_ok() {
        Ok(Some(Column::View(view)))
    } else {
        Ok(Some(Column::Owned(
            view.as_array().iter().copied().collect(),
        )))
    }
}

/// `obj` as a 1-D array of exactly `T` (dtype name `dtype`).
pub(crate) fn column<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    dtype: &str,
) -> PyResult<Column<'py, T>> {
    try_column(obj, name)?.ok_or_else(|| {
        PyValueError::new_err(format!(
            "{name} must be a 1-D numpy array of {dtype}, got {}; convert it with \
             numpy.asarray({name}, dtype=numpy.{dtype})",
            describe(obj)
        ))
    })
}

/// Symbol ids: int32, or int64 (ids outside the int32 range are unknown).
pub(crate) enum Ids<'py> {
    I32(Column<'py, i32>),
    I64(Column<'py, i64>),
}

/// Borrowed symbol ids, safe to hand to a thread without the GIL.
#[derive(Clone, Copy)]
pub(crate) enum IdSlice<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl Ids<'_> {
    pub(crate) fn slice(&self) -> IdSlice<'_> {
        match self {
            Ids::I32(c) => IdSlice::I32(c.slice()),
            Ids::I64(c) => IdSlice::I64(c.slice()),
        }
    }
}

impl IdSlice<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            IdSlice::I32(s) => s.len(),
            IdSlice::I64(s) => s.len(),
        }
    }
}

pub(crate) fn ids<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Ids<'py>> {
    if let Some(c) = try_column::<i32>(obj, name)? {
        return Ok(Ids::I32(c));
    }
    if let Some(c) = try_column::<i64>(obj, name)? {
        return Ok(Ids::I64(c));
    }
    Err(PyValueError::new_err(format!(
        "{name} must be a 1-D numpy array of int32 or int64, got {}; convert it with \
         numpy.asarray({name}, dtype=numpy.int32)",
        describe(obj)
    )))
}

/// `obj` as a 1-D float64 column for an indicator: float64 arrays are used
/// as they are (copied only when not contiguous); other real dtypes, lists
/// and array-likes are converted; anything else is refused.
pub(crate) fn real_column<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Column<'py, f64>> {
    if let Some(c) = try_column::<f64>(obj, name)? {
        return Ok(c);
    }
    let array = as_real_array(obj, name)?;
    if array.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "{name} must be 1-D, got {}; for many series at once use core_rs.batch",
            describe(obj)
        )));
    }
    let converted = array.call_method1("astype", ("float64",))?;
    try_column::<f64>(&converted, name)?
        .ok_or_else(|| PyValueError::new_err(format!("{name} could not be converted to float64")))
}

/// `obj` as a numpy array of a real dtype (bool, integer or float).
pub(crate) fn as_real_array<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let array = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let numpy = py.import("numpy")?;
            let converted = numpy.call_method1("asarray", (obj,)).map_err(|e| {
                PyValueError::new_err(format!(
                    "{name} must be an array of numbers, got {}: {e}",
                    describe(obj)
                ))
            })?;
            converted
                .cast_into::<PyUntypedArray>()
                .map_err(|_| PyValueError::new_err(format!("{name} must be an array of numbers")))?
        }
    };
    let kind = array.dtype().kind();
    if !matches!(kind, b'b' | b'i' | b'u' | b'f') {
        return Err(PyValueError::new_err(format!(
            "{name} must hold real numbers (float64 preferred), got {}",
            describe(obj)
        )));
    }
    Ok(array)
}
