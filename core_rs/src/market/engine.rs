//! `CandleEngine`: per-symbol state and the tick loop. The conventions it
//! implements are written down in `market/mod.rs`.

use std::collections::TryReserveError;

use super::candle::{Candle, CandleState};
use super::reject::*;
use super::rolling::{window_bounds, Ring};
use super::rows::{CandleRows, QuoteRows};
use crate::CoreError;

/// At most this many intervals: `interval_idx` is a uint8.
pub const MAX_INTERVALS: usize = 255;

/// Symbol ids are int32 on the Python side.
pub const MAX_SYMBOLS: usize = i32::MAX as usize;

/// One (symbol, interval) current candle.
#[derive(Clone, Copy, Debug)]
struct Slot {
    c: CandleState,
    /// The slot holds a candle (the symbol has ticked or been restored).
    live: bool,
    /// The current candle changed since the last `take_dirty_candles`.
    dirty: bool,
    /// The slot sits in `dirty_slots` (dirty, or has pending candles).
    listed: bool,
    /// First and last of this slot's candles in `pending`, oldest first,
    /// linked through `Pending::next`; `NONE` if there are none.
    head: u32,
    tail: u32,
}

const NONE: u32 = u32::MAX;

/// A candle replaced by a newer one before it was taken. It can no longer
/// change. Chained per slot so `take_dirty_candles` needs no big sort.
#[derive(Clone, Copy, Debug)]
struct Pending {
    candle: Candle,
    next: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        c: CandleState::EMPTY,
        live: false,
        dirty: false,
        listed: false,
        head: NONE,
        tail: NONE,
    };
}

/// Per-symbol scalars touched by every tick.
#[derive(Clone, Copy, Debug)]
struct SymbolState {
    /// Ticks with time < watermark are rejected (code 6).
    watermark: i64,
    /// `[span_lo, span_hi)` is the time range inside every current candle
    /// while none is closed; a tick in it updates all candles without any
    /// bucket arithmetic. Empty (lo > hi) otherwise.
    span_lo: i64,
    span_hi: i64,
    last_price: f64,
    last_ms: i64,
    has_price: bool,
    /// Sits in `dirty_quotes`.
    quote_dirty: bool,
    /// Has accepted a tick; restoring is only allowed before that.
    ticked: bool,
}

impl SymbolState {
    const NEW: SymbolState = SymbolState {
        watermark: i64::MIN,
        span_lo: i64::MAX,
        span_hi: i64::MIN,
        last_price: f64::NAN,
        last_ms: i64::MIN,
        has_price: false,
        quote_dirty: false,
        ticked: false,
    };
}

/// Persisted candles for `restore_candles`, one slice per field, ascending
/// by `open_ms`.
#[derive(Clone, Copy, Debug)]
pub struct CandleColumns<'a> {
    pub open_ms: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
    pub quote_volume: &'a [f64],
    pub trades: &'a [i64],
    pub closed: &'a [bool],
}

impl CandleColumns<'_> {
    pub fn len(&self) -> usize {
        self.open_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open_ms.is_empty()
    }

    fn check_lengths(&self) -> Result<(), CoreError> {
        let n = self.open_ms.len();
        let lens = [
            ("open", self.open.len()),
            ("high", self.high.len()),
            ("low", self.low.len()),
            ("close", self.close.len()),
            ("volume", self.volume.len()),
            ("quote_volume", self.quote_volume.len()),
            ("trades", self.trades.len()),
            ("closed", self.closed.len()),
        ];
        for (name, len) in lens {
            check_len(name, len, "open_ms", n)?;
        }
        Ok(())
    }

    fn get(&self, i: usize) -> Candle {
        Candle {
            open_ms: self.open_ms[i],
            open: self.open[i],
            high: self.high[i],
            low: self.low[i],
            close: self.close[i],
            volume: self.volume[i],
            quote_volume: self.quote_volume[i],
            trades: self.trades[i],
            closed: self.closed[i],
        }
    }
}

