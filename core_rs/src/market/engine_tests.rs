//! Hand-worked examples for `CandleEngine`.

use std::collections::BTreeMap;

use super::*;

const M: i64 = 60_000;

fn engine(intervals: &[i64], window_ms: i64, n: usize) -> CandleEngine {
    CandleEngine::new(intervals, window_ms, n).unwrap()
}

/// (symbol, time, price, volume)
type Tick = (i32, i64, f64, f64);

fn ingest(e: &mut CandleEngine, ticks: &[Tick], now_ms: i64) -> Vec<u8> {
    let ids: Vec<i32> = ticks.iter().map(|t| t.0).collect();
    let times: Vec<i64> = ticks.iter().map(|t| t.1).collect();
    let prices: Vec<f64> = ticks.iter().map(|t| t.2).collect();
    let volumes: Vec<f64> = ticks.iter().map(|t| t.3).collect();
    let mut codes = vec![u8::MAX; ticks.len()];
    e.ingest(&ids, &times, &prices, &volumes, now_ms, 5_000, &mut codes)
        .unwrap();
    codes
}

fn rows(r: &CandleRows) -> Vec<(i32, u8, Candle)> {
    (0..r.len())
        .map(|i| (r.symbol_id[i], r.interval_idx[i], r.candle(i)))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn candle(
    open_ms: i64,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: f64,
    qv: f64,
    n: i64,
    closed: bool,
) -> Candle {
    Candle {
        open_ms,
        open: o,
        high: h,
        low: l,
        close: c,
        volume: v,
        quote_volume: qv,
        trades: n,
        closed,
    }
}

#[test]
fn two_minutes_of_ticks_give_exact_1m_and_5m_candles() {
    let mut e = engine(&[M, 5 * M], 60 * M, 1);
    let codes = ingest(
        &mut e,
        &[
            (0, 10_000, 100.0, 1.0),
            (0, 30_000, 102.0, 2.0),
            (0, 50_000, 99.0, 1.0),
            (0, 65_000, 101.0, 3.0),
            (0, 100_000, 103.0, 1.0),
        ],
        100_000,
    );
    assert_eq!(codes, vec![ACCEPTED; 5]);
    let out = rows(&e.take_dirty_candles());
    assert_eq!(
        out,
        vec![
            (
                0,
                0,
                candle(0, 100.0, 102.0, 99.0, 99.0, 4.0, 403.0, 3, true)
            ),
            (
                0,
                0,
                candle(M, 101.0, 103.0, 101.0, 103.0, 4.0, 406.0, 2, false)
            ),
            (
                0,
                1,
                candle(0, 100.0, 103.0, 99.0, 103.0, 8.0, 809.0, 5, false)
            ),
        ]
    );
    // Taken once: nothing new since.
    assert!(e.take_dirty_candles().is_empty());
    assert_eq!(e.take_dirty_quotes(), vec![0]);
    assert!(e.take_dirty_quotes().is_empty());
}

#[test]
fn dirty_quotes_follow_changes_of_last_price_or_time() {
    let mut e = engine(&[M], 60 * M, 3);
    ingest(
        &mut e,
        &[(2, 1_000, 10.0, 1.0), (0, 1_000, 10.0, 1.0)],
        1_000,
    );
    assert_eq!(e.take_dirty_quotes(), vec![0, 2]);
    // Same price and time again, or an older tick: the last quote is unchanged.
    ingest(&mut e, &[(0, 1_000, 10.0, 5.0), (2, 500, 11.0, 1.0)], 1_000);
    assert!(e.take_dirty_quotes().is_empty());
    // Same time, new price (the later arrival wins), or a later time.
    ingest(
        &mut e,
        &[(0, 1_000, 10.5, 1.0), (2, 2_000, 10.0, 1.0)],
        2_000,
    );
    assert_eq!(e.take_dirty_quotes(), vec![0, 2]);
    let q = e.quotes(&[0i32, 2], 2_000).unwrap();
    assert_eq!(q.price, vec![10.5, 10.0]);
    assert_eq!(q.time_ms, vec![1_000, 2_000]);
}

#[test]
fn out_of_order_tick_inside_forming_candle() {
    let mut e = engine(&[M, 5 * M], 60 * M, 1);
    let codes = ingest(
        &mut e,
        &[
            (0, 30_000, 102.0, 2.0),
            (0, 10_000, 100.0, 1.0),
            (0, 50_000, 99.0, 1.0),
            (0, 20_000, 98.0, 1.0),
        ],
        60_000,
    );
    assert_eq!(codes, vec![ACCEPTED; 4]);
    let out = rows(&e.take_dirty_candles());
    let want = candle(
        0,
        100.0,
        102.0,
        98.0,
        99.0,
        5.0,
        100.0 + 204.0 + 99.0 + 98.0,
        4,
        false,
    );
    assert_eq!(out, vec![(0, 0, want), (0, 1, want)]);
    // The last quote is the greatest time, not the last arrival.
    let q = e.quotes(&[0i32], 60_000).unwrap();
    assert_eq!((q.price[0], q.time_ms[0]), (99.0, 50_000));
}

#[test]
fn each_rejection_code_in_check_order() {
    let mut e = engine(&[M, 5 * M], 60 * M, 2);
    assert_eq!(ingest(&mut e, &[(0, 65_000, 10.0, 1.0)], 70_000), [0]);
    e.take_dirty_candles();
    e.take_dirty_quotes();
    let now = 70_000;
    let nan = f64::NAN;
    let cases: &[(Tick, u8)] = &[
        ((2, 65_000, 10.0, 1.0), REJECT_UNKNOWN_SYMBOL),
        ((-1, 65_000, 10.0, 1.0), REJECT_UNKNOWN_SYMBOL),
        ((2, 65_000, nan, -1.0), REJECT_UNKNOWN_SYMBOL),
        ((0, 65_000, nan, 1.0), REJECT_NON_FINITE_PRICE),
        ((0, 65_000, f64::INFINITY, -1.0), REJECT_NON_FINITE_PRICE),
        ((0, 65_000, f64::NEG_INFINITY, 1.0), REJECT_NON_FINITE_PRICE),
        ((0, 65_000, 0.0, 1.0), REJECT_NON_POSITIVE_PRICE),
        ((0, 65_000, -3.0, -1.0), REJECT_NON_POSITIVE_PRICE),
        ((0, 65_000, 10.0, -1.0), REJECT_INVALID_VOLUME),
        ((0, 65_000, 10.0, nan), REJECT_INVALID_VOLUME),
        ((0, 999_999, 10.0, f64::INFINITY), REJECT_INVALID_VOLUME),
        ((0, now + 5_001, 10.0, 1.0), REJECT_TIME_IN_FUTURE),
        ((0, 59_999, 10.0, 1.0), REJECT_TIME_BEFORE_CLOSED_CANDLE),
        ((1, 59_999, 10.0, 1.0), ACCEPTED), // symbol 1 has no watermark yet
        ((0, now + 5_000, 10.0, 0.0), ACCEPTED),
    ];
    for &(tick, want) in cases {
        assert_eq!(ingest(&mut e, &[tick], now), [want], "{tick:?}");
    }
}

#[test]
fn rejected_ticks_change_nothing() {
    let good: Vec<Tick> = vec![(0, 10_000, 10.0, 1.0), (1, 20_000, 20.0, 2.0)];
    let bad: Vec<Tick> = vec![
        (5, 30_000, 10.0, 1.0),
        (0, 30_000, -1.0, 1.0),
        (0, 30_000, 10.0, -1.0),
        (1, 900_000, 10.0, 1.0),
    ];
    let mut a = engine(&[M, 5 * M], 60 * M, 2);
    let mut b = engine(&[M, 5 * M], 60 * M, 2);
    ingest(&mut a, &good, 30_000);
    let mixed = [bad[0], good[0], bad[1], bad[2], good[1], bad[3]];
    let codes = ingest(&mut b, &mixed, 30_000);
    assert_eq!(codes, [1, 0, 2, 4, 0, 5]);
    assert_eq!(a.take_dirty_candles(), b.take_dirty_candles());
    assert_eq!(a.take_dirty_quotes(), b.take_dirty_quotes());
    assert_eq!(
        a.quotes(&[0i32, 1], 30_000).unwrap(),
        b.quotes(&[0i32, 1], 30_000).unwrap()
    );
    // A batch of rejects alone: no dirty output at all.
    ingest(&mut b, &bad, 30_000);
    assert!(b.take_dirty_candles().is_empty());
    assert!(b.take_dirty_quotes().is_empty());
}

#[test]
fn close_expired_closes_and_moves_the_watermark() {
    let mut e = engine(&[M, 5 * M], 60 * M, 1);
    ingest(&mut e, &[(0, 10_000, 10.0, 1.0)], 10_000);
    e.take_dirty_candles();
    assert_eq!(e.close_expired(59_999), 0);
    assert!(e.take_dirty_candles().is_empty());
    assert_eq!(e.close_expired(60_000), 1);
    let out = rows(&e.take_dirty_candles());
    assert_eq!(
        out,
        vec![(0, 0, candle(0, 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1, true))]
    );
    assert_eq!(e.close_expired(60_000), 0, "already closed");
    // The closed minute takes no more ticks; the next one opens a candle in
    // the same 5m bucket.
    assert_eq!(ingest(&mut e, &[(0, 30_000, 11.0, 1.0)], 70_000), [6]);
    assert_eq!(ingest(&mut e, &[(0, 70_000, 12.0, 1.0)], 70_000), [0]);
    let out = rows(&e.take_dirty_candles());
    assert_eq!(
        out,
        vec![
            (0, 0, candle(M, 12.0, 12.0, 12.0, 12.0, 1.0, 12.0, 1, false)),
            (0, 1, candle(0, 10.0, 12.0, 10.0, 12.0, 2.0, 22.0, 2, false)),
        ]
    );
    // Closing the 5m candle too moves the watermark to its end.
    assert_eq!(e.close_expired(5 * M), 2);
    assert_eq!(ingest(&mut e, &[(0, 4 * M, 12.0, 1.0)], 5 * M), [6]);
    let out = rows(&e.take_dirty_candles());
    assert!(out.iter().all(|r| r.2.closed));
    assert_eq!(out.len(), 2);
}

#[test]
fn candle_closed_by_cutoff_and_replaced_before_take_is_returned_once() {
    let mut e = engine(&[M], 60 * M, 1);
    ingest(&mut e, &[(0, 10_000, 10.0, 1.0)], 10_000);
    e.take_dirty_candles();
    e.close_expired(M);
    ingest(&mut e, &[(0, 3 * M, 11.0, 1.0)], 3 * M);
    let out = rows(&e.take_dirty_candles());
    assert_eq!(
        out,
        vec![
            (0, 0, candle(0, 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1, true)),
            (
                0,
                0,
                candle(3 * M, 11.0, 11.0, 11.0, 11.0, 1.0, 11.0, 1, false)
            ),
        ]
    );
    // Taken closed, then replaced: not returned again.
    e.close_expired(4 * M);
    e.take_dirty_candles();
    ingest(&mut e, &[(0, 5 * M, 12.0, 1.0)], 5 * M);
    assert_eq!(rows(&e.take_dirty_candles()).len(), 1);
}

#[test]
fn gaps_produce_no_candles_and_time_before_epoch_aligns() {
    let mut e = engine(&[M, 5 * M], 60 * M, 1);
    ingest(
        &mut e,
        &[
            (0, -1, 5.0, 1.0),
            (0, 0, 6.0, 1.0),
            (0, 30 * M + 1, 7.0, 1.0),
        ],
        31 * M,
    );
    let opens: Vec<(u8, i64, bool)> = rows(&e.take_dirty_candles())
        .iter()
        .map(|r| (r.1, r.2.open_ms, r.2.closed))
        .collect();
    assert_eq!(
        opens,
        vec![
            (0, -M, true),
            (0, 0, true),
            (0, 30 * M, false),
            (1, -5 * M, true),
            (1, 0, true),
            (1, 30 * M, false),
        ]
    );
}

#[test]
fn rolling_stats_over_the_window_edge() {
    // 3-minute window over 1m buckets.
    let mut e = engine(&[M, 5 * M], 3 * M, 2);
    ingest(
        &mut e,
        &[
            (0, 5_000, 10.0, 1.0),
            (0, M + 5_000, 20.0, 2.0),
            (0, 2 * M + 5_000, 30.0, 4.0),
            (0, 2 * M + 6_000, 25.0, 1.0),
        ],
        2 * M + 6_000,
    );
    let q = e.quotes(&[0i32, 1], 2 * M + 59_999).unwrap();
    assert_eq!(q.price[0], 25.0);
    assert_eq!(q.volume_24h[0], 8.0);
    assert_eq!(q.quote_volume_24h[0], 10.0 + 40.0 + 120.0 + 25.0);
    assert_eq!(
        (q.open_24h[0], q.high_24h[0], q.low_24h[0]),
        (10.0, 30.0, 10.0)
    );
    assert_eq!(q.change_24h_pct[0], 150.0);
    assert!(q.has_price[0]);
    // Never ticked: no price, NaN numbers.
    assert!(!q.has_price[1]);
    assert!(q.price[1].is_nan() && q.volume_24h[1].is_nan() && q.change_24h_pct[1].is_nan());

    // One minute later the first bucket has left the window.
    let q = e.quotes(&[0i32], 3 * M).unwrap();
    assert_eq!(q.volume_24h[0], 7.0);
    assert_eq!((q.open_24h[0], q.low_24h[0]), (20.0, 20.0));
    assert_eq!(q.change_24h_pct[0], 25.0);

    // Long after: empty window reads as no movement at the last price.
    let q = e.quotes(&[0i32], 10 * M).unwrap();
    assert_eq!((q.volume_24h[0], q.quote_volume_24h[0]), (0.0, 0.0));
    assert_eq!(
        (
            q.open_24h[0],
            q.high_24h[0],
            q.low_24h[0],
            q.change_24h_pct[0]
        ),
        (25.0, 25.0, 25.0, 0.0)
    );

    // Ring and current bucket together after more minutes pass.
    ingest(&mut e, &[(0, 4 * M, 40.0, 1.0)], 4 * M);
    let q = e.quotes(&[0i32], 4 * M).unwrap();
    assert_eq!(q.volume_24h[0], 6.0); // minute 2 (4 + 1) and minute 4 (1)
    assert_eq!((q.open_24h[0], q.high_24h[0]), (30.0, 40.0));
    assert!(e.quotes(&[2i32], 0).is_err());
}

/// Latest state per (symbol, interval, open) across takes.
fn accumulate(acc: &mut BTreeMap<(i32, u8, i64), Candle>, r: &CandleRows) {
    for (s, k, c) in rows(r) {
        acc.insert((s, k, c.open_ms), c);
    }
}

fn restore_all(e: &mut CandleEngine, acc: &BTreeMap<(i32, u8, i64), Candle>) {
    let mut by_slot: BTreeMap<(i32, u8), Vec<Candle>> = BTreeMap::new();
    for (&(s, k, _), c) in acc {
        by_slot.entry((s, k)).or_default().push(*c);
    }
    for ((s, k), cs) in by_slot {
        let col = |f: fn(&Candle) -> f64| cs.iter().map(f).collect::<Vec<f64>>();
        let open_ms: Vec<i64> = cs.iter().map(|c| c.open_ms).collect();
        let trades: Vec<i64> = cs.iter().map(|c| c.trades).collect();
        let closed: Vec<bool> = cs.iter().map(|c| c.closed).collect();
        let (o, h, l, c, v, qv) = (
            col(|c| c.open),
            col(|c| c.high),
            col(|c| c.low),
            col(|c| c.close),
            col(|c| c.volume),
            col(|c| c.quote_volume),
        );
        e.restore_candles(
            s.into(),
            k.into(),
            CandleColumns {
                open_ms: &open_ms,
                open: &o,
                high: &h,
                low: &l,
                close: &c,
                volume: &v,
                quote_volume: &qv,
                trades: &trades,
                closed: &closed,
            },
        )
        .unwrap();
    }
}

/// A deterministic pseudo-random tick stream, ascending in time, with a gap.
fn stream(n: usize, n_symbols: i32, start: i64) -> Vec<Tick> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = start;
    (0..n)
        .map(|i| {
            t += (next() % 20_000) as i64;
            if i == n / 3 {
                t += 5 * 3_600_000;
            }
            let s = (next() % n_symbols as u64) as i32;
            let p = 100.0 + (next() % 1000) as f64 / 10.0;
            let v = (next() % 100) as f64 / 4.0;
            (s, t, p, v)
        })
        .collect()
}

