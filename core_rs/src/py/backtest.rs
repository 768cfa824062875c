//! The backtest entry points: argument parsing (strategy and config dicts),
//! the run without the GIL, numpy results. `core_rs.backtest` documents the
//! Python shapes; `docs/backtest.md` the semantics.

use std::collections::HashSet;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::arrays::{column, real_column, Column};
use crate::backtest::engine::{atr_series, run_into};
use crate::backtest::stats::compute;
use crate::backtest::sweep::SweepError;
use crate::backtest::{
    self, Bars, Conditions, Config, ExitReason, MaKind, StopRule, Strategy, SweepSpec, Trade,
    STAT_NAMES,
};

/// A dict argument read key by key; keys nobody read are an error, so a
/// misspelt setting does not silently fall back to its default.
struct Kw<'a, 'py> {
    what: &'static str,
    dict: &'a Bound<'py, PyDict>,
    used: HashSet<String>,
}

impl<'a, 'py> Kw<'a, 'py> {
    fn new(what: &'static str, dict: &'a Bound<'py, PyDict>) -> Self {
        Kw {
            what,
            dict,
            used: HashSet::new(),
        }
    }

    fn get(&mut self, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.used.insert(key.to_string());
        Ok(self.dict.get_item(key)?.filter(|v| !v.is_none()))
    }

    fn value<T: for<'b> FromPyObjectOwned<'b>>(&mut self, key: &str, default: T) -> PyResult<T> {
        match self.get(key)? {
            None => Ok(default),
            Some(v) => v.extract::<T>().map_err(|_| {
                PyValueError::new_err(format!(
                    "{key}: wrong type ({}) in {}",
                    v.get_type().name().map_or("?".into(), |n| n.to_string()),
                    self.what
                ))
            }),
        }
    }

    fn finish(&self) -> PyResult<()> {
        for key in self.dict.keys() {
            let k: String = key.extract()?;
            if !self.used.contains(&k) {
                return Err(PyValueError::new_err(format!(
                    "{k}: not a {} key (misspelt?)",
                    self.what
                )));
            }
        }
        Ok(())
    }
}

fn period(kw: &mut Kw, key: &str, default: usize) -> PyResult<usize> {
    let v: i64 = kw.value(key, default as i64)?;
    usize::try_from(v)
        .map_err(|_| PyValueError::new_err(format!("{key}: must be positive, got {v}")))
}

/// The strategy of a dict; `None` for kind "conditions" (given arrays).
fn parse_strategy(kind: &str, kw: &mut Kw) -> PyResult<Option<Strategy>> {
    let s = match kind {
        "ma_cross" => {
            let fast = period(kw, "fast", 10)?;
            let slow = period(kw, "slow", 30)?;
            let ma: String = kw.value("ma", "sma".to_string())?;
            let kind = match ma.as_str() {
                "sma" => MaKind::Sma,
                "ema" => MaKind::Ema,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "ma: must be 'sma' or 'ema', got {other:?}"
                    )))
                }
            };
            Strategy::MaCross { fast, slow, kind }
        }
        "rsi" => Strategy::Rsi {
            period: period(kw, "period", 14)?,
            lower: kw.value("lower", 30.0)?,
            upper: kw.value("upper", 70.0)?,
        },
        "bollinger" => Strategy::Bollinger {
            period: period(kw, "period", 20)?,
            k: kw.value("k", 2.0)?,
        },
        "threshold" => Strategy::Threshold {
            enter_above: kw.value("enter_above", 80.0)?,
            exit_below: kw.value("exit_below", 50.0)?,
        },
        "direction" => Strategy::Direction,
        "conditions" => return Ok(None),
        other => {
            return Err(PyValueError::new_err(format!(
                "kind: must be one of ma_cross, rsi, bollinger, threshold, direction, \
                 conditions; got {other:?}"
            )))
        }
    };
    s.validate()?;
    Ok(Some(s))
}

fn stop_rule(kw: &mut Kw, key: &'static str) -> PyResult<StopRule> {
    let Some(v) = kw.get(key)? else {
        return Ok(StopRule::None);
    };
    let bad = || {
        PyValueError::new_err(format!(
            "{key}: must be None, ('pct', fraction) or ('atr', multiple)"
        ))
    };
    let (how, x): (String, f64) = v.extract().map_err(|_| bad())?;
    match how.as_str() {
        "pct" => Ok(StopRule::Pct(x)),
        "atr" => Ok(StopRule::Atr(x)),
        _ => Err(bad()),
    }
}

