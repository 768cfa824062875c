//! services/portfolio/transactions.py `encode` for a fast row: the content
//! as `json.dumps(..., separators=(",", ":"), sort_keys=True)` writes it
//! (ensure_ascii), its sha256 (first 32 hex digits), and the stored body
//! with the (always empty) market prices appended.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::fields::Content;
use crate::ledger::fixed;

/// `decimals.fmt` of a scaled amount, formatted on the stack: "1.5", "0",
/// "-0.000001"; "" for None.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecText {
    buf: [u8; 48],
    len: u8,
}

impl DecText {
    pub fn new(v: Option<i128>) -> Self {
        let mut t = DecText {
            buf: [0; 48],
            len: 0,
        };
        let Some(v) = v else { return t };
        let one = fixed::ONE as u128;
        let abs = v.unsigned_abs();
        let (int, frac) = (abs / one, (abs % one) as u64);
        // Digits are written right to left into a scratch buffer.
        let mut digits = [0u8; 48];
        let mut at = digits.len();
        if frac != 0 {
            let mut f = frac;
            let mut n = fixed::SCALE_DIGITS;
            while f % 10 == 0 {
                f /= 10;
                n -= 1;
            }
            for _ in 0..n {
                at -= 1;
                digits[at] = b'0' + (f % 10) as u8;
                f /= 10;
            }
            at -= 1;
            digits[at] = b'.';
        }
        // Integer parts beyond u64 (over 1.8e19) are rare; u128 division
        // is a library call.
        let mut i = int;
        while i > u128::from(u64::MAX) {
            at -= 1;
            digits[at] = b'0' + (i % 10) as u8;
            i /= 10;
        }
        let mut i = i as u64;
        loop {
            at -= 1;
            digits[at] = b'0' + (i % 10) as u8;
            i /= 10;
            if i == 0 {
                break;
            }
        }
        if v < 0 {
            at -= 1;
            digits[at] = b'-';
        }
        let n = digits.len() - at;
        t.buf[..n].copy_from_slice(&digits[at..]);
        t.len = n as u8;
        t
    }

    pub fn as_str(&self) -> &str {
        // Only ever filled with ASCII digits, '.' and '-'.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

/// Appends `text` as a JSON string the way Python's json module does with
/// ensure_ascii: short escapes for \" \\ \n \r \t \b \f, \u00XX for other
/// control characters and DEL, \uXXXX (lower-case hex, surrogate pairs above
/// U+FFFF) for everything outside ASCII.
pub fn json_string(text: &str, out: &mut String) {
    out.push('"');
    let bytes = text.as_bytes();
    let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\';
    if bytes.iter().all(|&b| plain(b)) {
        out.push_str(text);
        out.push('"');
        return;
    }
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
#[derive(Debug, Clone, PartialEq)]
pub struct Formatted {
    pub quantity: DecText,
    pub price: DecText,
    pub value: DecText,
    pub fee_amount: DecText,
    pub fee_value: DecText,
    pub to_quantity: DecText,
}

impl Formatted {
    pub fn new(c: &Content<'_>) -> Self {
        Formatted {
            quantity: DecText::new(Some(c.quantity)),
            price: DecText::new(c.price),
            value: DecText::new(c.value),
            fee_amount: DecText::new(c.fee_amount),
            fee_value: DecText::new(c.fee_value),
            to_quantity: DecText::new(c.to_quantity),
        }
    }
}

/// Appends the body to `s` and returns the content hash (32 hex digits).
pub(super) fn encode(c: &Content<'_>, f: &Formatted, s: &mut String) -> [u8; 32] {
    let start = s.len();
    let field = |s: &mut String, key: &str, text: &str| {
        s.push_str(key);
        json_string(text, s);
    };
    // Keys in sorted order, as sort_keys=True writes them.
    field(s, "{\"asset\":", c.asset.as_str());
    field(s, ",\"fee_amount\":", f.fee_amount.as_str());
    field(s, ",\"fee_asset\":", c.fee_asset.as_str());
    field(s, ",\"fee_value\":", f.fee_value.as_str());
    let _ = write!(s, ",\"income_kind\":{},\"kind\":{}", c.income_kind, c.kind);
    s.push_str(",\"lots\":[]");
    field(s, ",\"note\":", c.note);
    field(s, ",\"price\":", f.price.as_str());
    field(s, ",\"quantity\":", f.quantity.as_str());
    let _ = write!(s, ",\"time_ms\":{}", c.time_ms);
    field(s, ",\"to_asset\":", c.to_asset.as_str());
    field(s, ",\"to_quantity\":", f.to_quantity.as_str());
    field(s, ",\"to_wallet\":", c.to_wallet);
    field(s, ",\"value\":", f.value.as_str());
    field(s, ",\"wallet\":", c.wallet);
    s.push('}');
    let digest = Sha256::digest(&s.as_bytes()[start..]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hash = [0u8; 32];
    for (i, b) in digest[..16].iter().enumerate() {
        hash[2 * i] = HEX[usize::from(b >> 4)];
        hash[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    s.pop();
    s.push_str(",\"market\":{}}");
    hash
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
        let fmt = |v: Option<i128>| DecText::new(v).as_str().to_owned();
        assert_eq!(fmt(None), "");
        assert_eq!(fmt(Some(0)), "0");
        assert_eq!(fmt(Some(1_500_000_000_000_000_000)), "1.5");
        assert_eq!(fmt(Some(-1)), "-0.000000000000000001");
        assert_eq!(fmt(Some(100 * fixed::ONE)), "100");
        assert_eq!(
            fmt(Some(-100_000_000_000_000_000_000 * fixed::ONE + 10)),
            "-99999999999999999999.99999999999999999"
        );
        assert_eq!(
            fmt(Some(i128::MAX)),
            "170141183460469231731.687303715884105727"
        );
        assert_eq!(
            fmt(Some(i128::MIN)),
            "-170141183460469231731.687303715884105728"
        );
        // Against the ledger's own formatter over a spread of magnitudes.
        let mut v: i128 = 7;
        for _ in 0..37 {
            for x in [v, -v, v + 1, v * 10] {
                assert_eq!(fmt(Some(x)), fixed::format(x));
            }
            v = v * 10 + 3;
        }
    }
}
