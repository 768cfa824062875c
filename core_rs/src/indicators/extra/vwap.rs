//! VWAP: the volume-weighted average of the typical price (h + l + c) / 3,
//! cumulative within each session. A session starts at every multiple of
//! `session_ms` milliseconds since the Unix epoch (the UTC day by default),
//! located from `timestamp`, the bar's open time in epoch milliseconds.

use serde::{Deserialize, Serialize};

use crate::indicators::state::load;
use crate::indicators::{Param, Spec, State};

pub const SPEC: Spec = Spec {
    name: "vwap",
    inputs: &["high", "low", "close", "volume", "timestamp"],
    outputs: &["real"],
    params: &[Param::int("session_ms", 86_400_000.0, 60_000.0, 1e12)],
    lookback: |_| 0,
    run: |i, p, o| vwap_into(i[0], i[1], i[2], i[3], i[4], p[0], o[0]),
    run_checked: None,
    check: None,
    new_state: Some(|p| Box::new(Vwap::new(p[0]))),
    load_state: Some(load::<Vwap>),
};

pub const THIRD: f64 = 1.0 / 3.0;

/// The typical price (h + l + c) / 3.
#[inline(always)]
pub fn typical(h: f64, l: f64, c: f64) -> f64 {
    (h + l + c) * THIRD
}

/// VWAP of a gap-free series. A new session (the sums restart) begins at
/// each bar whose session differs from the previous bar's. Where the
/// session's volume so far is zero the output is the bar's typical price.
pub fn vwap_into(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    volume: &[f64],
    timestamp: &[f64],
    session_ms: f64,
    out: &mut [f64],
) {
    let mut state = Vwap::new(session_ms);
    let bars = high.iter().zip(low).zip(close).zip(volume).zip(timestamp);
    for (o, ((((&h, &l), &c), &v), &t)) in out.iter_mut().zip(bars) {
        *o = state.next(h, l, c, v, t);
    }
}

/// The current session's bounds and sums.
#[derive(Clone, Serialize, Deserialize)]
pub struct Vwap {
    session_ms: f64,
    /// [start, end) of the current session; empty before the first bar.
    start: f64,
    end: f64,
    pv: f64,
    v: f64,
}

impl Vwap {
    pub fn new(session_ms: f64) -> Vwap {
        Vwap {
            session_ms,
            start: f64::INFINITY,
            end: f64::NEG_INFINITY,
            pv: 0.0,
            v: 0.0,
        }
    }

    /// The start of the session holding `t`: floor(t / s) * s, corrected by
    /// one session if the division rounded across a boundary.
    fn session_start(&self, t: f64) -> f64 {
        let s = self.session_ms;
        let mut start = (t / s).floor() * s;
        if start > t {
            start -= s;
        } else if start + s <= t {
            start += s;
        }
        start
    }

    /// The sums after bar (h, l, c, v, t), without storing them.
    #[inline(always)]
    fn sums(&self, tp: f64, v: f64, t: f64) -> (f64, f64, bool) {
        let same = t >= self.start && t < self.end;
        let (pv0, v0) = if same { (self.pv, self.v) } else { (0.0, 0.0) };
        (pv0 + tp * v, v0 + v, same)
    }

    #[inline(always)]
    fn value(tp: f64, pv: f64, v: f64) -> f64 {
        if v == 0.0 {
            tp
        } else {
            pv / v
        }
    }

    #[inline(always)]
    pub fn next(&mut self, h: f64, l: f64, c: f64, v: f64, t: f64) -> f64 {
        let tp = typical(h, l, c);
        let (pv, vs, same) = self.sums(tp, v, t);
        if !same {
            self.start = self.session_start(t);
            self.end = self.start + self.session_ms;
        }
        self.pv = pv;
        self.v = vs;
        Self::value(tp, pv, vs)
    }
}

impl State for Vwap {
    fn update(&mut self, bar: &[f64], out: &mut [f64]) {
        out[0] = self.next(bar[0], bar[1], bar[2], bar[3], bar[4]);
    }

    fn peek(&self, bar: &[f64], out: &mut [f64]) {
        let tp = typical(bar[0], bar[1], bar[2]);
        let (pv, v, _) = self.sums(tp, bar[3], bar[4]);
        out[0] = Self::value(tp, pv, v);
    }

    crate::state_boilerplate!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::{assert_close, run};

    const DAY: f64 = 86_400_000.0;

    #[test]
    fn golden_values_by_hand() {
        // Typical prices 10, 20, 30, 40 (h = l = c). Bars 0-2 on day 1,
        // bar 3 on day 2 (a new session), bar 2 with zero volume.
        let tp = vec![10.0, 20.0, 30.0, 40.0];
        let vol = vec![1.0, 3.0, 0.0, 2.0];
        let ts = vec![DAY, DAY + 3_600_000.0, 2.0 * DAY - 1.0, 2.0 * DAY];
        let out = run(&SPEC, &[tp.clone(), tp.clone(), tp, vol, ts], &[DAY]);
        // (10*1)/1 = 10; (10 + 60)/4 = 17.5; unchanged 17.5; new day: 40
        assert_close(&out[0], &[10.0, 17.5, 17.5, 40.0], 1e-15, "vwap");
    }

    #[test]
    fn zero_volume_is_the_typical_price() {
        let h = vec![3.0, 6.0];
        let l = vec![0.0, 3.0];
        let c = vec![3.0, 3.0];
        let out = run(&SPEC, &[h, l, c, vec![0.0, 0.0], vec![0.0, 1.0]], &[DAY]);
        assert_close(&out[0], &[2.0, 4.0], 1e-15, "vwap");
    }

    #[test]
    fn negative_times_and_session_bounds() {
        let st = Vwap::new(DAY);
        assert_eq!(st.session_start(-1.0), -DAY);
        assert_eq!(st.session_start(0.0), 0.0);
        assert_eq!(st.session_start(DAY - 0.5), 0.0);
        assert_eq!(st.session_start(1.7e12), (1.7e12 / DAY).floor() * DAY);
    }

    #[test]
    fn edge_lengths() {
        for n in [0usize, 1, 2] {
            let x = vec![1.0; n];
            let out = run(
                &SPEC,
                &[x.clone(), x.clone(), x.clone(), x.clone(), x],
                &[DAY],
            );
            assert_eq!(out[0], vec![1.0; n]);
        }
    }
}
