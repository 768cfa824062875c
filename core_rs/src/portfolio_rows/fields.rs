//! A transaction's fields, validated and normalised as
//! services/portfolio/transactions.py `parse_client_id` + `parse_transaction`
//! do, for the rows they accept without question. `None` means "not
//! certainly valid and simple": the row goes back to Python, which then
//! words any violation itself.

use std::collections::HashSet;

use crate::ledger::fixed;
use crate::wire::RawTransaction;

pub(super) const BUY: i32 = 1;
pub(super) const SELL: i32 = 2;
pub(super) const SWAP: i32 = 3;
pub(super) const SPEND: i32 = 4;
pub const INCOME: i32 = 5;
pub(super) const TRANSFER: i32 = 6;
pub(super) const GIFT_IN: i32 = 7;
pub(super) const GIFT_OUT: i32 = 8;
const INCOME_KIND_OTHER: i32 = 5;
const DEFAULT_WALLET: &str = "default";
const CLIENT_ID_MAX: usize = 128;
const NOTE_MAX: usize = 1_000;
const ASSET_MAX: usize = 20;
const WALLET_MAX: usize = 64;
// Timestamp's valid range (services/common/validation.py).
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// What parse_import needs besides the message.
pub struct Context<'k> {
    pub base_currency: &'k str,
    pub now_ms: i64,
    pub future_skew_ms: i64,
    pub known_assets: &'k HashSet<String>,
}

/// An upper-case ASCII ticker (or the base currency), kept inline: a row
/// allocates nothing for its assets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticker {
    buf: [u8; TICKER_MAX],
    len: u8,
}

const TICKER_MAX: usize = 32;

impl Ticker {
    /// `text` upper-cased; None when it is not ASCII or too long.
    fn upper(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if !text.is_ascii() || bytes.len() > TICKER_MAX {
            return None;
        }
        let mut t = Ticker {
            buf: [0; TICKER_MAX],
            len: bytes.len() as u8,
        };
        for (slot, b) in t.buf.iter_mut().zip(bytes) {
            *slot = b.to_ascii_uppercase();
        }
        Some(t)
    }

    pub fn as_str(&self) -> &str {
        // Only ever filled from ASCII.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `TxContent` of a fast row (no lots, no market prices).
#[derive(Debug, Clone, PartialEq)]
pub struct Content<'a> {
    pub client_id: &'a str,
    pub kind: i32,
    pub time_ms: i64,
    pub asset: Ticker,
    pub quantity: i128,
    pub price: Option<i128>,
    pub value: Option<i128>,
    pub fee_asset: Ticker,
    pub fee_amount: Option<i128>,
    pub fee_value: Option<i128>,
    pub wallet: &'a str,
    pub to_wallet: &'a str,
    pub to_asset: Ticker,
    pub to_quantity: Option<i128>,
    pub income_kind: i32,
    pub note: &'a str,
}

/// Python's `str.strip()` for ASCII text (its whitespace includes the
/// separators \x1c-\x1f); `None` for other text, whose Unicode whitespace
/// and case rules are left to Python.
fn strip(text: &str) -> Option<&str> {
    if !text.is_ascii() {
        return None;
    }
    let space = |c: char| {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '\x1c'..='\x1f'
        )
    };
    Some(text.trim_matches(space))
}

fn client_id(text: &str) -> Option<&str> {
    let cid = strip(text)?;
    let printable = cid.bytes().all(|b| (0x20..0x7f).contains(&b));
    (!cid.is_empty() && cid.len() <= CLIENT_ID_MAX && printable).then_some(cid)
}

fn time_ms(time: Option<(i64, i32)>, ctx: &Context<'_>) -> Option<i64> {
    let (seconds, nanos) = time?;
    if !(0..=999_999_999).contains(&nanos) || !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
        return None;
    }
    let ms = seconds * 1000 + i64::from(nanos / 1_000_000);
    let latest = i128::from(ctx.now_ms) + i128::from(ctx.future_skew_ms);
    (i128::from(ms) <= latest).then_some(ms)
}

/// `parse_asset` followed by the known-asset check.
fn asset(text: &str, ctx: &Context<'_>) -> Option<Ticker> {
    let text = strip(text)?;
    if !(1..=ASSET_MAX).contains(&text.len()) {
        return None;
    }
    let asset = Ticker::upper(text)?;
    let name = asset.as_str();
    let ticker = name
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    (ticker && name != ctx.base_currency && ctx.known_assets.contains(name)).then_some(asset)
}

/// `parse_wallet`: "" when the text is blank (the caller picks the default).
fn wallet(text: &str) -> Option<&str> {
    let w = strip(text)?;
    if w.is_empty() {
        return Some(w);
    }
    let bytes = w.as_bytes();
    let rest_ok = bytes[1..]
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b" _.:@/-".contains(&b));
    (bytes.len() <= WALLET_MAX && bytes[0].is_ascii_alphanumeric() && rest_ok).then_some(w)
}

/// An optional decimal field: `Some(None)` when blank, `Some(Some(v))` when
/// valid, `None` when Python would refuse it.
fn decimal(text: &str, positive: bool) -> Option<Option<i128>> {
    let raw = strip(text)?;
    if raw.is_empty() {
        return Some(None);
    }
    // Python refuses a sign on anything other than what its regex allows;
    // fixed::parse reads the same grammar (sign, digits, point, digits).
    let v = fixed::parse(raw).ok()?;
    let ok = if positive { v > 0 } else { v >= 0 };
    ok.then_some(Some(v))
}

