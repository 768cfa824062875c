//! Many series at once: one kernel (or a bundle) over every series on all
//! cores, on a rayon pool of our own.
//!
//! Fork safety: a forked child inherits the pool's bookkeeping but none of
//! its threads, so rayon's global pool would hang there on first use. The
//! pool here remembers the pid that built it; a child sees another pid,
//! leaks the dead pool without touching it and builds a fresh one. The pool
//! is found through an atomic pointer, not a mutex, so a fork can never
//! leave the child waiting on a lock another thread held.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::indicators::Spec;

struct OwnedPool {
    pid: u32,
    pool: ThreadPool,
}

/// Points at a leaked `OwnedPool`: pools live for the life of the process
/// (one per fork generation at most).
static POOL: AtomicPtr<OwnedPool> = AtomicPtr::new(ptr::null_mut());

/// Worker threads: `MM_CORE_THREADS` if set to a positive integer, else one
/// per available core.
fn thread_count() -> usize {
    std::env::var("MM_CORE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The pool for this process, built on first use and again after a fork.
pub fn pool() -> &'static ThreadPool {
    let pid = std::process::id();
    loop {
        let current = POOL.load(Ordering::Acquire);
        // SAFETY: a non-null POOL points at a leaked, never-freed OwnedPool.
        if let Some(owned) = unsafe { current.as_ref() } {
            if owned.pid == pid {
                return &owned.pool;
            }
        }
        let fresh = Box::into_raw(Box::new(OwnedPool {
            pid,
            pool: ThreadPoolBuilder::new()
                .num_threads(thread_count())
                .thread_name(|i| format!("core_rs-{i}"))
                .build()
                .expect("the rayon pool starts"),
        }));
        // The parent's pool (if `current` is one) is left leaked: its
        // threads do not exist here, so dropping it could wait forever.
        match POOL.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: `fresh` is now owned by POOL and never freed.
            Ok(_) => return unsafe { &(*fresh).pool },
            // Another thread installed a pool first: drop ours (its threads
            // are live in this process) and use theirs.
            // SAFETY: `fresh` was never shared.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

/// The number of threads batch calls run on in this process.
pub fn threads() -> usize {
    pool().current_num_threads()
}

/// A raw output column shared by the workers; each writes disjoint rows.
#[derive(Clone, Copy)]
struct OutPtr(*mut f64);
// SAFETY: workers write only their own row range of the array.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Rows of `width` values, one per series, in `outputs` (each of length
/// `series.len() * width`). A series shorter than `width` is right-aligned:
/// its last value lands in the last column and the row starts with NaN, so
/// `out[:, -1]` is every series' latest value.
pub fn run_rows<F>(n_series: usize, width: usize, outputs: &mut [&mut [f64]], work: F)
where
    F: Fn(usize, &mut [&mut [f64]]) + Sync,
{
    for o in outputs.iter() {
        assert_eq!(o.len(), n_series * width, "output size");
    }
    let ptrs: Vec<OutPtr> = outputs.iter_mut().map(|o| OutPtr(o.as_mut_ptr())).collect();
    // Enough bars per task that scheduling stays a small cost.
    let min_rows = (1 << 14) / width.max(1) + 1;
    pool().install(|| {
        (0..n_series)
            .into_par_iter()
            .with_min_len(min_rows)
            .for_each(|i| {
                let mut rows: Vec<&mut [f64]> = ptrs
                    .iter()
                    // SAFETY: row i of each output is touched by this task only.
                    .map(|p| unsafe { std::slice::from_raw_parts_mut(p.0.add(i * width), width) })
                    .collect();
                work(i, &mut rows);
            })
    });
}

/// One kernel over many series: `series[i][k]` is input k of series i (all
/// inputs of a series have one length, at most `width`).
pub fn run_many(
    spec: &Spec,
    params: &[f64],
    series: &[Vec<&[f64]>],
    width: usize,
    outputs: &mut [&mut [f64]],
) {
    run_rows(series.len(), width, outputs, |i, rows| {
        let inputs = &series[i];
        let len = inputs.first().map_or(0, |x| x.len());
        let pad = width - len;
        let mut tails: Vec<&mut [f64]> = rows
            .iter_mut()
            .map(|r| {
                r[..pad].fill(f64::NAN);
                &mut r[pad..]
            })
            .collect();
        spec.run_series(inputs, params, &mut tails);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::find;

    #[test]
    fn many_series_equal_one_at_a_time_right_aligned() {
        let sma = find("sma").unwrap();
        let a: Vec<f64> = (0..100).map(|i| (i as f64).sin() + 10.0).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64).cos() + 5.0).collect();
        let series = vec![vec![a.as_slice()], vec![b.as_slice()], vec![&a[..0]]];
        let mut out = vec![0.0; 3 * 100];
        run_many(sma, &[5.0], &series, 100, &mut [&mut out]);
        let mut want_a = vec![0.0; 100];
        let mut want_b = vec![0.0; 37];
        sma.run_series(&[&a], &[5.0], &mut [&mut want_a]);
        sma.run_series(&[&b], &[5.0], &mut [&mut want_b]);
        let same = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same(&out[..100], &want_a));
        assert!(out[100..163].iter().all(|v| v.is_nan()));
        assert!(same(&out[163..200], &want_b));
        assert!(out[200..].iter().all(|v| v.is_nan()));
    }

    #[test]
    fn pool_is_reused_within_a_process() {
        assert!(std::ptr::eq(pool(), pool()));
        assert!(threads() >= 1);
    }
}
