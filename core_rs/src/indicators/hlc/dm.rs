//! Wilder's directional movement, shared by PLUS_DI, MINUS_DI and ADX.
//!
//! Per bar (from the second on): up = high - previous high, down = previous
//! low - low; +DM = up when up > 0 and up > down, -DM = down when down > 0
//! and down > up, else 0 (so equal moves give both 0). TR is the true range.
//!
//! Smoothing as in TA-Lib: the first `period - 1` DMs and TRs (bars 1 to
//! period - 1) are summed, then each bar sum = sum - sum / n + x. We compute
//! that as `sum * a + x` with a = (n - 1) / n: one multiply and one add on
//! each dependency chain instead of TA-Lib's divide, subtract and add. The
//! three sums are independent chains, so a bar costs about one multiply-add
//! of latency.
//!
//! Zero conventions of TA-Lib 0.8.1 (checked against its binary): a DI is 0
//! when the TR sum is not > 0; the DX is skipped (not added to the first
//! ADX's sum, the ADX left unchanged afterwards) when the TR sum is not > 0
//! or +DI + -DI is below 1e-14.

use serde::{Deserialize, Serialize};

use super::trange::{true_range, true_range_checked, witness_bad};
use crate::indicators::{any_non_finite, fill_nan, non_finite};

/// +DM and -DM of a bar given the previous bar's high and low.
#[inline(always)]
pub(super) fn directional_moves(high: f64, low: f64, prev_high: f64, prev_low: f64) -> (f64, f64) {
    let up = high - prev_high;
    let down = prev_low - low;
    let plus = if up > 0.0 && up > down { up } else { 0.0 };
    let minus = if down > 0.0 && down > up { down } else { 0.0 };
    (plus, minus)
}

/// (+DM, -DM, TR) for each bar from `from` (>= 1) on.
#[cfg(test)]
pub(super) fn moves<'a>(
    high: &'a [f64],
    low: &'a [f64],
    close: &'a [f64],
    from: usize,
) -> impl Iterator<Item = (f64, f64, f64)> + 'a {
    moves_checked(high, low, close, from).map(|(x, _)| x)
}

/// (+DM, -DM, TR) for each bar from `from` (>= 1) on, with the true range's
/// gap witness (see [`super::trange::true_range_checked`]): it covers the
/// bar's high and low and the previous close; the previous high and low
/// are the previous bar's (covered there, or by [`edges_bad`]).
#[inline(always)]
pub(super) fn moves_checked<'a>(
    high: &'a [f64],
    low: &'a [f64],
    close: &'a [f64],
    from: usize,
) -> impl Iterator<Item = ((f64, f64, f64), u64)> + 'a {
    let n = high.len().min(low.len()).min(close.len());
    // k bars from index s = n - k (>= 1 when k > 0), previous bars from s - 1.
    let k = n.saturating_sub(from.max(1));
    let s = n - k;
    let p = s.saturating_sub(1);
    high[s..n]
        .iter()
        .zip(&low[s..n])
        .zip(high[p..p + k].iter().zip(&low[p..p + k]))
        .zip(&close[p..p + k])
        .map(|(((&h, &l), (&ph, &pl)), &pc)| {
            let (p, m) = directional_moves(h, l, ph, pl);
            let (t, w) = true_range_checked(h, l, pc);
            ((p, m, t), w)
        })
}

/// Whether any input is NaN or infinite where [`moves_checked`] from bar 1
/// does not look (bar 0's high and low, the last close), or anywhere in a
/// series of `n` bars too short for the kernel (`short`).
pub(super) fn edges_bad(high: &[f64], low: &[f64], close: &[f64], n: usize, short: bool) -> bool {
    if short || n == 0 {
        return any_non_finite(&high[..n])
            | any_non_finite(&low[..n])
            | any_non_finite(&close[..n]);
    }
    non_finite(high[0]) | non_finite(low[0]) | non_finite(close[n - 1])
}

/// Wilder sums of +DM, -DM and TR.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(super) struct DmSums {
    pub plus: f64,
    pub minus: f64,
    pub tr: f64,
    /// (n - 1) / n
    a: f64,
}

impl DmSums {
    pub fn new(period: usize) -> DmSums {
        let n = period as f64;
        DmSums {
            plus: 0.0,
            minus: 0.0,
            tr: 0.0,
            a: (n - 1.0) / n,
        }
    }

    /// Warm-up: plain sums.
    #[inline(always)]
    pub fn add(&mut self, (p, m, t): (f64, f64, f64)) {
        self.plus += p;
        self.minus += m;
        self.tr += t;
    }

    /// sum = sum - sum / n + x, as sum * a + x (one FMA per chain).
    #[inline(always)]
    pub fn step(&mut self, (p, m, t): (f64, f64, f64)) {
        self.plus = self.plus.mul_add(self.a, p);
        self.minus = self.minus.mul_add(self.a, m);
        self.tr = self.tr.mul_add(self.a, t);
    }

    /// The sums after the warm-up of a series of at least `period` bars
    /// (bars 1 to period - 1 summed), and the OR of their gap witnesses.
    pub fn seeded(high: &[f64], low: &[f64], close: &[f64], period: usize) -> (DmSums, u64) {
        let mut s = DmSums::new(period);
        let mut w = 0;
        for (x, xw) in moves_checked(high, low, close, 1).take(period - 1) {
            s.add(x);
            w |= xw;
        }
        (s, w)
    }

    /// 100 * dm / tr, 0 when the TR sum is not positive.
    #[inline(always)]
    pub fn di(&self, dm: f64) -> f64 {
        if self.tr > 0.0 {
            dm / self.tr * 100.0
        } else {
            0.0
        }
    }

