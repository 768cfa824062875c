//! Checks every kernel must pass, run over the whole registry from
//! `indicators::tests`, plus helpers for the per-kernel golden tests.

use super::{Spec, StateBox};

/// A small deterministic generator, so tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            | 1)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Plausible bars for the named inputs: a random walk close, open near the
/// previous close, high/low around both, positive volume, hourly timestamps.
pub fn make_inputs(names: &[&str], n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng::new(seed);
    let mut close = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    let mut high = Vec::with_capacity(n);
    let mut low = Vec::with_capacity(n);
    let mut volume = Vec::with_capacity(n);
    let mut price = 100.0;
    for _ in 0..n {
        let o = price;
        price *= 1.0 + (rng.next_f64() - 0.5) * 0.04;
        open.push(o);
        close.push(price);
        high.push(o.max(price) * (1.0 + rng.next_f64() * 0.01));
        low.push(o.min(price) * (1.0 - rng.next_f64() * 0.01));
        volume.push(1000.0 + rng.next_f64() * 9000.0);
    }
    names
        .iter()
        .map(|name| match *name {
            "open" => open.clone(),
            "high" => high.clone(),
            "low" => low.clone(),
            "volume" => volume.clone(),
            "timestamp" => (0..n).map(|i| 1.7e12 + i as f64 * 3_600_000.0).collect(),
            _ => close.clone(),
        })
        .collect()
}

/// Runs a spec over whole series (NaN policy applied), default parameters
/// unless given.
pub fn run(spec: &Spec, inputs: &[Vec<f64>], params: &[f64]) -> Vec<Vec<f64>> {
    spec.validate(params).expect("valid parameters");
    let n = inputs.first().map_or(0, Vec::len);
    let mut outs = vec![vec![0.0; n]; spec.outputs.len()];
    let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
    let mut out_refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    spec.run_series(&ins, params, &mut out_refs);
    outs
}

/// Equal, both NaN, or within `rel` relative (absolute near zero).
pub fn close_enough(a: f64, b: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

pub fn assert_close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(close_enough(*a, *b, rel), "{what}[{i}]: got {a}, want {b}");
    }
}

/// No panic at the edge lengths, outputs NaN through the lookback and the
/// first output finite right after it, and a gap restarts the warm-up.
/// Ichimoku's "chikou" is exempt from the leading NaN: it is the close
/// shifted back, defined from bar 0 (its NaN are trailing).
pub fn check_edges(spec: &Spec) {
    let params = spec.defaults();
    let lb = (spec.lookback)(&params);
    for n in [0, 1, 2, lb.saturating_sub(1), lb, lb + 1, lb + 2, lb + 50] {
        let inputs = make_inputs(spec.inputs, n, n as u64 + 7);
        let outs = run(spec, &inputs, &params);
        for (k, out) in outs.iter().enumerate() {
            assert_eq!(out.len(), n, "{}: output {k} length", spec.name);
            if spec.outputs[k] == "chikou" {
                continue;
            }
            for (i, v) in out.iter().take(lb.min(n)).enumerate() {
                assert!(
                    v.is_nan(),
                    "{}: output {} at {i} is {v} inside lookback {lb}",
                    spec.name,
                    spec.outputs[k]
                );
            }
        }
        if n > lb {
            assert!(
                outs[0][lb].is_finite(),
                "{}: output 0 at lookback {lb} is {}",
                spec.name,
                outs[0][lb]
            );
        }
    }
    // A gap in the middle: the second run equals the kernel over it alone.
    let n = 2 * lb + 40;
    let mut inputs = make_inputs(spec.inputs, n, 99);
    let cut = lb + 20;
    inputs[0][cut] = f64::NAN;
    let outs = run(spec, &inputs, &params);
    let tail: Vec<Vec<f64>> = inputs.iter().map(|x| x[cut + 1..].to_vec()).collect();
    let tail_outs = run(spec, &tail, &params);
    for (k, (out, t)) in outs.iter().zip(&tail_outs).enumerate() {
        assert!(out[cut].is_nan(), "{}: output {k} at the gap", spec.name);
        assert_close(&out[cut + 1..], t, 0.0, spec.name);
    }
}

