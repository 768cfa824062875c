//! Hand-worked cases of the bar loop; the numbers are worked in comments.

use super::*;

struct Data {
    t: Vec<i64>,
    o: Vec<f64>,
    h: Vec<f64>,
    l: Vec<f64>,
    c: Vec<f64>,
}

impl Data {
    /// Rows of (open, high, low, close), one second apart.
    fn new(rows: &[(f64, f64, f64, f64)]) -> Data {
        Data {
            t: (0..rows.len() as i64).map(|i| i * 1000).collect(),
            o: rows.iter().map(|r| r.0).collect(),
            h: rows.iter().map(|r| r.1).collect(),
            l: rows.iter().map(|r| r.2).collect(),
            c: rows.iter().map(|r| r.3).collect(),
        }
    }

    fn bars(&self) -> Bars<'_> {
        Bars {
            time_ms: &self.t,
            open: &self.o,
            high: &self.h,
            low: &self.l,
            close: &self.c,
        }
    }
}

fn flat(p: f64) -> (f64, f64, f64, f64) {
    (p, p, p, p)
}

/// Conditions with enter_long at `enter` and exit_long at `exit`.
fn long_at(n: usize, enter: &[usize], exit: &[usize]) -> Conditions {
    let mut c = Conditions::new(n);
    for &i in enter {
        c.enter_long[i] = true;
    }
    for &i in exit {
        c.exit_long[i] = true;
    }
    c
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn single_trade_with_fee_and_slippage() {
    let d = Data::new(&[
        flat(100.0),
        (100.0, 102.0, 99.0, 101.0),
        (110.0, 112.0, 108.0, 110.0),
        (120.0, 121.0, 119.0, 120.0),
        flat(130.0),
    ]);
    let cfg = Config {
        fee: 0.01,
        slippage: 0.001,
        ..Config::default()
    };
    let bt = run(&d.bars(), &long_at(5, &[0], &[2]), &cfg, None).unwrap();
    assert_eq!(bt.trades.len(), 1);
    let t = bt.trades[0];
    // Buy at bar 1's open with slippage: 100 * 1.001 = 100.1; the units
    // and the 1 % fee use all 10,000: units = 10000 / (100.1 * 1.01).
    let units = 10_000.0 / (100.1 * 1.01);
    let entry_fee = 0.01 * units * 100.1; // = 10000 * 0.01 / 1.01
                                          // Sell at bar 3's open less slippage: 120 * 0.999 = 119.88.
    let exit_fee = 0.01 * units * 119.88;
    let pnl = units * (119.88 - 100.1) - entry_fee - exit_fee;
    assert_eq!((t.entry_bar, t.exit_bar), (1, 3));
    assert_eq!(
        (t.entry_time_ms, t.exit_time_ms, t.duration_ms),
        (1000, 3000, 2000)
    );
    assert!(close_to(t.entry_price, 100.1) && close_to(t.exit_price, 119.88));
    assert!(close_to(t.size, units));
    assert!(close_to(t.fees, entry_fee + exit_fee));
    assert!(close_to(t.pnl, pnl));
    // backtesting.py's pl_pct: 119.88 / 100.1 - 1 - fees / (units * 100.1).
    assert!(close_to(
        t.ret,
        119.88 / 100.1 - 1.0 - (entry_fee + exit_fee) / (units * 100.1)
    ));
    assert_eq!(t.exit_reason, ExitReason::Signal);
    // Equity: cash at bar 0; at bar 1 cash less the entry fee plus the
    // open gain to the close 101; after the exit, cash + pnl.
    assert_eq!(bt.equity[0], 10_000.0);
    assert!(close_to(
        bt.equity[1],
        10_000.0 - entry_fee + units * (101.0 - 100.1)
    ));
    assert!(close_to(
        bt.equity[2],
        10_000.0 - entry_fee + units * (110.0 - 100.1)
    ));
    assert!(close_to(bt.equity[3], 10_000.0 + pnl));
    assert!(close_to(bt.equity[4], 10_000.0 + pnl));
    assert_eq!(bt.position[0], 0.0);
    assert!(close_to(bt.position[2], units));
    assert_eq!(bt.position[3], 0.0);
}

fn stop_run(bar2: (f64, f64, f64, f64), sl: StopRule, tp: StopRule) -> Backtest {
    // Entry decided at bar 0 fills at bar 1's open 100; bar 2 is the test.
    let d = Data::new(&[flat(100.0), (100.0, 101.0, 99.0, 100.0), bar2, flat(100.0)]);
    let cfg = Config {
        stop_loss: sl,
        take_profit: tp,
        ..Config::default()
    };
    run(&d.bars(), &long_at(4, &[0], &[]), &cfg, None).unwrap()
}

#[test]
fn stop_loss_inside_the_bar_fills_at_the_level() {
    // Stop at 100 * (1 - 0.05) = 95; bar 2 trades down to 94.
    let bt = stop_run(
        (99.0, 100.0, 94.0, 96.0),
        StopRule::Pct(0.05),
        StopRule::None,
    );
    let t = bt.trades[0];
    assert_eq!(t.exit_bar, 2);
    assert!(close_to(t.exit_price, 95.0));
    assert_eq!(t.exit_reason, ExitReason::StopLoss);
    // 100 units bought at 100 (no fee): 100 * (95 - 100) = -500.
    assert!(close_to(t.pnl, -500.0));
    assert!(close_to(bt.equity[2], 9_500.0));
}

#[test]
fn gap_through_the_stop_fills_at_the_open() {
    let bt = stop_run(
        (90.0, 92.0, 88.0, 91.0),
        StopRule::Pct(0.05),
        StopRule::None,
    );
    let t = bt.trades[0];
    assert_eq!(t.exit_bar, 2);
    assert_eq!(t.exit_price, 90.0);
    assert_eq!(t.exit_reason, ExitReason::StopLoss);
}

#[test]
fn take_profit_at_the_level_or_the_gap_open() {
    // Target 100 * 1.1 = 110.
    let bt = stop_run(
        (105.0, 111.0, 104.0, 106.0),
        StopRule::None,
        StopRule::Pct(0.1),
    );
    assert!(close_to(bt.trades[0].exit_price, 110.0));
    assert_eq!(bt.trades[0].exit_reason, ExitReason::TakeProfit);
    let bt = stop_run(
        (115.0, 116.0, 114.0, 115.0),
        StopRule::None,
        StopRule::Pct(0.1),
    );
    assert_eq!(bt.trades[0].exit_price, 115.0);
}

#[test]
fn stop_wins_when_both_are_touched() {
    let bt = stop_run(
        (100.0, 111.0, 94.0, 100.0),
        StopRule::Pct(0.05),
        StopRule::Pct(0.1),
    );
    assert!(close_to(bt.trades[0].exit_price, 95.0));
    assert_eq!(bt.trades[0].exit_reason, ExitReason::StopLoss);
}

#[test]
fn stop_is_live_on_the_entry_bar() {
    let d = Data::new(&[flat(100.0), (100.0, 100.0, 94.0, 96.0), flat(96.0)]);
    let cfg = Config {
        stop_loss: StopRule::Pct(0.05),
        ..Config::default()
    };
    let bt = run(&d.bars(), &long_at(3, &[0], &[]), &cfg, None).unwrap();
    assert_eq!((bt.trades[0].entry_bar, bt.trades[0].exit_bar), (1, 1));
    assert!(close_to(bt.trades[0].exit_price, 95.0));
}

#[test]
fn atr_stop_uses_the_decision_bars_atr() {
    let d = Data::new(&[
        flat(100.0),
        (100.0, 101.0, 99.0, 100.0),
        (99.0, 100.0, 93.0, 96.0),
        flat(100.0),
    ]);
    // ATR at the decision bar 0 is 3: stop 100 - 2 * 3 = 94 (the ATR of 50
    // at bar 1 must not be used).
    let atr = [3.0, 50.0, 50.0, 50.0];
    let cfg = Config {
        stop_loss: StopRule::Atr(2.0),
        ..Config::default()
    };
    let bt = run(&d.bars(), &long_at(4, &[0], &[]), &cfg, Some(&atr)).unwrap();
    assert_eq!(bt.trades[0].exit_bar, 2);
    assert!(close_to(bt.trades[0].exit_price, 94.0));
}

#[test]
fn no_trade_from_a_decision_on_the_last_bar() {
    let d = Data::new(&[flat(100.0), flat(101.0), flat(102.0)]);
    let bt = run(&d.bars(), &long_at(3, &[2], &[]), &Config::default(), None).unwrap();
    assert!(bt.trades.is_empty());
    assert!(bt.equity.iter().all(|&e| e == 10_000.0));
    // Decided on the bar before: fills at the last open, closed at the
    // last close (END).
    let d = Data::new(&[flat(100.0), (100.0, 105.0, 99.0, 104.0)]);
    let bt = run(&d.bars(), &long_at(2, &[0], &[]), &Config::default(), None).unwrap();
    let t = bt.trades[0];
    assert_eq!((t.entry_bar, t.exit_bar), (1, 1));
    assert_eq!((t.entry_price, t.exit_price), (100.0, 104.0));
    assert_eq!(t.exit_reason, ExitReason::End);
    assert!(close_to(bt.equity[1], 10_400.0));
}

#[test]
fn whole_units_round_down_and_skip_when_none_fits() {
    let d = Data::new(&[flat(300.0), flat(300.0), flat(330.0)]);
    let cfg = Config {
        cash: 1_000.0,
        whole_units: true,
        ..Config::default()
    };
    let bt = run(&d.bars(), &long_at(3, &[0], &[]), &cfg, None).unwrap();
    // floor(1000 / 300) = 3 units; 3 * 30 = 90 gained.
    assert_eq!(bt.trades[0].size, 3.0);
    assert_eq!(bt.trades[0].pnl, 90.0);
    assert_eq!(*bt.equity.last().unwrap(), 1_090.0);
    let d = Data::new(&[flat(1001.0), flat(1001.0), flat(1001.0)]);
    let bt = run(&d.bars(), &long_at(3, &[0], &[]), &cfg, None).unwrap();
    assert!(bt.trades.is_empty());
}

#[test]
fn short_trade_profits_when_price_falls() {
    let d = Data::new(&[flat(100.0), flat(100.0), flat(95.0), flat(90.0), flat(90.0)]);
    let mut c = Conditions::new(5);
    c.enter_short[0] = true;
    c.exit_short[2] = true;
    let cfg = Config {
        allow_short: true,
        fee: 0.001,
        ..Config::default()
    };
    let bt = run(&d.bars(), &c, &cfg, None).unwrap();
    let t = bt.trades[0];
    // Sell 10000 / (100 * 1.001) units at 100, buy back at 90.
    let units = 10_000.0 / 100.1;
    assert!(close_to(t.size, -units));
    let fees = 0.001 * units * 100.0 + 0.001 * units * 90.0;
    assert!(close_to(t.pnl, units * 10.0 - fees));
    assert!(close_to(t.ret, 0.1 - fees / (units * 100.0)));
    // Marked at bar 2's close 95: cash less the entry fee + units * 5.
    assert!(close_to(
        bt.equity[2],
        10_000.0 - 0.001 * units * 100.0 + units * 5.0
    ));
    // Long-only by default: the same conditions trade nothing.
    let bt = run(&d.bars(), &c, &Config::default(), None).unwrap();
    assert!(bt.trades.is_empty());
}

#[test]
fn reversal_is_two_trades_at_one_open() {
    let d = Data::new(&[
        flat(100.0),
        flat(100.0),
        flat(110.0),
        flat(120.0),
        flat(100.0),
    ]);
    let mut c = long_at(5, &[0], &[]);
    c.enter_short[2] = true;
    let cfg = Config {
        allow_short: true,
        ..Config::default()
    };
    let bt = run(&d.bars(), &c, &cfg, None).unwrap();
    assert_eq!(bt.trades.len(), 2);
    let (a, b) = (bt.trades[0], bt.trades[1]);
    // Long 100 units at 100 out at 120 (+2000), then short 12000 / 120 =
    // 100 units at 120 covered at the last close 100 (+2000).
    assert_eq!(
        (a.entry_bar, a.exit_bar, a.exit_reason),
        (1, 3, ExitReason::Reverse)
    );
    assert!(close_to(a.pnl, 2_000.0));
    assert_eq!(
        (b.entry_bar, b.exit_bar, b.exit_reason),
        (3, 4, ExitReason::End)
    );
    assert!(close_to(b.size, -100.0) && close_to(b.pnl, 2_000.0));
    assert!(close_to(bt.equity[4], 14_000.0));
}

#[test]
fn window_limits_decisions_and_closes_at_its_end() {
    let d = Data::new(&[
        flat(100.0),
        flat(100.0),
        flat(100.0),
        flat(110.0),
        flat(120.0),
        flat(130.0),
    ]);
    // enter at 0 is outside the window [2, 5); enter at 2 fills at 3 (110)
    // and is closed at close[4] = 120 by the window's end.
    let cfg = Config {
        start: 2,
        end: Some(5),
        ..Config::default()
    };
    let bt = run(&d.bars(), &long_at(6, &[0, 2], &[]), &cfg, None).unwrap();
    assert_eq!(bt.equity.len(), 3);
    assert_eq!(bt.trades.len(), 1);
    let t = bt.trades[0];
    assert_eq!(
        (t.entry_bar, t.exit_bar, t.exit_reason),
        (3, 4, ExitReason::End)
    );
    assert_eq!((t.entry_price, t.exit_price), (110.0, 120.0));
    assert!(close_to(bt.equity[2], 10_000.0 + 10_000.0 / 110.0 * 10.0));
    assert!(run(
        &d.bars(),
        &long_at(6, &[], &[]),
        &Config {
            start: 5,
            end: Some(5),
            ..cfg.clone()
        },
        None
    )
    .is_err());
    assert!(run(
        &d.bars(),
        &long_at(6, &[], &[]),
        &Config {
            end: Some(7),
            ..cfg
        },
        None
    )
    .is_err());
}

#[test]
fn a_signal_exit_fills_at_the_open_before_the_stop() {
    // Exit decided at bar 1; bar 2 opens at 99 and falls through the stop
    // at 95: the exit is at the open 99 (SIGNAL), not at the stop.
    let d = Data::new(&[
        flat(100.0),
        flat(100.0),
        (99.0, 99.0, 90.0, 91.0),
        flat(91.0),
    ]);
    let cfg = Config {
        stop_loss: StopRule::Pct(0.05),
        ..Config::default()
    };
    let bt = run(&d.bars(), &long_at(4, &[0], &[1]), &cfg, None).unwrap();
    assert_eq!(bt.trades[0].exit_price, 99.0);
    assert_eq!(bt.trades[0].exit_reason, ExitReason::Signal);
}

#[test]
fn settings_are_checked_by_name() {
    let bad = [
        Config {
            cash: 0.0,
            ..Config::default()
        },
        Config {
            fee: -0.1,
            ..Config::default()
        },
        Config {
            size_fraction: 1.5,
            ..Config::default()
        },
        Config {
            stop_loss: StopRule::Pct(1.0),
            ..Config::default()
        },
        Config {
            take_profit: StopRule::Atr(0.0),
            ..Config::default()
        },
        Config {
            bars_per_year: 0.0,
            ..Config::default()
        },
    ];
    for cfg in bad {
        assert!(cfg.validate(10).is_err(), "{cfg:?}");
    }
    let err = Config {
        fee: 0.2,
        ..Config::default()
    }
    .validate(3)
    .unwrap_err();
    assert!(err.to_string().starts_with("fee: "), "{err}");
}

#[test]
fn running_out_of_money_closes_at_the_close_and_ends_the_run() {
    // Short 100 units at 100; the close 201 marks equity at 10000 - 10100
    // < 0: closed at 201 there, equity 0 from then on, no more trades.
    let d = Data::new(&[
        flat(100.0),
        flat(100.0),
        flat(150.0),
        flat(201.0),
        flat(50.0),
        flat(50.0),
    ]);
    let mut c = Conditions::new(6);
    c.enter_short[0] = true;
    c.enter_short[4] = true;
    let cfg = Config {
        allow_short: true,
        ..Config::default()
    };
    let bt = run(&d.bars(), &c, &cfg, None).unwrap();
    assert_eq!(bt.trades.len(), 1);
    assert_eq!((bt.trades[0].exit_bar, bt.trades[0].exit_price), (3, 201.0));
    assert!(close_to(bt.trades[0].pnl, -10_100.0));
    assert_eq!(bt.equity, vec![10_000.0, 10_000.0, 5_000.0, 0.0, 0.0, 0.0]);
    assert_eq!(bt.position[3..], [-100.0, 0.0, 0.0]);
}

#[test]
fn prices_must_be_finite_and_positive() {
    let mut d = Data::new(&[flat(100.0), flat(100.0), flat(100.0)]);
    d.l[1] = f64::NAN;
    let err = run(&d.bars(), &Conditions::new(3), &Config::default(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "low: prices must be finite and positive, got NaN at bar 1"
    );
    d.l[1] = 100.0;
    d.o[2] = 0.0;
    assert!(run(&d.bars(), &Conditions::new(3), &Config::default(), None).is_err());
}

#[test]
fn a_stop_exit_that_leaves_no_cash_ends_the_run() {
    // Short 100 units at 100 with a 5 % stop (105); bar 2 gaps to 250:
    // bought back at the open 250, cash 10000 - 15000 < 0. The run ends
    // there with equity 0; the entry signal at bar 3 is not taken.
    let d = Data::new(&[
        flat(100.0),
        flat(100.0),
        flat(250.0),
        flat(100.0),
        flat(100.0),
    ]);
    let mut c = Conditions::new(5);
    c.enter_short[0] = true;
    c.enter_long[3] = true;
    let cfg = Config {
        allow_short: true,
        stop_loss: StopRule::Pct(0.05),
        ..Config::default()
    };
    let bt = run(&d.bars(), &c, &cfg, None).unwrap();
    assert_eq!(bt.trades.len(), 1);
    assert_eq!(bt.trades[0].exit_reason, ExitReason::StopLoss);
    assert_eq!(bt.trades[0].exit_price, 250.0);
    assert_eq!(bt.equity, vec![10_000.0, 10_000.0, 0.0, 0.0, 0.0]);
}
