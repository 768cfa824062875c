//! `ImportTransactionsRequest` -> one borrowed view per `Transaction`.
//!
//! ```text
//! ImportTransactionsRequest { 1 portfolio_id string, 2 transactions repeated Transaction }
//! Transaction { 1 id, 2 kind enum, 3 time Timestamp, 4 asset, 5 quantity, 6 price, 7 value,
//!               8 fee Fee{1 asset, 2 amount, 3 value}, 9 wallet, 10 to_wallet, 11 to_asset,
//!               12 to_quantity, 13 income_kind enum, 14 lots repeated LotSelection{1 lot_id,
//!               2 quantity}, 15 note, 16 client_transaction_id, 17 valuation,
//!               18 record_time Timestamp }
//! ```
//!
//! The caller only takes a row on its fast path when the wire form is the
//! plain one: every field once, with its declared wire type, no unknown
//! fields. Anything else (which a protobuf library would still accept, by
//! merging or skipping) sets `unusual`, and the row goes to the slow path.
//! What a protobuf library would refuse (truncation, invalid UTF-8 in a
//! string) fails the whole message, as parsing it in Python would.

use super::{truncated, Reader, WIRE_LEN, WIRE_VARINT};
use crate::CoreError;

/// One `Transaction` as it is on the wire; strings borrow the message.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawTransaction<'a> {
    pub kind: i32,
    /// (seconds, nanos) when the field is present.
    pub time: Option<(i64, i32)>,
    pub asset: &'a str,
    pub quantity: &'a str,
    pub price: &'a str,
    pub value: &'a str,
    pub fee_asset: &'a str,
    pub fee_amount: &'a str,
    pub fee_value: &'a str,
    pub wallet: &'a str,
    pub to_wallet: &'a str,
    pub to_asset: &'a str,
    pub to_quantity: &'a str,
    pub income_kind: i32,
    pub note: &'a str,
    pub client_id: &'a str,
    /// Lots named, `id`, `valuation` or `record_time` set, a field repeated,
    /// of another wire type or unknown: not a row for the fast path.
    pub unusual: bool,
}

/// The request's portfolio id and its transactions' bytes in message
/// order, each for `decode_transaction` (decoded as they are used, so a
/// large message is never held decoded all at once).
#[derive(Debug, Default, PartialEq)]
pub struct ImportRequest<'a> {
    pub portfolio_id: &'a str,
    pub transactions: Vec<&'a [u8]>,
}

const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
/// protobuf's (upb's) default nesting limit.
const MAX_DEPTH: u32 = 100;

/// Skips an unknown field, a (deprecated, proto2) group included: a
/// protobuf library keeps those as unknown fields rather than failing.
fn skip(r: &mut Reader<'_>, field: u32, wire: u8, depth: u32) -> Result<(), CoreError> {
    if wire != START_GROUP {
        return r.skip(wire);
    }
    if depth >= MAX_DEPTH {
        return Err(truncated());
    }
    loop {
        let (f, w) = r.key()?;
        if w == END_GROUP {
            return if f == field { Ok(()) } else { Err(truncated()) };
        }
        skip(r, f, w, depth + 1)?;
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, CoreError> {
    std::str::from_utf8(bytes).map_err(|_| CoreError::InvalidArgument {
        name: "data",
        reason: "a string field is not valid UTF-8".into(),
    })
}

pub fn decode_import_request(buf: &[u8]) -> Result<ImportRequest<'_>, CoreError> {
    let mut out = ImportRequest::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            // A repeated scalar: the last one wins, as in protobuf.
            (1, WIRE_LEN) => out.portfolio_id = utf8(r.bytes()?)?,
            (2, WIRE_LEN) => out.transactions.push(r.bytes()?),
            _ => skip(&mut r, field, wire, 0)?,
        }
    }
    Ok(out)
}

