//! Bundles: several kernels run together per series, e.g. RSI(14) +
//! MACD(12, 26, 9) + BBANDS(20, 2, 2) + ATR(14) + OBV.
//!
//! A bundle's inputs are the named bar fields [`INPUTS`] (open, high, low,
//! close, volume); each member maps its kernel's inputs onto them (TA-Lib's
//! `real` is the close unless the member says otherwise). Its output columns
//! are named after the kernels' outputs: a kernel with one output gives one
//! column named after the member's alias or the kernel; a kernel with
//! several gives one column per output, named after the output (prefixed
//! with `alias_` when the member has an alias). Two columns with one name
//! are an error.
//!
//! - [`Bundle::run_many`] runs every member of a series in one task on the
//!   batch pool ([`crate::batch::run_rows`]), so the series stays in cache
//!   while all members read it. Each member's values equal its kernel run
//!   alone (bitwise: the same function on the same slices).
//! - [`BundleStates`] keeps one incremental state per member per symbol and
//!   updates many symbols per call, one closed bar each.

use std::fmt::Display;

use serde::{Deserialize, Serialize};

use crate::batch;
use crate::indicators::{self, Spec, StateBox};
use crate::CoreError;

/// The bar fields a bundle reads, in this order everywhere.
pub const INPUTS: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// The most inputs one member's kernel may have (its bar is on the stack).
const MAX_BAR: usize = 8;

/// A member as the user describes it: parameters by name (missing ones take
/// the kernel's default), an optional alias, and optional overrides of where
/// a kernel input comes from (`("real", "volume")`: an SMA of the volume).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberDef {
    pub kernel: String,
    pub params: Vec<(String, f64)>,
    pub alias: Option<String>,
    pub inputs: Vec<(String, String)>,
}

impl MemberDef {
    pub fn new(kernel: &str) -> MemberDef {
        MemberDef {
            kernel: kernel.into(),
            ..MemberDef::default()
        }
    }

    pub fn param(mut self, name: &str, value: f64) -> MemberDef {
        self.params.push((name.into(), value));
        self
    }

    pub fn alias(mut self, alias: &str) -> MemberDef {
        self.alias = Some(alias.into());
        self
    }

    pub fn input(mut self, kernel_input: &str, bundle_input: &str) -> MemberDef {
        self.inputs.push((kernel_input.into(), bundle_input.into()));
        self
    }
}

/// A resolved member: its kernel, validated parameters in the kernel's
/// order, the bundle input feeding each kernel input, and its first column.
pub struct Member {
    pub spec: &'static Spec,
    pub params: Vec<f64>,
    pub alias: Option<String>,
    /// Index into [`INPUTS`] per kernel input.
    pub inputs: Vec<usize>,
    /// This member's outputs are columns `column..column + outputs`.
    pub column: usize,
}

impl Member {
    fn label(&self) -> String {
        match &self.alias {
            Some(a) => format!("{} ({a})", self.spec.name),
            None => self.spec.name.to_string(),
        }
    }

    fn n_outputs(&self) -> usize {
        self.spec.outputs.len()
    }
}

fn members_error(reason: String) -> CoreError {
    CoreError::InvalidArgument {
        name: "members",
        reason,
    }
}

fn input_index(name: &str) -> Option<usize> {
    INPUTS.iter().position(|&i| i == name)
}

/// Where kernel input `name` comes from when the member does not say.
fn default_input(name: &str) -> Option<usize> {
    match name {
        "real" => input_index("close"),
        other => input_index(other),
    }
}

