//! TODO: the momentum kernels.

use super::Spec;

pub const SPECS: &[&Spec] = &[];
