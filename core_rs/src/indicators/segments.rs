//! The NaN policy in one place: split the bars into gap-free runs (a gap is
//! a bar where any input is NaN or infinite), run the kernel on each run and
//! write NaN at the gaps.

use super::RunFn;

/// Runs `run` over each gap-free run of bars. All slices have one length.
pub fn run_segmented(run: RunFn, inputs: &[&[f64]], params: &[f64], outputs: &mut [&mut [f64]]) {
    let n = outputs.first().map_or(0, |o| o.len());
    let first_gap = next_gap(inputs, 0, n);
    if first_gap == n {
        // The common case: no gap, no sub-slicing, no allocation.
        run(inputs, params, outputs);
        return;
    }
    let mut start = 0;
    let mut gap = first_gap;
    loop {
        if gap > start {
            let ins: Vec<&[f64]> = inputs.iter().map(|x| &x[start..gap]).collect();
            let mut outs: Vec<&mut [f64]> =
                outputs.iter_mut().map(|o| &mut o[start..gap]).collect();
            run(&ins, params, &mut outs);
        }
        let mut end = gap;
        while end < n && is_gap(inputs, end) {
            end += 1;
        }
        for o in outputs.iter_mut() {
            o[gap..end].fill(f64::NAN);
        }
        if end >= n {
            return;
        }
        start = end;
        gap = next_gap(inputs, start, n);
    }
}

/// True if any input at bar `i` is NaN or infinite.
#[inline]
pub fn is_gap(inputs: &[&[f64]], i: usize) -> bool {
    inputs.iter().any(|x| !x[i].is_finite())
}

/// The first gap at or after `start`, or `n`. Each input is only scanned up
/// to the best gap found so far, so many gaps cost O(n) in total.
fn next_gap(inputs: &[&[f64]], start: usize, n: usize) -> usize {
    let mut best = n;
    for x in inputs {
        if let Some(p) = first_non_finite(&x[start..best]) {
            best = start + p;
        }
    }
    best
}

/// The index of the first NaN or infinity, scanning in blocks the compiler
/// can vectorize.
pub fn first_non_finite(x: &[f64]) -> Option<usize> {
    const BLOCK: usize = 32;
    let mut base = 0;
    let mut blocks = x.chunks_exact(BLOCK);
    for block in blocks.by_ref() {
        // v * 0 is 0 for a finite v and NaN for NaN or an infinity, and a NaN
        // survives the sums: four independent sums (two SIMD registers)
        // instead of a per-value integer test, which did not vectorize and
        // cost more than cheap kernels such as TRANGE.
        let mut acc = [0.0f64; 4];
        for q in block.chunks_exact(4) {
            for (a, &v) in acc.iter_mut().zip(q) {
                *a += v * 0.0;
            }
        }
        if (acc[0] + acc[1] + acc[2] + acc[3]).is_nan() {
            return block.iter().position(|v| !v.is_finite()).map(|p| base + p);
        }
        base += BLOCK;
    }
    blocks
        .remainder()
        .iter()
        .position(|v| !v.is_finite())
        .map(|p| base + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(inputs: &[&[f64]], _params: &[f64], outputs: &mut [&mut [f64]]) {
        // Marks each segment's first bar with -1 so restarts are visible.
        for (i, o) in outputs[0].iter_mut().enumerate() {
            *o = if i == 0 { -1.0 } else { inputs[0][i] };
        }
    }

    #[test]
    fn finds_non_finite_in_any_block() {
        for n in [0, 1, 31, 32, 33, 100] {
            let mut x = vec![1.0; n];
            assert_eq!(first_non_finite(&x), None);
            for p in 0..n {
                x[p] = f64::NEG_INFINITY;
                assert_eq!(first_non_finite(&x), Some(p));
                x[p] = 1.0;
            }
        }
    }

    #[test]
    fn each_run_restarts_and_gaps_are_nan() {
        let nan = f64::NAN;
        let x = [nan, 1.0, 2.0, nan, nan, 5.0, 6.0, f64::INFINITY];
        let y = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, nan, 7.0];
        let mut out = [0.0; 8];
        run_segmented(copy, &[&x, &y], &[], &mut [&mut out]);
        let want = [nan, -1.0, 2.0, nan, nan, -1.0, nan, nan];
        for (a, b) in out.iter().zip(want) {
            assert!(a == &b || (a.is_nan() && b.is_nan()), "{out:?}");
        }
    }

    #[test]
    fn no_gap_runs_once() {
        let x = [1.0, 2.0, 3.0];
        let mut out = [0.0; 3];
        run_segmented(copy, &[&x], &[], &mut [&mut out]);
        assert_eq!(out, [-1.0, 2.0, 3.0]);
    }
}
