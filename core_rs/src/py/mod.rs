//! The Python module `core_rs._core`. Wrappers extract arguments, release the
//! GIL around the kernel and convert results; no arithmetic lives here.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::CoreError;

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

#[pymodule]
mod _core {
    #[pymodule_export]
    const VERSION: &str = env!("CARGO_PKG_VERSION");
}