fn step(state: &mut StateBox, inputs: &[Vec<f64>], i: usize, out: &mut [f64]) {
    let bar: Vec<f64> = inputs.iter().map(|x| x[i]).collect();
    let mut peeked = vec![0.0; out.len()];
    state.peek(&bar, &mut peeked);
    state.update(&bar, out);
    for (p, o) in peeked.iter().zip(out.iter()) {
        assert!(
            p.to_bits() == o.to_bits() || (p.is_nan() && o.is_nan()),
            "peek {p} != update {o}"
        );
    }
}

/// Bar-by-bar updates equal the batch kernel (1e-12 relative), through the
/// warm-up, a gap and a save/load in the middle; peek equals update.
#[allow(clippy::needless_range_loop)]
pub fn check_state_matches_batch(spec: &'static Spec) {
    let params = spec.defaults();
    let lb = (spec.lookback)(&params);
    let n = 3 * lb + 300;
    let mut inputs = make_inputs(spec.inputs, n, 5);
    let gap = lb + 100;
    inputs[0][gap] = f64::NAN;
    let want = run(spec, &inputs, &params);
    let mut state = spec.new_state(&params).expect("state");
    let mut out = vec![0.0; spec.outputs.len()];
    for i in 0..n {
        if i == n / 2 {
            let bytes = state.save();
            state = spec.load_state(&params, &bytes).expect("state loads");
        }
        step(&mut state, &inputs, i, &mut out);
        for (k, v) in out.iter().enumerate() {
            assert!(
                close_enough(*v, want[k][i], 1e-12),
                "{}: state output {} at bar {i}: {v} != batch {}",
                spec.name,
                spec.outputs[k],
                want[k][i]
            );
        }
    }
}

/// A `run_checked` kernel: on finite input it returns true with outputs
/// bitwise equal to `run`'s; any NaN or infinity in any input at any bar
/// (first, inside the warm-up, middle, last) makes it return false.
pub fn check_run_checked(spec: &Spec) {
    let checked = spec.run_checked.expect("run_checked");
    let params = spec.defaults();
    let lb = (spec.lookback)(&params);
    for n in [0, 1, lb, lb + 1, lb + 2, 3 * lb + 97] {
        let inputs = make_inputs(spec.inputs, n, 21 + n as u64);
        let ins: Vec<&[f64]> = inputs.iter().map(Vec::as_slice).collect();
        let mut want = vec![vec![0.0; n]; spec.outputs.len()];
        let mut got = want.clone();
        let mut want_refs: Vec<&mut [f64]> = want.iter_mut().map(Vec::as_mut_slice).collect();
        (spec.run)(&ins, &params, &mut want_refs);
        let mut got_refs: Vec<&mut [f64]> = got.iter_mut().map(Vec::as_mut_slice).collect();
        assert!(
            checked(&ins, &params, &mut got_refs),
            "{}: finite input reported as a gap",
            spec.name
        );
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{}: run_checked differs from run at n={n}",
                spec.name
            );
        }
        let mut positions = vec![0, n / 2, n.saturating_sub(1), lb.saturating_sub(1), lb];
        positions.retain(|&p| p < n);
        for k in 0..inputs.len() {
            for &p in &positions {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                    let mut broken = inputs.clone();
                    broken[k][p] = bad;
                    let ins: Vec<&[f64]> = broken.iter().map(Vec::as_slice).collect();
                    let mut outs = vec![vec![0.0; n]; spec.outputs.len()];
                    let mut refs: Vec<&mut [f64]> =
                        outs.iter_mut().map(Vec::as_mut_slice).collect();
                    assert!(
                        !checked(&ins, &params, &mut refs),
                        "{}: {bad} in {} at {p} of {n} not seen",
                        spec.name,
                        spec.inputs[k]
                    );
                }
            }
        }
    }
}
