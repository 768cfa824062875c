//! Protobuf wire decoding of the messages a Python service receives in bulk,
//! straight into columns. Reading tens of thousands of nested messages field
//! by field from Python costs microseconds each (a wrapper object per
//! message and per well-known type); here it is a single pass over the bytes.
//!
//! `decode_stream_candles` reads `marketmesh.v1.StreamCandlesResponse`
//! (proto/marketmesh/v1/pricing.proto). Unknown fields are skipped, absent
//! ones take proto3 defaults, so a newer pricing that adds fields still
//! decodes.
//!
//! `decode_import_request` reads `marketmesh.v1.ImportTransactionsRequest`
//! (proto/marketmesh/v1/portfolio.proto) for the portfolio's import fast path.

mod candles;
mod transactions;

pub use candles::{decode_stream_candles, CandleColumns};
pub use transactions::{decode_import_request, decode_transaction, ImportRequest, RawTransaction};

use crate::CoreError;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn truncated() -> CoreError {
    CoreError::InvalidArgument {
        name: "data",
        reason: "truncated or malformed protobuf message".into(),
    }
}

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, CoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or_else(truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(truncated())
    }

    /// (field number, wire type) of the next field.
    pub(crate) fn key(&mut self) -> Result<(u32, u8), CoreError> {
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| truncated())?;
        Ok((field, (key & 7) as u8))
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, CoreError> {
        let end = self.pos.checked_add(8).ok_or_else(truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(u64::from_le_bytes(
            bytes.try_into().map_err(|_| truncated())?,
        ))
    }

    pub(crate) fn double(&mut self) -> Result<f64, CoreError> {
        Ok(f64::from_bits(self.fixed64()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], CoreError> {
        let len = usize::try_from(self.varint()?).map_err(|_| truncated())?;
        let end = self.pos.checked_add(len).ok_or_else(truncated)?;
        let out = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn skip(&mut self, wire_type: u8) -> Result<(), CoreError> {
        match wire_type {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.fixed64()?;
            }
            LEN => {
                self.bytes()?;
            }
            FIXED32 => {
                let end = self.pos.checked_add(4).ok_or_else(truncated)?;
                if end > self.buf.len() {
                    return Err(truncated());
                }
                self.pos = end;
            }
            _ => return Err(truncated()),
        }
        Ok(())
    }
}

pub(crate) fn expect(wire_type: u8, wanted: u8) -> Result<(), CoreError> {
    if wire_type == wanted {
        Ok(())
    } else {
        Err(truncated())
    }
}

pub(crate) const WIRE_VARINT: u8 = VARINT;
pub(crate) const WIRE_FIXED64: u8 = FIXED64;
pub(crate) const WIRE_LEN: u8 = LEN;
