//! The bar loop: pending orders fill at the next open, stops and targets
//! fill at their level (or the open on a gap), decisions are taken on the
//! closed bar, equity is marked at the close. The exact rules, and where they
//! differ from backtesting.py, are in `docs/backtest.md` ("Execution").

use super::strategy::Conditions;
use crate::indicators::hlc::atr;
use crate::CoreError;

/// OHLC bars with their open times; every column has the same length.
#[derive(Clone, Copy)]
pub struct Bars<'a> {
    pub time_ms: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
}

impl Bars<'_> {
    pub fn len(&self) -> usize {
        self.close.len()
    }

    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
    }

    pub fn check(&self) -> Result<(), CoreError> {
        let n = self.close.len();
        let cols: [(&'static str, usize); 4] = [
            ("time_ms", self.time_ms.len()),
            ("open", self.open.len()),
            ("high", self.high.len()),
            ("low", self.low.len()),
        ];
        for (name, len) in cols {
            if len != n {
                return Err(CoreError::LengthMismatch {
                    name,
                    other: "close",
                    len,
                    other_len: n,
                });
            }
        }
        let prices: [(&'static str, &[f64]); 4] = [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ];
        for (name, col) in prices {
            // One branch-free pass over the bits (a finite positive double
            // is 0 < bits < the bits of +inf); the bar is found on failure.
            const INF_BITS: u64 = 0x7ff0_0000_0000_0000;
            let bad = col.iter().fold(false, |bad, &p| {
                bad | (p.to_bits().wrapping_sub(1) >= INF_BITS - 1)
            });
            if bad {
                let i = col
                    .iter()
                    .position(|&p| !(p > 0.0 && p.is_finite()))
                    .unwrap_or(0);
                return Err(CoreError::InvalidArgument {
                    name,
                    reason: format!(
                        "prices must be finite and positive, got {} at bar {i}",
                        col[i]
                    ),
                });
            }
        }
        Ok(())
    }
}

/// How a stop-loss or take-profit level is set from the entry fill.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StopRule {
    None,
    /// A fraction of the entry fill price (0.05 = 5 %).
    Pct(f64),
    /// A multiple of the ATR at the decision bar.
    Atr(f64),
}

impl StopRule {
    fn check(self, name: &'static str, below_one: bool) -> Result<(), CoreError> {
        let bad = |reason: String| Err(CoreError::InvalidArgument { name, reason });
        match self {
            StopRule::None => Ok(()),
            StopRule::Pct(p) if !(p > 0.0 && p.is_finite()) => {
                bad(format!("must be a positive fraction, got {p}"))
            }
            StopRule::Pct(p) if below_one && p >= 1.0 => bad(format!(
                "must be below 1 (a 100 % stop is no stop), got {p}"
            )),
            StopRule::Atr(k) if !(k > 0.0 && k.is_finite()) => {
                bad(format!("ATR multiple must be positive, got {k}"))
            }
            _ => Ok(()),
        }
    }

    fn uses_atr(self) -> bool {
        matches!(self, StopRule::Atr(_))
    }

    /// The level for a position in direction `dir` (+1 long, -1 short)
    /// entered at `fill`; `away` is -1 for a stop, +1 for a target.
    #[inline]
    fn level(self, fill: f64, dir: f64, away: f64, atr: f64) -> f64 {
        match self {
            StopRule::None => f64::NAN,
            StopRule::Pct(p) => fill * (1.0 + away * dir * p),
            StopRule::Atr(k) => fill + away * dir * k * atr,
        }
    }
}

/// Settings of one run (see `docs/backtest.md`, "Configuration").
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub cash: f64,
    pub fee: f64,
    pub slippage: f64,
    pub whole_units: bool,
    pub allow_short: bool,
    pub size_fraction: f64,
    pub stop_loss: StopRule,
    pub take_profit: StopRule,
    pub atr_period: usize,
    pub bars_per_year: f64,
    pub start: usize,
    /// Exclusive; `None` is the number of bars.
    pub end: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cash: 10_000.0,
            fee: 0.0,
            slippage: 0.0,
            whole_units: false,
            allow_short: false,
            size_fraction: 1.0,
            stop_loss: StopRule::None,
            take_profit: StopRule::None,
            atr_period: 14,
            bars_per_year: 8760.0,
            start: 0,
            end: None,
        }
    }
}

