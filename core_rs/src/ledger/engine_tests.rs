//! Hand-worked ledgers: every expected number below is worked out in the
//! comments, not copied from the engine.

use super::*;
use crate::ledger::calendar::MS_PER_DAY;
use crate::ledger::fixed::{format, parse};
use crate::ledger::preview::preview_disposal;
use crate::ledger::{Ledger, Selection};

const ASSET: u32 = 1;
const W1: u32 = 1;

/// A leg at `day` (+ `ms`) in wallet `W1`; amount "" = unknown.
fn at(tx: i64, kind: u8, day: i64, qty: &str, amount: &str) -> Leg {
    Leg {
        time_ms: day * MS_PER_DAY,
        tx,
        leg: 0,
        kind,
        asset: ASSET,
        wallet: W1,
        to_wallet: 0,
        qty: parse(qty).unwrap(),
        amount: (!amount.is_empty()).then(|| parse(amount).unwrap()),
        selections: None,
    }
}

fn buy(tx: i64, day: i64, qty: &str, cost: &str) -> Leg {
    at(tx, ACQUIRE, day, qty, cost)
}

fn sell(tx: i64, day: i64, qty: &str, proceeds: &str) -> Leg {
    at(tx, DISPOSE, day, qty, proceeds)
}

fn moved(tx: i64, day: i64, qty: &str, from: u32, to: u32) -> Leg {
    Leg {
        wallet: from,
        to_wallet: to,
        ..at(tx, MOVE, day, qty, "")
    }
}

fn in_wallet(leg: Leg, wallet: u32) -> Leg {
    Leg { wallet, ..leg }
}

fn picks(leg: Leg, sel: &[(i64, &str)]) -> Leg {
    let s: Vec<Selection> = sel
        .iter()
        .map(|&(lot_tx, q)| Selection {
            lot_tx,
            lot_leg: 0,
            qty: parse(q).unwrap(),
        })
        .collect();
    Leg {
        selections: Some(s.into_boxed_slice()),
        ..leg
    }
}

fn run(legs: Vec<Leg>, method: Method) -> Result<ReplayResult, LedgerError> {
    run_with(legs, &[(i64::from(i32::MIN), method as i64)], false, false)
}

fn run_with(
    legs: Vec<Leg>,
    methods: &[(i64, i64)],
    per_wallet: bool,
    allow_negative: bool,
) -> Result<ReplayResult, LedgerError> {
    let mut l = Ledger::new();
    l.append(legs).unwrap();
    let opts = ReplayOptions::new(methods, per_wallet, allow_negative)?;
    replay(&mut l, &opts)
}

/// (tx, lot_tx, qty, basis, proceeds, gain, long_term) per match row;
/// unknown amounts as "?".
type Row = (i64, i64, String, String, String, String, bool);

fn rows(r: &ReplayResult) -> Vec<Row> {
    let m = &r.matches;
    m.rows
        .iter()
        .map(|r| {
            let known = |ok: bool, v: i128| if ok { format(v) } else { "?".into() };
            let gain = r.gain().unwrap().map_or("?".into(), format);
            (
                r.tx,
                r.lot_tx,
                format(r.qty),
                known(r.basis_known, r.basis),
                known(r.proceeds_known, r.proceeds),
                gain,
                r.long_term,
            )
        })
        .collect()
}

fn row(tx: i64, lot: i64, q: &str, basis: &str, proceeds: &str, gain: &str, long: bool) -> Row {
    (
        tx,
        lot,
        q.into(),
        basis.into(),
        proceeds.into(),
        gain.into(),
        long,
    )
}

/// (lot_tx, wallet, qty, cost, original_qty) per open lot.
fn open(r: &ReplayResult) -> Vec<(i64, u32, String, String, String)> {
    let l = &r.lots;
    (0..l.len())
        .map(|i| {
            (
                l.lot_tx[i],
                l.wallet[i],
                format(l.qty[i]),
                format(l.cost[i]),
                format(l.original_qty[i]),
            )
        })
        .collect()
}