#[test]
fn restore_then_continue_matches_an_uninterrupted_engine() {
    let intervals = [M, 5 * M, 60 * M];
    let ticks = stream(3_000, 3, 1_700_000_000_000);
    let (first, second) = ticks.split_at(1_700);
    let mut a = engine(&intervals, 120 * M, 3);
    let mut acc = BTreeMap::new();
    for chunk in first.chunks(97) {
        ingest(&mut a, chunk, chunk.last().unwrap().1);
        accumulate(&mut acc, &a.take_dirty_candles());
    }
    let mut b = engine(&intervals, 120 * M, 3);
    restore_all(&mut b, &acc);
    assert!(
        b.take_dirty_candles().is_empty(),
        "restore marks nothing dirty"
    );
    let now = first.last().unwrap().1;
    let last = a.quotes(&[0i32, 1, 2], now).unwrap();
    for s in 0..3 {
        b.set_last(s as i64, last.price[s], last.time_ms[s])
            .unwrap();
    }
    assert!(
        b.take_dirty_quotes().is_empty(),
        "set_last marks nothing dirty"
    );
    a.take_dirty_quotes();
    assert_eq!(b.quotes(&[0i32, 1, 2], now).unwrap(), last);

    for chunk in second.chunks(89) {
        let now = chunk.last().unwrap().1;
        assert_eq!(ingest(&mut a, chunk, now), ingest(&mut b, chunk, now));
        assert_eq!(a.take_dirty_candles(), b.take_dirty_candles());
        assert_eq!(a.take_dirty_quotes(), b.take_dirty_quotes());
        assert_eq!(
            a.quotes(&[0i32, 1, 2], now).unwrap(),
            b.quotes(&[0i32, 1, 2], now).unwrap()
        );
    }
    assert_eq!(a.close_expired(i64::MAX), b.close_expired(i64::MAX));
    assert_eq!(a.take_dirty_candles(), b.take_dirty_candles());
}

