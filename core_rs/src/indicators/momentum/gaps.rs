//! A gap flag for the fused checks of this group's kernels (see
//! `RunCheckedFn`): the same test as `non_finite` (all exponent bits set),
//! written so a streaming loop vectorizes it with three AVX2 integer
//! operations per four values and no packing of compare masks.

const EXP: u64 = 0x7ff0_0000_0000_0000;
/// The lowest exponent bit: added to the exponent bits, it carries into
/// bit 63 exactly when they are all set (NaN or ±infinity).
const CARRY: u64 = 1 << 52;

/// OR of `(bits & EXP) + CARRY` over every value seen: bit 63 is set iff
/// some value was non-finite (the sum is at most `EXP` for finite values).
#[derive(Clone, Copy, Default)]
pub struct Gaps(u64);

impl Gaps {
    #[inline(always)]
    pub fn see(&mut self, v: f64) {
        self.0 |= (v.to_bits() & EXP) + CARRY;
    }

    #[inline(always)]
    pub fn see_all(&mut self, x: &[f64]) {
        for &v in x {
            self.see(v);
        }
    }

    /// True when every value seen was finite.
    #[inline(always)]
    pub fn finite(self) -> bool {
        self.0 >> 63 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::non_finite;

    #[test]
    fn agrees_with_non_finite() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.5e300,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff8_0000_0000_0000),
        ];
        for v in values {
            let mut g = Gaps::default();
            g.see(v);
            assert_eq!(g.finite(), !non_finite(v), "{v:?}");
        }
    }
}