fn lot(
    tx: i64,
    wallet: u32,
    q: &str,
    cost: &str,
    orig: &str,
) -> (i64, u32, String, String, String) {
    (tx, wallet, q.into(), cost.into(), orig.into())
}

/// Buy 1 for 100 (day 0), 2 for 300 (day 10); sell 1.5 for 300 (day 20)
/// and 1.5 for 120 (day 400).
fn two_buys_two_sells() -> Vec<Leg> {
    vec![
        buy(1, 0, "1", "100"),
        buy(2, 10, "2", "300"),
        sell(3, 20, "1.5", "300"),
        sell(4, 400, "1.5", "120"),
    ]
}

#[test]
fn fifo_hand_worked() {
    let r = run(two_buys_two_sells(), Method::Fifo).unwrap();
    // tx3: all of lot 1 (basis 100) and 0.5 of lot 2 (300 x 0.5/2 = 75);
    // proceeds 300 split by qty: 300 x 1/1.5 = 200, the rest 100.
    // tx4: the 1.5 left of lot 2 (cost 225) for 120: gain -105, held
    // 400 - 10 = 390 days: long.
    assert_eq!(
        rows(&r),
        vec![
            row(3, 1, "1", "100", "200", "100", false),
            row(3, 2, "0.5", "75", "100", "25", false),
            row(4, 2, "1.5", "225", "120", "-105", true),
        ]
    );
    assert!(open(&r).is_empty());
    assert!(r.matches.col(|m| m.method).iter().all(|&m| m == 1));
}

#[test]
fn lifo_hand_worked() {
    let r = run(two_buys_two_sells(), Method::Lifo).unwrap();
    // tx3: 1.5 of lot 2: 300 x 1.5/2 = 225, one piece, all 300 proceeds.
    // tx4: the 0.5 left of lot 2 (cost 75), then lot 1 (100); proceeds 120
    // x 0.5/1.5 = 40 and the rest 80. Both held more than 365 days.
    assert_eq!(
        rows(&r),
        vec![
            row(3, 2, "1.5", "225", "300", "75", false),
            row(4, 2, "0.5", "75", "40", "-35", true),
            row(4, 1, "1", "100", "80", "-20", true),
        ]
    );
}

/// Lots at unit costs 100 (tx1), 150 (tx2, 2 units), 120 (tx3); sell 3
/// for 600.
fn three_lots() -> Vec<Leg> {
    vec![
        buy(1, 0, "1", "100"),
        buy(2, 10, "2", "300"),
        buy(3, 15, "1", "120"),
        sell(4, 20, "3", "600"),
    ]
}

#[test]
fn hifo_hand_worked() {
    let r = run(three_lots(), Method::Hifo).unwrap();
    // Highest unit cost first: lot 2 (150) then lot 3 (120); proceeds
    // 600 x 2/3 = 400 and the rest 200. Lot 1 stays open.
    assert_eq!(
        rows(&r),
        vec![
            row(4, 2, "2", "300", "400", "100", false),
            row(4, 3, "1", "120", "200", "80", false),
        ]
    );
    assert_eq!(open(&r), vec![lot(1, 0, "1", "100", "1")]);
    // The same ledger FIFO takes lots 1, 2; LIFO lots 3, 2.
    let f = run(three_lots(), Method::Fifo).unwrap();
    assert_eq!(f.matches.col(|m| m.lot_tx), vec![1, 2]);
    assert_eq!(open(&f), vec![lot(3, 0, "1", "120", "1")]);
    let l = run(three_lots(), Method::Lifo).unwrap();
    assert_eq!(l.matches.col(|m| m.lot_tx), vec![3, 2]);
}

