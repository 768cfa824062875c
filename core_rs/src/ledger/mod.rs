//! The crypto ledger's lot matching: Python normalises transactions into
//! legs (acquire, dispose, remove, move) with exact amounts; `Ledger` keeps
//! them in replay order and `engine::replay` matches disposals against
//! acquisition lots under a cost-basis method, in fixed point (`fixed`).
//!
//! - `fixed`: i128 x 10^-18 parsing, formatting, 256-bit mul_div.
//! - `calendar`: tax year and day counts of epoch milliseconds.
//! - `legs`: the leg store (append, remove by transaction, replay order,
//!   first negative balance).
//! - `pool`: one pool's open lots and the orders the methods take them in.
//! - `engine`: the replay and its result; `preview`: a sale that is not made.
//! - `stored`: the legs as the portfolio stores them (JSON), read back.

pub mod calendar;
pub mod engine;
pub mod fixed;
pub mod fxhash;
pub mod legs;
pub mod pool;
pub mod preview;
pub mod stored;

pub use engine::{replay, Method, ReplayOptions, ReplayResult};
pub use legs::{Ledger, Leg, LegInput, Selection};

use std::fmt;

/// What the ledger reports: a message a person can act on (the bindings
/// raise it as ValueError).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerError(String);

impl LedgerError {
    pub fn new(message: String) -> Self {
        LedgerError(message)
    }

    /// The same error with a prefix naming where it happened ("tx 7: ").
    pub fn context(self, prefix: impl fmt::Display) -> Self {
        LedgerError(format!("{prefix}: {}", self.0))
    }

    /// The same error after a subject ("leg 3: qty" + " '1e5' is not ...").
    pub fn subject(self, subject: impl fmt::Display) -> Self {
        LedgerError(format!("{subject} {}", self.0))
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LedgerError {}

/// Leg kinds (`Leg::kind`).
pub const ACQUIRE: u8 = 1;
pub const DISPOSE: u8 = 2;
pub const REMOVE: u8 = 3;
pub const MOVE: u8 = 4;

/// The lot id of the excess of a disposal beyond the lots there are (with
/// negative balances allowed): zero basis, acquired when disposed.
pub const PHANTOM_LOT_TX: i64 = -1;
