//! Hand-worked cases of the loop; the brute-force comparison on random
//! inputs lives in tests/core_rs/test_portfolio_backtest.py.

use super::*;

const NAN: f64 = f64::NAN;

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

macro_rules! assert_close {
    ($a:expr, $b:expr) => {{
        let (a, b): (f64, f64) = ($a, $b);
        assert!(close_to(a, b), "{} = {a} != {b}", stringify!($a));
    }};
}

struct Case {
    time_ms: Vec<i64>,
    open: Vec<f64>,
    close: Vec<f64>,
    score: Vec<f64>,
    bear: Vec<bool>,
    m: usize,
}

impl Case {
    fn run(&self, cfg: &Config) -> Result<Output, crate::CoreError> {
        let n = self.time_ms.len();
        run(
            &Inputs {
                time_ms: &self.time_ms,
                open: Matrix::new(&self.open, n, self.m),
                close: Matrix::new(&self.close, n, self.m),
                score: Matrix::new(&self.score, n, self.m),
                bear: &self.bear,
            },
            cfg,
        )
    }
}

/// Two assets, A (column 0) then B (column 1) leading on score.
fn switch_case() -> Case {
    Case {
        time_ms: vec![0, 10, 20, 30, 40, 50],
        // rows are bars: [A, B]
        open: vec![10., 20., 10., 20., 11., 21., 12., 20., 12., 22., 13., 24.],
        close: vec![10., 20., 11., 21., 12., 20., 12., 22., 13., 24., 14., 25.],
        score: vec![60., 50., 60., 50., 60., 50., 40., 70., 40., 70., 40., 70.],
        bear: vec![false; 6],
        m: 2,
    }
}

#[test]
fn top_1_switches_assets_selling_first_with_exact_fee_and_slippage() {
    let mut cfg = Config::new(1, 3);
    cfg.cash = 1000.0;
    cfg.fee = 0.001;
    cfg.slippage = 0.01;
    let out = switch_case().run(&cfg).unwrap();
    // Bar 0 decides A (60 > 50): 1000 / close 10 = 100 units. Bar 1 fills
    // at 10 * 1.01 = 10.1: 100 units would cost 1010 * 1.001 > 1000, so the
    // buy is scaled to spend the cash: notional 1000 / 1.001, fee 0.001 of it.
    let buy_a = 1000.0 / 1.001;
    let qty_a = buy_a / 10.1;
    assert_eq!(out.fills.bar[0], 1);
    assert_close!(out.fills.qty[0], qty_a);
    assert_close!(out.fills.price[0], 10.1);
    assert_close!(out.fills.fee[0], 0.001 * buy_a);
    assert_eq!(out.fills.reason[0], REASON_REBALANCE);
    assert!(out.cash[1].abs() < 1e-9);
    assert_close!(out.equity[1], qty_a * 11.0);
    assert_close!(out.equity[2], qty_a * 12.0);
    assert_close!(out.exposure[2], 1.0);
    // Bar 3 (rebalance) decides B (70 > 40) with equity qty_a * 12. Bar 4:
    // sell A at 12 * 0.99 = 11.88 first, then buy B at 22 * 1.01 = 22.22
    // with all the cash (the target 1/22 of the equity costs more).
    let sell_a = qty_a * 11.88;
    let cash4 = sell_a - 0.001 * sell_a;
    let buy_b = cash4 / 1.001;
    let qty_b = buy_b / 22.22;
    assert_eq!(out.fills.bar[1..3], [4, 4]);
    assert_eq!(out.fills.asset[1..3], [0, 1]);
    assert_close!(out.fills.qty[1], -qty_a);
    assert_close!(out.fills.price[1], 11.88);
    assert_close!(out.fills.qty[2], qty_b);
    assert_close!(out.fills.price[2], 22.22);
    assert_close!(out.equity[4], qty_b * 24.0);
    // Bar 5 is the last: B closed at 25 * 0.99, fee paid; equity = cash.
    let sell_b = qty_b * 24.75;
    let final_cash = sell_b - 0.001 * sell_b;
    assert_eq!(out.fills.reason[3], REASON_END);
    assert_close!(out.equity[5], final_cash);
    assert_close!(out.cash[5], final_cash);
    assert_eq!(out.exposure[5], 0.0);
    // Two trades: A bars 1-4, B bars 4-5; their pnl sums to the gain.
    let t = &out.trades;
    assert_eq!(
        (t.entry_bar.clone(), t.exit_bar.clone()),
        (vec![1, 4], vec![4, 5])
    );
    assert_eq!(t.asset, vec![0, 1]);
    assert_close!(t.pnl[0], sell_a - buy_a - 0.001 * (buy_a + sell_a));
    assert_close!(t.return_pct[0], t.pnl[0] / buy_a * 100.0);
    assert_close!(t.entry_price[0], 10.1);
    assert_close!(t.exit_price[0], 11.88);
    assert_eq!(t.duration_ms, vec![30, 10]);
    assert_eq!(t.exit_reason, vec![REASON_REBALANCE, REASON_END]);
    assert_close!(t.pnl.iter().sum::<f64>(), final_cash - 1000.0);
    // Rebalances decided at bars 0 and 3 fill at 1 and 4: all in one asset.
    assert_eq!(out.rebalance_bars, vec![1, 4]);
    assert_eq!(out.weights, vec![1.0, 0.0, 0.0, 1.0]);
    assert_eq!(out.target_weights, vec![1.0, 0.0, 0.0, 1.0]);
    // Benchmark: 500 in each at close[0]: 50 A and 25 B.
    assert_close!(out.benchmark[5], 50.0 * 14.0 + 25.0 * 25.0);
}