#[test]
fn average_cost_hand_worked() {
    let legs = vec![
        buy(1, 0, "1", "100"),
        buy(2, 10, "2", "300"),
        // Pool 3 for 400. Basis 400 x 1.5/3 = 200, pieces FIFO: lot 1 (1)
        // gets 200 x 1/1.5 = 133.333333333333333333 (..33|33 rounds down),
        // lot 2 (0.5) the rest 66.666666666666666667.
        sell(3, 20, "1.5", "300"),
        // Pool 1.5 for 200, plus 0.5 for 200: 2 for 400, average 200.
        buy(4, 30, "0.5", "200"),
        // Basis 400 x 1/2 = 200, taken from lot 2 (1.5 left) for dates.
        sell(5, 40, "1", "250"),
    ];
    let r = run(legs, Method::AverageCost).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row(
                3,
                1,
                "1",
                "133.333333333333333333",
                "200",
                "66.666666666666666667",
                false
            ),
            row(
                3,
                2,
                "0.5",
                "66.666666666666666667",
                "100",
                "33.333333333333333333",
                false
            ),
            row(5, 2, "1", "200", "250", "50", false),
        ]
    );
    // Left: pool 1 for 200; each lot its share by qty: 0.5 -> 100 each.
    assert_eq!(
        open(&r),
        vec![lot(2, 0, "0.5", "100", "2"), lot(4, 0, "0.5", "100", "0.5")]
    );
    assert!(r.matches.col(|m| m.method).iter().all(|&m| m == 4));
}

#[test]
fn method_changes_at_the_utc_new_year() {
    // 2024-01-10 is day 19732, 2024-02-01 day 19754, 2025-01-01 day 20089.
    let last_ms_of_2024 = 20_089 * MS_PER_DAY - 1;
    let legs = vec![
        buy(1, 19_732, "1", "100"),
        buy(2, 19_754, "1", "200"),
        Leg {
            time_ms: last_ms_of_2024,
            ..sell(3, 0, "0.5", "100")
        },
        sell(4, 20_089, "0.5", "100"),
    ];
    // FIFO until 2024, LIFO from 2025: tx3 takes lot 1 (basis 50), tx4
    // lot 2 (basis 100).
    let r = run_with(legs, &[(2020, 1), (2025, 2)], false, false).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row(3, 1, "0.5", "50", "100", "50", false),
            row(4, 2, "0.5", "100", "100", "0", false),
        ]
    );
    assert_eq!(r.matches.col(|m| m.method), vec![1, 2]);
}

#[test]
fn average_then_fifo_materializes_lot_costs() {
    // Pool 1 for 100 + 1 for 300 = 2 for 400; 2024 AVERAGE sells 0.5:
    // basis 100 (from lot 1 for dates). Pool 1.5 for 300 (average 200).
    // 2025 FIFO: lots take their share: lot 1 (0.5) 100, lot 2 (1) 200;
    // selling 1 on day 20100 takes lot 1's 0.5 (100; held 20100 - 19732 =
    // 368 days: long) and 0.5 of lot 2 (100; 346 days: short).
    let legs = vec![
        buy(1, 19_732, "1", "100"),
        buy(2, 19_754, "1", "300"),
        sell(3, 19_800, "0.5", "150"),
        sell(4, 20_100, "1", "500"),
    ];
    let r = run_with(legs, &[(2024, 4), (2025, 1)], false, false).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row(3, 1, "0.5", "100", "150", "50", false),
            row(4, 1, "0.5", "100", "250", "150", true),
            row(4, 2, "0.5", "100", "250", "150", false),
        ]
    );
    assert_eq!(open(&r), vec![lot(2, 0, "0.5", "100", "1")]);
}

#[test]
fn long_term_needs_more_than_365_days() {
    // Bought 2024-01-01 12:00; 2024 is a leap year, so 2024-12-31 is day
    // 19723 + 365: 365 days held (short); 2025-01-01 is 366 days (long).
    let noon = MS_PER_DAY / 2;
    let legs = vec![
        Leg {
            time_ms: 19_723 * MS_PER_DAY + noon,
            ..buy(1, 0, "2", "100")
        },
        Leg {
            time_ms: 20_088 * MS_PER_DAY + MS_PER_DAY - 1,
            ..sell(2, 0, "1", "60")
        },
        sell(3, 20_089, "1", "70"),
    ];
    let r = run(legs, Method::Fifo).unwrap();
    assert_eq!(r.matches.col(|m| m.long_term), vec![false, true]);
}

