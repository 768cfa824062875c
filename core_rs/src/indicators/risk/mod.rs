//! TODO: the risk kernels.

use super::Spec;

pub const SPECS: &[&Spec] = &[];