fn invalid(name: &'static str, reason: String) -> CoreError {
    CoreError::InvalidArgument { name, reason }
}

impl Config {
    /// Checks every setting; returns the window `[start, end)` over `n` bars.
    pub fn validate(&self, n: usize) -> Result<(usize, usize), CoreError> {
        if !(self.cash > 0.0 && self.cash.is_finite()) {
            return Err(invalid(
                "cash",
                format!("must be positive, got {}", self.cash),
            ));
        }
        if !(self.fee >= 0.0 && self.fee < 0.1) {
            return Err(invalid(
                "fee",
                format!("must be in [0, 0.1), got {}", self.fee),
            ));
        }
        if !(self.slippage >= 0.0 && self.slippage < 0.1) {
            return Err(invalid(
                "slippage",
                format!("must be in [0, 0.1), got {}", self.slippage),
            ));
        }
        if !(self.size_fraction > 0.0 && self.size_fraction <= 1.0) {
            return Err(invalid(
                "size_fraction",
                format!("must be in (0, 1], got {}", self.size_fraction),
            ));
        }
        self.stop_loss.check("stop_loss", true)?;
        self.take_profit.check("take_profit", false)?;
        if self.atr_period < 1 || self.atr_period > 100_000 {
            return Err(invalid(
                "atr_period",
                format!("must be from 1 to 100000, got {}", self.atr_period),
            ));
        }
        if !(self.bars_per_year > 0.0 && self.bars_per_year.is_finite()) {
            return Err(invalid(
                "bars_per_year",
                format!("must be positive, got {}", self.bars_per_year),
            ));
        }
        let end = self.end.unwrap_or(n);
        if end > n {
            return Err(invalid(
                "end",
                format!("must be at most the number of bars ({end} > {n})"),
            ));
        }
        if self.start >= end {
            return Err(invalid(
                "start",
                format!("must be less than end ({} >= {end})", self.start),
            ));
        }
        Ok((self.start, end))
    }

    pub fn needs_atr(&self) -> bool {
        self.stop_loss.uses_atr() || self.take_profit.uses_atr()
    }
}

/// Why a trade ended; the codes are the Python API's `exit_reason` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitReason {
    Signal = 1,
    StopLoss = 2,
    TakeProfit = 3,
    End = 4,
    Reverse = 5,
}

/// One closed trade. Prices are fills (slippage included); `size` is signed
/// (+ long, - short); `pnl` is after both fees; `ret` is backtesting.py's
/// `pl_pct` (a fraction, fees included: see `docs/backtest.md`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trade {
    pub entry_bar: usize,
    pub exit_bar: usize,
    pub entry_time_ms: i64,
    pub exit_time_ms: i64,
    pub entry_price: f64,
    pub exit_price: f64,
    pub size: f64,
    pub pnl: f64,
    pub ret: f64,
    pub fees: f64,
    pub duration_ms: i64,
    pub exit_reason: ExitReason,
}

/// The result of one run over the window `[start, end)`: `equity[k]` and
/// `position[k]` belong to bar `start + k`.
#[derive(Clone, Debug, PartialEq)]
pub struct Backtest {
    pub start: usize,
    pub end: usize,
    pub trades: Vec<Trade>,
    pub equity: Vec<f64>,
    pub position: Vec<f64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Pending {
    Nothing,
    Open(f64),
    Close,
    Reverse(f64),
}

/// The account between bars: cash excludes the position's value, as in
/// backtesting.py, so equity = cash + size * (price - entry price).
struct Account<'a> {
    cfg: &'a Config,
    time_ms: &'a [i64],
    cash: f64,
    size: f64,
    entry_price: f64,
    entry_bar: usize,
    entry_fee: f64,
    stop: f64,
    target: f64,
    trades: Vec<Trade>,
}

