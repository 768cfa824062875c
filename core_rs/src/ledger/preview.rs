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
