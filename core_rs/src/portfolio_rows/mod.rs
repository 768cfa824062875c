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

pub use encode::json_string;
pub use fields::Context;
pub use legs::{mul, ACQUIRE, DISPOSE, MOVE, REMOVE};

use crate::wire::decode_import_request;
use crate::CoreError;

/// One leg of a fast row: (leg, kind, asset, wallet, qty, amount, to_wallet),
/// decimals in `decimals.fmt` form.
#[derive(Debug, Clone, PartialEq)]
pub struct LegRow {
    pub leg: u32,
    pub kind: u8,
    pub asset: String,
    pub wallet: String,
    pub qty: String,
    pub amount: String,
    pub to_wallet: String,
}

/// A row the fast path took: `TxContent`'s fields (decimals in fmt form,
/// "" for None), its encoding and its legs. The valuation is always ""
/// (own price or value).
#[derive(Debug, Clone, PartialEq)]
pub struct FastRow<'a> {
    pub position: usize,
    pub client_id: &'a str,
    pub kind: i32,
    pub time_ms: i64,
    pub asset: String,
    pub quantity: String,
    pub price: String,
    pub value: String,
    pub fee_asset: String,
    pub fee_amount: String,
    pub fee_value: String,
    pub wallet: &'a str,
    pub to_wallet: &'a str,
    pub to_asset: String,
    pub to_quantity: String,
    pub income_kind: i32,
    pub note: &'a str,
    pub content_hash: String,
    pub body: String,
    pub legs: Vec<LegRow>,
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
    let c = fields::content(raw, ctx)?;
    let legs = legs::build_legs(&c, ctx.base_currency)?
        .into_iter()
        .map(|l| LegRow {
            leg: l.leg,
            kind: l.kind,
            asset: l.asset.to_owned(),
            wallet: l.wallet.to_owned(),
            qty: crate::ledger::fixed::format(l.qty),
            amount: crate::ledger::fixed::format(l.amount),
            to_wallet: l.to_wallet.to_owned(),
        })
        .collect();
    let f = encode::Formatted::new(&c);
    let (content_hash, body) = encode::encode(&c, &f);
    Some(FastRow {
        position,
        client_id: c.client_id,
        kind: c.kind,
        time_ms: c.time_ms,
        asset: c.asset,
        quantity: f.quantity,
        price: f.price,
        value: f.value,
        fee_asset: c.fee_asset,
        fee_amount: f.fee_amount,
        fee_value: f.fee_value,
        wallet: c.wallet,
        to_wallet: c.to_wallet,
        to_asset: c.to_asset,
        to_quantity: f.to_quantity,
        income_kind: c.income_kind,
        note: c.note,
        content_hash,
        body,
        legs,
    })
}