/// One `Transaction`; an error when it is malformed (which fails the whole
/// message, as in protobuf).
pub fn decode_transaction(buf: &[u8]) -> Result<RawTransaction<'_>, CoreError> {
    let mut tx = RawTransaction::default();
    let mut seen = 0u32;
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        let first = field < 32 && seen & (1 << field) == 0;
        if field < 32 {
            seen |= 1 << field;
        }
        if !first {
            tx.unusual = true;
        }
        match (field, wire) {
            (2, WIRE_VARINT) => tx.kind = enum_value(&mut r)?,
            (13, WIRE_VARINT) => tx.income_kind = enum_value(&mut r)?,
            (3, WIRE_LEN) => {
                let (time, plain) = timestamp(r.bytes()?)?;
                tx.time = Some(time);
                tx.unusual |= !plain;
            }
            (8, WIRE_LEN) => tx.unusual |= !fee(r.bytes()?, &mut tx)?,
            (14, WIRE_LEN) => {
                lot_selection(r.bytes()?)?;
                tx.unusual = true;
            }
            (18, WIRE_LEN) => {
                timestamp(r.bytes()?)?;
                tx.unusual = true;
            }
            (1 | 4..=7 | 9..=12 | 15..=17, WIRE_LEN) => {
                let text = utf8(r.bytes()?)?;
                match field {
                    4 => tx.asset = text,
                    5 => tx.quantity = text,
                    6 => tx.price = text,
                    7 => tx.value = text,
                    9 => tx.wallet = text,
                    10 => tx.to_wallet = text,
                    11 => tx.to_asset = text,
                    12 => tx.to_quantity = text,
                    15 => tx.note = text,
                    16 => tx.client_id = text,
                    // id (1), valuation (17): ignored by the service, but
                    // kept off the fast path.
                    _ => tx.unusual = true,
                }
            }
            _ => {
                skip(&mut r, field, wire, 0)?;
                tx.unusual = true;
            }
        }
    }
    Ok(tx)
}

/// Enums are int32 varints; a negative one is ten bytes of two's complement
/// and reads back as its low 32 bits, as protobuf does.
fn enum_value(r: &mut Reader<'_>) -> Result<i32, CoreError> {
    Ok(r.varint()? as i64 as i32)
}

/// ((seconds, nanos), plain): plain is false for unknown or repeated fields.
fn timestamp(buf: &[u8]) -> Result<((i64, i32), bool), CoreError> {
    let (mut seconds, mut nanos, mut plain, mut seen) = (0i64, 0i32, true, 0u8);
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1 | 2, WIRE_VARINT) => {
                let bit = 1u8 << field;
                plain &= seen & bit == 0;
                seen |= bit;
                let v = r.varint()?;
                if field == 1 {
                    seconds = v as i64;
                } else {
                    nanos = v as i64 as i32;
                }
            }
            _ => {
                skip(&mut r, field, wire, 0)?;
                plain = false;
            }
        }
    }
    Ok(((seconds, nanos), plain))
}

/// Fills the fee fields; false for unknown or repeated fields.
fn fee<'a>(buf: &'a [u8], tx: &mut RawTransaction<'a>) -> Result<bool, CoreError> {
    let (mut plain, mut seen) = (true, 0u8);
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1..=3, WIRE_LEN) => {
                let bit = 1u8 << field;
                plain &= seen & bit == 0;
                seen |= bit;
                let text = utf8(r.bytes()?)?;
                match field {
                    1 => tx.fee_asset = text,
                    2 => tx.fee_amount = text,
                    _ => tx.fee_value = text,
                }
            }
            _ => {
                skip(&mut r, field, wire, 0)?;
                plain = false;
            }
        }
    }
    Ok(plain)
}