#[test]
fn named_lots_in_the_order_given() {
    let base = vec![
        buy(1, 0, "1", "100"),
        buy(2, 1, "1", "200"),
        buy(3, 2, "1", "300"),
        // Lot 3 (0.5: basis 150, proceeds 600 x 0.5/1.5 = 200), then lot 1
        // (1: basis 100, proceeds the rest 400).
        picks(sell(4, 5, "1.5", "600"), &[(3, "0.5"), (1, "1")]),
    ];
    let r = run(base.clone(), Method::Hifo).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row(4, 3, "0.5", "150", "200", "50", false),
            row(4, 1, "1", "100", "400", "300", false),
        ]
    );
    assert_eq!(r.matches.col(|m| m.method), vec![5, 5]);
    // A SPECIFIC_LOT year with a sale that names nothing: FIFO (lot 2).
    let mut legs = base.clone();
    legs.push(sell(5, 6, "1", "1"));
    let r = run(legs, Method::SpecificLot).unwrap();
    assert_eq!((r.matches.rows[2].lot_tx, r.matches.rows[2].method), (2, 1));
    // Errors name the transaction and the lot.
    for (sel, want) in [
        (
            (1, "1"),
            "tx 5: lot 1.0 is not open in the pool of asset 1 wallet 0 at that time",
        ),
        ((3, "1"), "tx 5: lot 3.0 has only '0.5' left, '1' selected"),
        ((6, "1"), "tx 5: lot 6.0 is not open"),
    ] {
        let mut legs = base.clone();
        legs.push(picks(sell(5, 6, "1", "1"), &[sel]));
        // Lot 6 is bought after the sale.
        legs.push(buy(6, 9, "1", "1"));
        let e = run(legs, Method::Fifo).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
}

fn wallets_ledger() -> Vec<Leg> {
    vec![
        buy(1, 0, "2", "100"),
        buy(2, 1, "1", "80"),
        // Per wallet: 1.5 of lot 1 (basis 75) goes to wallet 2.
        moved(3, 5, "1.5", W1, 2),
        // Wallet 2 sells 1 of it: basis 75 x 1/1.5 = 50, acquired day 0.
        in_wallet(sell(4, 6, "1", "60"), 2),
        // The last 0.5 (cost 25) comes back and joins lot 1 in wallet 1
        // (0.5 left there, cost 25): 1 for 50.
        moved(5, 7, "0.5", 2, W1),
    ]
}

#[test]
fn per_wallet_moves_keep_lot_id_date_and_basis() {
    let r = run_with(wallets_ledger(), &[(0, 1)], true, false).unwrap();
    assert_eq!(rows(&r), vec![row(4, 1, "1", "50", "60", "10", false)]);
    assert_eq!(r.matches.col(|m| m.acquired_ms), vec![0]);
    assert_eq!(r.matches.col(|m| m.wallet), vec![2]);
    assert_eq!(
        open(&r),
        vec![lot(1, W1, "1", "50", "2"), lot(2, W1, "1", "80", "1")]
    );
    // Universal: moves change no lot; the sale takes lot 1 FIFO (basis 50).
    let u = run_with(wallets_ledger(), &[(0, 1)], false, false).unwrap();
    assert_eq!(rows(&u), vec![row(4, 1, "1", "50", "60", "10", false)]);
    assert_eq!(
        open(&u),
        vec![lot(1, 0, "1", "50", "2"), lot(2, 0, "1", "80", "1")]
    );
    // Per wallet, a sale from wallet 2 before anything moved there is short.
    let mut legs = wallets_ledger();
    legs.push(in_wallet(sell(9, 4, "1", "1"), 2));
    let e = run_with(legs.clone(), &[(0, 1)], true, false).unwrap_err();
    assert_eq!(e.to_string(), "tx 9: asset 1 wallet 2 short by 1");
    assert!(run_with(legs, &[(0, 1)], false, false).is_ok());
}

