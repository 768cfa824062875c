//! TODO: the extra kernels.

use super::Spec;

pub const SPECS: &[&Spec] = &[];