/// Only checked (a named lot always sends the row to the slow path).
fn lot_selection(buf: &[u8]) -> Result<(), CoreError> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1 | 2, WIRE_LEN) => {
                utf8(r.bytes()?)?;
            }
            _ => skip(&mut r, field, wire, 0)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn len_field(field: u32, body: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(field << 3 | 2), out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn int_field(field: u32, v: i64, out: &mut Vec<u8>) {
        varint(u64::from(field << 3), out);
        varint(v as u64, out);
    }

    fn buy() -> Vec<u8> {
        let mut ts = Vec::new();
        int_field(1, 1_700_000_000, &mut ts);
        int_field(2, 5_000_000, &mut ts);
        let mut fee = Vec::new();
        len_field(2, b"1.5", &mut fee);
        let mut tx = Vec::new();
        int_field(2, 1, &mut tx);
        len_field(3, &ts, &mut tx);
        len_field(4, b"btc", &mut tx);
        len_field(5, b"0.5", &mut tx);
        len_field(6, b"100", &mut tx);
        len_field(8, &fee, &mut tx);
        len_field(15, "caf\u{e9}".as_bytes(), &mut tx);
        len_field(16, b"row-1", &mut tx);
        tx
    }

    #[test]
    fn decodes_a_plain_transaction() {
        let mut msg = Vec::new();
        len_field(1, b"pf_1", &mut msg);
        len_field(2, &buy(), &mut msg);
        len_field(2, &[], &mut msg);
        let req = decode_import_request(&msg).unwrap();
        assert_eq!(req.portfolio_id, "pf_1");
        assert_eq!(req.transactions.len(), 2);
        let tx = &decode_transaction(req.transactions[0]).unwrap();
        assert_eq!(tx.kind, 1);
        assert_eq!(tx.time, Some((1_700_000_000, 5_000_000)));
        assert_eq!((tx.asset, tx.quantity, tx.price), ("btc", "0.5", "100"));
        assert_eq!((tx.fee_asset, tx.fee_amount, tx.fee_value), ("", "1.5", ""));
        assert_eq!((tx.note, tx.client_id), ("caf\u{e9}", "row-1"));
        assert!(!tx.unusual);
        assert_eq!(
            decode_transaction(req.transactions[1]).unwrap(),
            RawTransaction::default()
        );
    }

    #[test]
    fn negative_enum_reads_as_int32() {
        let mut tx = Vec::new();
        int_field(2, -3, &mut tx);
        let mut msg = Vec::new();
        len_field(2, &tx, &mut msg);
        assert_eq!(
            decode_transaction(decode_import_request(&msg).unwrap().transactions[0])
                .unwrap()
                .kind,
            -3
        );
    }

    #[test]
    fn unusual_wire_forms_are_flagged() {
        // (field, wire type, payload): appended to a plain transaction.
        let cases: [(u32, u8, &[u8]); 7] = [
            (4, WIRE_LEN, b"eth"),  // repeated field
            (99, WIRE_LEN, b"x"),   // unknown field
            (4, WIRE_VARINT, b""),  // wrong wire type
            (1, WIRE_LEN, b"tx_1"), // id
            (17, WIRE_LEN, b""),    // valuation
            (14, WIRE_LEN, b""),    // lots
            (18, WIRE_LEN, b""),    // record_time
        ];
        for (field, wire, payload) in cases {
            let mut tx = buy();
            if wire == WIRE_LEN {
                len_field(field, payload, &mut tx);
            } else {
                int_field(field, 1, &mut tx);
            }
            let mut msg = Vec::new();
            len_field(2, &tx, &mut msg);
            let req = decode_import_request(&msg).unwrap();
            assert!(decode_transaction(req.transactions[0]).unwrap().unusual);
        }
    }

    #[test]
    fn unknown_groups_are_skipped() {
        // Field 50 as a group holding field 1 = 5, in the request and in a
        // transaction (which then is unusual).
        let group = [0x93, 0x03, 0x08, 0x05, 0x94, 0x03];
        let mut tx = buy();
        tx.extend_from_slice(&group);
        let mut msg = Vec::new();
        len_field(2, &tx, &mut msg);
        msg.extend_from_slice(&group);
        let req = decode_import_request(&msg).unwrap();
        assert_eq!(req.transactions.len(), 1);
        let tx = decode_transaction(req.transactions[0]).unwrap();
        assert!(tx.unusual);
        assert_eq!(tx.asset, "btc");
        // An end without its start, or the wrong end, is malformed.
        assert!(decode_import_request(&[0x94, 0x03]).is_err());
        assert!(decode_import_request(&[0x93, 0x03, 0x9c, 0x03]).is_err());
        assert!(decode_import_request(&[0x93, 0x03]).is_err());
    }

    #[test]
    fn malformed_messages_fail() {
        let mut msg = Vec::new();
        len_field(2, &buy(), &mut msg);
        assert!(decode_import_request(&msg[..msg.len() - 1]).is_err());
        let mut tx = Vec::new();
        len_field(4, &[0xff, 0xfe], &mut tx);
        assert!(decode_transaction(&tx).is_err());
        let truncated = buy();
        assert!(decode_transaction(&truncated[..truncated.len() - 1]).is_err());
    }
}