    /// |+DI - -DI| / (+DI + -DI), i.e. DX / 100, computed from the sums (TR
    /// cancels: one division instead of TA-Lib's three); None where TA-Lib
    /// skips the DX. Its threshold +DI + -DI < 1e-14 is (p + m) < 1e-16 * tr.
    #[inline(always)]
    pub fn dx_unit(&self) -> Option<f64> {
        let sum = self.plus + self.minus;
        if self.tr > 0.0 && sum >= 1e-16 * self.tr {
            Some((self.plus - self.minus).abs() / sum)
        } else {
            None
        }
    }
}

/// PLUS_DI (`PLUS` true) or MINUS_DI of a gap-free series. Lookback
/// `period` (1 for period 1). Period 1 is TA-Lib's unsmoothed DM / TR
/// WITHOUT the factor 100 (a TA-Lib quirk kept for compatibility).
/// Returns whether every input was finite, checked in the same pass (see
/// `RunCheckedFn`).
pub(super) fn di_checked<const PLUS: bool>(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    period: usize,
    out: &mut [f64],
) -> bool {
    let lb = period;
    let n = out.len();
    fill_nan(out, lb);
    let bad = edges_bad(high, low, close, n, n <= lb);
    if n <= lb {
        return !bad;
    }
    if period == 1 {
        let mut w = 0;
        for (o, (x, xw)) in out[1..].iter_mut().zip(moves_checked(high, low, close, 1)) {
            w |= xw;
            *o = di1::<PLUS>(x);
        }
        return !(bad | witness_bad(w));
    }
    let (mut s, mut w) = DmSums::seeded(high, low, close, period);
    for (o, (x, xw)) in out[lb..]
        .iter_mut()
        .zip(moves_checked(high, low, close, lb))
    {
        w |= xw;
        s.step(x);
        *o = s.di(if PLUS { s.plus } else { s.minus });
    }
    !(bad | witness_bad(w))
}

/// The period-1 DI: DM / TR (no factor 100), 0 when the TR is not positive.
#[inline(always)]
fn di1<const PLUS: bool>((p, m, t): (f64, f64, f64)) -> f64 {
    let dm = if PLUS { p } else { m };
    if dm > 0.0 && t > 0.0 {
        dm / t
    } else {
        0.0
    }
}

/// The running DM and TR sums: the previous bar, the count of bars seen and
/// the sums (plain during the warm-up, then Wilder-smoothed).
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct DmState {
    period: usize,
    seen: usize,
    prev: (f64, f64, f64),
    pub sums: DmSums,
}

impl DmState {
    pub fn new(period: usize) -> DmState {
        DmState {
            period,
            seen: 0,
            prev: (f64::NAN, f64::NAN, f64::NAN),
            sums: DmSums::new(period),
        }
    }

    /// Feeds a bar. Returns this bar's raw (+DM, -DM, TR) and whether the
    /// sums are smoothed (bar index >= period); None for the first bar.
    pub fn next(&mut self, high: f64, low: f64, close: f64) -> Option<((f64, f64, f64), bool)> {
        let (ph, pl, pc) = self.prev;
        self.prev = (high, low, close);
        self.seen += 1;
        if self.seen == 1 {
            return None;
        }
        let (p, m) = directional_moves(high, low, ph, pl);
        let x = (p, m, true_range(high, low, pc));
        // bars 1..period-1 are summed; bar `period` on are smoothed
        if self.seen <= self.period {
            self.sums.add(x);
            return Some((x, false));
        }
        self.sums.step(x);
        Some((x, true))
    }
}

/// The incremental PLUS_DI / MINUS_DI.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct DiState<const PLUS: bool> {
    period: usize,
    dm: DmState,
}

impl<const PLUS: bool> DiState<PLUS> {
    pub fn new(period: usize) -> Self {
        DiState {
            period,
            dm: DmState::new(period),
        }
    }

    pub fn next(&mut self, high: f64, low: f64, close: f64) -> f64 {
        match self.dm.next(high, low, close) {
            None => f64::NAN,
            Some((x, _)) if self.period == 1 => di1::<PLUS>(x),
            Some((_, false)) => f64::NAN,
            Some((_, true)) => {
                let s = &self.dm.sums;
                s.di(if PLUS { s.plus } else { s.minus })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directional_move_cases() {
        // up only, down only, both with up larger, equal (both 0), inside bar
        assert_eq!(directional_moves(12.0, 10.0, 11.0, 10.0), (1.0, 0.0));
        assert_eq!(directional_moves(11.0, 8.0, 11.0, 10.0), (0.0, 2.0));
        assert_eq!(directional_moves(14.0, 9.0, 11.0, 10.0), (3.0, 0.0));
        assert_eq!(directional_moves(12.0, 9.0, 11.0, 10.0), (0.0, 0.0));
        assert_eq!(directional_moves(10.5, 10.2, 11.0, 10.0), (0.0, 0.0));
    }

    #[test]
    fn moves_handles_short_series() {
        let empty: [f64; 0] = [];
        assert_eq!(moves(&empty, &empty, &empty, 1).count(), 0);
        assert_eq!(moves(&[1.0], &[1.0], &[1.0], 1).count(), 0);
        assert_eq!(moves(&[1.0, 2.0], &[1.0, 2.0], &[1.0, 2.0], 5).count(), 0);
        assert_eq!(moves(&[1.0, 2.0], &[1.0, 2.0], &[1.0, 2.0], 1).count(), 1);
    }
}
