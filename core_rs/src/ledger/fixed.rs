//! Exact decimal amounts as i128 scaled by 10^18: the precision of
//! portfolio.proto (at most 20 digits before the point, 18 after), which
//! fits an i128 with room for sums (|value| < 10^38 < 2^127).
//!
//! Everything is checked: an overflow is an error, never a wrapped value.
//! Derived values (a share of a cost) come from `mul_div`, which keeps the
//! full 256-bit product and rounds half-even once, as
//! services/portfolio/decimals.py does with `decimal`.

use std::cmp::Ordering;

use super::LedgerError;

/// 10^18: one unit.
pub const ONE: i128 = 1_000_000_000_000_000_000;
pub const SCALE_DIGITS: usize = 18;
pub const MAX_INTEGER_DIGITS: usize = 20;

/// `text` as a scaled integer. Plain notation only, as decimals.py accepts
/// it: an optional sign, digits, an optional point and fraction ("5.",
/// ".5" included). Leading zeros and trailing fractional zeros do not count
/// against the digit limits, since they do not change the value.
pub fn parse(text: &str) -> Result<i128, LedgerError> {
    let bad = |why: &str| LedgerError::new(format!("'{text}' is not a decimal: {why}"));
    let bytes = text.as_bytes();
    let (negative, body) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &body[body.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad("no digits"));
    }
    if !int_part.iter().chain(frac_part).all(u8::is_ascii_digit) {
        return Err(bad(
            "only digits, one point and a leading sign are allowed (no exponent, no spaces)",
        ));
    }
    let int_digits = trim_start(int_part);
    let frac_digits = trim_end(frac_part);
    if int_digits.len() > MAX_INTEGER_DIGITS {
        return Err(bad("more than 20 digits before the point"));
    }
    if frac_digits.len() > SCALE_DIGITS {
        return Err(bad("more than 18 digits after the point"));
    }
    let mut value: i128 = 0;
    for &d in int_digits.iter().chain(frac_digits) {
        value = value * 10 + i128::from(d - b'0');
    }
    for _ in frac_digits.len()..SCALE_DIGITS {
        value *= 10;
    }
    Ok(if negative { -value } else { value })
}

fn trim_start(d: &[u8]) -> &[u8] {
    let k = d.iter().take_while(|&&b| b == b'0').count();
    &d[k..]
}

fn trim_end(d: &[u8]) -> &[u8] {
    let k = d.iter().rev().take_while(|&&b| b == b'0').count();
    &d[..d.len() - k]
}