#[test]
fn bear_goes_to_cash_at_the_next_open_and_bull_comes_back() {
    let mut case = switch_case();
    case.bear = vec![false, true, false, false, false, false];
    let mut cfg = Config::new(1, 100);
    cfg.cash = 1000.0;
    let out = case.run(&cfg).unwrap();
    // Bar 0 buys A at open[1] = 10: 100 units. Bar 1 turns BEAR: sold at
    // open[2] = 11 -> cash 1100. Bar 2 is BULL again: A still leads,
    // 1100 / close 12 units bought at open[3] = 12, closed at 14 at bar 5.
    assert_eq!(out.fills.bar, vec![1, 2, 3, 5]);
    assert_eq!(out.fills.reason, vec![1, 2, 2, 4]);
    assert_close!(out.cash[2], 1100.0);
    assert_eq!(out.exposure[2], 0.0);
    assert_close!(out.fills.qty[2], 1100.0 / 12.0);
    assert_close!(out.equity[5], 1100.0 / 12.0 * 14.0);
    assert_eq!(out.rebalance_bars, vec![1, 2, 3]);
}

#[test]
fn an_asset_without_an_open_is_not_traded_and_whole_units_floor() {
    let mut case = switch_case();
    case.open[2] = NAN; // A has no open at bar 1
    case.close[2] = NAN;
    let mut cfg = Config::new(1, 2);
    cfg.cash = 1000.0;
    cfg.whole_units = true;
    let out = case.run(&cfg).unwrap();
    // Bar 0's buy of A is dropped at bar 1. Bar 2 retries: 1000 / close 12
    // = 83.3 -> 83 units at open[3] = 12 (cash 4). Bar 4: B leads, A sold at
    // open[5] = 13, then B 83 * 13 + 4 = 1083 / close[4] 24 = 45.125 -> 45
    // units, bought at open[5] = 24, closed at close[5] = 25.
    assert_eq!(out.fills.bar, vec![3, 5, 5, 5]);
    assert_eq!(out.fills.qty, vec![83.0, -83.0, 45.0, -45.0]);
    assert_close!(out.equity[1], 1000.0);
    assert_close!(out.cash[3], 4.0);
    assert_close!(out.equity[5], 83.0 * 13.0 + 4.0 - 45.0 * 24.0 + 45.0 * 25.0);
}

#[test]
fn refusals_name_the_field() {
    let case = switch_case();
    let msg = |cfg: &Config| case.run(cfg).unwrap_err().to_string();
    assert_eq!(msg(&Config::new(0, 1)), "top_k: must be at least 1, got 0");
    assert!(msg(&Config::new(1, 0)).starts_with("rebalance_every:"));
    let mut cfg = Config::new(1, 1);
    cfg.fee = 1.0;
    assert!(msg(&cfg).starts_with("fee:"));
    cfg = Config::new(1, 1);
    cfg.start = 6;
    assert!(msg(&cfg).starts_with("start:"));
    let mut short = switch_case();
    short.bear.pop();
    assert!(short
        .run(&Config::new(1, 1))
        .unwrap_err()
        .to_string()
        .starts_with("bear "));
    let empty = Case {
        time_ms: vec![],
        open: vec![],
        close: vec![],
        score: vec![],
        bear: vec![],
        m: 2,
    };
    assert!(empty
        .run(&Config::new(1, 1))
        .unwrap_err()
        .to_string()
        .starts_with("time_ms: is empty"));
    let mut bad = switch_case();
    bad.close[3] = -1.0;
    assert!(bad
        .run(&Config::new(1, 1))
        .unwrap_err()
        .to_string()
        .starts_with("close:"));
}
