//! services/portfolio/transactions.py `encode` for a fast row: the content
//! as `json.dumps(..., separators=(",", ":"), sort_keys=True)` writes it
//! (ensure_ascii), its sha256 (first 32 hex digits), and the stored body
//! with the (always empty) market prices appended.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::fields::Content;
use crate::ledger::fixed;

/// `decimals.fmt`: "" for None.
pub(super) fn fmt(v: Option<i128>) -> String {
    v.map(fixed::format).unwrap_or_default()
}

/// Appends `text` as a JSON string the way Python's json module does with
/// ensure_ascii: short escapes for \" \\ \n \r \t \b \f, \u00XX for other
/// control characters and DEL, \uXXXX (lower-case hex, surrogate pairs above
/// U+FFFF) for everything outside ASCII.
pub fn json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The decimals of a row in `fmt` form, computed once for the JSON and the
/// Python tuple.
pub(super) struct Formatted {
    pub quantity: String,
    pub price: String,
    pub value: String,
    pub fee_amount: String,
    pub fee_value: String,
    pub to_quantity: String,
}

impl Formatted {
    pub fn new(c: &Content<'_>) -> Self {
        Formatted {
            quantity: fixed::format(c.quantity),
            price: fmt(c.price),
            value: fmt(c.value),
            fee_amount: fmt(c.fee_amount),
            fee_value: fmt(c.fee_value),
            to_quantity: fmt(c.to_quantity),
        }
    }
}

/// (content_hash, body).
pub(super) fn encode(c: &Content<'_>, f: &Formatted) -> (String, String) {
    let mut s = String::with_capacity(320 + c.note.len());
    let field = |s: &mut String, key: &str, text: &str| {
        s.push_str(key);
        json_string(text, s);
    };
    // Keys in sorted order, as sort_keys=True writes them.
    field(&mut s, "{\"asset\":", &c.asset);
    field(&mut s, ",\"fee_amount\":", &f.fee_amount);
    field(&mut s, ",\"fee_asset\":", &c.fee_asset);
    field(&mut s, ",\"fee_value\":", &f.fee_value);
    let _ = write!(s, ",\"income_kind\":{},\"kind\":{}", c.income_kind, c.kind);
    s.push_str(",\"lots\":[]");
    field(&mut s, ",\"note\":", c.note);
    field(&mut s, ",\"price\":", &f.price);
    field(&mut s, ",\"quantity\":", &f.quantity);
    let _ = write!(s, ",\"time_ms\":{}", c.time_ms);
    field(&mut s, ",\"to_asset\":", &c.to_asset);
    field(&mut s, ",\"to_quantity\":", &f.to_quantity);
    field(&mut s, ",\"to_wallet\":", c.to_wallet);
    field(&mut s, ",\"value\":", &f.value);
    field(&mut s, ",\"wallet\":", c.wallet);
    s.push('}');
    let digest = Sha256::digest(s.as_bytes());
    let mut hash = String::with_capacity(32);
    for b in &digest[..16] {
        let _ = write!(hash, "{b:02x}");
    }
    s.pop();
    s.push_str(",\"market\":{}}");
    (hash, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(text: &str) -> String {
        let mut out = String::new();
        json_string(text, &mut out);
        out
    }

    // Expected strings written by hand from json.dumps's documented escaping.
    #[test]
    fn escapes_like_python_ensure_ascii() {
        assert_eq!(js(""), r#""""#);
        assert_eq!(js("plain / text ~"), r#""plain / text ~""#);
        assert_eq!(js("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(js("\n\r\t\x08\x0c"), r#""\n\r\t\b\f""#);
        assert_eq!(js("\x00\x01\x1f\x7f"), r#""\u0000\u0001\u001f\u007f""#);
        assert_eq!(js("caf\u{e9}"), r#""caf\u00e9""#);
        assert_eq!(js("\u{20ac}\u{feff}"), r#""\u20ac\ufeff""#);
        // U+1F600 is the surrogate pair D83D DE00.
        assert_eq!(js("\u{1f600}"), r#""\ud83d\ude00""#);
        assert_eq!(js("\u{10ffff}"), r#""\udbff\udfff""#);
    }

    #[test]
    fn fmt_like_decimals_fmt() {
        assert_eq!(fmt(None), "");
        assert_eq!(fmt(Some(0)), "0");
        assert_eq!(fmt(Some(1_500_000_000_000_000_000)), "1.5");
        assert_eq!(fmt(Some(-1)), "-0.000000000000000001");
        assert_eq!(fmt(Some(100 * fixed::ONE)), "100");
    }
}