#[test]
fn restored_closed_candle_sets_the_watermark_at_its_end() {
    let mut e = engine(&[M, 5 * M], 60 * M, 1);
    let one = |open_ms: i64, closed: bool| ([open_ms], [10.0], [1.0], [5i64], [closed]);
    let (open_ms, px, vol, trades, closed) = one(2 * M, true);
    let cols = CandleColumns {
        open_ms: &open_ms,
        open: &px,
        high: &px,
        low: &px,
        close: &px,
        volume: &vol,
        quote_volume: &px,
        trades: &trades,
        closed: &closed,
    };
    e.restore_candles(0, 0, cols).unwrap();
    // Continuation must ascend.
    assert!(e.restore_candles(0, 0, cols).is_err());
    assert_eq!(ingest(&mut e, &[(0, 2 * M + 5, 11.0, 1.0)], 3 * M), [6]);
    assert_eq!(ingest(&mut e, &[(0, 3 * M, 11.0, 1.0)], 3 * M), [0]);
    let out = rows(&e.take_dirty_candles());
    assert_eq!(
        out,
        vec![
            (
                0,
                0,
                candle(3 * M, 11.0, 11.0, 11.0, 11.0, 1.0, 11.0, 1, false)
            ),
            (0, 1, candle(0, 11.0, 11.0, 11.0, 11.0, 1.0, 11.0, 1, false)),
        ],
        "the restored candle was closed and already persisted"
    );
    // After ticks, restoring is refused.
    assert!(e.restore_candles(0, 1, cols).is_err());
}

