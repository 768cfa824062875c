//! The portfolio's ImportTransactions fast path: one pass over a serialized
//! `ImportTransactionsRequest` that validates, normalises, splits into legs
//! and encodes every row that is certainly valid and needs no market price,
//! exactly as services/portfolio (transactions.py, legs.py) would. Every
//! other row is handed back by position for Python to handle, so no error
//! message is ever reproduced here.
//!
//! - `fields`: parse_client_id + parse_transaction (the accepting subset);
//! - `legs`: build_legs without market prices;
//! - `encode`: the content hash and stored JSON body.

mod encode;
mod fields;
mod legs;

pub use encode::{json_string, DecText, Formatted};
pub use fields::{Content, Context, Ticker};
pub use legs::{mul, Leg, ACQUIRE, DISPOSE, MOVE, REMOVE};

use crate::wire::decode_import_request;
use crate::CoreError;

/// A row the fast path took: `TxContent`'s fields, the decimals in fmt
/// form, its encoding and its legs. The valuation is always "" (own price
/// or value).
#[derive(Debug, Clone, PartialEq)]
pub struct FastRow<'a> {
    pub position: usize,
    pub content: Content<'a>,
    pub text: Formatted,
    content_hash: [u8; 32],
    pub body: String,
    pub legs: Vec<(Leg, DecText, DecText)>,
}

impl FastRow<'_> {
    pub fn content_hash(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.content_hash).unwrap_or("")
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

/// parse_import's result: strings borrow the message.
#[derive(Debug, Default, PartialEq)]
pub struct Import<'a> {
    pub portfolio_id: &'a str,
    pub fast: Vec<FastRow<'a>>,
    /// Positions (0-based, in this message) of the rows Python handles.
    pub slow: Vec<usize>,
}

/// Splits one serialized ImportTransactionsRequest into fast and slow rows;
/// an error only when the message itself is malformed.
pub fn parse_import<'a>(message: &'a [u8], ctx: &Context<'_>) -> Result<Import<'a>, CoreError> {
    let request = decode_import_request(message)?;
    let mut out = Import {
        portfolio_id: request.portfolio_id,
        fast: Vec::with_capacity(request.transactions.len()),
        slow: Vec::new(),
    };
    for (position, raw) in request.transactions.iter().enumerate() {
        match fast_row(position, raw, ctx) {
            Some(row) => out.fast.push(row),
            None => out.slow.push(position),
        }
    }
    Ok(out)
}

fn fast_row<'a>(
    position: usize,
    raw: &crate::wire::RawTransaction<'a>,
    ctx: &Context<'_>,
) -> Option<FastRow<'a>> {
    let content = fields::content(raw, ctx)?;
    let legs = legs::build_legs(&content, ctx.base_currency)?
        .into_iter()
        .map(|l| (l, DecText::new(Some(l.qty)), DecText::new(Some(l.amount))))
        .collect();
    let text = Formatted::new(&content);
    let (content_hash, body) = encode::encode(&content, &text);
    Some(FastRow {
        position,
        content,
        text,
        content_hash,
        body,
        legs,
    })
}