impl Account<'_> {
    /// Opens a position in direction `dir` at market price `price` (bar
    /// `i`); `atr` is the ATR at the decision bar. Too little cash for one
    /// unit (whole units) or a non-finite price: no trade.
    fn open(&mut self, i: usize, price: f64, dir: f64, atr: f64) {
        let cfg = self.cfg;
        let fill = price * (1.0 + dir * cfg.slippage);
        let mut units = cfg.size_fraction * self.cash / (fill * (1.0 + cfg.fee));
        if cfg.whole_units {
            units = units.floor();
        }
        if !(units > 0.0 && units.is_finite()) {
            return;
        }
        self.size = dir * units;
        self.entry_price = fill;
        self.entry_bar = i;
        self.entry_fee = cfg.fee * units * fill;
        self.cash -= self.entry_fee;
        self.stop = cfg.stop_loss.level(fill, dir, -1.0, atr);
        self.target = cfg.take_profit.level(fill, dir, 1.0, atr);
    }

    /// Closes the whole position at market price `price` (bar `i`).
    fn close(&mut self, i: usize, price: f64, reason: ExitReason) {
        let size = self.size;
        let fill = price * (1.0 - size.signum() * self.cfg.slippage);
        let units = size.abs();
        let exit_fee = self.cfg.fee * units * fill;
        let gross = size * (fill - self.entry_price);
        self.cash += gross - exit_fee;
        let fees = self.entry_fee + exit_fee;
        let ret =
            size.signum() * (fill / self.entry_price - 1.0) - fees / (units * self.entry_price);
        let (t0, t1) = (self.time_ms[self.entry_bar], self.time_ms[i]);
        self.trades.push(Trade {
            entry_bar: self.entry_bar,
            exit_bar: i,
            entry_time_ms: t0,
            exit_time_ms: t1,
            entry_price: self.entry_price,
            exit_price: fill,
            size,
            pnl: gross - fees,
            ret,
            fees,
            duration_ms: t1 - t0,
            exit_reason: reason,
        });
        self.size = 0.0;
        self.stop = f64::NAN;
        self.target = f64::NAN;
    }

    /// The stop or target the bar `(o, h, l)` reaches, with its fill price
    /// before slippage; the stop first when both are reached.
    #[inline]
    fn touched(&self, o: f64, h: f64, l: f64) -> Option<(f64, ExitReason)> {
        if self.size > 0.0 {
            if l <= self.stop {
                return Some((o.min(self.stop), ExitReason::StopLoss));
            }
            if h >= self.target {
                return Some((o.max(self.target), ExitReason::TakeProfit));
            }
        } else {
            if h >= self.stop {
                return Some((o.max(self.stop), ExitReason::StopLoss));
            }
            if l <= self.target {
                return Some((o.min(self.target), ExitReason::TakeProfit));
            }
        }
        None
    }
}

/// The ATR the stops use: Wilder's ATR(`period`) over the whole series.
pub fn atr_series(bars: &Bars, period: usize) -> Vec<f64> {
    let mut out = vec![0.0; bars.len()];
    atr::SPEC.run_series(
        &[bars.high, bars.low, bars.close],
        &[period as f64],
        &mut [&mut out],
    );
    out
}

/// Runs the strategy given by `cond` over `bars` (see `docs/backtest.md`).
/// `atr` is used by ATR stops; computed here (period `cfg.atr_period`) when
/// a stop needs it and none is given.
pub fn run(
    bars: &Bars,
    cond: &Conditions,
    cfg: &Config,
    atr: Option<&[f64]>,
) -> Result<Backtest, CoreError> {
    bars.check()?;
    cond.check(bars.len())?;
    let (start, end) = cfg.validate(bars.len())?;
    let owned;
    let atr: &[f64] = match atr {
        Some(a) => {
            if a.len() != bars.len() {
                return Err(CoreError::LengthMismatch {
                    name: "atr",
                    other: "close",
                    len: a.len(),
                    other_len: bars.len(),
                });
            }
            a
        }
        None if cfg.needs_atr() => {
            owned = atr_series(bars, cfg.atr_period);
            &owned
        }
        None => &[],
    };
    let m = end - start;
    let (mut equity, mut position) = (vec![0.0; m], vec![0.0; m]);
    let trades = run_into(bars, cond, cfg, atr, start, end, &mut equity, &mut position);
    Ok(Backtest {
        start,
        end,
        trades,
        equity,
        position,
    })
}

