//! The portfolio backtest loop: many tokens at once, the top K by trader
//! grade held with equal weights, rebalanced every N bars, all in the
//! stablecoin (cash) while the market regime is BEAR. One pass over the
//! bars, no allocation per bar beyond the fills and trades it records.
//! Free of PyO3 (`py::backtest_portfolio` is the binding). The same text is
//! in `docs/portfolio-backtest.md`.
//!
//! # Inputs
//!
//! `time_ms[n]` bar open times, strictly ascending; `open`, `close` and
//! `score` `[n, m]` row-major (bar-major); `bear[n]`. A NaN price means the
//! asset has no candle at that bar: it can be neither bought nor sold there
//! and is valued at its last known close. Finite prices must be positive.
//! `score[i, a]` is the trader grade (0-100) at bar i's close; a token is
//! eligible at bar i when its score is finite and `>= min_score` and its
//! close at i is finite.
//!
//! # Config
//!
//! `cash` (10000.0, > 0), `fee` (fraction of the notional per fill, 0.0),
//! `slippage` (0.0; both in [0, 1)), `top_k` (required, >= 1),
//! `rebalance_every` (bars, required, >= 1), `min_score` (0.0),
//! `whole_units` (false), `start` (0) and `end` (n, exclusive), with
//! `0 <= start < end <= n`. A refusal names the field or array to fix.
//!
//! # The loop
//!
//! For i in start..end:
//!
//! 1. **Fills at `open[i]`** of the orders decided at bar i-1's close. Sells
//!    first: a sell of q units fills at `open * (1 - slippage)`, cash gains
//!    `q * price - fee * q * price`. Then buys with the cash now available,
//!    at `open * (1 + slippage)`, each costing `q * price * (1 + fee)`; when
//!    the buys together cost more than the cash, every buy is scaled down by
//!    the same factor `cash / cost` (cash never goes negative: a rounding
//!    remainder below zero is set to 0). An asset whose `open[i]` is NaN
//!    cannot trade at i: its order is dropped (the next decision retries).
//!    Quantities are fractional unless `whole_units`, where targets are
//!    floored and a scaled-down buy is floored again.
//! 2. **Valuation at the close.** Each asset's mark is its last finite
//!    close; `equity[i] = cash + sum(qty * mark)`, `exposure[i] =
//!    sum(qty * mark) / equity[i]` (0 when the equity is 0).
//! 3. **Decision at bar i's close**, only if `i < end - 1` (no fill can
//!    follow the last bar), on rebalance bars (`(i - start) %
//!    rebalance_every == 0`, reason REBALANCE = 1) and whenever `i > start`
//!    and `bear[i] != bear[i-1]` (a regime change acts at once, reason
//!    REGIME = 2; a bar that is both has reason 3). Target weights: if
//!    `bear[i]`, nothing (all cash, the stablecoin, which earns nothing);
//!    else `1/k` on each of the top `k = min(top_k, eligible)` eligible
//!    tokens by `score[i]` (ties: lower column first), 0 elsewhere. Target
//!    quantity = `weight * equity[i] / close[i]`: sized at the decision
//!    close and filled at the next open, the usual approximation (the open
//!    differs from the close, so the filled weights drift a little from the
//!    targets, and buys may be scaled down as in 1). Order = target - held;
//!    an order whose notional (`|order| * close[i]`, or the mark when the
//!    close is NaN) is below `1e-9 * equity[i]` is skipped (no dust trades).
//!    Each decision records one row of `weights`: every asset's share of the
//!    equity right after the decision's fills at bar i+1, valued at
//!    `open[i+1]` (the mark where the open is NaN), with `rebalance_bars` =
//!    i+1, the fill bar; and one row of `target_weights`, the weights it
//!    aimed at (`1/k` on the picked tokens, all 0 in BEAR).
//!
//! At `end - 1`, after step 1, every position is closed at its mark (the
//! close at `end - 1`, or the last known close) less slippage, fee paid,
//! reason END = 4, before step 2: the final equity is the cash.
//!
//! # Outputs
//!
//! `equity`, `cash`, `exposure` and `benchmark` have length n and are NaN
//! outside `[start, end)`. `benchmark` is an equal-weight buy and hold of
//! the tokens with a finite close at `start`, bought at `close[start]`
//! without fees or slippage and valued at their marks (the starting cash
//! when no token has a close at `start`). Every fill is recorded (bar,
//! time, asset, signed qty, price after slippage, fee, reason). A trade is
//! one position episode of one asset, from a buy that lifts its quantity
//! from 0 to the fill that brings it back to 0: entry/exit bar and time
//! (first buy, last sell), entry/exit price (qty-weighted mean of its buy /
//! sell fill prices), size (the largest quantity held), fees, pnl = sells -
//! buys - fees over its fills, `return_pct = pnl / bought notional * 100`,
//! `duration_ms`, the exit reason (the reason of its last fill) and the
//! asset. Trades are in the order they close. Since all cash moves through
//! fills and every position is closed at the end, the sum of the trades'
//! pnl is the final equity minus the starting cash.

mod book;
mod config;
mod engine;
mod select;
#[cfg(test)]
mod tests;

pub use book::{Fills, Trades};
pub use config::Config;
pub use engine::{run, Output};

/// Fill reason: a scheduled rebalance.
pub const REASON_REBALANCE: u8 = 1;
/// Fill reason: the market regime changed at the decision bar.
pub const REASON_REGIME: u8 = 2;
/// Fill reason: the closing of every position at the last bar.
pub const REASON_END: u8 = 4;

/// A bar-major `[rows, cols]` matrix borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    pub data: &'a [f64],
    pub rows: usize,
    pub cols: usize,
}

impl<'a> Matrix<'a> {
    pub fn new(data: &'a [f64], rows: usize, cols: usize) -> Self {
        Matrix { data, rows, cols }
    }

    #[inline]
    pub(crate) fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// The aligned inputs of one backtest.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub time_ms: &'a [i64],
    pub open: Matrix<'a>,
    pub close: Matrix<'a>,
    pub score: Matrix<'a>,
    pub bear: &'a [bool],
}