#[test]
fn restored_forming_candle_continues() {
    let mut e = engine(&[M], 60 * M, 1);
    let cols = CandleColumns {
        open_ms: &[2 * M],
        open: &[10.0],
        high: &[12.0],
        low: &[9.0],
        close: &[11.0],
        volume: &[3.0],
        quote_volume: &[31.0],
        trades: &[3],
        closed: &[false],
    };
    e.restore_candles(0, 0, cols).unwrap();
    assert_eq!(ingest(&mut e, &[(0, 2 * M - 1, 8.0, 1.0)], 3 * M), [6]);
    assert_eq!(ingest(&mut e, &[(0, 2 * M + 1, 8.0, 1.0)], 3 * M), [0]);
    let out = rows(&e.take_dirty_candles());
    assert_eq!(
        out,
        vec![(
            0,
            0,
            candle(2 * M, 10.0, 12.0, 8.0, 8.0, 4.0, 39.0, 4, false)
        )]
    );
}

#[test]
fn bad_arguments_are_errors() {
    assert!(CandleEngine::new(&[], M, 0).is_err());
    assert!(CandleEngine::new(&[M, 90_000], M, 0).is_err());
    assert!(CandleEngine::new(&[M, 5 * M, 5 * M], M, 0).is_err());
    assert!(CandleEngine::new(&[0], M, 0).is_err());
    assert!(CandleEngine::new(&[M], 90_000, 0).is_err());
    // A coarse interval listed first makes the finer ones non-multiples.
    assert!(CandleEngine::new(&[5 * M, M], 5 * M, 0).is_err());
    let mut e = engine(&[M], M, 1);
    let mut codes = [0u8; 2];
    let err = e
        .ingest(&[0i32, 0], &[0], &[1.0, 1.0], &[1.0, 1.0], 0, 0, &mut codes)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "times_ms must have the same length as symbol_ids (1 != 2)"
    );
    let unaligned = CandleColumns {
        open_ms: &[M + 1],
        open: &[1.0],
        high: &[1.0],
        low: &[1.0],
        close: &[1.0],
        volume: &[1.0],
        quote_volume: &[1.0],
        trades: &[1],
        closed: &[true],
    };
    assert!(e.restore_candles(0, 0, unaligned).is_err());
    assert!(e.restore_candles(0, 1, unaligned).is_err());
    assert!(e.restore_candles(1, 0, unaligned).is_err());
    assert!(e.set_last(0, f64::NAN, 0).is_err());
    assert!(e.set_last(-1, 1.0, 0).is_err());
    assert_eq!(e.add_symbols(2).unwrap(), 1);
    assert_eq!(e.n_symbols(), 3);
    assert!(e.add_symbols(usize::MAX).is_err());
}