/// [`run`] with validated inputs, writing the window's equity and position
/// into `equity` and `position` (each `end - start` long) and returning the
/// trades; `atr` may be empty when no stop uses it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_into(
    bars: &Bars,
    cond: &Conditions,
    cfg: &Config,
    atr: &[f64],
    start: usize,
    end: usize,
    equity: &mut [f64],
    position: &mut [f64],
) -> Vec<Trade> {
    let Bars {
        open,
        high,
        low,
        close,
        ..
    } = *bars;
    let mut acct = Account {
        cfg,
        time_ms: bars.time_ms,
        cash: cfg.cash,
        size: 0.0,
        entry_price: 0.0,
        entry_bar: 0,
        entry_fee: 0.0,
        stop: f64::NAN,
        target: f64::NAN,
        trades: Vec::new(),
    };
    assert!(equity.len() == end - start && position.len() == end - start);
    let mut pending = Pending::Nothing;
    let atr_at = |i: usize| atr.get(i).copied().unwrap_or(f64::NAN);
    let mut i = start;
    while i < end {
        if acct.size == 0.0 && pending == Pending::Nothing {
            // Flat with nothing to fill (cash is then positive): every bar
            // up to the next entry condition is the same, so skip to it.
            let j = next_entry(cond, i, end - 1, cfg.allow_short);
            equity[i - start..=j - start].fill(acct.cash);
            position[i - start..=j - start].fill(0.0);
            if j < end - 1 {
                pending = decide(cond, j, 0.0, cfg.allow_short);
            }
            i = j + 1;
            continue;
        }
        // 1. The order decided at the previous close fills at this open.
        match pending {
            Pending::Nothing => {}
            Pending::Open(dir) => acct.open(i, open[i], dir, atr_at(i - 1)),
            Pending::Close => acct.close(i, open[i], ExitReason::Signal),
            Pending::Reverse(dir) => {
                acct.close(i, open[i], ExitReason::Reverse);
                acct.open(i, open[i], dir, atr_at(i - 1));
            }
        }
        pending = Pending::Nothing;
        // 2. Stops and targets, on the entry bar too.
        if acct.size != 0.0 {
            if let Some((price, reason)) = acct.touched(open[i], high[i], low[i]) {
                acct.close(i, price, reason);
            }
        }
        let k = i - start;
        position[k] = acct.size;
        // Out of money at the close (a position's loss, or an exit that
        // left cash at or below zero): an open position is closed there and
        // the run ends with nothing left (backtesting.py's rule).
        let marked = if acct.size != 0.0 {
            acct.cash + acct.size * (close[i] - acct.entry_price)
        } else {
            acct.cash
        };
        if marked <= 0.0 {
            if acct.size != 0.0 {
                acct.close(i, close[i], ExitReason::End);
            }
            acct.cash = 0.0;
            equity[k..].fill(0.0);
            position[k + 1..].fill(0.0);
            break;
        }
        // 3. Decisions on the closed bar; one on the last bar cannot fill.
        if i + 1 < end {
            pending = decide(cond, i, acct.size, cfg.allow_short);
        } else if acct.size != 0.0 {
            acct.close(i, close[i], ExitReason::End);
        }
        // 4. Marked to market at the close.
        let open_pnl = if acct.size != 0.0 {
            acct.size * (close[i] - acct.entry_price)
        } else {
            0.0
        };
        equity[k] = acct.cash + open_pnl;
        i += 1;
    }
    acct.trades
}

/// The first bar in `i..last` with an entry condition, else `last` (where
/// no decision is taken).
#[inline]
fn next_entry(cond: &Conditions, i: usize, last: usize, allow_short: bool) -> usize {
    let found = if allow_short {
        cond.enter_long[i..last]
            .iter()
            .zip(&cond.enter_short[i..last])
            .position(|(&l, &s)| l | s)
    } else {
        cond.enter_long[i..last].iter().position(|&l| l)
    };
    found.map_or(last, |d| i + d)
}

#[inline]
fn decide(cond: &Conditions, i: usize, size: f64, allow_short: bool) -> Pending {
    if size == 0.0 {
        if cond.enter_long[i] {
            Pending::Open(1.0)
        } else if allow_short && cond.enter_short[i] {
            Pending::Open(-1.0)
        } else {
            Pending::Nothing
        }
    } else if size > 0.0 {
        if allow_short && cond.enter_short[i] {
            Pending::Reverse(-1.0)
        } else if cond.exit_long[i] {
            Pending::Close
        } else {
            Pending::Nothing
        }
    } else if cond.enter_long[i] {
        Pending::Reverse(1.0)
    } else if cond.exit_short[i] {
        Pending::Close
    } else {
        Pending::Nothing
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
