//! Indicator kernels, free of Python.
//!
//! Every kernel is described by a [`Spec`]: its inputs, outputs and integer
//! or real parameters, a `lookback` (how many leading outputs are NaN), a
//! `run` function over a gap-free segment, and optionally an incremental
//! [`State`]. The Python bindings, the batch runner and the tests all work
//! from the registry ([`all`], [`find`]), so adding a kernel is adding one
//! file and one line in its group's `SPECS`.
//!
//! NaN policy (the same everywhere): a bar where any input is NaN or
//! infinite is a gap. Outputs at a gap are NaN, and the kernel restarts after
//! it: the result equals the kernel run separately on each gap-free run of
//! bars, each with its own warm-up. TA-Lib instead lets a NaN poison every
//! later value of a recursive kernel (EMA, RSI, ATR...) forever.

pub mod extra;
pub mod hlc;
pub mod ma;
pub mod momentum;
pub mod osc;
pub mod risk;
pub mod segments;
pub mod state;

pub use segments::run_segmented;
pub use state::{State, StateBox};

use crate::CoreError;

/// The longest period any kernel accepts (TA-Lib's limit).
pub const MAX_PERIOD: f64 = 100_000.0;

/// One numeric parameter: integer periods or real multipliers.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    /// TA-Lib's default; the Python wrapper's default must equal it.
    pub default: f64,
    pub min: f64,
    pub max: f64,
    pub integer: bool,
}

impl Param {
    /// A period-like integer parameter in `min..=MAX_PERIOD`.
    pub const fn period(name: &'static str, default: f64, min: f64) -> Param {
        Param {
            name,
            default,
            min,
            max: MAX_PERIOD,
            integer: true,
        }
    }

    pub const fn int(name: &'static str, default: f64, min: f64, max: f64) -> Param {
        Param {
            name,
            default,
            min,
            max,
            integer: true,
        }
    }

    pub const fn real(name: &'static str, default: f64, min: f64, max: f64) -> Param {
        Param {
            name,
            default,
            min,
            max,
            integer: false,
        }
    }
}

/// A kernel over gap-free slices: `inputs[k]` and `outputs[k]` all have the
/// same length; `params` are validated. It must write every output element
/// (NaN for the warm-up) and must not panic on any length, including 0.
pub type RunFn = fn(inputs: &[&[f64]], params: &[f64], outputs: &mut [&mut [f64]]);

/// A kernel that also reports whether every input value it read was finite
/// (true), checking as it goes: one pass over memory instead of a scan for
/// gaps and then the kernel. When it returns false its outputs are
/// discarded and the series is run gap by gap with [`RunFn`].
pub type RunCheckedFn = fn(inputs: &[&[f64]], params: &[f64], outputs: &mut [&mut [f64]]) -> bool;

/// The number of leading NaN outputs for these (validated) parameters.
pub type LookbackFn = fn(params: &[f64]) -> usize;

/// Checks that involve several parameters at once (ranges are checked from
/// [`Param`] before this is called).
pub type CheckFn = fn(params: &[f64]) -> Result<(), CoreError>;

/// A fresh incremental state for validated parameters.
pub type NewStateFn = fn(params: &[f64]) -> Box<dyn State>;

/// An incremental state restored from [`State::save`] output.
pub type LoadStateFn = fn(bytes: &[u8]) -> Result<Box<dyn State>, CoreError>;

pub struct Spec {
    /// The Python name: TA-Lib's function name in lower case.
    pub name: &'static str,
    pub inputs: &'static [&'static str],
    pub outputs: &'static [&'static str],
    pub params: &'static [Param],
    pub lookback: LookbackFn,
    pub run: RunFn,
    pub run_checked: Option<RunCheckedFn>,
    pub check: Option<CheckFn>,
    pub new_state: Option<NewStateFn>,
    pub load_state: Option<LoadStateFn>,
}

/// Every registered kernel, group by group.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    ma::SPECS
        .iter()
        .chain(momentum::SPECS)
        .chain(hlc::SPECS)
        .chain(osc::SPECS)
        .chain(extra::SPECS)
        .chain(risk::SPECS)
        .copied()
}

pub fn find(name: &str) -> Result<&'static Spec, CoreError> {
    all()
        .find(|s| s.name == name)
        .ok_or_else(|| CoreError::InvalidArgument {
            name: "name",
            reason: format!("no indicator named {name:?}"),
        })
}

