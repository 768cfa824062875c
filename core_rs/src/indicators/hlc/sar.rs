//! SAR: Wilder's parabolic stop and reverse, TA-Lib's exact algorithm.
//!
//! The first bar only seeds: the direction of bar 1 is short when bar 1's
//! -DM (previous low - low, > 0 and > the up move) is positive, else long;
//! the first SAR is bar 0's low (long) or high (short), the extreme point
//! bar 1's high (long) or low (short). Each bar then outputs the SAR made
//! the bar before, unless the bar penetrates it (low <= SAR when long,
//! high >= SAR when short): then the position reverses and the output is
//! the extreme point, clamped outside this and the previous bar's range;
//! the af restarts at `acceleration`. Otherwise a new extreme raises af by
//! `acceleration` up to `maximum`. The next SAR is sar + af * (ep - sar),
//! clamped to be no nearer than the previous two bars' lows (long) or highs
//! (short); for bar 1, "the previous two" are bar 1 twice, as in TA-Lib.
//! An acceleration above the maximum is lowered to it, as in TA-Lib.
//!
//! TA-Lib 0.8.1 ships its SAR twice and picks at run time: on a CPU with
//! FMA it computes sar + af * (ep - sar) as one fused multiply-add, else
//! as a multiply and an add. We do the same (see [`fused`]), so the values
//! are bit-identical to TA-Lib's on the same machine, and reversals (exact
//! comparisons with the SAR) never differ.

use serde::{Deserialize, Serialize};

use super::trange::{witness, witness_bad};
use crate::indicators::state::load;
use crate::indicators::{any_non_finite, fill_nan, non_finite, Param, Spec, State};

/// TA-Lib's largest accepted real parameter (TA_REAL_MAX).
const REAL_MAX: f64 = 3e37;

pub const SPEC: Spec = Spec {
    name: "sar",
    inputs: &["high", "low"],
    outputs: &["real"],
    params: &[
        Param::real("acceleration", 0.02, 0.0, REAL_MAX),
        Param::real("maximum", 0.2, 0.0, REAL_MAX),
    ],
    lookback: |_| 1,
    run: |i, p, o| sar_into(i[0], i[1], p[0], p[1], o[0]),
    run_checked: Some(|i, p, o| sar_checked(i[0], i[1], p[0], p[1], o[0])),
    check: None,
    new_state: Some(|p| Box::new(Sar::new(p[0], p[1]))),
    load_state: Some(load::<Sar>),
};

/// The SAR machine once two bars were seen.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Core {
    is_long: bool,
    sar: f64,
    ep: f64,
    af: f64,
    /// The last bar's high and low.
    high: f64,
    low: f64,
    acc: f64,
    max: f64,
}

impl Core {
    /// Seeds from bars 0 and 1; `step` must then be fed bar 1.
    fn new(h0: f64, l0: f64, h1: f64, l1: f64, acc: f64, max: f64) -> Core {
        let acc = if acc > max { max } else { acc };
        let up = h1 - h0;
        let down = l0 - l1;
        let is_long = !(down > 0.0 && up < down);
        let (ep, sar) = if is_long { (h1, l0) } else { (l1, h0) };
        Core {
            is_long,
            sar,
            ep,
            af: acc,
            high: h1,
            low: l1,
            acc,
            max,
        }
    }

    /// One bar: the SAR output for it, and the SAR for the next bar.
    /// `FUSED`: see [`fused`].
    #[inline(always)]
    fn step<const FUSED: bool>(&mut self, high: f64, low: f64) -> f64 {
        let (prev_high, prev_low) = (self.high, self.low);
        self.high = high;
        self.low = low;
        let out;
        if self.is_long {
            if low <= self.sar {
                // reverse to short
                self.is_long = false;
                out = max3(self.ep, prev_high, high);
                self.af = self.acc;
                self.ep = low;
                self.sar = max3(toward::<FUSED>(out, self.af, self.ep), prev_high, high);
            } else {
                out = self.sar;
                if high > self.ep {
                    self.ep = high;
                    self.af = add_capped(self.af, self.acc, self.max);
                }
                self.sar = min3(toward::<FUSED>(out, self.af, self.ep), prev_low, low);
            }
        } else if high >= self.sar {
            // reverse to long
            self.is_long = true;
            out = min3(self.ep, prev_low, low);
            self.af = self.acc;
            self.ep = high;
            self.sar = min3(toward::<FUSED>(out, self.af, self.ep), prev_low, low);
        } else {
            out = self.sar;
            if low < self.ep {
                self.ep = low;
                self.af = add_capped(self.af, self.acc, self.max);
            }
            self.sar = max3(toward::<FUSED>(out, self.af, self.ep), prev_high, high);
        }
        out
    }
}