#[test]
fn moves_out_of_an_averaged_pool_carry_the_average() {
    // Wallet 1: 1 for 100 + 1 for 300 (average 200). AVERAGE moves 1 to
    // wallet 2: the piece (lot 1, FIFO) carries 400 x 1/2 = 200; wallet 2
    // sells it for 250: gain 50.
    let legs = vec![
        buy(1, 0, "1", "100"),
        buy(2, 1, "1", "300"),
        moved(3, 2, "1", W1, 2),
        in_wallet(sell(4, 3, "1", "250"), 2),
    ];
    let r = run_with(legs, &[(0, 4)], true, false).unwrap();
    assert_eq!(rows(&r), vec![row(4, 1, "1", "200", "250", "50", false)]);
    assert_eq!(open(&r), vec![lot(2, W1, "1", "200", "1")]);
}

#[test]
fn unknown_amounts_propagate() {
    let legs = vec![
        buy(1, 0, "1", ""),
        buy(2, 1, "1", "50"),
        // Lot 1 (cost unknown; proceeds 90 x 1/1.5 = 60 known), then 0.5
        // of lot 2 (basis 25, proceeds 30).
        sell(3, 2, "1.5", "90"),
        // Proceeds unknown; basis of lot 2's last 0.5 is 25.
        sell(4, 3, "0.5", ""),
    ];
    let r = run(legs, Method::Fifo).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row(3, 1, "1", "?", "60", "?", false),
            row(3, 2, "0.5", "25", "30", "5", false),
            row(4, 2, "0.5", "25", "?", "?", false),
        ]
    );
    assert_eq!(r.matches.col(|m| m.unknown()), vec![true, false, true]);
    let e = sum_matches(&r.matches, &[1, 0]).unwrap_err().to_string();
    assert!(e.starts_with("tx 3: "), "{e}");
    let t = sum_matches(&r.matches, &[1]).unwrap();
    assert_eq!(
        (t[0].proceeds, t[0].basis, t[0].gain, t[0].rows),
        (30 * fixed::ONE, 25 * fixed::ONE, 5 * fixed::ONE, 1)
    );
    assert_eq!(t[1], TermTotals::default());
}

#[test]
fn unknown_lots_stay_unknown_through_average_pooling() {
    let legs = vec![
        buy(1, 0, "1", "100"),
        buy(2, 1, "1", ""),
        sell(3, 2, "0.5", "60"),
        buy(4, 3, "1", "10"),
    ];
    let r = run(legs, Method::AverageCost).unwrap();
    assert_eq!(r.matches.col(|m| m.unknown()), vec![true]);
    // The average held an unknown cost when the pool was averaged: every
    // lot still open is unknown.
    assert_eq!(r.lots.unknown, vec![true, true, true]);
}

#[test]
fn removals_take_lots_without_proceeds() {
    let legs = vec![
        buy(1, 0, "2", "100"),
        at(2, REMOVE, 1, "1", "999"),
        sell(3, 2, "1", "80"),
    ];
    let r = run(legs, Method::Fifo).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row(2, 1, "1", "50", "?", "?", false),
            row(3, 1, "1", "50", "80", "30", false),
        ]
    );
    assert_eq!(r.matches.col(|m| m.kind), vec![REMOVE, DISPOSE]);
    assert_eq!(r.matches.col(|m| m.unknown()), vec![false, false]);
    // Removals are not taxable: the totals skip them.
    let t = sum_matches(&r.matches, &[0, 1]).unwrap();
    assert_eq!((t[0].rows, t[0].gain), (1, 30 * fixed::ONE));
}

#[test]
fn negative_balances_match_a_phantom_lot() {
    let legs = vec![buy(1, 0, "1", "100"), sell(2, 400, "1.5", "300")];
    let e = run(legs.clone(), Method::Fifo).unwrap_err();
    assert_eq!(e.to_string(), "tx 2: asset 1 wallet 1 short by 0.5");
    // Lot 1 (basis 100, proceeds 300 x 1/1.5 = 200, long: 400 days), then
    // 0.5 from the phantom lot: zero basis, acquired at the sale (short).
    let r = run_with(legs, &[(0, 1)], false, true).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row(2, 1, "1", "100", "200", "100", true),
            row(2, -1, "0.5", "0", "100", "100", false),
        ]
    );
    assert_eq!(r.matches.rows[1].acquired_ms, 400 * MS_PER_DAY);
    assert!(r.lots.is_empty());
}