impl Spec {
    pub fn defaults(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.default).collect()
    }

    /// Checks the parameter count, each range and the cross-parameter rule.
    pub fn validate(&self, params: &[f64]) -> Result<(), CoreError> {
        if params.len() != self.params.len() {
            return Err(CoreError::InvalidArgument {
                name: "params",
                reason: format!(
                    "{} takes {} parameters ({}), got {}",
                    self.name,
                    self.params.len(),
                    self.params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    params.len()
                ),
            });
        }
        for (p, &v) in self.params.iter().zip(params) {
            let in_range = v >= p.min && v <= p.max;
            let whole = !p.integer || v.fract() == 0.0;
            if !(in_range && whole && v.is_finite()) {
                let kind = if p.integer { "an integer" } else { "a number" };
                return Err(CoreError::InvalidArgument {
                    name: p.name,
                    reason: format!("must be {kind} from {} to {}, got {v}", p.min, p.max),
                });
            }
        }
        match self.check {
            Some(check) => check(params),
            None => Ok(()),
        }
    }

    /// Runs the kernel over whole series with the NaN policy applied.
    /// `params` must have been validated.
    pub fn run_series(&self, inputs: &[&[f64]], params: &[f64], outputs: &mut [&mut [f64]]) {
        if let Some(checked) = self.run_checked {
            if checked(inputs, params, outputs) {
                return;
            }
        }
        run_segmented(self.run, inputs, params, outputs);
    }

    /// A fresh incremental state, if this kernel has one.
    pub fn new_state(&'static self, params: &[f64]) -> Result<StateBox, CoreError> {
        self.validate(params)?;
        let new = self.new_state.ok_or_else(|| self.no_state())?;
        Ok(StateBox::new(self, params, new(params)))
    }

    pub fn load_state(&'static self, params: &[f64], bytes: &[u8]) -> Result<StateBox, CoreError> {
        self.validate(params)?;
        let load = self.load_state.ok_or_else(|| self.no_state())?;
        Ok(StateBox::new(self, params, load(bytes)?))
    }

    fn no_state(&self) -> CoreError {
        CoreError::InvalidArgument {
            name: "name",
            reason: format!("{} has no incremental form", self.name),
        }
    }
}

/// `params[i]` as a period or count (validated as a whole number).
#[inline]
pub fn int_param(params: &[f64], i: usize) -> usize {
    params[i] as usize
}

/// True for NaN and ±infinity: the exponent bits all set. Integer work, so
/// OR-ing it into a flag stays off a kernel's floating-point chain.
#[inline(always)]
pub fn non_finite(v: f64) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    v.to_bits() & EXP == EXP
}

/// Whether any value of `x` is NaN or infinite (for a kernel's warm-up part;
/// its main loop ORs [`non_finite`] as it reads).
#[inline]
pub fn any_non_finite(x: &[f64]) -> bool {
    x.iter().fold(false, |bad, &v| bad | non_finite(v))
}

/// Fills `out[..n]` with NaN, `n` clamped to the length: the warm-up.
#[inline]
pub fn fill_nan(out: &mut [f64], n: usize) {
    let n = n.min(out.len());
    out[..n].fill(f64::NAN);
}

#[cfg(test)]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut names: Vec<&str> = all().map(|s| s.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate kernel names");
        for name in names {
            assert_eq!(name, name.to_lowercase());
        }
    }

    #[test]
    fn validate_names_the_parameter() {
        let sma = find("sma").unwrap();
        let err = sma.validate(&[0.0]).unwrap_err().to_string();
        assert!(
            err.starts_with("timeperiod: must be an integer from"),
            "{err}"
        );
        assert!(sma.validate(&[2.5]).is_err());
        assert!(sma.validate(&[f64::NAN]).is_err());
        assert!(sma.validate(&[]).is_err());
        assert!(sma.validate(&[30.0]).is_ok());
        assert!(find("nope").is_err());
    }

    #[test]
    fn every_kernel_handles_edge_lengths_and_gaps() {
        for spec in all() {
            testing::check_edges(spec);
        }
    }

    #[test]
    fn every_checked_kernel_equals_its_plain_kernel_and_sees_every_gap() {
        for spec in all().filter(|s| s.run_checked.is_some()) {
            testing::check_run_checked(spec);
        }
    }

    #[test]
    fn every_state_matches_its_kernel() {
        for spec in all().filter(|s| s.new_state.is_some()) {
            testing::check_state_matches_batch(spec);
        }
    }
}
