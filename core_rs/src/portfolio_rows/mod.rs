//! The portfolio's ImportTransactions fast path: one pass over a serialized
//! `ImportTransactionsRequest` that validates, normalises, splits into legs
//! and encodes every row that is certainly valid and needs no market price,
//! exactly as services/portfolio (transactions.py, legs.py) would. Every
//! other row is handed back by position for Python to handle, so no error
//! message is ever reproduced here.
//!
//! - `fields`: parse_client_id + parse_transaction (the accepting subset);
//! - `legs`: build_legs without market prices;
//! - `encode`: the content hash and stored JSON body;
//! - `decide`: bulk_import's decisions for a batch of those rows.

mod decide;
mod encode;
mod fields;
mod legs;

pub use decide::{decide, tx_ids, BatchLeg, BatchRow, Decided, Outcome, Unfit, NEVER};
pub use encode::{json_string, DecText, Formatted};
pub use fields::{Content, Context, Ticker, INCOME};
pub use legs::{mul, Leg, ACQUIRE, DISPOSE, MOVE, REMOVE};

use crate::wire::{decode_import_request, decode_transaction, RawTransaction};
use crate::CoreError;

/// A leg with its decimals in fmt form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegText {
    pub leg: Leg,
    pub qty: DecText,
    pub amount: DecText,
}

/// A row the fast path took: `TxContent`'s fields, the decimals in fmt
/// form, its encoding and its legs. The valuation is always "" (own price
/// or value). Fixed-size: a batch of rows reuses one buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct FastRow<'a> {
    pub position: usize,
    pub content: Content<'a>,
    pub text: Formatted,
    content_hash: [u8; 32],
    body: (usize, usize),
    legs: [Option<LegText>; 3],
}

impl FastRow<'_> {
    pub fn content_hash(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.content_hash).unwrap_or("")
    }

    pub fn legs(&self) -> impl Iterator<Item = &LegText> {
        self.legs.iter().flatten()
    }

    /// The to_wallet of a leg: the row's for a MOVE, else "".
    pub fn leg_to_wallet(&self, leg: &Leg) -> &str {
        if leg.kind == MOVE {
            self.content.to_wallet
        } else {
            ""
        }
    }
}

/// Rows of one message (or of a slice of its transactions); strings borrow
/// the message. Cleared and refilled batch after batch.
#[derive(Debug, Default, PartialEq)]
pub struct Rows<'a> {
    pub fast: Vec<FastRow<'a>>,
    /// Positions (0-based, in the message) of the rows Python handles.
    pub slow: Vec<usize>,
    /// The bodies of `fast`, one after the other.
    bodies: String,
}

impl<'a> Rows<'a> {
    pub fn body(&self, row: &FastRow<'_>) -> &str {
        &self.bodies[row.body.0..row.body.1]
    }

    pub fn clear(&mut self) {
        self.fast.clear();
        self.slow.clear();
        self.bodies.clear();
    }

    /// Appends the rows of `transactions` (serialized `Transaction`s, the
    /// first at `first_position`); an error when one is malformed.
    pub fn extend(
        &mut self,
        first_position: usize,
        transactions: &[&'a [u8]],
        ctx: &Context<'_>,
    ) -> Result<(), CoreError> {
        for (i, bytes) in transactions.iter().enumerate() {
            let position = first_position + i;
            let raw = decode_transaction(bytes)?;
            if !self.push_fast(position, &raw, ctx) {
                self.slow.push(position);
            }
        }
        Ok(())
    }

    fn push_fast(&mut self, position: usize, raw: &RawTransaction<'a>, ctx: &Context<'_>) -> bool {
        let Some(content) = fields::content(raw, ctx) else {
            return false;
        };
        let Some(built) = legs::build_legs(&content, ctx.base_currency) else {
            return false;
        };
        let legs = built.map(|leg| {
            leg.map(|leg| LegText {
                leg,
                qty: DecText::new(Some(leg.qty)),
                amount: DecText::new(Some(leg.amount)),
            })
        });
        let text = Formatted::new(&content);
        let start = self.bodies.len();
        let content_hash = encode::encode(&content, &text, &mut self.bodies);
        self.fast.push(FastRow {
            position,
            content,
            text,
            content_hash,
            body: (start, self.bodies.len()),
            legs,
        });
        true
    }
}

/// parse_import's result.
#[derive(Debug, Default, PartialEq)]
pub struct Import<'a> {
    pub portfolio_id: &'a str,
    pub rows: Rows<'a>,
}

/// Splits one serialized ImportTransactionsRequest into fast and slow rows;
/// an error only when the message itself is malformed.
pub fn parse_import<'a>(message: &'a [u8], ctx: &Context<'_>) -> Result<Import<'a>, CoreError> {
    let request = decode_import_request(message)?;
    let mut rows = Rows::default();
    rows.extend(0, &request.transactions, ctx)?;
    Ok(Import {
        portfolio_id: request.portfolio_id,
        rows,
    })
}
