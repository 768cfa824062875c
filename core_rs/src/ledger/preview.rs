//! What a sale now would realize, read off the final pools of a replay
//! without changing them: the same piece order, basis shares and proceeds
//! split as a replayed disposal.

use super::calendar::long_term;
use super::engine::{Method, ReplayResult};
use super::fixed::{self, mul_div};
use super::pool::Take;
use super::LedgerError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    /// None when a consumed lot's cost is unknown.
    pub basis: Option<i128>,
    pub proceeds: i128,
    pub short_gain: Option<i128>,
    pub long_gain: Option<i128>,
}

pub fn preview_disposal(
    r: &ReplayResult,
    asset: u32,
    wallet: u32,
    qty: i128,
    proceeds: i128,
    time_ms: i64,
    method: Method,
) -> Result<Preview, LedgerError> {
    if qty <= 0 {
        return Err(LedgerError::new(format!(
            "qty must be greater than zero, got '{}'",
            fixed::format(qty)
        )));
    }
    let short = |have: i128| {
        LedgerError::new(format!(
            "asset {asset} wallet {wallet} short by {}",
            fixed::format(qty - have)
        ))
    };
    let pool_wallet = if r.per_wallet { wallet } else { 0 };
    let Some(pid) = r.book.find_pool(asset, pool_wallet) else {
        return Err(short(0));
    };
    let pool = &r.book.pools[pid as usize];
    if pool.qty < qty {
        return Err(short(pool.qty));
    }
    let (how, _) = method.take();
    // (acquired_ms, qty, basis, unknown) per piece.
    let mut pieces: Vec<(i64, i128, i128, bool)> = Vec::new();
    let mut rem = qty;
    if let Take::Average = how {
        let basis = if qty == pool.qty {
            pool.cost
        } else {
            mul_div(pool.cost, qty, pool.qty)?
        };
        let unknown = pool.unknown > 0;
        let mut rest = basis;
        for lot in r.book.order(pid, Take::Fifo) {
            let part = rem.min(lot.qty);
            let share = if part == rem {
                rest
            } else {
                mul_div(rest, part, rem)?
            };
            pieces.push((lot.key.0, part, share, unknown));
            rest -= share;
            rem -= part;
            if rem == 0 {
                break;
            }
        }
    } else {
        for lot in r.book.order(pid, how) {
            let part = rem.min(lot.qty);
            let basis = if part == lot.qty {
                lot.cost
            } else {
                mul_div(lot.cost, part, lot.qty)?
            };
            pieces.push((lot.key.0, part, basis, lot.unknown));
            rem -= part;
            if rem == 0 {
                break;
            }
        }
    }
    let mut out = Preview {
        basis: Some(0),
        proceeds,
        short_gain: Some(0),
        long_gain: Some(0),
    };
    let (mut rest, mut rest_qty) = (proceeds, qty);
    for (acquired, part, basis, unknown) in pieces {
        let share = if part == rest_qty {
            rest
        } else {
            mul_div(rest, part, rest_qty)?
        };
        rest -= share;
        rest_qty -= part;
        if unknown {
            out.basis = None;
            out.short_gain = None;
            out.long_gain = None;
            continue;
        }
        out.basis = out.basis.map(|b| fixed::add(b, basis)).transpose()?;
        let gain = fixed::sub(share, basis)?;
        let term = if long_term(acquired, time_ms) {
            &mut out.long_gain
        } else {
            &mut out.short_gain
        };
        *term = term.map(|g| fixed::add(g, gain)).transpose()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::calendar::MS_PER_DAY;
    use crate::ledger::engine::{replay, ReplayOptions};
    use crate::ledger::fixed::parse;
    use crate::ledger::{Ledger, Leg, ACQUIRE};

    fn q(s: &str) -> i128 {
        parse(s).unwrap()
    }

    fn buy(tx: i64, day: i64, wallet: u32, qty: &str, cost: &str) -> Leg {
        Leg {
            time_ms: day * MS_PER_DAY,
            tx,
            leg: 0,
            kind: ACQUIRE,
            asset: 7,
            wallet,
            to_wallet: 0,
            qty: q(qty),
            amount: (!cost.is_empty()).then(|| q(cost)),
            selections: None,
        }
    }

    fn book(per_wallet: bool) -> ReplayResult {
        let mut l = Ledger::new();
        // Wallet 1: 1 for 100 (day 0); wallet 2: 1 for 300 (day 10), and 1
        // of unknown cost (day 20).
        l.append(vec![
            buy(1, 0, 1, "1", "100"),
            buy(2, 10, 2, "1", "300"),
            buy(3, 20, 2, "1", ""),
        ])
        .unwrap();
        replay(
            &mut l,
            &ReplayOptions::new(&[(0, 1)], per_wallet, false).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn lifo_and_per_wallet_pools() {
        let r = book(true);
        // Wallet 1 holds only lot 1: selling 0.5 for 80 on day 400 realizes
        // 80 - 50 = 30, long (400 days).
        let p =
            preview_disposal(&r, 7, 1, q("0.5"), q("80"), 400 * MS_PER_DAY, Method::Lifo).unwrap();
        assert_eq!(
            (p.basis, p.long_gain, p.short_gain),
            (Some(q("50")), Some(q("30")), Some(0))
        );
        // Wallet 2 has 2: 3 is short by 1.
        let e = preview_disposal(&r, 7, 2, q("3"), q("1"), 0, Method::Fifo).unwrap_err();
        assert_eq!(e.to_string(), "asset 7 wallet 2 short by 1");
    }

    #[test]
    fn unknown_costs_make_the_basis_unknown() {
        let r = book(false);
        // Universal (the wallet is ignored): FIFO 2 takes lots 1 and 2
        // (basis 400); LIFO 1 takes lot 3, of unknown cost.
        let p =
            preview_disposal(&r, 7, 9, q("2"), q("500"), 30 * MS_PER_DAY, Method::Fifo).unwrap();
        assert_eq!((p.basis, p.short_gain), (Some(q("400")), Some(q("100"))));
        let p =
            preview_disposal(&r, 7, 9, q("1"), q("500"), 30 * MS_PER_DAY, Method::Lifo).unwrap();
        assert_eq!((p.basis, p.short_gain, p.proceeds), (None, None, q("500")));
        // AVERAGE over a pool holding an unknown cost: unknown.
        let p = preview_disposal(&r, 7, 0, q("1"), q("1"), 0, Method::AverageCost).unwrap();
        assert_eq!(p.basis, None);
        assert!(preview_disposal(&r, 7, 0, q("0"), q("1"), 0, Method::Fifo).is_err());
    }
}
