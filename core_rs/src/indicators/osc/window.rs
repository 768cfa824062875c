//! Rolling maximum over the last `window` bars in O(1) amortized per bar: a
//! monotonic deque in a power-of-two ring. A rolling minimum is the rolling
//! maximum of the negated values (negation is exact).
//!
//! Ties: a new value evicts every queued value `<=` it, so the front is the
//! maximum and, among equal maxima, the LATEST bar. That is TA-Lib's AROON
//! rule (its rescan and its update both use `>=` / `<=`). STOCH and WILLR
//! only use the value, which no tie rule changes.

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct RollingMax {
    vals: Vec<f64>,
    idx: Vec<u64>,
    head: usize,
    len: usize,
    mask: usize,
    window: u64,
}

impl RollingMax {
    /// A deque over the last `window` (>= 1) bars.
    pub fn new(window: usize) -> RollingMax {
        // One slot more than the window: a bar is pushed before one leaves.
        let cap = (window + 1).next_power_of_two();
        RollingMax {
            vals: vec![0.0; cap],
            idx: vec![0; cap],
            head: 0,
            len: 0,
            mask: cap - 1,
            window: window as u64,
        }
    }

    /// Adds bar `i` (bars numbered consecutively) with value `x`, drops the
    /// bar that left the window, and returns the maximum and its bar.
    #[inline(always)]
    pub fn push(&mut self, i: u64, x: f64) -> (f64, u64) {
        let mask = self.mask;
        let mut len = self.len;
        // Pop from the back every value the new one dominates (ties too).
        while len > 0 {
            let b = (self.head + len - 1) & mask;
            if self.vals[b] <= x {
                len -= 1;
            } else {
                break;
            }
        }
        let t = (self.head + len) & mask;
        self.vals[t] = x;
        self.idx[t] = i;
        len += 1;
        // At most one bar leaves per step: the front, if it is that bar.
        if self.idx[self.head] + self.window <= i {
            self.head = (self.head + 1) & mask;
            len -= 1;
        }
        self.len = len;
        (self.vals[self.head], self.idx[self.head])
    }
}

/// The highest high and lowest low of the last `window` bars.
#[derive(Clone, Serialize, Deserialize)]
pub struct HighLow {
    hi: RollingMax,
    lo: RollingMax,
    bar: u64,
}

impl HighLow {
    pub fn new(window: usize) -> HighLow {
        HighLow {
            hi: RollingMax::new(window),
            lo: RollingMax::new(window),
            bar: 0,
        }
    }

    /// Bars pushed so far.
    pub fn seen(&self) -> u64 {
        self.bar
    }

    /// Adds a bar; returns (highest high, lowest low) over the window.
    #[inline(always)]
    pub fn push(&mut self, high: f64, low: f64) -> (f64, f64) {
        let i = self.bar;
        self.bar += 1;
        let (hh, _) = self.hi.push(i, high);
        let (nl, _) = self.lo.push(i, -low);
        (hh, -nl)
    }
}