/// Plain notation without trailing zeros: "1.5", "-0.000001", "123", "0".
pub fn format(value: i128) -> String {
    let abs = value.unsigned_abs();
    let one = ONE as u128;
    let (int, frac) = (abs / one, abs % one);
    let mut s = String::with_capacity(42);
    if value < 0 {
        s.push('-');
    }
    s.push_str(&int.to_string());
    if frac != 0 {
        let digits = format!("{frac:018}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s
}

pub fn add(a: i128, b: i128) -> Result<i128, LedgerError> {
    a.checked_add(b).ok_or_else(overflow)
}

pub fn sub(a: i128, b: i128) -> Result<i128, LedgerError> {
    a.checked_sub(b).ok_or_else(overflow)
}

pub fn overflow() -> LedgerError {
    LedgerError::new("amount out of range (more than 20 digits before the point)".into())
}

/// The full product of two u128 as (high, low).
pub fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const M: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & M);
    let (b1, b0) = (b >> 64, b & M);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // The middle column: at most 3 * (2^64 - 1), kept in a u128.
    let mid = (p00 >> 64) + (p01 & M) + (p10 & M);
    let lo = (p00 & M) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// (high, low) / d for d != 0: the quotient as (high, low) and the
/// remainder. Knuth's algorithm D over 64-bit limbs (Hacker's Delight
/// `divmnu`), with a short path for a divisor under 2^64.
pub fn div_wide(hi: u128, lo: u128, d: u128) -> ((u128, u128), u128) {
    debug_assert!(d != 0);
    let n = [lo as u64, (lo >> 64) as u64, hi as u64, (hi >> 64) as u64];
    if d >> 64 == 0 {
        let d = d as u64;
        let mut q = [0u64; 4];
        let mut r: u64 = 0;
        for i in (0..4).rev() {
            (q[i], r) = div_2by1(r, n[i], d);
        }
        return (join(q), u128::from(r));
    }
    let s = ((d >> 64) as u64).leading_zeros();
    let dn = d << s;
    let vn = [dn as u64, (dn >> 64) as u64];
    let mut un = [0u64; 5];
    if s == 0 {
        un[..4].copy_from_slice(&n);
    } else {
        un[4] = n[3] >> (64 - s);
        for i in (1..4).rev() {
            un[i] = (n[i] << s) | (n[i - 1] >> (64 - s));
        }
        un[0] = n[0] << s;
    }
    let b: u128 = 1 << 64;
    let mut q = [0u64; 4];
    for j in (0..3).rev() {
        let num = (u128::from(un[j + 2]) << 64) | u128::from(un[j + 1]);
        let mut qhat = num / u128::from(vn[1]);
        let mut rhat = num - qhat * u128::from(vn[1]);
        while qhat >= b || qhat * u128::from(vn[0]) > ((rhat << 64) | u128::from(un[j])) {
            qhat -= 1;
            rhat += u128::from(vn[1]);
            if rhat >= b {
                break;
            }
        }
        // Multiply and subtract qhat * vn from un[j..j + 3].
        let mut k: i128 = 0;
        for i in 0..2 {
            let p = qhat * u128::from(vn[i]);
            let t = i128::from(un[i + j]) - k - ((p & (b - 1)) as i128);
            un[i + j] = t as u64;
            k = (p >> 64) as i128 - (t >> 64);
        }
        let t = i128::from(un[j + 2]) - k;
        un[j + 2] = t as u64;
        if t < 0 {
            // qhat was one too large (rare): add the divisor back.
            qhat -= 1;
            let mut carry: u128 = 0;
            for i in 0..2 {
                let t = u128::from(un[i + j]) + u128::from(vn[i]) + carry;
                un[i + j] = t as u64;
                carry = t >> 64;
            }
            un[j + 2] = un[j + 2].wrapping_add(carry as u64);
        }
        q[j] = qhat as u64;
    }
    // The normalized remainder is below the normalized divisor: two limbs.
    let r = ((u128::from(un[1]) << 64) | u128::from(un[0])) >> s;
    (join(q), r)
}

/// (hi:lo) / d and the remainder, for hi < d (so the quotient fits 64
/// bits): one `div` instruction on x86-64, where a u128 division would be a
/// library call of several; the long-division steps of `div_wide` are all of
/// this form.
#[inline]
fn div_2by1(hi: u64, lo: u64, d: u64) -> (u64, u64) {
    debug_assert!(hi < d);
    #[cfg(target_arch = "x86_64")]
    {
        let (q, r): (u64, u64);
        // SAFETY: `div` faults only on a zero divisor or a quotient over 64
        // bits; hi < d rules out both (d > hi >= 0).
        unsafe {
            std::arch::asm!(
                "div {d}",
                d = in(reg) d,
                inout("rax") lo => q,
                inout("rdx") hi => r,
                options(pure, nomem, nostack)
            );
        }
        (q, r)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let n = (u128::from(hi) << 64) | u128::from(lo);
        let d = u128::from(d);
        ((n / d) as u64, (n % d) as u64)
    }
}

fn join(q: [u64; 4]) -> (u128, u128) {
    (
        (u128::from(q[3]) << 64) | u128::from(q[2]),
        (u128::from(q[1]) << 64) | u128::from(q[0]),
    )
}

/// a * b / c rounded half-even, through a 256-bit product; an error when c
/// is zero or the result does not fit.
pub fn mul_div(a: i128, b: i128, c: i128) -> Result<i128, LedgerError> {
    if c == 0 {
        return Err(LedgerError::new("division by zero".into()));
    }
    let negative = (a < 0) ^ (b < 0) ^ (c < 0);
    let d = c.unsigned_abs();
    let (hi, lo) = mul_wide(a.unsigned_abs(), b.unsigned_abs());
    let ((qh, mut q), r) = if hi == 0 {
        let q = lo / d;
        ((0, q), lo - q * d)
    } else {
        div_wide(hi, lo, d)
    };
    if qh != 0 {
        return Err(overflow());
    }
    // r < d <= 2^127, so 2r cannot overflow.
    let twice = r << 1;
    if twice > d || (twice == d && q & 1 == 1) {
        q = q.checked_add(1).ok_or_else(overflow)?;
    }
    if negative {
        if q > i128::MIN.unsigned_abs() {
            return Err(overflow());
        }
        Ok((q as i128).wrapping_neg())
    } else {
        i128::try_from(q).map_err(|_| overflow())
    }
}

/// Compares a1/b1 with a2/b2 exactly for b1, b2 > 0 (cross products in 256
/// bits): the unit costs of two lots.
pub fn cmp_ratio(a1: i128, b1: i128, a2: i128, b2: i128) -> Ordering {
    debug_assert!(b1 > 0 && b2 > 0);
    let (s1, s2) = (a1.signum(), a2.signum());
    if s1 != s2 {
        return s1.cmp(&s2);
    }
    let left = mul_wide(a1.unsigned_abs(), b2.unsigned_abs());
    let right = mul_wide(a2.unsigned_abs(), b1.unsigned_abs());
    if s1 >= 0 {
        left.cmp(&right)
    } else {
        right.cmp(&left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> i128 {
        parse(s).unwrap()
    }

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(p("1"), ONE);
        assert_eq!(p("1.5"), 3 * ONE / 2);
        assert_eq!(p("-0.000001"), -1_000_000_000_000);
        assert_eq!(p("+2."), 2 * ONE);
        assert_eq!(p(".25"), ONE / 4);
        assert_eq!(p("-0"), 0);
        assert_eq!(p("0.000000000000000001"), 1);
        assert_eq!(p("000123.4500"), 123 * ONE + 45 * ONE / 100);
        // 19 fractional digits, but the 19th is a zero: same value.
        assert_eq!(p("1.0000000000000000010"), ONE + 1);
        let max = "99999999999999999999.999999999999999999";
        assert_eq!(p(max), 100_000_000_000_000_000_000 * ONE - 1);
        assert_eq!(p(&format!("-{max}")), -p(max));
        assert_eq!(p("0000000000000000000000012"), 12 * ONE);
    }

    #[test]
    fn refuses_anything_else_naming_it() {
        for bad in [
            "",
            "-",
            "+",
            ".",
            "1e5",
            "1E5",
            " 1",
            "1 ",
            "1,5",
            "1.2.3",
            "--1",
            "0x10",
            "NaN",
            "inf",
            "1.0000000000000000001",
            "100000000000000000000",
            "١",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_plainly() {
        assert_eq!(format(0), "0");
        assert_eq!(format(ONE), "1");
        assert_eq!(format(3 * ONE / 2), "1.5");
        assert_eq!(format(-1_000_000_000_000), "-0.000001");
        assert_eq!(format(123 * ONE), "123");
        assert_eq!(format(1), "0.000000000000000001");
        assert_eq!(format(-1), "-0.000000000000000001");
        // Beyond the parse range still formats (sums may get there).
        assert_eq!(
            format(i128::MIN),
            "-170141183460469231731.687303715884105728"
        );
        assert_eq!(
            format(i128::MAX),
            "170141183460469231731.687303715884105727"
        );
    }

    #[test]
    fn round_trips() {
        for s in [
            "0",
            "1",
            "-1",
            "0.1",
            "-123.000000000000000001",
            "99999999999999999999.999999999999999999",
            "42.5",
            "0.000000000000000001",
        ] {
            assert_eq!(format(p(s)), s);
        }
        let mut x: i128 = 7;
        for _ in 0..200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = x % (100_000_000_000_000_000_000 * ONE);
            assert_eq!(p(&format(v)), v);
        }
    }

    #[test]
    fn mul_div_rounds_half_even() {
        // 1 * 5 / 2 = 2.5 units of 10^-18 -> 2 (even); 7 / 2 = 3.5 -> 4.
        assert_eq!(mul_div(1, 5, 2).unwrap(), 2);
        assert_eq!(mul_div(1, 7, 2).unwrap(), 4);
        assert_eq!(mul_div(-1, 5, 2).unwrap(), -2);
        assert_eq!(mul_div(1, -7, 2).unwrap(), -4);
        assert_eq!(mul_div(1, 7, -2).unwrap(), -4);
        // Not a tie: 2.6 -> 3, 2.4 -> 2.
        assert_eq!(mul_div(13, 1, 5).unwrap(), 3);
        assert_eq!(mul_div(12, 1, 5).unwrap(), 2);
        // 10 * 1/3 = 3.333.. (in 10^-18 units): 10 / 3 -> 3.
        assert_eq!(mul_div(10, 1, 3).unwrap(), 3);
        // Exact.
        assert_eq!(mul_div(6 * ONE, 2 * ONE, 4 * ONE).unwrap(), 3 * ONE);
        assert!(mul_div(1, 1, 0).is_err());
    }

    #[test]
    fn mul_div_keeps_256_bit_products() {
        // 50,000 USD cost of 1.5 BTC, taking 0.5: 16,666.666...67.
        let cost = 50_000 * ONE;
        let q = ONE / 2;
        let qty = 3 * ONE / 2;
        assert_eq!(
            mul_div(cost, q, qty).unwrap(),
            p("16666.666666666666666667")
        );
        // The product 10^38 * 10^38 overflows i128 and u128 but not 256 bits.
        let big = 100_000_000_000_000_000_000 * ONE;
        assert_eq!(mul_div(big, big, big).unwrap(), big);
        assert_eq!(mul_div(big, -big, big).unwrap(), -big);
        assert_eq!(mul_div(i128::MIN, 1, 1).unwrap(), i128::MIN);
        assert_eq!(mul_div(i128::MAX, i128::MAX, i128::MAX).unwrap(), i128::MAX);
        // Quotients that do not fit.
        assert!(mul_div(big, big, 1).is_err());
        assert!(mul_div(i128::MAX, 2, 1).is_err());
        assert!(mul_div(i128::MIN, -1, 1).is_err());
        // A quotient just at the rounding edge of i128::MAX.
        assert!(mul_div(i128::MAX, 2, 2).is_ok());
    }

    /// A bit-at-a-time reference division for the random checks.
    fn slow_div(hi: u128, lo: u128, d: u128) -> ((u128, u128), u128) {
        let (mut qh, mut ql, mut r) = (0u128, 0u128, 0u128);
        for i in (0..256).rev() {
            let bit = if i >= 128 {
                (hi >> (i - 128)) & 1
            } else {
                (lo >> i) & 1
            };
            let carry = r >> 127;
            r = (r << 1) | bit;
            qh = (qh << 1) | (ql >> 127);
            ql <<= 1;
            if carry == 1 || r >= d {
                r = r.wrapping_sub(d);
                ql |= 1;
            }
        }
        ((qh, ql), r)
    }

    #[test]
    fn wide_division_matches_bitwise_reference() {
        let mut x: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C834;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..4000 {
            let (hi, lo) = (next() >> (round % 128), next());
            let d = match round % 4 {
                0 => next() >> (round % 127),
                1 => (next() >> 64) | 1,
                2 => next() | (1 << 127),
                _ => (next() >> 60) + 1,
            }
            .max(1);
            assert_eq!(div_wide(hi, lo, d), slow_div(hi, lo, d), "{hi} {lo} {d}");
            let (mh, ml) = mul_wide(hi, lo);
            // mul_wide against the identity (a*b) / b == a, remainder 0.
            if lo != 0 {
                assert_eq!(div_wide(mh, ml, lo), ((0, hi), 0));
            }
        }
    }

    #[test]
    fn compares_unit_costs_exactly() {
        // 1/3 vs 333333333333333333/10^18: 1/3 is larger.
        assert_eq!(
            cmp_ratio(1, 3, 333_333_333_333_333_333, ONE),
            Ordering::Greater
        );
        assert_eq!(cmp_ratio(2, 4, 1, 2), Ordering::Equal);
        assert_eq!(cmp_ratio(-1, 2, 0, 5), Ordering::Less);
        assert_eq!(cmp_ratio(-1, 2, -1, 3), Ordering::Less);
        let big = i128::MAX;
        assert_eq!(cmp_ratio(big, big - 1, big - 1, big - 2), Ordering::Less);
    }
}
