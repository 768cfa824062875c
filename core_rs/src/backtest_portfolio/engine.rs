//! The bar loop (see the module documentation for the rules it follows).

use super::book::{Book, Fills, Trades};
use super::config::{Checked, Config};
use super::select;
use super::{Inputs, REASON_END, REASON_REBALANCE, REASON_REGIME};
use crate::CoreError;

/// Below this share of the equity an order is dust and is not sent.
const DUST: f64 = 1e-9;

/// What a backtest produces; the series are NaN outside `[start, end)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub equity: Vec<f64>,
    pub cash: Vec<f64>,
    pub exposure: Vec<f64>,
    pub benchmark: Vec<f64>,
    /// `[rebalance_bars.len(), assets]`, row-major.
    pub weights: Vec<f32>,
    /// The decisions' target weights, `[rebalance_bars.len(), assets]`.
    pub target_weights: Vec<f32>,
    pub rebalance_bars: Vec<i64>,
    pub fills: Fills,
    pub trades: Trades,
}

#[derive(Clone, Copy, Debug)]
struct Order {
    asset: usize,
    qty: f64,
}

/// Runs the backtest; a `CoreError` names the argument to fix.
pub fn run(inputs: &Inputs<'_>, config: &Config) -> Result<Output, CoreError> {
    let cfg = config.check(inputs)?;
    Ok(Engine::new(inputs, &cfg).run())
}

struct Engine<'a> {
    inputs: &'a Inputs<'a>,
    cfg: &'a Checked,
    book: Book<'a>,
    orders: Vec<Order>,
    reason: u8,
    picks: Vec<usize>,
    /// Per-asset scratch: target units in `decide`, values in `record_weights`.
    targets: Vec<f64>,
    out: Output,
}

impl<'a> Engine<'a> {
    fn new(inputs: &'a Inputs<'a>, cfg: &'a Checked) -> Self {
        let n = inputs.time_ms.len();
        let m = inputs.open.cols;
        Engine {
            inputs,
            cfg,
            book: Book::new(cfg, m, inputs.time_ms),
            orders: Vec::with_capacity(m),
            reason: 0,
            picks: Vec::with_capacity(m),
            targets: vec![0.0; m],
            out: Output {
                equity: vec![f64::NAN; n],
                cash: vec![f64::NAN; n],
                exposure: vec![f64::NAN; n],
                benchmark: vec![f64::NAN; n],
                weights: Vec::new(),
                target_weights: Vec::new(),
                rebalance_bars: Vec::new(),
                fills: Fills::default(),
                trades: Trades::default(),
            },
        }
    }

    fn run(mut self) -> Output {
        let (start, end) = (self.cfg.start, self.cfg.end);
        let mut bench = Benchmark::new(self.inputs.close.row(start), self.cfg.cash);
        let mut pending = false;
        for i in start..end {
            if pending {
                self.execute(i);
                self.record_weights(i);
            }
            let close = self.inputs.close.row(i);
            self.book.mark_to(close);
            if i == end - 1 {
                self.close_all(i);
            }
            let holdings = self.book.holdings();
            let equity = self.book.cash + holdings;
            self.out.equity[i] = equity;
            self.out.cash[i] = self.book.cash;
            self.out.exposure[i] = if equity > 0.0 { holdings / equity } else { 0.0 };
            self.out.benchmark[i] = bench.value(close);
            pending = i + 1 < end && self.decide(i, equity);
        }
        self.out.fills = std::mem::take(&mut self.book.fills);
        self.out.trades = std::mem::take(&mut self.book.trades);
        self.out
    }

    /// Step 3: the decision at bar i's close; false on bars without one.
    fn decide(&mut self, i: usize, equity: f64) -> bool {
        let bear = self.inputs.bear;
        let mut reason = 0;
        if (i - self.cfg.start) % self.cfg.rebalance_every == 0 {
            reason |= REASON_REBALANCE;
        }
        if i > self.cfg.start && bear[i] != bear[i - 1] {
            reason |= REASON_REGIME;
        }
        if reason == 0 {
            return false;
        }
        let close = self.inputs.close.row(i);
        if bear[i] {
            self.picks.clear();
        } else {
            let score = self.inputs.score.row(i);
            select::top_k(
                score,
                close,
                self.cfg.min_score,
                self.cfg.top_k,
                &mut self.picks,
            );
        }
        select::targets(
            &self.picks,
            close,
            equity,
            self.cfg.whole_units,
            &mut self.targets,
        );
        let row = self.out.target_weights.len();
        self.out
            .target_weights
            .resize(row + self.targets.len(), 0.0);
        for &a in &self.picks {
            self.out.target_weights[row + a] = (1.0 / self.picks.len() as f64) as f32;
        }
        self.orders.clear();
        for (a, (&target, &held)) in self.targets.iter().zip(&self.book.qty).enumerate() {
            let qty = target - held;
            let price = if close[a].is_finite() {
                close[a]
            } else {
                self.book.mark[a]
            };
            if qty != 0.0 && qty.abs() * price >= DUST * equity {
                self.orders.push(Order { asset: a, qty });
            }
        }
        self.reason = reason;
        true
    }