fn resolve(index: usize, def: &MemberDef, column: usize) -> Result<Member, CoreError> {
    let spec = indicators::find(&def.kernel)
        .map_err(|_| members_error(format!("[{index}]: no indicator named {:?}", def.kernel)))?;
    let label = match &def.alias {
        Some(a) => format!("{} ({a})", spec.name),
        None => spec.name.to_string(),
    };
    let mut params = spec.defaults();
    let mut given = vec![false; params.len()];
    for (name, value) in &def.params {
        let Some(k) = spec.params.iter().position(|p| p.name == name) else {
            let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            return Err(members_error(format!(
                "{label} has no parameter {name:?}; its parameters are {names:?}"
            )));
        };
        if given[k] {
            return Err(members_error(format!("{label}: {name} given twice")));
        }
        given[k] = true;
        params[k] = *value;
    }
    spec.validate(&params)
        .map_err(|e| members_error(format!("{label}: {e}")))?;
    for (kernel_input, _) in &def.inputs {
        if !spec.inputs.contains(&kernel_input.as_str()) {
            return Err(members_error(format!(
                "{label} has no input {kernel_input:?}; its inputs are {:?}",
                spec.inputs
            )));
        }
    }
    if spec.inputs.len() > MAX_BAR {
        return Err(members_error(format!(
            "{label} has {} inputs; a bundle member may have at most {MAX_BAR}",
            spec.inputs.len()
        )));
    }
    let inputs = spec
        .inputs
        .iter()
        .map(|&kernel_input| {
            let chosen = def
                .inputs
                .iter()
                .rev()
                .find(|(k, _)| k == kernel_input)
                .map(|(_, b)| b.as_str());
            match chosen {
                Some(b) => input_index(b).ok_or_else(|| {
                    members_error(format!(
                        "{label}: input {kernel_input} maps to {b:?}, which is not one of {INPUTS:?}"
                    ))
                }),
                None => default_input(kernel_input).ok_or_else(|| {
                    members_error(format!(
                        "{label}: kernel input {kernel_input:?} is not a bar field; \
                         say which of {INPUTS:?} feeds it"
                    ))
                }),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Member {
        spec,
        params,
        alias: def.alias.clone(),
        inputs,
        column,
    })
}

/// Several kernels over one set of bar fields, with named output columns.
pub struct Bundle {
    members: Vec<Member>,
    columns: Vec<String>,
    needed: [bool; INPUTS.len()],
}

impl Bundle {
    pub fn new(defs: &[MemberDef]) -> Result<Bundle, CoreError> {
        let mut members = Vec::with_capacity(defs.len());
        let mut columns: Vec<String> = Vec::new();
        let mut needed = [false; INPUTS.len()];
        for (index, def) in defs.iter().enumerate() {
            let member = resolve(index, def, columns.len())?;
            let outputs = member.spec.outputs;
            let names: Vec<String> = if outputs.len() == 1 {
                vec![member
                    .alias
                    .clone()
                    .unwrap_or_else(|| member.spec.name.into())]
            } else {
                outputs
                    .iter()
                    .map(|o| match &member.alias {
                        Some(a) => format!("{a}_{o}"),
                        None => o.to_string(),
                    })
                    .collect()
            };
            for name in names {
                if columns.contains(&name) {
                    return Err(members_error(format!(
                        "two columns are named {name:?} ({} makes the second); \
                         give one of the members an alias",
                        member.label()
                    )));
                }
                columns.push(name);
            }
            for &k in &member.inputs {
                needed[k] = true;
            }
            members.push(member);
        }
        Ok(Bundle {
            members,
            columns,
            needed,
        })
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Which of [`INPUTS`] some member reads.
    pub fn needed(&self) -> [bool; INPUTS.len()] {
        self.needed
    }

    /// The members with every parameter spelled out, in kernel order: what
    /// [`Bundle::new`] needs to build this bundle again.
    pub fn defs(&self) -> Vec<MemberDef> {
        self.members
            .iter()
            .map(|m| MemberDef {
                kernel: m.spec.name.into(),
                params: m
                    .spec
                    .params
                    .iter()
                    .zip(&m.params)
                    .map(|(p, &v)| (p.name.into(), v))
                    .collect(),
                alias: m.alias.clone(),
                inputs: m
                    .spec
                    .inputs
                    .iter()
                    .zip(&m.inputs)
                    .map(|(&k, &b)| (k.into(), INPUTS[b].into()))
                    .collect(),
            })
            .collect()
    }

    /// An error naming the first needed input that `given` lacks and the
    /// members that read it.
    pub fn check_given(&self, given: [bool; INPUTS.len()]) -> Result<(), CoreError> {
        for (k, name) in INPUTS.iter().enumerate() {
            if self.needed[k] && !given[k] {
                let readers: Vec<String> = self
                    .members
                    .iter()
                    .filter(|m| m.inputs.contains(&k))
                    .map(Member::label)
                    .collect();
                return Err(CoreError::InvalidArgument {
                    name,
                    reason: format!("is needed by {} but was not given", readers.join(", ")),
                });
            }
        }
        Ok(())
    }

    /// The length of one series (all needed inputs must have it).
    pub fn series_len(&self, inputs: &[&[f64]; INPUTS.len()]) -> Result<usize, CoreError> {
        let mut len: Option<(usize, usize)> = None;
        for (k, x) in inputs.iter().enumerate() {
            if !self.needed[k] {
                continue;
            }
            match len {
                None => len = Some((k, x.len())),
                Some((first, n)) if x.len() != n => {
                    return Err(CoreError::LengthMismatch {
                        name: INPUTS[k],
                        other: INPUTS[first],
                        len: x.len(),
                        other_len: n,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(len.map_or(0, |(_, n)| n))
    }

    /// Every member over one series. `inputs[k]` is field `INPUTS[k]` (the
    /// ones no member needs may be empty); `outputs` has one slice per
    /// column, each as long as the series.
    pub fn run_series(&self, inputs: &[&[f64]; INPUTS.len()], outputs: &mut [&mut [f64]]) {
        let mut ins: Vec<&[f64]> = Vec::with_capacity(MAX_BAR);
        for m in &self.members {
            ins.clear();
            ins.extend(m.inputs.iter().map(|&k| inputs[k]));
            let outs = &mut outputs[m.column..m.column + m.n_outputs()];
            m.spec.run_series(&ins, &m.params, outs);
        }
    }

    /// Checks many series (`series[i][k]` is field k of series i) and
    /// returns the longest length: the width of the output rows.
    pub fn check_many(&self, series: &[[&[f64]; INPUTS.len()]]) -> Result<usize, CoreError> {
        let mut width = 0;
        for (i, s) in series.iter().enumerate() {
            let n = self.series_len(s).map_err(|e| CoreError::InvalidArgument {
                name: "inputs",
                reason: format!("series {i}: {e}"),
            })?;
            width = width.max(n);
        }
        Ok(width)
    }

    /// Every member over many series on the batch pool, all members of one
    /// series in one task. `outputs` has one array per column of
    /// `series.len() * width` values (rows of `width`, shorter series
    /// right-aligned after NaN, as in [`batch::run_rows`]). `width` must be
    /// at least every series' length ([`Bundle::check_many`]).
    pub fn run_many(
        &self,
        series: &[[&[f64]; INPUTS.len()]],
        width: usize,
        outputs: &mut [&mut [f64]],
    ) {
        assert_eq!(outputs.len(), self.columns.len(), "one output per column");
        batch::run_rows(series.len(), width, outputs, |i, rows| {
            let s = &series[i];
            let len = self.series_len(s).expect("checked by check_many");
            let pad = width - len;
            let mut tails: Vec<&mut [f64]> = rows
                .iter_mut()
                .map(|r| {
                    r[..pad].fill(f64::NAN);
                    &mut r[pad..]
                })
                .collect();
            self.run_series(s, &mut tails);
        });
    }
}

/// The bytes of [`BundleStates::save`] start with this, then a version.
const MAGIC: &[u8; 4] = b"MMBS";
/// Bump when the saved layout changes.
pub const BUNDLE_FORMAT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    members: Vec<MemberDef>,
    n_symbols: u64,
    /// Symbol-major: symbol s, member m at `s * members + m`.
    states: Vec<Vec<u8>>,
}

/// A bundle's incremental states for symbols with dense ids
/// `0..n_symbols`: one [`StateBox`] per member per symbol (it applies the
/// NaN policy: a bar with a non-finite input outputs NaN and restarts that
/// member).
pub struct BundleStates {
    bundle: Bundle,
    /// A fresh state per member, cloned for new symbols and resets.
    fresh: Vec<StateBox>,
    /// Symbol-major, `members` per symbol.
    states: Vec<StateBox>,
    n_symbols: usize,
}

fn bad_state(reason: String) -> CoreError {
    CoreError::InvalidArgument {
        name: "state",
        reason,
    }
}

impl BundleStates {
    pub fn new(bundle: Bundle, n_symbols: usize) -> Result<BundleStates, CoreError> {
        let fresh = bundle
            .members
            .iter()
            .map(|m| {
                m.spec
                    .new_state(&m.params)
                    .map_err(|e| members_error(format!("{}: {e}", m.label())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut states = BundleStates {
            bundle,
            fresh,
            states: Vec::new(),
            n_symbols: 0,
        };
        states.add_symbols(n_symbols);
        Ok(states)
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    pub fn n_columns(&self) -> usize {
        self.bundle.columns.len()
    }

    /// Adds `n` symbols with fresh states; returns the first new id.
    pub fn add_symbols(&mut self, n: usize) -> usize {
        let first = self.n_symbols;
        self.states.reserve(n * self.fresh.len());
        for _ in 0..n {
            self.states.extend(self.fresh.iter().cloned());
        }
        self.n_symbols += n;
        first
    }

    /// Every id in range, as indices.
    fn check_ids<I>(&self, ids: &[I]) -> Result<Vec<usize>, CoreError>
    where
        I: Copy + Display + TryInto<usize>,
    {
        ids.iter()
            .enumerate()
            .map(|(pos, &id)| match id.try_into() {
                Ok(s) if s < self.n_symbols => Ok(s),
                _ => Err(CoreError::InvalidArgument {
                    name: "ids",
                    reason: format!(
                        "ids[{pos}] is {id}, not a symbol id (0..{})",
                        self.n_symbols
                    ),
                }),
            })
            .collect()
    }

    /// Checks the ids, that every needed input has one value per id and
    /// that `out` has one row per id; returns the ids as indices.
    fn check<I>(
        &self,
        ids: &[I],
        inputs: &[&[f64]; INPUTS.len()],
        out: &[f64],
    ) -> Result<Vec<usize>, CoreError>
    where
        I: Copy + Display + TryInto<usize>,
    {
        for (k, x) in inputs.iter().enumerate() {
            if self.bundle.needed[k] && x.len() != ids.len() {
                return Err(CoreError::LengthMismatch {
                    name: INPUTS[k],
                    other: "ids",
                    len: x.len(),
                    other_len: ids.len(),
                });
            }
        }
        let nc = self.bundle.columns.len();
        if out.len() != ids.len() * nc {
            return Err(CoreError::InvalidArgument {
                name: "out",
                reason: format!("must hold {} x {nc} values, got {}", ids.len(), out.len()),
            });
        }
        self.check_ids(ids)
    }

    /// Feeds one closed bar per listed id (in order: an id listed twice
    /// takes two bars). `inputs[k]` holds field `INPUTS[k]` per id (the ones
    /// no member needs may be empty); `out` gets one row of
    /// [`BundleStates::n_columns`] values per id. Bad ids or lengths change
    /// nothing.
    pub fn update<I>(
        &mut self,
        ids: &[I],
        inputs: &[&[f64]; INPUTS.len()],
        out: &mut [f64],
    ) -> Result<(), CoreError>
    where
        I: Copy + Display + TryInto<usize>,
    {
        let ids = self.check(ids, inputs, out)?;
        let members = &self.bundle.members;
        let nm = members.len();
        let nc = self.bundle.columns.len();
        if nm == 0 {
            return Ok(());
        }
        let mut bar = [0.0; MAX_BAR];
        for (j, &sid) in ids.iter().enumerate() {
            let row = &mut out[j * nc..(j + 1) * nc];
            let states = &mut self.states[sid * nm..(sid + 1) * nm];
            for (m, state) in members.iter().zip(states) {
                let bar = &mut bar[..m.inputs.len()];
                for (b, &k) in bar.iter_mut().zip(&m.inputs) {
                    *b = inputs[k][j];
                }
                state.update(bar, &mut row[m.column..m.column + m.n_outputs()]);
            }
        }
        Ok(())
    }

    /// What [`BundleStates::update`] would write, leaving every state as it
    /// is: for the forming bar.
    pub fn peek<I>(
        &self,
        ids: &[I],
        inputs: &[&[f64]; INPUTS.len()],
        out: &mut [f64],
    ) -> Result<(), CoreError>
    where
        I: Copy + Display + TryInto<usize>,
    {
        let ids = self.check(ids, inputs, out)?;
        let members = &self.bundle.members;
        let nm = members.len();
        let nc = self.bundle.columns.len();
        let mut bar = [0.0; MAX_BAR];
        for (j, &sid) in ids.iter().enumerate() {
            let row = &mut out[j * nc..(j + 1) * nc];
            let states = &self.states[sid * nm..(sid + 1) * nm];
            for (m, state) in members.iter().zip(states) {
                let bar = &mut bar[..m.inputs.len()];
                for (b, &k) in bar.iter_mut().zip(&m.inputs) {
                    *b = inputs[k][j];
                }
                state.peek(bar, &mut row[m.column..m.column + m.n_outputs()]);
            }
        }
        Ok(())
    }

    /// Starts the listed symbols over, as if they had seen no bar.
    pub fn reset<I>(&mut self, ids: &[I]) -> Result<(), CoreError>
    where
        I: Copy + Display + TryInto<usize>,
    {
        let ids = self.check_ids(ids)?;
        let nm = self.fresh.len();
        for sid in ids {
            for (state, fresh) in self.states[sid * nm..(sid + 1) * nm]
                .iter_mut()
                .zip(&self.fresh)
            {
                *state = fresh.clone();
            }
        }
        Ok(())
    }

    /// The members and every state as bytes ([`BundleStates::load`]).
    pub fn save(&self) -> Vec<u8> {
        let saved = Saved {
            members: self.bundle.defs(),
            n_symbols: self.n_symbols as u64,
            states: self.states.iter().map(StateBox::save).collect(),
        };
        let mut bytes = MAGIC.to_vec();
        bytes.push(BUNDLE_FORMAT);
        // Serializing strings, numbers and byte vectors into memory cannot fail.
        bytes.extend(postcard::to_allocvec(&saved).expect("bundle states serialize"));
        bytes
    }

    pub fn load(bytes: &[u8]) -> Result<BundleStates, CoreError> {
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err(bad_state("is not a saved BundleSet".into()));
        };
        let saved: Saved = match rest.split_first() {
            Some((&BUNDLE_FORMAT, body)) => postcard::from_bytes(body)
                .map_err(|e| bad_state(format!("cannot be read ({e})")))?,
            Some((v, _)) => {
                return Err(bad_state(format!(
                    "was saved in format {v}, this build reads format {BUNDLE_FORMAT}"
                )))
            }
            None => return Err(bad_state("is truncated".into())),
        };
        let bundle = Bundle::new(&saved.members)?;
        let nm = bundle.members.len();
        let n_symbols = usize::try_from(saved.n_symbols)
            .map_err(|_| bad_state("has too many symbols".into()))?;
        if saved.states.len() != n_symbols * nm {
            return Err(bad_state(format!(
                "holds {} states for {n_symbols} symbols x {nm} members",
                saved.states.len()
            )));
        }
        let mut out = BundleStates::new(bundle, 0)?;
        out.states = saved
            .states
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let m = &out.bundle.members[i % nm];
                m.spec.load_state(&m.params, b)
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.n_symbols = n_symbols;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