fn blank(text: &str) -> Option<bool> {
    Some(strip(text)?.is_empty())
}

/// The row's content when it is certainly valid and needs no market price.
pub(super) fn content<'a>(tx: &RawTransaction<'a>, ctx: &Context<'_>) -> Option<Content<'a>> {
    if tx.unusual {
        return None;
    }
    let client_id = client_id(tx.client_id)?;
    let kind = tx.kind;
    if !(BUY..=GIFT_OUT).contains(&kind) {
        return None;
    }
    let time_ms = time_ms(tx.time, ctx)?;
    let asset = asset(tx.asset, ctx)?;
    let quantity = decimal(tx.quantity, true)??;
    let price = decimal(tx.price, false)?;
    let value = decimal(tx.value, false)?;
    let priced = price.is_some() || value.is_some();
    if price.is_some() && value.is_some() {
        return None;
    }
    // BUY, SELL, GIFT_IN need their own; SWAP, SPEND, INCOME without one
    // need the market (slow); TRANSFER and GIFT_OUT must have none.
    match kind {
        TRANSFER | GIFT_OUT if priced => return None,
        TRANSFER | GIFT_OUT => {}
        _ if !priced => return None,
        _ => {}
    }

    let mut fee_amount = decimal(tx.fee_amount, false)?;
    let mut fee_value = decimal(tx.fee_value, false)?;
    let mut fee_asset = Ticker::default();
    let fee_text = strip(tx.fee_asset)?;
    if !fee_text.is_empty() {
        let upper = Ticker::upper(fee_text)?;
        fee_asset = if upper.as_str() == ctx.base_currency {
            upper
        } else {
            self::asset(tx.fee_asset, ctx)?
        };
        fee_amount?;
    } else if fee_amount.is_some() {
        // The base currency as given (a ticker-sized ASCII name in practice).
        fee_asset = Ticker::upper(ctx.base_currency)?;
        if fee_asset.as_str() != ctx.base_currency {
            return None;
        }
    }
    if fee_amount == Some(0) {
        fee_asset = Ticker::default();
        fee_amount = None;
        fee_value = None;
    }
    if fee_asset.as_str() == ctx.base_currency && fee_value.is_some() {
        return None;
    }
    // legs.market_needs: a crypto fee of a positive amount without its value
    // is valued at market (a fee in the base currency is its own value).
    if !fee_asset.is_empty()
        && fee_asset.as_str() != ctx.base_currency
        && fee_amount.is_some()
        && fee_value.is_none()
    {
        return None;
    }

    let wallet = match wallet(tx.wallet)? {
        "" => DEFAULT_WALLET,
        w => w,
    };
    let mut to_wallet = "";
    if kind == TRANSFER {
        to_wallet = self::wallet(tx.to_wallet)?;
        if to_wallet.is_empty() || to_wallet == wallet {
            return None;
        }
    } else if !blank(tx.to_wallet)? {
        return None;
    }

    let (mut to_asset, mut to_quantity) = (Ticker::default(), None);
    if kind == SWAP {
        to_asset = self::asset(tx.to_asset, ctx)?;
        to_quantity = Some(decimal(tx.to_quantity, true)??);
        if to_asset == asset || price.is_some() {
            return None;
        }
    } else if !blank(tx.to_asset)? || !blank(tx.to_quantity)? {
        return None;
    }

    let income_kind = if kind == INCOME {
        match tx.income_kind {
            0 => INCOME_KIND_OTHER,
            k @ 1..=INCOME_KIND_OTHER => k,
            _ => return None,
        }
    } else if tx.income_kind != 0 {
        return None;
    } else {
        0
    };

    if tx.note.chars().count() > NOTE_MAX {
        return None;
    }
    Some(Content {
        client_id,
        kind,
        time_ms,
        asset,
        quantity,
        price,
        value,
        fee_asset,
        fee_amount,
        fee_value,
        wallet,
        to_wallet,
        to_asset,
        to_quantity,
        income_kind,
        note: tx.note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_matches_python_on_ascii() {
        // " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f".strip() == "" in Python; "\x00" is kept.
        assert_eq!(
            strip(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1fa b\x1f "),
            Some("a b")
        );
        assert_eq!(strip("\x00a"), Some("\x00a"));
        assert_eq!(strip("\u{a0}a"), None);
    }

    #[test]
    fn wallet_rules() {
        assert_eq!(wallet("  cold store/1 "), Some("cold store/1"));
        assert_eq!(wallet(""), Some(""));
        assert_eq!(wallet("-x"), None);
        assert_eq!(wallet("a#b"), None);
        assert_eq!(wallet(&"w".repeat(64)).map(str::len), Some(64));
        assert_eq!(wallet(&"w".repeat(65)), None);
    }

    #[test]
    fn decimal_rules() {
        assert_eq!(
            decimal(" 1.50 ", true),
            Some(Some(1_500_000_000_000_000_000))
        );
        assert_eq!(decimal("", true), Some(None));
        assert_eq!(decimal("-0", false), Some(Some(0)));
        assert_eq!(decimal("-0", true), None);
        assert_eq!(decimal("+.5", true), Some(Some(500_000_000_000_000_000)));
        for bad in ["1e5", "1.2.3", ".", "+", "1,5", "0x1", "1 5"] {
            assert_eq!(decimal(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn client_id_rules() {
        assert_eq!(client_id(" a b "), Some("a b"));
        assert_eq!(client_id("a\tb"), None);
        assert_eq!(client_id("   "), None);
        assert_eq!(client_id(&"x".repeat(129)), None);
    }
}