#[inline(always)]
fn fmax(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn fmin(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// Windows up to this long use [`sparse_high_low`]; longer ones van Herk.
pub const SPARSE_MAX: usize = 2048;

/// Batch rolling extremes: calls `emit(start, highest, lowest)` with the
/// highest high and lowest low over bars `i + 1 - window ..= i` for `i` in
/// `start..start + highest.len()`, block by block, covering every bar
/// `i >= window - 1`. The values equal the deque's exactly (a max is a max),
/// so batch and incremental agree bit for bit.
#[inline(always)]
pub fn rolling_high_low(
    high: &[f64],
    low: &[f64],
    window: usize,
    emit: impl FnMut(usize, &[f64], &[f64]),
) {
    if window <= SPARSE_MAX {
        sparse_high_low(high, low, window, emit);
    } else {
        van_herk_high_low(high, low, window, emit);
    }
}

/// `dst[j] = max(a[j], a[j + d])` (or min) for every `j` of `dst`.
#[inline(always)]
fn level<const MAX: bool>(a: &[f64], d: usize, dst: &mut [f64]) {
    let m = dst.len();
    for ((o, &x), &y) in dst.iter_mut().zip(&a[..m]).zip(&a[d..d + m]) {
        *o = if MAX { fmax(x, y) } else { fmin(x, y) };
    }
}

/// Rolling extremes by doubling, block by block: with `L` the largest power
/// of two `<= window`, the extremes of every run of `L` bars are built in
/// log2(L) vectorized passes (runs of 2 from pairs, 4 from 2s...), and a
/// window is two overlapping runs of `L`. O(log window) vector operations
/// per bar, no data-dependent branches.
#[inline(always)]
pub fn sparse_high_low(
    high: &[f64],
    low: &[f64],
    window: usize,
    mut emit: impl FnMut(usize, &[f64], &[f64]),
) {
    let n = high.len().min(low.len());
    let p = window;
    if p == 0 || n < p {
        return;
    }
    let mut big = 1;
    while big * 2 <= p {
        big *= 2;
    }
    let block = 1024.max(2 * p);
    // Ping-pong buffers per series: no aliasing, so each pass vectorizes.
    let (mut hb, mut hb2) = (vec![0.0; block + p], vec![0.0; block + p]);
    let (mut lb, mut lb2) = (vec![0.0; block + p], vec![0.0; block + p]);
    let mut hh = vec![0.0; block];
    let mut ll = vec![0.0; block];
    let mut s = p - 1;
    while s < n {
        let m = block.min(n - s);
        // Bars base .. s + m: the windows of bars s .. s + m.
        let base = s + 1 - p;
        let len = m + p - 1;
        let (xh, xl) = (&high[base..s + m], &low[base..s + m]);
        if big == 1 {
            hb[..len].copy_from_slice(xh);
            lb[..len].copy_from_slice(xl);
        } else {
            // Runs of 2, then doubling up to `big`.
            let mut valid = len - 1;
            level::<true>(xh, 1, &mut hb[..valid]);
            level::<false>(xl, 1, &mut lb[..valid]);
            let mut run = 2;
            while run < big {
                valid -= run;
                level::<true>(&hb, run, &mut hb2[..valid]);
                level::<false>(&lb, run, &mut lb2[..valid]);
                std::mem::swap(&mut hb, &mut hb2);
                std::mem::swap(&mut lb, &mut lb2);
                run *= 2;
            }
        }
        // Bar s + t: runs starting at t and t + p - big.
        let d = p - big;
        level::<true>(&hb, d, &mut hh[..m]);
        level::<false>(&lb, d, &mut ll[..m]);
        emit(s, &hh[..m], &ll[..m]);
        s += m;
    }
}

/// Batch rolling extremes by van Herk / Gil-Werman blocks: calls
/// `emit(start, highest, lowest)` with the highest high and lowest low over
/// bars `i + 1 - window ..= i` for `i` in `start..start + highest.len()`,
/// block by block, covering every bar `i >= window - 1`. The bars are cut
/// into blocks of `window`; a window is a suffix of one block plus a prefix
/// of the next, so its extreme is the max of a suffix extreme and a prefix
/// extreme, both computed in one fused pass per block (four independent
/// compare chains, no data-dependent branches). O(1) per bar, O(window)
/// scratch. The values equal the deque's exactly (a max is a max), so batch
/// and incremental agree bit for bit.
#[inline(always)]
pub fn van_herk_high_low(
    high: &[f64],
    low: &[f64],
    window: usize,
    mut emit: impl FnMut(usize, &[f64], &[f64]),
) {
    let n = high.len().min(low.len());
    let p = window;
    if p == 0 || n < p {
        return;
    }
    let mut pre_h = vec![0.0; p];
    let mut pre_l = vec![0.0; p];
    let mut suf_h = vec![0.0; p + 1];
    let mut suf_l = vec![0.0; p + 1];
    // Block 0: only its last bar has a full window, its prefix extreme.
    let (mut hh, mut ll) = (high[0], low[0]);
    for j in 1..p {
        hh = fmax(hh, high[j]);
        ll = fmin(ll, low[j]);
    }
    emit(p - 1, &[hh], &[ll]);
    // Bar s + j: previous block from j + 1 on, this block up to j (the last
    // bar of a full block is the block alone: an empty suffix).
    suf_h[p] = f64::NEG_INFINITY;
    suf_l[p] = f64::INFINITY;
    let mut s = p;
    while s < n {
        let len = p.min(n - s);
        let (prev_h, prev_l) = (&high[s - p..s], &low[s - p..s]);
        let (cur_h, cur_l) = (&high[s..s + len], &low[s..s + len]);
        // Suffix extremes of the previous block, backward, with the prefix
        // extremes of this one, forward: independent chains, one loop.
        let (mut sh, mut sl) = (prev_h[p - 1], prev_l[p - 1]);
        suf_h[p - 1] = sh;
        suf_l[p - 1] = sl;
        let (mut ph, mut pl) = (cur_h[0], cur_l[0]);
        pre_h[0] = ph;
        pre_l[0] = pl;
        if len == p {
            for j in 1..p {
                let b = p - 1 - j;
                sh = fmax(sh, prev_h[b]);
                sl = fmin(sl, prev_l[b]);
                suf_h[b] = sh;
                suf_l[b] = sl;
                ph = fmax(ph, cur_h[j]);
                pl = fmin(pl, cur_l[j]);
                pre_h[j] = ph;
                pre_l[j] = pl;
            }
        } else {
            for b in (0..p - 1).rev() {
                sh = fmax(sh, prev_h[b]);
                sl = fmin(sl, prev_l[b]);
                suf_h[b] = sh;
                suf_l[b] = sl;
            }
            for j in 1..len {
                ph = fmax(ph, cur_h[j]);
                pl = fmin(pl, cur_l[j]);
                pre_h[j] = ph;
                pre_l[j] = pl;
            }
        }
        // Combine in place (vectorizable).
        for (x, &sv) in pre_h[..len].iter_mut().zip(&suf_h[1..=len]) {
            *x = fmax(sv, *x);
        }
        for (x, &sv) in pre_l[..len].iter_mut().zip(&suf_l[1..=len]) {
            *x = fmin(sv, *x);
        }
        emit(s, &pre_h[..len], &pre_l[..len]);
        s += p;
    }
}

/// One doubling pass with the bar of each extreme (as `f64`, exact): the
/// later run wins a tie (TA-Lib's AROON rule).
#[inline(always)]
fn level_arg<const MAX: bool>(v: &[f64], at: &[f64], d: usize, dv: &mut [f64], dat: &mut [f64]) {
    let m = dv.len();
    let a = v[..m].iter().zip(&at[..m]);
    let b = v[d..d + m].iter().zip(&at[d..d + m]);
    for ((ov, oa), ((&x, &xa), (&y, &ya))) in dv.iter_mut().zip(dat.iter_mut()).zip(a.zip(b)) {
        let later = if MAX { y >= x } else { y <= x };
        *ov = if later { y } else { x };
        *oa = if later { ya } else { xa };
    }
}

/// The bars of the rolling highest high and lowest low (latest on a tie)
/// by doubling passes as [`sparse_high_low`]: calls `emit(start, hi_at,
/// lo_at)` with the bars as `f64` for bars `start..start + hi_at.len()`.
#[inline(always)]
pub fn sparse_arg_high_low(
    high: &[f64],
    low: &[f64],
    window: usize,
    mut emit: impl FnMut(usize, &[f64], &[f64]),
) {
    let n = high.len().min(low.len());
    let p = window;
    if p == 0 || n < p {
        return;
    }
    let mut big = 1;
    while big * 2 <= p {
        big *= 2;
    }
    let block = 1024.max(2 * p);
    let size = block + p;
    let buf = || (vec![0.0; size], vec![0.0; size]);
    let ((mut hv, mut ha), (mut hv2, mut ha2)) = (buf(), buf());
    let ((mut lv, mut la), (mut lv2, mut la2)) = (buf(), buf());
    let mut iota = vec![0.0; size];
    let (mut hi_at, mut lo_at) = (vec![0.0; block], vec![0.0; block]);
    let mut s = p - 1;
    while s < n {
        let m = block.min(n - s);
        let base = s + 1 - p;
        let len = m + p - 1;
        for (j, x) in iota[..len].iter_mut().enumerate() {
            *x = (base + j) as f64;
        }
        hv[..len].copy_from_slice(&high[base..s + m]);
        lv[..len].copy_from_slice(&low[base..s + m]);
        ha[..len].copy_from_slice(&iota[..len]);
        la[..len].copy_from_slice(&iota[..len]);
        let (mut valid, mut run) = (len, 1);
        while run < big {
            valid -= run;
            level_arg::<true>(&hv, &ha, run, &mut hv2[..valid], &mut ha2[..valid]);
            level_arg::<false>(&lv, &la, run, &mut lv2[..valid], &mut la2[..valid]);
            std::mem::swap(&mut hv, &mut hv2);
            std::mem::swap(&mut ha, &mut ha2);
            std::mem::swap(&mut lv, &mut lv2);
            std::mem::swap(&mut la, &mut la2);
            run *= 2;
        }
        let d = p - big;
        level_arg::<true>(&hv, &ha, d, &mut hv2[..m], &mut hi_at[..m]);
        level_arg::<false>(&lv, &la, d, &mut lv2[..m], &mut lo_at[..m]);
        emit(s, &hi_at[..m], &lo_at[..m]);
        s += m;
    }
}

/// As [`rolling_high_low`] but calls `emit(i, bar of the highest high, bar
/// of the lowest low)`, the latest bar on a tie (TA-Lib's AROON rule).
#[inline(always)]
pub fn rolling_arg_high_low(
    high: &[f64],
    low: &[f64],
    window: usize,
    mut emit: impl FnMut(usize, usize, usize),
) {
    let n = high.len().min(low.len());
    let p = window;
    if p == 0 || n < p {
        return;
    }
    // (value, bar) of the suffix / prefix extremes.
    let mut pre_h = vec![(0.0, 0usize); p];
    let mut pre_l = vec![(0.0, 0usize); p];
    let mut suf_h = vec![(0.0, 0usize); p + 1];
    let mut suf_l = vec![(0.0, 0usize); p + 1];
    let (mut hh, mut ll) = ((high[0], 0), (low[0], 0));
    for j in 1..p {
        if high[j] >= hh.0 {
            hh = (high[j], j);
        }
        if low[j] <= ll.0 {
            ll = (low[j], j);
        }
    }
    emit(p - 1, hh.1, ll.1);
    let mut s = p;
    while s < n {
        let len = p.min(n - s);
        // Backward: keep the incumbent (later bar) on a tie.
        let (mut sh, mut sl) = ((high[s - 1], s - 1), (low[s - 1], s - 1));
        suf_h[p - 1] = sh;
        suf_l[p - 1] = sl;
        for b in (0..p - 1).rev() {
            let i = s - p + b;
            if high[i] > sh.0 {
                sh = (high[i], i);
            }
            if low[i] < sl.0 {
                sl = (low[i], i);
            }
            suf_h[b] = sh;
            suf_l[b] = sl;
        }
        // Forward: the new bar wins a tie.
        let (mut ph, mut pl) = ((high[s], s), (low[s], s));
        pre_h[0] = ph;
        pre_l[0] = pl;
        for j in 1..len {
            let i = s + j;
            if high[i] >= ph.0 {
                ph = (high[i], i);
            }
            if low[i] <= pl.0 {
                pl = (low[i], i);
            }
            pre_h[j] = ph;
            pre_l[j] = pl;
        }
        suf_h[p] = (f64::NEG_INFINITY, 0);
        suf_l[p] = (f64::INFINITY, 0);
        for j in 0..len {
            let (ph, sh) = (pre_h[j], suf_h[j + 1]);
            let (pl, sl) = (pre_l[j], suf_l[j + 1]);
            let hi_at = if ph.0 >= sh.0 { ph.1 } else { sh.1 };
            let lo_at = if pl.0 <= sl.0 { pl.1 } else { sl.1 };
            emit(s + j, hi_at, lo_at);
        }
        s += p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::Rng;

    #[test]
    fn matches_a_naive_scan_with_latest_tie() {
        let mut rng = Rng::new(3);
        for window in [1usize, 2, 3, 5, 8, 14] {
            // Few distinct values so ties are common.
            let x: Vec<f64> = (0..500).map(|_| (rng.next_f64() * 6.0).floor()).collect();
            let mut dq = RollingMax::new(window);
            for i in 0..x.len() {
                let (v, at) = dq.push(i as u64, x[i]);
                let lo = (i + 1).saturating_sub(window);
                let mut best = lo;
                for j in lo..=i {
                    if x[j] >= x[best] {
                        best = j;
                    }
                }
                assert_eq!((v, at), (x[best], best as u64), "window {window} bar {i}");
            }
        }
    }

    #[test]
    fn blocks_match_the_deque() {
        let mut rng = Rng::new(9);
        for window in [1usize, 2, 3, 4, 5, 8, 15, 16, 17, 33] {
            for n in [0usize, 1, window, window + 1, 3 * window + 2, 200, 2500] {
                let h: Vec<f64> = (0..n).map(|_| (rng.next_f64() * 6.0).floor()).collect();
                let l: Vec<f64> = (0..n).map(|_| (rng.next_f64() * 6.0).floor()).collect();
                let (mut hi, mut lo) = (RollingMax::new(window), RollingMax::new(window));
                let want: Vec<_> = (0..n)
                    .map(|i| (hi.push(i as u64, h[i]), lo.push(i as u64, -l[i])))
                    .collect();
                let mut got = Vec::new();
                rolling_high_low(&h, &l, window, |s, a, b| {
                    for (j, (&a, &b)) in a.iter().zip(b).enumerate() {
                        got.push((s + j, a, b));
                    }
                });
                let mut got_vh = Vec::new();
                van_herk_high_low(&h, &l, window, |s, a, b| {
                    for (j, (&a, &b)) in a.iter().zip(b).enumerate() {
                        got_vh.push((s + j, a, b));
                    }
                });
                assert_eq!(got_vh, got, "van Herk, window {window} n {n}");
                let mut got_at = Vec::new();
                rolling_arg_high_low(&h, &l, window, |i, a, b| got_at.push((i, a, b)));
                assert_eq!(got.len(), (n + 1).saturating_sub(window));
                assert_eq!(got_at.len(), got.len());
                let mut got_sparse = Vec::new();
                sparse_arg_high_low(&h, &l, window, |s, a, b| {
                    for (j, (&a, &b)) in a.iter().zip(b).enumerate() {
                        got_sparse.push((s + j, a as usize, b as usize));
                    }
                });
                assert_eq!(got_sparse, got_at, "sparse arg, window {window} n {n}");
                for (&(i, a, b), &(j, ia, ib)) in got.iter().zip(&got_at) {
                    let ((wa, wia), (wb, wib)) = want[i];
                    assert_eq!((i, a, b), (j, wa, -wb), "window {window} n {n}");
                    assert_eq!(
                        (ia as u64, ib as u64),
                        (wia, wib),
                        "window {window} bar {i}"
                    );
                }
            }
        }
    }
}
