use thiserror::Error;

/// Every error the core can report. The Python bindings turn each into a
/// ValueError in one place (`py::error`), never a panic.
#[derive(Debug, Error, PartialEq)]
pub enum CoreError {
    #[error("{name} must have the same length as {other} ({len} != {other_len})")]
    LengthMismatch {
        name: &'static str,
        other: &'static str,
        len: usize,
        other_len: usize,
    },
    #[error("{name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },
}