/// sar + af * (ep - sar), fused into one rounding when `FUSED`.
#[inline(always)]
fn toward<const FUSED: bool>(sar: f64, af: f64, ep: f64) -> f64 {
    if FUSED {
        (ep - sar).mul_add(af, sar)
    } else {
        sar + af * (ep - sar)
    }
}

/// Whether to fuse the SAR update, as TA-Lib does on this CPU: on x86-64
/// when it has FMA (TA-Lib's run-time dispatch), always on aarch64 (FMA is
/// part of the base ISA, and C compilers contract there).
#[inline]
fn fused() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// One bar with the fused or plain update; the fused one compiled for FMA
/// on x86-64 (else `mul_add` would be a libm call).
#[inline]
fn step(core: &mut Core, high: f64, low: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if fused() {
        // SAFETY: the CPU has FMA (checked just above).
        return unsafe { step_fma(core, high, low) };
    }
    if fused() {
        core.step::<true>(high, low)
    } else {
        core.step::<false>(high, low)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn step_fma(core: &mut Core, high: f64, low: f64) -> f64 {
    core.step::<true>(high, low)
}

/// TA-Lib's `if (x < a) x = a; if (x < b) x = b;`.
#[inline(always)]
fn max3(x: f64, a: f64, b: f64) -> f64 {
    let x = if x < a { a } else { x };
    if x < b {
        b
    } else {
        x
    }
}

/// TA-Lib's `if (x > a) x = a; if (x > b) x = b;`.
#[inline(always)]
fn min3(x: f64, a: f64, b: f64) -> f64 {
    let x = if x > a { a } else { x };
    if x > b {
        b
    } else {
        x
    }
}

#[inline(always)]
fn add_capped(af: f64, acc: f64, max: f64) -> f64 {
    let af = af + acc;
    if af > max {
        max
    } else {
        af
    }
}

/// SAR of a gap-free series; the first value is NaN.
pub fn sar_into(high: &[f64], low: &[f64], acceleration: f64, maximum: f64, out: &mut [f64]) {
    sar_checked(high, low, acceleration, maximum, out);
}

/// `sar_into` that also returns whether every input was finite, checked in
/// the same pass (see `RunCheckedFn`): each bar's witness of `high - low`
/// (non-finite when either is; see [`witness`]).
pub fn sar_checked(
    high: &[f64],
    low: &[f64],
    acceleration: f64,
    maximum: f64,
    out: &mut [f64],
) -> bool {
    fill_nan(out, 1);
    let n = out.len();
    if n <= 1 {
        return !(any_non_finite(&high[..n]) | any_non_finite(&low[..n]));
    }
    let bad = non_finite(high[0]) | non_finite(low[0]);
    let mut core = Core::new(high[0], low[0], high[1], low[1], acceleration, maximum);
    let (high, low, out) = (&high[1..n], &low[1..n], &mut out[1..]);
    #[cfg(target_arch = "x86_64")]
    if fused() {
        // SAFETY: the CPU has FMA (checked just above).
        let w = unsafe { sar_loop_fma(&mut core, high, low, out) };
        return !(bad | witness_bad(w));
    }
    let w = if fused() {
        sar_loop::<true>(&mut core, high, low, out)
    } else {
        sar_loop::<false>(&mut core, high, low, out)
    };
    !(bad | witness_bad(w))
}

/// Runs the bars; returns the OR of their gap witnesses.
#[inline(always)]
fn sar_loop<const FUSED: bool>(core: &mut Core, high: &[f64], low: &[f64], out: &mut [f64]) -> u64 {
    let mut c = *core;
    let mut w = 0;
    for (o, (&h, &l)) in out.iter_mut().zip(high.iter().zip(low)) {
        w |= witness(h - l);
        *o = c.step::<FUSED>(h, l);
    }
    *core = c;
    w
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn sar_loop_fma(core: &mut Core, high: &[f64], low: &[f64], out: &mut [f64]) -> u64 {
    sar_loop::<true>(core, high, low, out)
}

/// The running SAR: the parameters, bar 0 until bar 1 comes, then the
/// machine.
#[derive(Clone, Serialize, Deserialize)]
pub struct Sar {
    acceleration: f64,
    maximum: f64,
    first: Option<(f64, f64)>,
    core: Option<Core>,
}

impl Sar {
    pub fn new(acceleration: f64, maximum: f64) -> Sar {
        Sar {
            acceleration,
            maximum,
            first: None,
            core: None,
        }
    }

    /// The SAR for this bar, NaN for the first.
    pub fn next(&mut self, high: f64, low: f64) -> f64 {
        if let Some(core) = &mut self.core {
            return step(core, high, low);
        }
        match self.first {
            None => {
                self.first = Some((high, low));
                f64::NAN
            }
            Some((h0, l0)) => {
                let mut core = Core::new(h0, l0, high, low, self.acceleration, self.maximum);
                let out = step(&mut core, high, low);
                self.core = Some(core);
                out
            }
        }
    }

    pub fn peek(&self, high: f64, low: f64) -> f64 {
        match self.core {
            Some(mut core) => step(&mut core, high, low),
            None => self.clone().next(high, low),
        }
    }
}

impl State for Sar {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        out[0] = Sar::peek(self, bar[0], bar[1]);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        let high = vec![10.0, 11.0, 12.0, 12.5, 11.0, 10.0];
        let low = vec![9.0, 10.0, 11.0, 11.5, 9.5, 9.0];
        // bar 1: up 1, down -1 -> long; sar = low0 = 9, ep = high1 = 11, af .02.
        //   out 9; no new extreme; sar = 9 + .02 * 2 = 9.04, clamped to
        //   <= min(10, 10) -> 9.04
        // bar 2: low 11 > 9.04: out 9.04; high 12 > 11: ep 12, af .04;
        //   sar = 9.04 + .04 * 2.96 = 9.1584 (<= min(10, 11))
        // bar 3: out 9.1584; ep 12.5, af .06; sar = 9.1584 + .06 * 3.3416
        //   = 9.358896 (<= min(11, 11.5))
        // bar 4: low 9.5 > 9.358896: out 9.358896; no new high; sar =
        //   9.358896 + .06 * (12.5 - 9.358896) = 9.54736224, clamped to
        //   min(11.5, 9.5) = 9.5
        // bar 5: low 9 <= 9.5: reverse to short, out = max(ep 12.5, 11, 10)
        //   = 12.5
        let out = run(&SPEC, &[high, low], &[0.02, 0.2]);
        let want = [NAN, 9.0, 9.04, 9.1584, 9.358896, 12.5];
        assert_close(&out[0], &want, 1e-15, "sar");
    }

    #[test]
    fn acceleration_above_maximum_is_lowered() {
        let x = crate::indicators::testing::make_inputs(SPEC.inputs, 200, 3);
        let a = run(&SPEC, &x, &[0.5, 0.1]);
        let b = run(&SPEC, &x, &[0.1, 0.1]);
        assert_close(&a[0], &b[0], 0.0, "sar acc > max");
    }

    #[test]
    fn edge_lengths() {
        for n in 0..4 {
            let x = vec![vec![1.0; n], vec![0.5; n]];
            let out = run(&SPEC, &x, &[0.02, 0.2]);
            assert_eq!(out[0].len(), n);
            assert_eq!(out[0].iter().filter(|v| v.is_nan()).count(), n.min(1));
        }
    }
}