/// Reads the config keys of `kw` over `base`.
fn read_config(kw: &mut Kw, base: &Config) -> PyResult<Config> {
    let end: Option<i64> = kw.value("end", None)?;
    let start: i64 = kw.value("start", base.start as i64)?;
    let atr_period: i64 = kw.value("atr_period", base.atr_period as i64)?;
    let to_usize = |name: &str, v: i64| {
        usize::try_from(v)
            .map_err(|_| PyValueError::new_err(format!("{name}: must be >= 0, got {v}")))
    };
    let cfg = Config {
        cash: kw.value("cash", base.cash)?,
        fee: kw.value("fee", base.fee)?,
        slippage: kw.value("slippage", base.slippage)?,
        whole_units: kw.value("whole_units", base.whole_units)?,
        allow_short: kw.value("allow_short", base.allow_short)?,
        size_fraction: kw.value("size_fraction", base.size_fraction)?,
        stop_loss: if kw.dict.contains(PyString::new(kw.dict.py(), "stop_loss"))? {
            stop_rule(kw, "stop_loss")?
        } else {
            base.stop_loss
        },
        take_profit: if kw
            .dict
            .contains(PyString::new(kw.dict.py(), "take_profit"))?
        {
            stop_rule(kw, "take_profit")?
        } else {
            base.take_profit
        },
        atr_period: to_usize("atr_period", atr_period)?,
        bars_per_year: kw.value("bars_per_year", base.bars_per_year)?,
        start: to_usize("start", start)?,
        end: match end {
            Some(e) => Some(to_usize("end", e)?),
            None => base.end,
        },
    };
    Ok(cfg)
}

fn parse_config(config: &Bound<'_, PyDict>, n: usize) -> PyResult<Config> {
    let mut kw = Kw::new("config", config);
    let cfg = read_config(&mut kw, &Config::default())?;
    kw.finish()?;
    cfg.validate(n)?;
    Ok(cfg)
}

/// The bar columns of a call, kept alive while their slices are used.
struct BarColumns<'py> {
    time_ms: Column<'py, i64>,
    ohlc: [Column<'py, f64>; 4],
}

impl<'py> BarColumns<'py> {
    fn read(
        time_ms: &Bound<'py, PyAny>,
        open: &Bound<'py, PyAny>,
        high: &Bound<'py, PyAny>,
        low: &Bound<'py, PyAny>,
        close: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        let cols = BarColumns {
            time_ms: column::<i64>(time_ms, "time_ms", "int64")?,
            ohlc: [
                real_column(open, "open")?,
                real_column(high, "high")?,
                real_column(low, "low")?,
                real_column(close, "close")?,
            ],
        };
        cols.bars().check()?;
        Ok(cols)
    }

    fn bars(&self) -> Bars<'_> {
        Bars {
            time_ms: self.time_ms.slice(),
            open: self.ohlc[0].slice(),
            high: self.ohlc[1].slice(),
            low: self.ohlc[2].slice(),
            close: self.ohlc[3].slice(),
        }
    }
}

fn bool_array(obj: Option<Bound<'_, PyAny>>, name: &str, n: usize) -> PyResult<Vec<bool>> {
    match obj {
        None => Ok(vec![false; n]),
        Some(o) => Ok(column::<bool>(&o, name, "bool_")?.slice().to_vec()),
    }
}

fn stats_dict<'py>(py: Python<'py>, values: &[f64]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, v) in STAT_NAMES.iter().zip(values) {
        d.set_item(*name, *v)?;
    }
    Ok(d)
}

