//! `core_rs.portfolio_backtest.portfolio_backtest`: reads the aligned
//! arrays and the config dict, runs the loop without the GIL and returns
//! numpy arrays.

use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::arrays::column;
use crate::backtest_portfolio::{run, Config, Fills, Inputs, Matrix, Output, Trades};

/// A 2-D float64 argument: borrowed when C-contiguous, copied otherwise
/// (row-major either way, which is what the loop reads).
enum Grid<'py> {
    View(PyReadonlyArray2<'py, f64>),
    Owned(Vec<f64>, [usize; 2]),
}

impl Grid<'_> {
    fn matrix(&self) -> Matrix<'_> {
        match self {
            Grid::View(a) => {
                let data = a
                    .as_slice()
                    .expect("only C-contiguous arrays are kept as views");
                Matrix::new(data, a.shape()[0], a.shape()[1])
            }
            Grid::Owned(v, [rows, cols]) => Matrix::new(v, *rows, *cols),
        }
    }
}

fn grid<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Grid<'py>> {
    let array = obj.cast::<PyArray2<f64>>().map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a 2-D numpy array of float64 (bars x assets); convert it with \
             numpy.asarray({name}, dtype=numpy.float64)"
        ))
    })?;
    let view = array
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name} cannot be read: {e}")))?;
    // as_slice also accepts Fortran order, whose memory is column-major.
    if view.is_c_contiguous() {
        Ok(Grid::View(view))
    } else {
        let shape = [view.shape()[0], view.shape()[1]];
        Ok(Grid::Owned(
            view.as_array().iter().copied().collect(),
            shape,
        ))
    }
}

const KEYS: &str =
    "cash, fee, slippage, top_k, rebalance_every, min_score, whole_units, start, end";

fn value<'py, T: FromPyObjectOwned<'py>>(
    v: &Bound<'py, PyAny>,
    key: &str,
    what: &str,
) -> PyResult<T> {
    v.extract::<T>()
        .map_err(|_| PyValueError::new_err(format!("{key}: must be {what}, got {v}")))
}

/// The config dict: `top_k` and `rebalance_every` are required, the rest
/// default as in `Config::new`; an unknown key is refused (a typo would
/// otherwise run a different backtest silently).
fn config(d: &Bound<'_, PyDict>) -> PyResult<Config> {
    let mut cfg = Config::new(0, 0);
    let (mut top_k, mut every) = (false, false);
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyValueError::new_err(format!("config: keys must be strings, got {k}")))?;
        match key.as_str() {
            "cash" => cfg.cash = value(&v, &key, "a number")?,
            "fee" => cfg.fee = value(&v, &key, "a number")?,
            "slippage" => cfg.slippage = value(&v, &key, "a number")?,
            "min_score" => cfg.min_score = value(&v, &key, "a number")?,
            "whole_units" => cfg.whole_units = value(&v, &key, "True or False")?,
            "top_k" => {
                cfg.top_k = value(&v, &key, "an integer")?;
                top_k = true;
            }
            "rebalance_every" => {
                cfg.rebalance_every = value(&v, &key, "an integer")?;
                every = true;
            }
            "start" => cfg.start = value(&v, &key, "an integer")?,
            "end" => cfg.end = value(&v, &key, "an integer or None")?,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "config: unknown key {key:?} (known: {KEYS})"
                )))
            }
        }
    }
    for (given, key) in [(top_k, "top_k"), (every, "rebalance_every")] {
        if !given {
            return Err(PyValueError::new_err(format!(
                "{key}: is required in config"
            )));
        }
    }
    Ok(cfg)
}

macro_rules! columns {
    ($py:expr, $src:expr, $($field:ident),+) => {{
        let d = PyDict::new($py);
        $(d.set_item(stringify!($field), $src.$field.into_pyarray($py))?;)+
        d
    }};
}

fn fills<'py>(py: Python<'py>, f: Fills) -> PyResult<Bound<'py, PyDict>> {
    Ok(columns!(
        py, f, bar, time_ms, asset, qty, price, fee, reason
    ))
}

fn trades<'py>(py: Python<'py>, t: Trades) -> PyResult<Bound<'py, PyDict>> {
    Ok(columns!(
        py,
        t,
        entry_bar,
        exit_bar,
        entry_time_ms,
        exit_time_ms,
        entry_price,
        exit_price,
        size,
        pnl,
        return_pct,
        fees,
        duration_ms,
        exit_reason,
        asset
    ))
}

fn output<'py>(py: Python<'py>, out: Output, assets: usize) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let rows = out.rebalance_bars.len();
    d.set_item("equity", out.equity.into_pyarray(py))?;
    d.set_item("cash", out.cash.into_pyarray(py))?;
    d.set_item("exposure", out.exposure.into_pyarray(py))?;
    d.set_item("benchmark", out.benchmark.into_pyarray(py))?;
    let weights: Bound<'py, PyArray1<f32>> = out.weights.into_pyarray(py);
    d.set_item("weights", weights.reshape([rows, assets])?)?;
    let targets: Bound<'py, PyArray1<f32>> = out.target_weights.into_pyarray(py);
    d.set_item("target_weights", targets.reshape([rows, assets])?)?;
    d.set_item("rebalance_bars", out.rebalance_bars.into_pyarray(py))?;
    d.set_item("fills", fills(py, out.fills)?)?;
    d.set_item("trades", trades(py, out.trades)?)?;
    Ok(d)
}

/// Runs a portfolio backtest; see `core_rs.portfolio_backtest`.
#[pyfunction]
#[pyo3(signature = (time_ms, open, close, score, bear, config))]
pub fn portfolio_backtest<'py>(
    py: Python<'py>,
    time_ms: &Bound<'py, PyAny>,
    open: &Bound<'py, PyAny>,
    close: &Bound<'py, PyAny>,
    score: &Bound<'py, PyAny>,
    bear: &Bound<'py, PyAny>,
    config: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = self::config(config)?;
    let time_ms = column::<i64>(time_ms, "time_ms", "int64")?;
    let bear = column::<bool>(bear, "bear", "bool_")?;
    let (open, close, score) = (
        grid(open, "open")?,
        grid(close, "close")?,
        grid(score, "score")?,
    );
    let assets = open.matrix().cols;
    let inputs = Inputs {
        time_ms: time_ms.slice(),
        open: open.matrix(),
        close: close.matrix(),
        score: score.matrix(),
        bear: bear.slice(),
    };
    let out = py.detach(|| run(&inputs, &cfg))?;
    output(py, out, assets)
}
