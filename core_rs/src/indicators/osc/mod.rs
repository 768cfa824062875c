//! TODO: the osc kernels.

use super::Spec;

pub const SPECS: &[&Spec] = &[];
