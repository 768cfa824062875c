//! Incremental (per bar) indicator state.
//!
//! A state performs, bar by bar, the same floating-point operations as its
//! batch kernel, so `update` over a series equals the batch output (bitwise
//! where the kernel's order of operations allows). [`StateBox`] applies the
//! NaN policy: a gap bar outputs NaN and restarts the state.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Spec;
use crate::CoreError;

/// One indicator's running state. `bar` holds one value per input of the
/// spec, all finite; `out` one slot per output.
pub trait State: Send + Sync {
    fn update(&mut self, bar: &[f64], out: &mut [f64]);

    /// What `update` would return, without changing the state.
    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        self.clone_box().update(bar, out);
    }

    fn save(&self) -> Vec<u8>;

    fn clone_box(&self) -> Box<dyn State>;
}

/// Implements `save` and `clone_box` for a `Clone + Serialize` state.
#[macro_export]
macro_rules! state_boilerplate {
    () => {
        fn save(&self) -> Vec<u8> {
            $crate::indicators::state::to_bytes(self)
        }

        fn clone_box(&self) -> Box<dyn $crate::indicators::State> {
            Box::new(self.clone())
        }
    };
}

/// Serialized state layout version: bump when a state's fields change, so
/// old bytes are refused with a clear error rather than misread.
pub const FORMAT_VERSION: u8 = 1;

pub fn to_bytes<T: Serialize>(state: &T) -> Vec<u8> {
    let mut bytes = vec![FORMAT_VERSION];
    // Serializing plain numbers and vectors into memory cannot fail.
    bytes.extend(postcard::to_allocvec(state).expect("state serializes"));
    bytes
}

/// The `load_state` function of a spec whose state type is `T`.
pub fn load<T: DeserializeOwned + State + 'static>(
    bytes: &[u8],
) -> Result<Box<dyn State>, CoreError> {
    let bad = |reason: String| CoreError::InvalidArgument {
        name: "state",
        reason,
    };
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes::<T>(rest)
            .map(|s| Box::new(s) as Box<dyn State>)
            .map_err(|e| {
                bad(format!(
                    "cannot be read ({e}); was it saved by this indicator?"
                ))
            }),
        Some((v, _)) => Err(bad(format!(
            "was saved in format {v}, this build reads format {FORMAT_VERSION}"
        ))),
        None => Err(bad("is empty".into())),
    }
}

/// A state with its spec and parameters, applying the NaN policy.
pub struct StateBox {
    pub spec: &'static Spec,
    pub params: Vec<f64>,
    inner: Box<dyn State>,
}

impl Clone for StateBox {
    fn clone(&self) -> Self {
        StateBox {
            spec: self.spec,
            params: self.params.clone(),
            inner: self.inner.clone_box(),
        }
    }
}

impl StateBox {
    pub(super) fn new(spec: &'static Spec, params: &[f64], inner: Box<dyn State>) -> StateBox {
        StateBox {
            spec,
            params: params.to_vec(),
            inner,
        }
    }

    pub fn n_inputs(&self) -> usize {
        self.spec.inputs.len()
    }

    pub fn n_outputs(&self) -> usize {
        self.spec.outputs.len()
    }

    /// Feeds one closed bar. A gap (any input NaN or infinite) outputs NaN
    /// and starts the indicator over, as the batch kernel does.
    pub fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        if bar.iter().any(|v| !v.is_finite()) {
            self.reset();
            out.fill(f64::NAN);
        } else {
            self.inner.update(bar, out);
        }
    }

    /// The values if `bar` closed now; the state is unchanged.
    pub fn peek(&self, bar: &[f64], out: &mut [f64]) {
        if bar.iter().any(|v| !v.is_finite()) {
            out.fill(f64::NAN);
        } else {
            self.inner.peek(bar, out);
        }
    }

    pub fn reset(&mut self) {
        let new = self.spec.new_state.expect("a StateBox has a state");
        self.inner = new(&self.params);
    }

    pub fn save(&self) -> Vec<u8> {
        self.inner.save()
    }
}
