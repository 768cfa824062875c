//! Ichimoku Kinko Hyo.
//!
//! - tenkan = (highest high + lowest low) / 2 over `tenkan_period` bars,
//! - kijun: the same over `kijun_period`,
//! - senkou_a = (tenkan + kijun) / 2 and senkou_b = the midpoint over
//!   `senkou_b_period`, both shifted FORWARD by `displacement`: the value
//!   at bar i was computed at bar i - displacement (the cloud in force at
//!   bar i),
//! - chikou[i] = close[i + displacement]: it LOOKS AHEAD (NaN for the last
//!   `displacement` bars). For plotting only, never for signals.
//!
//! Because chikou needs future bars there is no incremental state. The
//! spec's lookback is tenkan's (`tenkan_period - 1`); each output has its
//! own warm-up (kijun_period - 1, max(tenkan, kijun) - 1 + displacement,
//! senkou_b_period - 1 + displacement, none for chikou).

use super::window::rolling_into;
use crate::indicators::{fill_nan, int_param, Param, Spec};

pub const SPEC: Spec = Spec {
    name: "ichimoku",
    inputs: &["high", "low", "close"],
    outputs: &["tenkan", "kijun", "senkou_a", "senkou_b", "chikou"],
    params: &[
        Param::period("tenkan_period", 9.0, 1.0),
        Param::period("kijun_period", 26.0, 1.0),
        Param::period("senkou_b_period", 52.0, 1.0),
        Param::int("displacement", 26.0, 0.0, crate::indicators::MAX_PERIOD),
    ],
    lookback: |p| int_param(p, 0) - 1,
    run: |i, p, o| {
        let [tenkan, kijun, span_a, span_b, chikou] = o else {
            unreachable!()
        };
        let periods = [int_param(p, 0), int_param(p, 1), int_param(p, 2)];
        let lines = Lines {
            tenkan,
            kijun,
            senkou_a: span_a,
            senkou_b: span_b,
            chikou,
        };
        ichimoku_into(i[0], i[1], i[2], periods, int_param(p, 3), lines)
    },
    run_checked: None,
    check: None,
    new_state: None,
    load_state: None,
};

/// The five output slices, each as long as the inputs.
pub struct Lines<'a> {
    pub tenkan: &'a mut [f64],
    pub kijun: &'a mut [f64],
    pub senkou_a: &'a mut [f64],
    pub senkou_b: &'a mut [f64],
    pub chikou: &'a mut [f64],
}

/// The rolling midpoint (highest high + lowest low) / 2 into `out`, with
/// `scratch` (same length) for the lows.
fn midpoint_into(high: &[f64], low: &[f64], period: usize, out: &mut [f64], scratch: &mut [f64]) {
    rolling_into::<true>(high, period, out);
    rolling_into::<false>(low, period, scratch);
    for (o, &l) in out.iter_mut().zip(scratch.iter()) {
        *o = (*o + l) * 0.5;
    }
}

/// Ichimoku of a gap-free series. Rolling extremes by blocks (O(1) per
/// bar, see `window`), each line in its own output, the spare outputs as
/// scratch; the senkou spans are shifted in place. The cloud computed over
/// the last `d` bars (projected beyond the data) is dropped.
pub fn ichimoku_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    [tenkan_p, kijun_p, span_b_p]: [usize; 3],
    d: usize,
    out: Lines<'_>,
) {
    let n = close.len();
    midpoint_into(high, low, tenkan_p, out.tenkan, out.senkou_a);
    midpoint_into(high, low, kijun_p, out.kijun, out.senkou_a);
    midpoint_into(high, low, span_b_p, out.senkou_b, out.chikou);
    if d < n {
        out.senkou_b.copy_within(0..n - d, d);
        let lines = out.tenkan[..n - d].iter().zip(&out.kijun[..n - d]);
        for (a, (&t, &k)) in out.senkou_a[d..].iter_mut().zip(lines) {
            *a = (t + k) * 0.5;
        }
    }
    fill_nan(out.tenkan, tenkan_p - 1);
    fill_nan(out.kijun, kijun_p - 1);
    fill_nan(out.senkou_a, tenkan_p.max(kijun_p) - 1 + d);
    fill_nan(out.senkou_b, span_b_p - 1 + d);
    let ahead = d.min(n);
    out.chikou[..n - ahead].copy_from_slice(&close[ahead..]);
    out.chikou[n - ahead..].fill(f64::NAN);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const NAN: f64 = f64::NAN;

    #[test]
    fn golden_values_by_hand() {
        // tenkan 2, kijun 3, senkou_b 4, displacement 1.
        let high = vec![10.0, 12.0, 11.0, 15.0, 14.0];
        let low = vec![8.0, 9.0, 7.0, 12.0, 13.0];
        let close = vec![9.0, 11.0, 8.0, 14.0, 13.5];
        // tenkan: (12+8)/2 = 10, (12+7)/2 = 9.5, (15+7)/2 = 11, (15+12)/2 = 13.5
        // kijun:  bar 2 (12+7)/2 = 9.5, bar 3 (15+7)/2 = 11, bar 4 (15+7)/2 = 11
        // senkou_a at bar j+1 = (tenkan_j + kijun_j)/2: bar 3 (9.5+9.5)/2 =
        //   9.5, bar 4 (11+11)/2 = 11
        // senkou_b over 4 at bar 3 = (15+7)/2 = 11, shifted to bar 4
        // chikou[i] = close[i+1]
        let out = run(&SPEC, &[high, low, close], &[2.0, 3.0, 4.0, 1.0]);
        assert_close(&out[0], &[NAN, 10.0, 9.5, 11.0, 13.5], 0.0, "tenkan");
        assert_close(&out[1], &[NAN, NAN, 9.5, 11.0, 11.0], 0.0, "kijun");
        assert_close(&out[2], &[NAN, NAN, NAN, 9.5, 11.0], 0.0, "senkou_a");
        assert_close(&out[3], &[NAN, NAN, NAN, NAN, 11.0], 0.0, "senkou_b");
        assert_close(&out[4], &[11.0, 8.0, 14.0, 13.5, NAN], 0.0, "chikou");
    }

    #[test]
    fn edge_lengths_and_no_displacement() {
        for n in [0usize, 1, 2, 3, 30, 60] {
            let inputs = crate::indicators::testing::make_inputs(SPEC.inputs, n, 4);
            let out = run(&SPEC, &inputs, &SPEC.defaults());
            for o in &out {
                assert_eq!(o.len(), n);
            }
            let nans = |k: usize| out[k].iter().filter(|v| v.is_nan()).count();
            assert_eq!(nans(0), n.min(8));
            assert_eq!(nans(2), n.min(25 + 26));
            assert_eq!(nans(3), n.min(51 + 26));
            assert_eq!(nans(4), n.min(26));
            let flat = run(&SPEC, &inputs, &[9.0, 26.0, 52.0, 0.0]);
            assert_close(&flat[4], &inputs[2], 0.0, "chikou with d = 0");
        }
    }
}