fn trades_dict<'py>(py: Python<'py>, trades: &[Trade]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let ints = |f: fn(&Trade) -> i64| trades.iter().map(f).collect::<Vec<i64>>();
    let reals = |f: fn(&Trade) -> f64| trades.iter().map(f).collect::<Vec<f64>>();
    d.set_item("entry_bar", ints(|t| t.entry_bar as i64).into_pyarray(py))?;
    d.set_item("exit_bar", ints(|t| t.exit_bar as i64).into_pyarray(py))?;
    d.set_item("entry_time_ms", ints(|t| t.entry_time_ms).into_pyarray(py))?;
    d.set_item("exit_time_ms", ints(|t| t.exit_time_ms).into_pyarray(py))?;
    d.set_item("entry_price", reals(|t| t.entry_price).into_pyarray(py))?;
    d.set_item("exit_price", reals(|t| t.exit_price).into_pyarray(py))?;
    d.set_item("size", reals(|t| t.size).into_pyarray(py))?;
    d.set_item("pnl", reals(|t| t.pnl).into_pyarray(py))?;
    d.set_item("return_pct", reals(|t| t.ret).into_pyarray(py))?;
    d.set_item("fees", reals(|t| t.fees).into_pyarray(py))?;
    d.set_item("duration_ms", ints(|t| t.duration_ms).into_pyarray(py))?;
    let reasons: Vec<u8> = trades.iter().map(|t| t.exit_reason as u8).collect();
    d.set_item("exit_reason", reasons.into_pyarray(py))?;
    Ok(d)
}

/// The given (or, for ATR stops, computed) ATR; empty when unused.
fn atr_for<'py>(atr: Option<&Bound<'py, PyAny>>, bars: &Bars, cfg: &Config) -> PyResult<Vec<f64>> {
    match atr {
        Some(a) => {
            let col = real_column(a, "atr")?;
            if col.slice().len() != bars.len() {
                return Err(PyValueError::new_err(format!(
                    "atr has {} values but close has {}",
                    col.slice().len(),
                    bars.len()
                )));
            }
            Ok(col.slice().to_vec())
        }
        None if cfg.needs_atr() => Ok(atr_series(bars, cfg.atr_period)),
        None => Ok(Vec::new()),
    }
}

/// One backtest; see `core_rs.backtest.run_backtest`.
#[pyfunction]
#[pyo3(signature = (time_ms, open, high, low, close, strategy, config, series=None, direction=None, atr=None))]
#[allow(clippy::too_many_arguments)]
pub fn run_backtest<'py>(
    py: Python<'py>,
    time_ms: &Bound<'py, PyAny>,
    open: &Bound<'py, PyAny>,
    high: &Bound<'py, PyAny>,
    low: &Bound<'py, PyAny>,
    close: &Bound<'py, PyAny>,
    strategy: &Bound<'py, PyDict>,
    config: &Bound<'py, PyDict>,
    series: Option<&Bound<'py, PyAny>>,
    direction: Option<&Bound<'py, PyAny>>,
    atr: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cols = BarColumns::read(time_ms, open, high, low, close)?;
    let bars = cols.bars();
    let n = bars.len();
    let mut kw = Kw::new("strategy", strategy);
    let kind: String = kw
        .get("kind")?
        .ok_or_else(|| PyValueError::new_err("strategy needs a 'kind'"))?
        .extract()?;
    let strat = parse_strategy(&kind, &mut kw)?;
    let given = if strat.is_none() {
        let mut c = Conditions::new(0);
        c.enter_long = bool_array(kw.get("enter_long")?, "enter_long", n)?;
        c.exit_long = bool_array(kw.get("exit_long")?, "exit_long", n)?;
        c.enter_short = bool_array(kw.get("enter_short")?, "enter_short", n)?;
        c.exit_short = bool_array(kw.get("exit_short")?, "exit_short", n)?;
        c.check(n)?;
        Some(c)
    } else {
        None
    };
    kw.finish()?;
    let cfg = parse_config(config, n)?;
    let series = series.map(|s| real_column(s, "series")).transpose()?;
    let direction = direction
        .map(|d| column::<i8>(d, "direction", "int8"))
        .transpose()?;
    let atr = atr_for(atr, &bars, &cfg)?;
    let (start, end) = cfg.validate(n)?;
    let series_s = series.as_ref().map(Column::slice);
    let direction_s = direction.as_ref().map(Column::slice);
    // The equity, drawdown and position columns are written in place:
    // NaN outside the window.
    // SAFETY: every element is written below before the arrays are shared.
    let columns: [Bound<'py, PyArray1<f64>>; 3] =
        std::array::from_fn(|_| unsafe { PyArray1::<f64>::new(py, n, false) });
    let (trades, stats) = {
        // SAFETY: the arrays are new, contiguous and not yet shared.
        let [equity, drawdown, position] = columns
            .each_ref()
            .map(|a| unsafe { a.as_slice_mut() }.expect("contiguous"));
        py.detach(|| -> Result<_, crate::CoreError> {
            let cond = match (strat, given) {
                (Some(s), _) => s.conditions(bars.close, series_s, direction_s)?,
                (None, Some(c)) => c,
                (None, None) => unreachable!("conditions are read above"),
            };
            for col in [&mut *equity, &mut *drawdown, &mut *position] {
                col[..start].fill(f64::NAN);
                col[end..].fill(f64::NAN);
            }
            let (eq, pos) = (&mut equity[start..end], &mut position[start..end]);
            let trades = run_into(&bars, &cond, &cfg, &atr, start, end, eq, pos);
            let stats = compute(
                &bars.time_ms[start..end],
                eq,
                &bars.close[start..end],
                &trades,
                start,
                cfg.bars_per_year,
            );
            let mut peak = f64::NEG_INFINITY;
            for (d, &e) in drawdown[start..end].iter_mut().zip(eq.iter()) {
                peak = peak.max(e);
                *d = 1.0 - e / peak;
            }
            Ok((trades, stats))
        })?
    };
    let [equity, drawdown, position] = columns;
    let out = PyDict::new(py);
    out.set_item("trades", trades_dict(py, &trades)?)?;
    out.set_item("equity", equity)?;
    out.set_item("drawdown", drawdown)?;
    out.set_item("position", position)?;
    out.set_item("stats", stats_dict(py, &stats.to_array())?)?;
    let entries: Vec<i64> = trades.iter().map(|t| t.entry_bar as i64).collect();
    let exits: Vec<i64> = trades.iter().map(|t| t.exit_bar as i64).collect();
    out.set_item("entries", entries.into_pyarray(py))?;
    out.set_item("exits", exits.into_pyarray(py))?;
    Ok(out)
}