fn check_len(
    name: &'static str,
    len: usize,
    other: &'static str,
    other_len: usize,
) -> Result<(), CoreError> {
    if len == other_len {
        Ok(())
    } else {
        Err(CoreError::LengthMismatch {
            name,
            other,
            len,
            other_len,
        })
    }
}

fn invalid(name: &'static str, reason: String) -> CoreError {
    CoreError::InvalidArgument { name, reason }
}

fn out_of_memory(name: &'static str, err: TryReserveError) -> CoreError {
    invalid(
        name,
        format!("cannot allocate state for that many symbols ({err})"),
    )
}

#[inline(always)]
fn floor_to(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

/// Turns ticks into last quotes, aligned OHLCV candles at several intervals
/// and rolling-window statistics, for symbols with dense ids `0..n_symbols`.
#[derive(Clone, Debug)]
pub struct CandleEngine {
    intervals: Vec<i64>,
    window_ms: i64,
    /// Finest buckets each ring keeps: window_ms / finest + 1.
    ring_keep: usize,
    n_symbols: usize,
    /// `n_symbols * intervals.len()` current candles, symbol-major.
    slots: Vec<Slot>,
    syms: Vec<SymbolState>,
    rings: Vec<Ring>,
    /// Candles replaced before they were taken, see `Slot::head`.
    pending: Vec<Pending>,
    /// Slots with something to take, each once.
    dirty_slots: Vec<usize>,
    dirty_quotes: Vec<usize>,
}

impl CandleEngine {
    /// `intervals_ms`: the finest first, every other a multiple of it, no
    /// repeats. `window_ms`: the rolling-statistics window, a multiple of the
    /// finest interval.
    pub fn new(
        intervals_ms: &[i64],
        window_ms: i64,
        n_symbols: usize,
    ) -> Result<CandleEngine, CoreError> {
        let name = "intervals_ms";
        let Some(&finest) = intervals_ms.first() else {
            return Err(invalid(name, "give at least one interval".into()));
        };
        if intervals_ms.len() > MAX_INTERVALS {
            return Err(invalid(
                name,
                format!(
                    "{} intervals given, at most {MAX_INTERVALS} are supported",
                    intervals_ms.len()
                ),
            ));
        }
        if finest <= 0 {
            return Err(invalid(
                name,
                format!(
                    "the finest interval must be a positive number of milliseconds, got {finest}"
                ),
            ));
        }
        for (i, &w) in intervals_ms.iter().enumerate() {
            if w <= 0 || w % finest != 0 {
                return Err(invalid(
                    name,
                    format!(
                        "interval {i} ({w} ms) is not a positive multiple of the finest interval \
                         {finest} ms; list the finest interval first and make every other one a \
                         whole number of it"
                    ),
                ));
            }
            if intervals_ms[..i].contains(&w) {
                return Err(invalid(name, format!("interval {w} ms is listed twice")));
            }
        }
        if window_ms <= 0 || window_ms % finest != 0 {
            return Err(invalid(
                "window_ms",
                format!(
                    "{window_ms} is not a positive multiple of the finest interval {finest} ms"
                ),
            ));
        }
        let mut engine = CandleEngine {
            intervals: intervals_ms.to_vec(),
            window_ms,
            ring_keep: usize::try_from(window_ms / finest)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
            n_symbols: 0,
            slots: Vec::new(),
            syms: Vec::new(),
            rings: Vec::new(),
            pending: Vec::new(),
            dirty_slots: Vec::new(),
            dirty_quotes: Vec::new(),
        };
        engine.add_symbols(n_symbols).map_err(|e| match e {
            CoreError::InvalidArgument { reason, .. } => invalid("n_symbols", reason),
            other => other,
        })?;
        Ok(engine)
    }

    /// Adds `n` symbols and returns the id of the first.
    pub fn add_symbols(&mut self, n: usize) -> Result<usize, CoreError> {
        let first = self.n_symbols;
        let total = first
            .checked_add(n)
            .filter(|&t| t <= MAX_SYMBOLS)
            .ok_or_else(|| {
                invalid(
                    "n",
                    format!("{first} + {n} symbols exceed the int32 id range ({MAX_SYMBOLS})"),
                )
            })?;
        let nk = self.intervals.len();
        self.slots
            .try_reserve_exact(n.saturating_mul(nk))
            .map_err(|e| out_of_memory("n", e))?;
        self.syms
            .try_reserve_exact(n)
            .map_err(|e| out_of_memory("n", e))?;
        self.rings
            .try_reserve_exact(n)
            .map_err(|e| out_of_memory("n", e))?;
        self.slots.resize(total * nk, Slot::EMPTY);
        self.syms.resize(total, SymbolState::NEW);
        self.rings.resize_with(total, Ring::default);
        self.n_symbols = total;
        Ok(first)
    }

    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }

    pub fn intervals_ms(&self) -> &[i64] {
        &self.intervals
    }

    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    fn symbol_index(&self, name: &'static str, id: i64) -> Result<usize, CoreError> {
        if id >= 0 && (id as u64) < self.n_symbols as u64 {
            Ok(id as usize)
        } else if self.n_symbols == 0 {
            Err(invalid(
                name,
                format!(
                    "unknown symbol id {id}; the engine has no symbols yet (add_symbols adds them)"
                ),
            ))
        } else {
            Err(invalid(
                name,
                format!(
                    "unknown symbol id {id}; ids run from 0 to n_symbols - 1 = {} (add_symbols adds more)",
                    self.n_symbols as i64 - 1
                ),
            ))
        }
    }

    /// Applies ticks in order and writes one code per tick into `codes`
    /// (see `reject`). A rejected tick changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn ingest<S: Copy + Into<i64>>(
        &mut self,
        symbol_ids: &[S],
        times_ms: &[i64],
        prices: &[f64],
        volumes: &[f64],
        now_ms: i64,
        max_future_ms: i64,
        codes: &mut [u8],
    ) -> Result<(), CoreError> {
        let n = symbol_ids.len();
        check_len("times_ms", times_ms.len(), "symbol_ids", n)?;
        check_len("prices", prices.len(), "symbol_ids", n)?;
        check_len("volumes", volumes.len(), "symbol_ids", n)?;
        check_len("codes", codes.len(), "symbol_ids", n)?;
        let horizon = now_ms.saturating_add(max_future_ms);
        let n_symbols = self.n_symbols as u64;
        let ticks = symbol_ids.iter().zip(times_ms).zip(prices).zip(volumes);
        for (code, (((&id, &t), &p), &v)) in codes.iter_mut().zip(ticks) {
            let id: i64 = id.into();
            *code = if id < 0 || id as u64 >= n_symbols {
                REJECT_UNKNOWN_SYMBOL
            } else if !p.is_finite() {
                REJECT_NON_FINITE_PRICE
            } else if p <= 0.0 {
                REJECT_NON_POSITIVE_PRICE
            } else if !(v.is_finite() && v >= 0.0) {
                REJECT_INVALID_VOLUME
            } else if t > horizon {
                REJECT_TIME_IN_FUTURE
            } else if t < self.syms[id as usize].watermark {
                REJECT_TIME_BEFORE_CLOSED_CANDLE
            } else {
                self.apply(id as usize, t, p, v);
                ACCEPTED
            };
        }
        Ok(())
    }

    /// Folds one valid tick into symbol `s`.
    #[inline(always)]
    fn apply(&mut self, s: usize, t: i64, p: f64, v: f64) {
        let st = &mut self.syms[s];
        st.ticked = true;
        if t >= st.last_ms {
            let changed = p != st.last_price || t != st.last_ms;
            st.last_price = p;
            st.last_ms = t;
            st.has_price = true;
            if changed && !st.quote_dirty {
                st.quote_dirty = true;
                self.dirty_quotes.push(s);
            }
        }
        if t >= st.span_lo && t < st.span_hi {
            let nk = self.intervals.len();
            let base = s * nk;
            for (k, slot) in self.slots[base..base + nk].iter_mut().enumerate() {
                slot.c.add(t, p, v);
                if !slot.dirty {
                    slot.dirty = true;
                    if !slot.listed {
                        slot.listed = true;
                        self.dirty_slots.push(base + k);
                    }
                }
            }
        } else {
            self.roll(s, t, p, v);
        }
    }

    /// The slow path of `apply`: the tick leaves at least one current bucket
    /// (or the symbol has none yet), so each interval finds its bucket.
    #[cold]
    fn roll(&mut self, s: usize, t: i64, p: f64, v: f64) {
        let nk = self.intervals.len();
        let base = s * nk;
        for (k, &w) in self.intervals.iter().enumerate() {
            let idx = base + k;
            let slot = &mut self.slots[idx];
            let open = slot.c.open_ms();
            if slot.live && !slot.c.is_closed() && t >= open && t < open.saturating_add(w) {
                slot.c.add(t, p, v);
            } else {
                let bucket = floor_to(t, w);
                // The watermark keeps accepted ticks at or after every
                // current open, and after every closed candle's end.
                debug_assert!(!slot.live || bucket > open);
                if slot.live {
                    // A forming candle closes now; a closed one still owes
                    // its closed state if it was not taken since.
                    if !slot.c.is_closed() || slot.dirty {
                        let mut last = slot.c.candle();
                        last.closed = true;
                        // u32 links: 2^32 pending candles would need over
                        // 300 GB, so the index cannot wrap in practice.
                        let at = self.pending.len() as u32;
                        self.pending.push(Pending {
                            candle: last,
                            next: NONE,
                        });
                        if slot.tail == NONE {
                            slot.head = at;
                        } else {
                            self.pending[slot.tail as usize].next = at;
                        }
                        slot.tail = at;
                    }
                    if k == 0 {
                        self.rings[s].push(slot.c.bucket(), self.ring_keep);
                    }
                }
                slot.c = CandleState::start(bucket, t, p, v);
                slot.live = true;
                if k == 0 {
                    let st = &mut self.syms[s];
                    st.watermark = st.watermark.max(bucket);
                }
            }
            slot.dirty = true;
            if !slot.listed {
                slot.listed = true;
                self.dirty_slots.push(idx);
            }
        }
        self.refresh_span(s);
    }

    /// Recomputes the fast-path span of symbol `s` from its current candles.
    fn refresh_span(&mut self, s: usize) {
        let nk = self.intervals.len();
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        for (slot, &w) in self.slots[s * nk..(s + 1) * nk].iter().zip(&self.intervals) {
            if !slot.live || slot.c.is_closed() {
                (lo, hi) = (i64::MAX, i64::MIN);
                break;
            }
            lo = lo.max(slot.c.open_ms());
            hi = hi.min(slot.c.open_ms().saturating_add(w));
        }
        let st = &mut self.syms[s];
        st.span_lo = lo;
        st.span_hi = hi;
    }

    /// Closes every current candle whose end (open + width) is <= `cutoff_ms`
    /// and returns how many it closed. The symbol's watermark moves to the
    /// end of each candle closed, so late ticks for it are rejected.
    pub fn close_expired(&mut self, cutoff_ms: i64) -> usize {
        let nk = self.intervals.len();
        let mut closed = 0;
        for s in 0..self.n_symbols {
            let st = self.syms[s];
            if st.span_lo < st.span_hi && st.span_hi > cutoff_ms {
                // Every current candle ends at or after span_hi.
                continue;
            }
            let mut any = false;
            let mut watermark = st.watermark;
            for (k, &w) in self.intervals.iter().enumerate() {
                let idx = s * nk + k;
                let slot = &mut self.slots[idx];
                if !slot.live || slot.c.is_closed() {
                    continue;
                }
                let end = slot.c.open_ms().saturating_add(w);
                if end <= cutoff_ms {
                    slot.c.close_now();
                    slot.dirty = true;
                    if !slot.listed {
                        slot.listed = true;
                        self.dirty_slots.push(idx);
                    }
                    watermark = watermark.max(end);
                    closed += 1;
                    any = true;
                }
            }
            if any {
                let st = &mut self.syms[s];
                st.watermark = watermark;
                st.span_lo = i64::MAX;
                st.span_hi = i64::MIN;
            }
        }
        closed
    }

    /// Every candle changed since the previous call, once, in its latest
    /// state, ordered by (symbol_id, interval_idx, open_ms).
    pub fn take_dirty_candles(&mut self) -> CandleRows {
        let nk = self.intervals.len();
        let mut slots = std::mem::take(&mut self.dirty_slots);
        slots.sort_unstable();
        let mut rows = CandleRows::with_capacity(self.pending.len() + slots.len());
        for &idx in &slots {
            // Both fit: ids < 2^31 and intervals < 256 by construction.
            let (sym, k) = ((idx / nk) as i32, (idx % nk) as u8);
            let slot = &mut self.slots[idx];
            let mut at = slot.head;
            while at != NONE {
                let p = &self.pending[at as usize];
                rows.push(sym, k, &p.candle);
                at = p.next;
            }
            if slot.dirty {
                rows.push(sym, k, &slot.c.candle());
            }
            slot.dirty = false;
            slot.listed = false;
            slot.head = NONE;
            slot.tail = NONE;
        }
        self.pending.clear();
        // Keep the allocation for the next round.
        slots.clear();
        self.dirty_slots = slots;
        rows
    }

    /// The current candle (forming, else the last closed) of each symbol in
    /// `symbol_ids` at each interval index in `interval_idx`, ordered by
    /// (position in `symbol_ids`, position in `interval_idx`); slots with no
    /// candle yet are left out. Reads only: dirty state is untouched, so a
    /// stream can snapshot without stealing changes from `take_dirty_candles`.
    pub fn current_candles<S: Copy + Into<i64>>(
        &self,
        symbol_ids: &[S],
        interval_idx: &[u8],
    ) -> Result<CandleRows, CoreError> {
        for &id in symbol_ids {
            self.symbol_index("symbol_ids", id.into())?;
        }
        let nk = self.intervals.len();
        if let Some(&k) = interval_idx.iter().find(|&&k| usize::from(k) >= nk) {
            return Err(invalid(
                "interval_idx",
                format!("{k} is not an index into intervals_ms (0..{})", nk - 1),
            ));
        }
        let mut rows = CandleRows::with_capacity(symbol_ids.len() * interval_idx.len());
        for &id in symbol_ids {
            let s = id.into() as usize;
            for &k in interval_idx {
                let slot = &self.slots[s * nk + usize::from(k)];
                if slot.live {
                    // Both fit: ids < 2^31 by construction.
                    rows.push(s as i32, k, &slot.c.candle());
                }
            }
        }
        Ok(rows)
    }

    /// Ids (ascending) whose last quote changed since the previous call.
    pub fn take_dirty_quotes(&mut self) -> Vec<i32> {
        self.dirty_quotes.sort_unstable();
        let ids = self.dirty_quotes.iter().map(|&s| s as i32).collect();
        for &s in &self.dirty_quotes {
            self.syms[s].quote_dirty = false;
        }
        self.dirty_quotes.clear();
        ids
    }

    /// Last quote and rolling-window statistics at `now_ms` for each id.
    pub fn quotes<S: Copy + Into<i64>>(
        &mut self,
        symbol_ids: &[S],
        now_ms: i64,
    ) -> Result<QuoteRows, CoreError> {
        for &id in symbol_ids {
            self.symbol_index("symbol_ids", id.into())?;
        }
        let nk = self.intervals.len();
        let (lo, hi) = window_bounds(now_ms, self.intervals[0], self.window_ms);
        let mut rows = QuoteRows::with_capacity(symbol_ids.len());
        for &id in symbol_ids {
            let s = id.into() as usize;
            let st = &self.syms[s];
            if !st.has_price {
                rows.push_missing();
                continue;
            }
            let mut stats = self.rings[s].window(lo, hi);
            let current = &self.slots[s * nk];
            if current.live && (lo..=hi).contains(&current.c.open_ms()) {
                stats.add(&current.c.bucket());
            }
            rows.push(st.last_price, st.last_ms, &stats);
        }
        Ok(rows)
    }

    /// Loads persisted candles of one symbol and interval, ascending by open.
    /// The last becomes the current candle; finest-interval candles fill the
    /// rolling window; the watermark moves past them. Must come before the
    /// symbol's first tick; later calls for the same slot continue after the
    /// last restored candle. Marks nothing dirty.
    pub fn restore_candles(
        &mut self,
        symbol_id: i64,
        interval_idx: i64,
        candles: CandleColumns<'_>,
    ) -> Result<(), CoreError> {
        let s = self.symbol_index("symbol_id", symbol_id)?;
        let nk = self.intervals.len();
        if interval_idx < 0 || interval_idx as u64 >= nk as u64 {
            return Err(invalid(
                "interval_idx",
                format!(
                    "{interval_idx} is not an index into intervals_ms (0..{})",
                    nk - 1
                ),
            ));
        }
        let k = interval_idx as usize;
        candles.check_lengths()?;
        if self.syms[s].ticked {
            return Err(invalid(
                "symbol_id",
                format!("symbol {s} has already received ticks; restore candles before ingesting"),
            ));
        }
        let w = self.intervals[k];
        let idx = s * nk + k;
        let mut prev = if self.slots[idx].live {
            Some(self.slots[idx].c.open_ms())
        } else {
            None
        };
        for i in 0..candles.len() {
            let c = candles.get(i);
            validate_candle(i, &c, w, prev)?;
            prev = Some(c.open_ms);
        }
        let Some(last_i) = candles.len().checked_sub(1) else {
            return Ok(());
        };
        let last = candles.get(last_i);
        if k == 0 {
            // The ring ends up as if the candles had been ingested: the
            // replaced current one, then all but the last, newest kept.
            let ring = &mut self.rings[s];
            let slot = &self.slots[idx];
            if slot.live {
                ring.push(slot.c.bucket(), self.ring_keep);
            }
            for i in last_i.saturating_sub(self.ring_keep)..last_i {
                ring.push(
                    CandleState::restored(&candles.get(i)).bucket(),
                    self.ring_keep,
                );
            }
        }
        let slot = &mut self.slots[idx];
        slot.c = CandleState::restored(&last);
        slot.live = true;
        let st = &mut self.syms[s];
        let past = if last.closed {
            last.open_ms.saturating_add(w)
        } else {
            last.open_ms
        };
        st.watermark = st.watermark.max(past);
        self.refresh_span(s);
        Ok(())
    }

    /// Sets the last quote of a symbol (from persistence); not marked dirty.
    pub fn set_last(&mut self, symbol_id: i64, price: f64, time_ms: i64) -> Result<(), CoreError> {
        let s = self.symbol_index("symbol_id", symbol_id)?;
        if !(price.is_finite() && price > 0.0) {
            return Err(invalid(
                "price",
                format!("{price} is not a finite positive price"),
            ));
        }
        let st = &mut self.syms[s];
        st.last_price = price;
        st.last_ms = time_ms;
        st.has_price = true;
        Ok(())
    }
}