    /// Step 1: the pending orders fill at `open[i]`, sells first.
    fn execute(&mut self, i: usize) {
        let open = self.inputs.open.row(i);
        let (fee, slip, reason) = (self.cfg.fee, self.cfg.slippage, self.reason);
        for o in self
            .orders
            .iter()
            .filter(|o| o.qty < 0.0 && open[o.asset].is_finite())
        {
            self.book
                .fill(i, o.asset, o.qty, open[o.asset] * (1.0 - slip), reason);
        }
        let cost: f64 = self
            .orders
            .iter()
            .filter(|o| o.qty > 0.0 && open[o.asset].is_finite())
            .map(|o| o.qty * open[o.asset] * (1.0 + slip) * (1.0 + fee))
            .sum();
        let scale = if cost > self.book.cash {
            self.book.cash / cost
        } else {
            1.0
        };
        for o in self
            .orders
            .iter()
            .filter(|o| o.qty > 0.0 && open[o.asset].is_finite())
        {
            let mut qty = o.qty;
            if scale < 1.0 {
                qty *= scale;
                if self.cfg.whole_units {
                    qty = qty.floor();
                }
            }
            if qty > 0.0 {
                self.book
                    .fill(i, o.asset, qty, open[o.asset] * (1.0 + slip), reason);
            }
        }
        // Scaled buys spend the cash to within rounding; never below 0.
        if self.book.cash < 0.0 {
            self.book.cash = 0.0;
        }
    }

    /// The weights right after the fills of bar i, valued at its open.
    fn record_weights(&mut self, i: usize) {
        let open = self.inputs.open.row(i);
        let mut total = self.book.cash;
        for (a, (&q, v)) in self
            .book
            .qty
            .iter()
            .zip(self.targets.iter_mut())
            .enumerate()
        {
            let price = if open[a].is_finite() {
                open[a]
            } else {
                self.book.mark[a]
            };
            *v = if q > 0.0 { q * price } else { 0.0 };
            total += *v;
        }
        let share = |v: f64| if total > 0.0 { (v / total) as f32 } else { 0.0 };
        self.out
            .weights
            .extend(self.targets.iter().map(|&v| share(v)));
        self.out.rebalance_bars.push(i as i64);
    }

    /// Every position closed at its mark at the last bar.
    fn close_all(&mut self, i: usize) {
        let slip = self.cfg.slippage;
        for a in 0..self.book.qty.len() {
            let q = self.book.qty[a];
            if q > 0.0 {
                let price = self.book.mark[a] * (1.0 - slip);
                self.book.fill(i, a, -q, price, REASON_END);
            }
        }
    }
}

/// Equal-weight buy and hold from `close[start]`, no costs.
struct Benchmark {
    units: Vec<f64>,
    mark: Vec<f64>,
    cash: f64,
}

impl Benchmark {
    fn new(close: &[f64], cash: f64) -> Self {
        let k = close.iter().filter(|c| c.is_finite()).count();
        let units = close
            .iter()
            .map(|&c| {
                if c.is_finite() {
                    cash / k as f64 / c
                } else {
                    0.0
                }
            })
            .collect();
        Benchmark {
            units,
            mark: close.to_vec(),
            cash: if k == 0 { cash } else { 0.0 },
        }
    }

    fn value(&mut self, close: &[f64]) -> f64 {
        let mut v = self.cash;
        for ((u, m), &c) in self.units.iter().zip(self.mark.iter_mut()).zip(close) {
            if c.is_finite() {
                *m = c;
            }
            if *u > 0.0 {
                v += u * *m;
            }
        }
        v
    }
}