/// Statistics of an equity curve and its trades (the portfolio backtest
/// reuses them); trade bars index the given arrays.
#[pyfunction]
#[pyo3(signature = (time_ms, equity, close, trades, bars_per_year))]
pub fn statistics<'py>(
    py: Python<'py>,
    time_ms: &Bound<'py, PyAny>,
    equity: &Bound<'py, PyAny>,
    close: &Bound<'py, PyAny>,
    trades: &Bound<'py, PyDict>,
    bars_per_year: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let t = column::<i64>(time_ms, "time_ms", "int64")?;
    let eq = real_column(equity, "equity")?;
    let c = real_column(close, "close")?;
    let need = |key: &str| -> PyResult<Bound<'py, PyAny>> {
        trades
            .get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("trades needs {key:?}")))
    };
    let entry = column::<i64>(&need("entry_bar")?, "entry_bar", "int64")?;
    let exit = column::<i64>(&need("exit_bar")?, "exit_bar", "int64")?;
    let pnl = real_column(&need("pnl")?, "pnl")?;
    let ret = real_column(&need("return_pct")?, "return_pct")?;
    let dur = column::<i64>(&need("duration_ms")?, "duration_ms", "int64")?;
    let fees = match trades.get_item("fees")? {
        Some(f) => real_column(&f, "fees")?.slice().to_vec(),
        None => vec![0.0; entry.slice().len()],
    };
    let k = entry.slice().len();
    for (name, len) in [
        ("exit_bar", exit.slice().len()),
        ("pnl", pnl.slice().len()),
        ("return_pct", ret.slice().len()),
        ("duration_ms", dur.slice().len()),
        ("fees", fees.len()),
    ] {
        if len != k {
            return Err(PyValueError::new_err(format!(
                "trades[{name:?}] has {len} values but entry_bar has {k}"
            )));
        }
    }
    let mut rows = Vec::with_capacity(k);
    for (i, &fee) in fees.iter().enumerate() {
        let (e, x) = (entry.slice()[i], exit.slice()[i]);
        if e < 0 || x < 0 {
            return Err(PyValueError::new_err(format!(
                "trades: bar indices must be >= 0, got {e}..{x}"
            )));
        }
        rows.push(Trade {
            entry_bar: e as usize,
            exit_bar: x as usize,
            entry_time_ms: 0,
            exit_time_ms: dur.slice()[i],
            entry_price: f64::NAN,
            exit_price: f64::NAN,
            size: f64::NAN,
            pnl: pnl.slice()[i],
            ret: ret.slice()[i],
            fees: fee,
            duration_ms: dur.slice()[i],
            exit_reason: ExitReason::Signal,
        });
    }
    let (ts, es, cs) = (t.slice(), eq.slice(), c.slice());
    let stats = py.detach(|| backtest::statistics(ts, es, cs, &rows, 0, bars_per_year))?;
    stats_dict(py, &stats.to_array())
}