#[test]
fn options_are_checked() {
    assert!(ReplayOptions::new(&[], false, false).is_err());
    assert!(ReplayOptions::new(&[(2024, 1), (2024, 2)], false, false).is_err());
    let e = ReplayOptions::new(&[(2024, 9)], false, false).unwrap_err();
    assert!(e.to_string().starts_with("methods: method 9"));
    // Years before the first entry use the first method.
    let o = ReplayOptions::new(&[(2024, 2), (2025, 3)], false, false).unwrap();
    assert_eq!(o.method_at(0), Method::Lifo);
}

#[test]
fn preview_realizes_without_changing_anything() {
    // Open: lot 1 (1 for 100, day 0), lot 2 (2 for 300, day 10).
    let r = run(
        vec![buy(1, 0, "1", "100"), buy(2, 10, "2", "300")],
        Method::Fifo,
    )
    .unwrap();
    let q = |s: &str| parse(s).unwrap();
    // FIFO 1.5 at day 370 for 450: lot 1 (basis 100, proceeds 300, long:
    // 370 days) and 0.5 of lot 2 (basis 75, proceeds 150, short: 360).
    let p = preview_disposal(
        &r,
        ASSET,
        0,
        q("1.5"),
        q("450"),
        370 * MS_PER_DAY,
        Method::Fifo,
    )
    .unwrap();
    assert_eq!(p.basis, Some(q("175")));
    assert_eq!((p.long_gain, p.short_gain), (Some(q("200")), Some(q("75"))));
    // HIFO: 1.5 of lot 2 (225).
    let p = preview_disposal(
        &r,
        ASSET,
        0,
        q("1.5"),
        q("450"),
        370 * MS_PER_DAY,
        Method::Hifo,
    )
    .unwrap();
    assert_eq!((p.basis, p.short_gain), (Some(q("225")), Some(q("225"))));
    // AVERAGE: 400 x 1.5/3 = 200.
    let p = preview_disposal(
        &r,
        ASSET,
        0,
        q("1.5"),
        q("450"),
        370 * MS_PER_DAY,
        Method::AverageCost,
    )
    .unwrap();
    assert_eq!(p.basis, Some(q("200")));
    let e = preview_disposal(&r, ASSET, 0, q("4"), q("1"), 0, Method::Fifo).unwrap_err();
    assert_eq!(e.to_string(), "asset 1 wallet 0 short by 1");
    assert!(preview_disposal(&r, 9, 0, q("1"), q("1"), 0, Method::Fifo).is_err());
    assert_eq!(r.lots.len(), 2);
    assert_eq!(r.book.pools[0].qty, q("3"));
}

#[test]
fn replay_until_a_time_gives_the_lots_as_of_then() {
    // Buy 1 @ 100 on day 10 and 1 @ 200 on day 20; sell 1.5 for 450 on day 30 (FIFO).
    let legs = || {
        vec![
            buy(1, 10, "1", "100"),
            buy(2, 20, "1", "200"),
            sell(3, 30, "1.5", "450"),
        ]
    };
    let until = |day: i64| {
        let mut l = Ledger::new();
        l.append(legs()).unwrap();
        let opts = ReplayOptions::new(&[(0, Method::Fifo as i64)], false, false)
            .unwrap()
            .until(Some(day * MS_PER_DAY));
        replay(&mut l, &opts).unwrap()
    };
    // Day 15: only the first lot; no sale yet.
    let r = until(15);
    assert_eq!(open(&r), vec![lot(1, 0, "1", "100", "1")]);
    assert!(r.matches.rows.is_empty());
    // Day 20 (inclusive): both lots.
    assert_eq!(
        open(&until(20)),
        vec![lot(1, 0, "1", "100", "1"), lot(2, 0, "1", "200", "1")]
    );
    // Day 30: the sale took lot 1 and half of lot 2 (basis 100 left of 200).
    let r = until(30);
    assert_eq!(open(&r), vec![lot(2, 0, "0.5", "100", "1")]);
    assert_eq!(r.matches.rows.len(), 2);
    // Day 5: nothing yet.
    assert!(until(5).lots.is_empty());
}
