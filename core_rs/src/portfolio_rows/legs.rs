//! services/portfolio/legs.py `build_legs` for a fast row (own price or
//! value, no market lookup, no lots), amounts exact as Python computes them.
//!
//! One rounding to reproduce: `decimals.mul` rounds a product half-even to
//! 18 places (prec 80, so never earlier). The sums and differences
//! `build_legs` takes (`value - fee`, `0 + value + fee`) are exact: Python
//! runs them in the same 80-digit context. A result that overflows i128
//! sends the row back to Python instead.

use super::fields::{Content, Ticker, BUY, GIFT_IN, GIFT_OUT, INCOME, SELL, SPEND, SWAP, TRANSFER};
use crate::ledger::fixed;

pub const ACQUIRE: u8 = 1;
pub const DISPOSE: u8 = 2;
pub const REMOVE: u8 = 3;
pub const MOVE: u8 = 4;

/// One leg: (leg, kind, asset, wallet, qty, amount, to_wallet); the
/// wallet is the row's, and so is the to_wallet of a MOVE (else "").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leg {
    pub leg: u32,
    pub kind: u8,
    pub asset: Ticker,
    pub qty: i128,
    pub amount: i128,
}

/// `decimals.mul`: a * b rounded half-even to 18 places; None on overflow.
pub fn mul(a: i128, b: i128) -> Option<i128> {
    fixed::mul_div(a, b, fixed::ONE).ok()
}

/// Python `a + b` (or `a - b`) in the ledger's context: exact; None on overflow.
fn add(a: i128, b: i128) -> Option<i128> {
    a.checked_add(b)
}

fn sub(a: i128, b: i128) -> Option<i128> {
    a.checked_sub(b)
}

/// The legs in order (at most three: no allocation per row).
pub(super) fn build_legs(c: &Content<'_>, base_currency: &str) -> Option<[Option<Leg>; 3]> {
    let value = match (c.value, c.price) {
        (Some(v), _) => v,
        (None, Some(p)) => mul(c.quantity, p)?,
        // TRANSFER, GIFT_OUT; the kinds valued at market never get here.
        (None, None) => 0,
    };
    let crypto_fee = !c.fee_asset.is_empty() && c.fee_amount.is_some_and(|a| a > 0);
    let mut fee_leg = None;
    let fee = if c.fee_asset.as_str() == base_currency && c.fee_amount.is_some() {
        c.fee_amount?
    } else if crypto_fee {
        let amount = c.fee_value?;
        fee_leg = Some((c.fee_amount?, amount));
        amount
    } else {
        0
    };
    let mut legs: [Option<Leg>; 3] = [None; 3];
    let mut n = 0;
    let mut push = |kind: u8, asset: Ticker, qty: i128, amount: i128| {
        legs[n] = Some(Leg {
            leg: n as u32,
            kind,
            asset,
            qty,
            amount,
        });
        n += 1;
    };
    match c.kind {
        // _sum(value, fee) is sum((value, fee), ZERO): two additions.
        BUY => push(ACQUIRE, c.asset, c.quantity, add(add(0, value)?, fee)?),
        SELL | SPEND => push(DISPOSE, c.asset, c.quantity, sub(value, fee)?),
        SWAP => {
            push(DISPOSE, c.asset, c.quantity, sub(value, fee)?);
            push(ACQUIRE, c.to_asset, c.to_quantity?, value);
        }
        INCOME | GIFT_IN => push(ACQUIRE, c.asset, c.quantity, value),
        TRANSFER => push(MOVE, c.asset, c.quantity, 0),
        GIFT_OUT => push(REMOVE, c.asset, c.quantity, 0),
        _ => return None,
    }
    if let Some((qty, amount)) = fee_leg {
        push(DISPOSE, c.fee_asset, qty, amount);
    }
    Some(legs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: i128 = fixed::ONE;

    #[test]
    fn mul_rounds_half_even_at_18_places() {
        // 0.000000001 x 0.0000000005 = 5e-19: a tie, rounds to the even 0.
        assert_eq!(mul(1_000_000_000, 500_000_000), Some(0));
        // 0.000000003 x 0.0000000005 = 1.5e-18: a tie, rounds to the even 2e-18.
        assert_eq!(mul(3_000_000_000, 500_000_000), Some(2));
        // 2.5e-18 -> 2e-18 (even), 3.5e-18 -> 4e-18.
        assert_eq!(mul(5_000_000_000, 500_000_000), Some(2));
        assert_eq!(mul(7_000_000_000, 500_000_000), Some(4));
        // 1.5e-18 + a hair -> 2e-18; 2.5e-18 - a hair -> 2e-18.
        assert_eq!(mul(3_000_000_001, 500_000_000), Some(2));
        assert_eq!(mul(4_999_999_999, 500_000_000), Some(2));
        // Negative ties round half-even on the magnitude.
        assert_eq!(mul(-3_000_000_000, 500_000_000), Some(-2));
        // 1.5 x 2.25 = 3.375 exactly.
        assert_eq!(
            mul(3 * ONE / 2, 9 * ONE / 4),
            Some(3_375_000_000_000_000_000)
        );
        // (10^20 - 1) x (10^20 - 1) does not fit: overflow, not a wrapped value.
        let big = (100_000_000_000_000_000_000i128 - 1) * ONE;
        assert_eq!(mul(big, big), None);
    }

    #[test]
    fn sums_are_exact_beyond_28_digits_and_refuse_overflow() {
        let d29 = 12_345_678_901_234_567_890_123_456_789i128;
        assert_eq!(add(d29, 1), Some(d29 + 1));
        assert_eq!(sub(-d29, 1), Some(-d29 - 1));
        assert_eq!(add(i128::MAX, 1), None);
    }
}