#[test]
fn int64_ids_are_accepted() {
    let mut e = engine(&[M], M, 2);
    let mut codes = [9u8; 3];
    e.ingest(
        &[1i64, 1 << 40, -5],
        &[0, 0, 0],
        &[1.0; 3],
        &[1.0; 3],
        0,
        0,
        &mut codes,
    )
    .unwrap();
    assert_eq!(codes, [0, 1, 1]);
}

#[test]
fn current_candles_reads_forming_or_last_closed_without_taking() {
    let mut e = engine(&[M, 5 * M], 60 * M, 3);
    ingest(
        &mut e,
        &[
            (0, 10_000, 100.0, 1.0),
            (0, 70_000, 104.0, 2.0),
            (2, 20_000, 50.0, 3.0),
        ],
        70_000,
    );
    // Symbol 1 never ticked: no candles. Order follows the arguments.
    let out = rows(&e.current_candles(&[2i32, 1, 0], &[1, 0]).unwrap());
    assert_eq!(
        out,
        vec![
            (
                2,
                1,
                candle(0, 50.0, 50.0, 50.0, 50.0, 3.0, 150.0, 1, false)
            ),
            (
                2,
                0,
                candle(0, 50.0, 50.0, 50.0, 50.0, 3.0, 150.0, 1, false)
            ),
            (
                0,
                1,
                candle(0, 100.0, 104.0, 100.0, 104.0, 3.0, 308.0, 2, false)
            ),
            (
                0,
                0,
                candle(M, 104.0, 104.0, 104.0, 104.0, 2.0, 208.0, 1, false)
            ),
        ]
    );
    // Reading took nothing: the closed 1m candle of symbol 0 is still owed.
    let taken = rows(&e.take_dirty_candles());
    assert_eq!(taken.len(), 5);
    assert_eq!(
        taken[0],
        (
            0,
            0,
            candle(0, 100.0, 100.0, 100.0, 100.0, 1.0, 100.0, 1, true)
        )
    );
    // Once closed by the sweep, the last closed candle is the current one.
    e.close_expired(5 * M);
    let out = rows(&e.current_candles(&[2i32], &[0]).unwrap());
    assert_eq!(
        out,
        vec![(2, 0, candle(0, 50.0, 50.0, 50.0, 50.0, 3.0, 150.0, 1, true))]
    );
    assert!(e.current_candles(&[3i32], &[0]).is_err());
    assert!(e.current_candles(&[0i32], &[2]).is_err());
}