/// Cancellation and progress of a running sweep, safe to call from any
/// thread while the sweep runs without the GIL.
#[pyclass(module = "core_rs._core", name = "SweepControl", frozen)]
pub struct SweepControl {
    inner: Arc<backtest::SweepControl>,
}

#[pymethods]
impl SweepControl {
    #[new]
    fn new() -> Self {
        SweepControl {
            inner: Arc::new(backtest::SweepControl::new()),
        }
    }

    /// Asks the sweep to stop before its next parameter set.
    fn cancel(&self) {
        self.inner.cancel();
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }

    /// Parameter sets finished so far.
    fn done(&self) -> usize {
        self.inner.done()
    }
}

/// Many parameter sets over one series; see `core_rs.backtest.sweep`.
#[pyfunction]
#[pyo3(signature = (time_ms, open, high, low, close, kind, params, config, windows, control=None, series=None, direction=None))]
#[allow(clippy::too_many_arguments)]
pub fn sweep<'py>(
    py: Python<'py>,
    time_ms: &Bound<'py, PyAny>,
    open: &Bound<'py, PyAny>,
    high: &Bound<'py, PyAny>,
    low: &Bound<'py, PyAny>,
    close: &Bound<'py, PyAny>,
    kind: &str,
    params: Vec<Bound<'py, PyDict>>,
    config: &Bound<'py, PyDict>,
    windows: Vec<(i64, i64)>,
    control: Option<&Bound<'py, SweepControl>>,
    series: Option<&Bound<'py, PyAny>>,
    direction: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cols = BarColumns::read(time_ms, open, high, low, close)?;
    let bars = cols.bars();
    let mut base_kw = Kw::new("config", config);
    let base = read_config(&mut base_kw, &Config::default())?;
    base_kw.finish()?;
    let mut specs = Vec::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        let mut kw = Kw::new("params", p);
        let in_set = |e: PyErr| PyValueError::new_err(format!("params[{i}]: {}", e.value(py)));
        let cfg = read_config(&mut kw, &base).map_err(in_set)?;
        let strat = parse_strategy(kind, &mut kw)
            .map_err(in_set)?
            .ok_or_else(|| PyValueError::new_err("kind 'conditions' cannot be swept"))?;
        kw.finish().map_err(in_set)?;
        specs.push(SweepSpec {
            strategy: strat,
            config: cfg,
        });
    }
    let windows = windows
        .into_iter()
        .map(|(s, e)| match (usize::try_from(s), usize::try_from(e)) {
            (Ok(s), Ok(e)) => Ok((s, e)),
            _ => Err(PyValueError::new_err(format!(
                "windows: bounds must be >= 0, got ({s}, {e})"
            ))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    let series = series.map(|s| real_column(s, "series")).transpose()?;
    let direction = direction
        .map(|d| column::<i8>(d, "direction", "int8"))
        .transpose()?;
    let control = match control {
        Some(c) => c.get().inner.clone(),
        None => Arc::new(backtest::SweepControl::new()),
    };
    let series_s = series.as_ref().map(Column::slice);
    let direction_s = direction.as_ref().map(Column::slice);
    let result =
        py.detach(|| backtest::sweep(&bars, series_s, direction_s, &specs, &windows, &control));
    let values = match result {
        Ok(v) => v,
        Err(SweepError::Cancelled) => return Err(PyValueError::new_err("cancelled")),
        Err(SweepError::Invalid(e)) => return Err(e.into()),
    };
    let shape = [specs.len(), windows.len(), STAT_NAMES.len()];
    let flat: Bound<'py, PyArray1<f64>> = values.into_pyarray(py);
    let shaped = flat.reshape(shape)?;
    Ok(shaped.into_any())
}

/// The statistic names, in the order of `sweep`'s last axis.
#[pyfunction]
pub fn stat_names(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(py, STAT_NAMES)
}
