//! The portfolio's book: cash, quantities and marks, every fill, and the
//! position episodes that become trades.

use super::config::Checked;

/// Every fill, one entry per column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fills {
    pub bar: Vec<i64>,
    pub time_ms: Vec<i64>,
    pub asset: Vec<i64>,
    /// Positive for a buy, negative for a sell.
    pub qty: Vec<f64>,
    /// After slippage.
    pub price: Vec<f64>,
    pub fee: Vec<f64>,
    pub reason: Vec<u8>,
}

/// One row per position episode, the columns of the single-asset engine's
/// trades plus `asset`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trades {
    pub entry_bar: Vec<i64>,
    pub exit_bar: Vec<i64>,
    pub entry_time_ms: Vec<i64>,
    pub exit_time_ms: Vec<i64>,
    pub entry_price: Vec<f64>,
    pub exit_price: Vec<f64>,
    pub size: Vec<f64>,
    pub pnl: Vec<f64>,
    pub return_pct: Vec<f64>,
    pub fees: Vec<f64>,
    pub duration_ms: Vec<i64>,
    pub exit_reason: Vec<u8>,
    pub asset: Vec<i64>,
}

/// The running sums of an open position episode.
#[derive(Clone, Copy, Debug, Default)]
struct Episode {
    entry_bar: usize,
    bought_qty: f64,
    bought: f64,
    sold_qty: f64,
    sold: f64,
    fees: f64,
    size: f64,
}

pub(crate) struct Book<'a> {
    pub cash: f64,
    pub qty: Vec<f64>,
    /// Last known close; NaN until the first, which only happens at
    /// quantity 0.
    pub mark: Vec<f64>,
    episodes: Vec<Episode>,
    pub fills: Fills,
    pub trades: Trades,
    time_ms: &'a [i64],
    fee: f64,
}

impl<'a> Book<'a> {
    pub fn new(cfg: &Checked, assets: usize, time_ms: &'a [i64]) -> Self {
        Book {
            cash: cfg.cash,
            qty: vec![0.0; assets],
            mark: vec![f64::NAN; assets],
            episodes: vec![Episode::default(); assets],
            fills: Fills::default(),
            trades: Trades::default(),
            time_ms,
            fee: cfg.fee,
        }
    }

    /// Takes the finite closes of bar `close` as the new marks.
    pub fn mark_to(&mut self, close: &[f64]) {
        for (m, &c) in self.mark.iter_mut().zip(close) {
            if c.is_finite() {
                *m = c;
            }
        }
    }

    /// The value of the positions at their marks.
    pub fn holdings(&self) -> f64 {
        self.qty
            .iter()
            .zip(&self.mark)
            .filter(|(&q, _)| q > 0.0)
            // Not .sum(): an empty f64 sum is -0.0, which would show as a
            // negative zero exposure.
            .fold(0.0, |acc, (&q, &m)| acc + q * m)
    }

    /// Records one fill of `qty` units (signed) at `price`, fee paid.
    pub fn fill(&mut self, bar: usize, asset: usize, qty: f64, price: f64, reason: u8) {
        let notional = qty.abs() * price;
        let fee = self.fee * notional;
        let held = self.qty[asset];
        let ep = &mut self.episodes[asset];
        if held == 0.0 {
            *ep = Episode {
                entry_bar: bar,
                ..Episode::default()
            };
        }
        let after = if qty > 0.0 {
            self.cash -= notional + fee;
            ep.bought_qty += qty;
            ep.bought += notional;
            held + qty
        } else {
            self.cash += notional - fee;
            ep.sold_qty -= qty;
            ep.sold += notional;
            // A sell of the whole position must land on exactly 0.
            (held + qty).max(0.0)
        };
        ep.fees += fee;
        ep.size = ep.size.max(after);
        self.qty[asset] = after;
        // Only tokens with a close at the decision bar are bought, so every
        // position has a mark.
        debug_assert!(!self.mark[asset].is_nan());
        let time = self.time_ms[bar];
        let f = &mut self.fills;
        f.bar.push(bar as i64);
        f.time_ms.push(time);
        f.asset.push(asset as i64);
        f.qty.push(qty);
        f.price.push(price);
        f.fee.push(fee);
        f.reason.push(reason);
        if after == 0.0 {
            self.close_episode(bar, asset, reason);
        }
    }

    fn close_episode(&mut self, bar: usize, asset: usize, reason: u8) {
        let ep = self.episodes[asset];
        let t = &mut self.trades;
        let entry_time = self.time_ms[ep.entry_bar];
        let exit_time = self.time_ms[bar];
        let pnl = ep.sold - ep.bought - ep.fees;
        t.entry_bar.push(ep.entry_bar as i64);
        t.exit_bar.push(bar as i64);
        t.entry_time_ms.push(entry_time);
        t.exit_time_ms.push(exit_time);
        t.entry_price.push(ep.bought / ep.bought_qty);
        t.exit_price.push(ep.sold / ep.sold_qty);
        t.size.push(ep.size);
        t.pnl.push(pnl);
        t.return_pct.push(pnl / ep.bought * 100.0);
        t.fees.push(ep.fees);
        t.duration_ms.push(exit_time - entry_time);
        t.exit_reason.push(reason);
        t.asset.push(asset as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_averages_its_fills_and_closes_at_zero() {
        let cfg = Checked {
            cash: 1000.0,
            fee: 0.01,
            slippage: 0.0,
            top_k: 1,
            rebalance_every: 1,
            min_score: 0.0,
            whole_units: false,
            start: 0,
            end: 5,
        };
        let times = [0, 5, 20, 60, 100];
        let mut book = Book::new(&cfg, 2, &times);
        book.mark_to(&[2.0, 2.0]);
        // Buy 10 @ 2 and 10 @ 4, sell 5 @ 5 and 15 @ 6 (fee 1 % of each).
        book.fill(0, 1, 10.0, 2.0, 1);
        book.fill(1, 1, 10.0, 4.0, 1);
        book.fill(2, 1, -5.0, 5.0, 2);
        assert!(book.trades.pnl.is_empty());
        book.fill(3, 1, -15.0, 6.0, 4);
        assert_eq!(book.qty, vec![0.0, 0.0]);
        let t = &book.trades;
        // entry (20 + 40) / 20 = 3; exit (25 + 90) / 20 = 5.75; size 20;
        // fees 0.01 * (20 + 40 + 25 + 90) = 1.75; pnl 115 - 60 - 1.75.
        assert_eq!((t.entry_bar[0], t.exit_bar[0], t.asset[0]), (0, 3, 1));
        assert_eq!((t.duration_ms[0], t.exit_reason[0]), (60, 4));
        assert!((t.entry_price[0] - 3.0).abs() < 1e-12);
        assert!((t.exit_price[0] - 5.75).abs() < 1e-12);
        assert_eq!(t.size[0], 20.0);
        assert!((t.fees[0] - 1.75).abs() < 1e-12);
        assert!((t.pnl[0] - 53.25).abs() < 1e-12);
        assert!((t.return_pct[0] - 88.75).abs() < 1e-12);
        // Cash: 1000 - 60.6 + 24.75 + 89.1.
        assert!((book.cash - 1053.25).abs() < 1e-12);
        // A new buy opens a new episode.
        book.fill(4, 1, 1.0, 7.0, 1);
        book.fill(4, 1, -1.0, 7.0, 4);
        assert_eq!(book.trades.entry_bar, vec![0, 4]);
    }
}