fn validate_candle(i: usize, c: &Candle, width: i64, prev: Option<i64>) -> Result<(), CoreError> {
    if c.open_ms.rem_euclid(width) != 0 {
        return Err(invalid(
            "open_ms",
            format!(
                "row {i}: {} is not aligned to the interval ({width} ms); opens are epoch multiples of the width",
                c.open_ms
            ),
        ));
    }
    if let Some(p) = prev {
        if c.open_ms <= p {
            return Err(invalid(
                "open_ms",
                format!(
                    "row {i}: {} is not after the previous candle's open {p}; restore candles in ascending order, each once",
                    c.open_ms
                ),
            ));
        }
    }
    let prices = [
        ("open", c.open),
        ("high", c.high),
        ("low", c.low),
        ("close", c.close),
    ];
    for (name, px) in prices {
        if !(px.is_finite() && px > 0.0) {
            return Err(invalid(
                name,
                format!("row {i}: {px} is not a finite positive price"),
            ));
        }
    }
    for (name, x) in [("volume", c.volume), ("quote_volume", c.quote_volume)] {
        if !(x.is_finite() && x >= 0.0) {
            return Err(invalid(
                name,
                format!("row {i}: {x} is not a finite non-negative number"),
            ));
        }
    }
    if c.trades < 0 {
        return Err(invalid(
            "trades",
            format!("row {i}: {} is negative", c.trades),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
