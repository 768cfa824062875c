//! `StreamCandlesResponse` -> columns.
//!
//! ```text
//! StreamCandlesResponse { 1 sequence uint64, 2 snapshot bool, 3 heartbeat bool,
//!                         4 updates repeated CandleUpdate, 5 more bool }
//! CandleUpdate { 1 symbol string, 2 interval enum, 3 candle Candle }
//! Candle { 1 open_time Timestamp{1 seconds int64, 2 nanos int32}, 2 open, 3 high,
//!          4 low, 5 close, 6 volume double, 7 trades uint64, 8 closed bool,
//!          9 quote_volume double }
//! ```

use super::{expect, Reader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT};
use crate::CoreError;

/// One decoded message: header fields and one row per update.
#[derive(Debug, Default, PartialEq)]
pub struct CandleColumns {
    pub sequence: u64,
    pub snapshot: bool,
    pub heartbeat: bool,
    pub more: bool,
    pub symbols: Vec<String>,
    pub interval: Vec<i32>,
    pub open_ms: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    pub closed: Vec<bool>,
}

pub fn decode_stream_candles(buf: &[u8]) -> Result<CandleColumns, CoreError> {
    let mut out = CandleColumns::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, WIRE_VARINT) => out.sequence = r.varint()?,
            (2, WIRE_VARINT) => out.snapshot = r.varint()? != 0,
            (3, WIRE_VARINT) => out.heartbeat = r.varint()? != 0,
            (4, WIRE_LEN) => update(r.bytes()?, &mut out)?,
            (5, WIRE_VARINT) => out.more = r.varint()? != 0,
            _ => r.skip(wire)?,
        }
    }
    Ok(out)
}

fn update(buf: &[u8], out: &mut CandleColumns) -> Result<(), CoreError> {
    let mut symbol: &[u8] = b"";
    let mut interval = 0i32;
    let mut candle: &[u8] = b"";
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, WIRE_LEN)?;
                symbol = r.bytes()?;
            }
            // Enums are int32 varints; negative ones are 10-byte two's complement.
            2 => {
                expect(wire, WIRE_VARINT)?;
                interval = r.varint()? as i64 as i32;
            }
            // A repeated occurrence of a message field merges; pricing never
            // sends one, and the last one wins here.
            3 => {
                expect(wire, WIRE_LEN)?;
                candle = r.bytes()?;
            }
            _ => r.skip(wire)?,
        }
    }
    let symbol = std::str::from_utf8(symbol).map_err(|_| CoreError::InvalidArgument {
        name: "data",
        reason: "a CandleUpdate symbol is not UTF-8".into(),
    })?;
    out.symbols.push(symbol.to_owned());
    out.interval.push(interval);
    let mut ohlcv = [0.0f64; 5];
    let (mut seconds, mut nanos, mut closed) = (0i64, 0i64, false);
    let mut r = Reader::new(candle);
    while !r.done() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, WIRE_LEN) => {
                let mut t = Reader::new(r.bytes()?);
                while !t.done() {
                    let (f, w) = t.key()?;
                    match (f, w) {
                        (1, WIRE_VARINT) => seconds = t.varint()? as i64,
                        (2, WIRE_VARINT) => nanos = i64::from(t.varint()? as i64 as i32),
                        _ => t.skip(w)?,
                    }
                }
            }
            (2..=6, WIRE_FIXED64) => ohlcv[field as usize - 2] = r.double()?,
            (8, WIRE_VARINT) => closed = r.varint()? != 0,
            _ => r.skip(wire)?,
        }
    }
    // Floor division as in Python (times before 1970 keep nanos in 0..1e9).
    out.open_ms
        .push(seconds * 1000 + nanos.div_euclid(1_000_000));
    out.open.push(ohlcv[0]);
    out.high.push(ohlcv[1]);
    out.low.push(ohlcv[2]);
    out.close.push(ohlcv[3]);
    out.volume.push(ohlcv[4]);
    out.closed.push(closed);
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

    fn double_field(field: u32, v: f64, out: &mut Vec<u8>) {
        varint(u64::from(field << 3 | 1), out);
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn candle_update(symbol: &str, interval: u64, seconds: i64, nanos: i32, c: f64) -> Vec<u8> {
        let mut ts = Vec::new();
        varint(8, &mut ts);
        varint(seconds as u64, &mut ts);
        if nanos != 0 {
            varint(16, &mut ts);
            varint(nanos as i64 as u64, &mut ts);
        }
        let mut candle = Vec::new();
        len_field(1, &ts, &mut candle);
        for (f, v) in [(2, c), (3, c + 1.0), (4, c - 1.0), (5, c + 0.5), (6, 7.0)] {
            double_field(f, v, &mut candle);
        }
        varint(7 << 3, &mut candle); // trades
        varint(12, &mut candle);
        varint(8 << 3, &mut candle); // closed
        varint(1, &mut candle);
        varint((42 << 3) | 2, &mut candle); // an unknown field, skipped
        varint(2, &mut candle);
        candle.extend_from_slice(b"xy");
        let mut up = Vec::new();
        len_field(1, symbol.as_bytes(), &mut up);
        varint(2 << 3, &mut up);
        varint(interval, &mut up);
        len_field(3, &candle, &mut up);
        up
    }

    #[test]
    fn decodes_header_and_rows() {
        let mut msg = Vec::new();
        varint(1 << 3, &mut msg);
        varint(300, &mut msg);
        len_field(
            4,
            &candle_update("BTC-USD", 4, 1_700_000_000, 5_000_000, 100.0),
            &mut msg,
        );
        len_field(
            4,
            &candle_update("ETH-USD", 6, -1, 999_000_000, 2.0),
            &mut msg,
        );
        varint(5 << 3, &mut msg);
        varint(1, &mut msg);
        let c = decode_stream_candles(&msg).unwrap();
        assert_eq!(
            (c.sequence, c.snapshot, c.heartbeat, c.more),
            (300, false, false, true)
        );
        assert_eq!(c.symbols, vec!["BTC-USD", "ETH-USD"]);
        assert_eq!(c.interval, vec![4, 6]);
        assert_eq!(c.open_ms, vec![1_700_000_000_005, -1]);
        assert_eq!(c.open, vec![100.0, 2.0]);
        assert_eq!(c.high, vec![101.0, 3.0]);
        assert_eq!(c.low, vec![99.0, 1.0]);
        assert_eq!(c.close, vec![100.5, 2.5]);
        assert_eq!(c.volume, vec![7.0, 7.0]);
        assert_eq!(c.closed, vec![true, true]);
    }

    #[test]
    fn empty_message_is_defaults() {
        assert_eq!(
            decode_stream_candles(&[]).unwrap(),
            CandleColumns::default()
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut msg = Vec::new();
        len_field(4, &candle_update("BTC-USD", 4, 1, 0, 1.0), &mut msg);
        for cut in 0..msg.len() {
            let _ = decode_stream_candles(&msg[..cut]); // must not panic
        }
        assert!(decode_stream_candles(&msg[..msg.len() - 1]).is_err());
        assert!(decode_stream_candles(&[0x22, 0x05, 0x01]).is_err());
    }
}
