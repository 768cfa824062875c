//! An import batch's decisions, in one pass: services/portfolio/bulk_import's
//! rules for rows the fast path parsed, against the book's balances.
//!
//! In time order (then row order), each row is:
//! - a duplicate or a conflict when the ledger already holds its client id
//!   (same content hash or not);
//! - a twin of an earlier row of the batch with the same client id and
//!   content (it gets that row's outcome), or a conflict when the content
//!   differs;
//! - short when a leg would take a wallet below zero (the first such key is
//!   named) and the portfolio does not allow negative balances;
//! - else taken, and its legs move the running balances.
//!
//! A batch holding a row dated before the latest transaction of a key it
//! touches is not decided at all (`Unfit`): backdated rows need the
//! whole-ledger check of the general path. So is one whose balances leave
//! the ledger's fixed-point range: Python's decimals take it instead.

use std::collections::HashMap;

use super::legs::{ACQUIRE, MOVE};
use crate::ledger::fixed;

/// Earlier than any transaction: the last time of a key never seen.
pub const NEVER: i64 = -(1 << 62);

/// (asset, wallet).
pub type Key<'a> = (&'a str, &'a str);
/// A key's balance and the time of its latest transaction.
pub type Balance = (i128, i64);

/// A leg as the balances see it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLeg<'a> {
    pub kind: u8,
    pub asset: &'a str,
    pub wallet: &'a str,
    pub to_wallet: &'a str,
    pub qty: i128,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow<'a> {
    /// The row's number in the import (ties in time keep this order).
    pub row: i64,
    pub client_id: &'a str,
    pub content_hash: &'a str,
    pub time_ms: i64,
    pub legs: Vec<BatchLeg<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<'a> {
    /// Written; the number is its place among the batch's taken rows (its
    /// seq is the batch's first plus that).
    Taken(usize),
    /// The ledger holds this client id with the same content.
    Duplicate,
    /// The client id was used for different content.
    Conflict,
    /// The same client id and content as the batch's row at this index:
    /// that row's outcome is this one's.
    Twin(usize),
    /// Would take `wallet` below zero by `shortfall` (positive).
    Short {
        asset: &'a str,
        wallet: &'a str,
        shortfall: i128,
    },
}

/// The batch could not be decided here; nothing was changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Unfit<E> {
    Backdated,
    OutOfRange,
    /// A lookup failed.
    Lookup(E),
}

#[derive(Debug, Default, PartialEq)]
pub struct Decided<'a> {
    /// One per input row, in input order.
    pub outcomes: Vec<Outcome<'a>>,
    /// The input indices of the taken rows, in the order they are written.
    pub taken: Vec<usize>,
    /// Balance and last time of every key a taken row changed, after the batch.
    pub balances: Vec<(Key<'a>, Balance)>,
}

/// Decides `rows`. `known(client_id, content_hash)` says whether the ledger
/// (or a batch not yet committed) holds the id, and with the same content;
/// `balance(asset, wallet)` is a key's balance and last time before the
/// batch (`(0, NEVER)` for a key never seen). `check`: refuse oversells.
pub fn decide<'a, E>(
    rows: &[BatchRow<'a>],
    check: bool,
    mut known: impl FnMut(&str, &str) -> Result<Option<bool>, E>,
    mut balance: impl FnMut(&str, &str) -> Result<Option<Balance>, E>,
) -> Result<Decided<'a>, Unfit<E>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].time_ms, rows[i].row));
    let mut outcomes = vec![Outcome::Duplicate; rows.len()];
    let mut taken = Vec::new();
    // Keys touched so far: balance and last time, after the rows taken.
    let mut overlay: HashMap<Key<'a>, Balance> = HashMap::new();
    let mut firsts: HashMap<&'a str, usize> = HashMap::new();
    let mut moves: Vec<(Key<'a>, i128)> = Vec::with_capacity(6);
    for i in order {
        let r = &rows[i];
        if let Some(same) = known(r.client_id, r.content_hash).map_err(Unfit::Lookup)? {
            outcomes[i] = if same {
                Outcome::Duplicate
            } else {
                Outcome::Conflict
            };
            continue;
        }
        if let Some(&first) = firsts.get(r.client_id) {
            outcomes[i] = if rows[first].content_hash == r.content_hash {
                Outcome::Twin(first)
            } else {
                Outcome::Conflict
            };
            continue;
        }
        firsts.insert(r.client_id, i);
        moves.clear();
        let mut short = None;
        for leg in &r.legs {
            let own = if leg.kind == ACQUIRE {
                leg.qty
            } else {
                -leg.qty
            };
            let gives = (leg.kind == MOVE).then_some(((leg.asset, leg.to_wallet), leg.qty));
            for (key, delta) in std::iter::once(((leg.asset, leg.wallet), own)).chain(gives) {
                let before = match overlay.get(&key) {
                    Some(&found) => found,
                    None => {
                        let found = balance(key.0, key.1)
                            .map_err(Unfit::Lookup)?
                            .ok_or(Unfit::OutOfRange)?;
                        overlay.insert(key, found);
                        found
                    }
                };
                if before.1 > r.time_ms {
                    return Err(Unfit::Backdated);
                }
                let slot = match moves.iter().position(|(k, _)| *k == key) {
                    Some(p) => p,
                    None => {
                        moves.push((key, before.0));
                        moves.len() - 1
                    }
                };
                let after = fixed::add(moves[slot].1, delta).map_err(|_| Unfit::OutOfRange)?;
                moves[slot].1 = after;
                if check && after < 0 && short.is_none() {
                    short = Some(Outcome::Short {
                        asset: key.0,
                        wallet: key.1,
                        shortfall: -after,
                    });
                }
            }
        }
        if let Some(short) = short {
            outcomes[i] = short;
            continue;
        }
        for &(key, after) in &moves {
            overlay.insert(key, (after, r.time_ms));
        }
        outcomes[i] = Outcome::Taken(taken.len());
        taken.push(i);
    }
    // Keys only looked at (by refused rows) keep what the book has.
    let mut changed: Vec<Key<'a>> = Vec::new();
    for &i in &taken {
        for leg in &rows[i].legs {
            changed.push((leg.asset, leg.wallet));
            if leg.kind == MOVE {
                changed.push((leg.asset, leg.to_wallet));
            }
        }
    }
    changed.sort_unstable();
    changed.dedup();
    let balances = changed
        .into_iter()
        .map(|key| (key, overlay[&key]))
        .collect();
    Ok(Decided {
        outcomes,
        taken,
        balances,
    })
}

/// `tx_` and 24 hex digits: 11 of the clock in milliseconds and 13 random
/// (services/portfolio/ledger_writer.new_tx_id), the random part the low 52
/// bits of a splitmix64 sequence from `seed`: distinct ids within a batch
/// without a system call per id.
pub fn tx_ids(count: usize, clock_ms: i64, seed: u64) -> Vec<String> {
    let clock = clock_ms.rem_euclid(1 << 44);
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            format!("tx_{clock:011x}{:013x}", z & ((1 << 52) - 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portfolio_rows::{DISPOSE, REMOVE};

    const U: i128 = fixed::ONE;

    fn leg<'a>(kind: u8, asset: &'a str, wallet: &'a str, to: &'a str, qty: i128) -> BatchLeg<'a> {
        BatchLeg {
            kind,
            asset,
            wallet,
            to_wallet: to,
            qty,
        }
    }

    fn row<'a>(
        n: i64,
        cid: &'a str,
        hash: &'a str,
        t: i64,
        legs: Vec<BatchLeg<'a>>,
    ) -> BatchRow<'a> {
        BatchRow {
            row: n,
            client_id: cid,
            content_hash: hash,
            time_ms: t,
            legs,
        }
    }

    type Book = HashMap<Key<'static>, Balance>;

    fn run<'a>(
        rows: &[BatchRow<'a>],
        check: bool,
        ledger: &[(&str, &str)],
        book: &Book,
    ) -> Result<Decided<'a>, Unfit<()>> {
        decide(
            rows,
            check,
            |cid, hash| {
                Ok(ledger
                    .iter()
                    .find(|(c, _)| *c == cid)
                    .map(|(_, h)| *h == hash))
            },
            |a, w| Ok(Some(book.get(&(a, w)).copied().unwrap_or((0, NEVER)))),
        )
    }

    #[test]
    fn takes_rows_in_time_order_and_refuses_an_oversell() {
        // Row 0 sells what row 1 (earlier) buys; row 2 sells more than is left.
        let rows = [
            row(
                0,
                "a",
                "h0",
                20,
                vec![leg(DISPOSE, "BTC", "main", "", 2 * U)],
            ),
            row(
                1,
                "b",
                "h1",
                10,
                vec![leg(ACQUIRE, "BTC", "main", "", 3 * U)],
            ),
            row(
                2,
                "c",
                "h2",
                30,
                vec![leg(DISPOSE, "BTC", "main", "", 5 * U / 2)],
            ),
        ];
        let d = run(&rows, true, &[], &Book::new()).unwrap();
        assert_eq!(d.taken, vec![1, 0]);
        assert_eq!(d.outcomes[1], Outcome::Taken(0));
        assert_eq!(d.outcomes[0], Outcome::Taken(1));
        assert_eq!(
            d.outcomes[2],
            Outcome::Short {
                asset: "BTC",
                wallet: "main",
                shortfall: 3 * U / 2
            }
        );
        assert_eq!(d.balances, vec![(("BTC", "main"), (U, 20))]);
        // Allowed to go negative: all three go in.
        let d = run(&rows, false, &[], &Book::new()).unwrap();
        assert_eq!(d.taken, vec![1, 0, 2]);
        assert_eq!(d.balances, vec![(("BTC", "main"), (-3 * U / 2, 30))]);
    }

    #[test]
    fn duplicates_twins_and_conflicts() {
        let rows = [
            row(0, "old", "same", 1, vec![leg(ACQUIRE, "ETH", "w", "", U)]),
            row(1, "old2", "other", 1, vec![leg(ACQUIRE, "ETH", "w", "", U)]),
            row(2, "new", "x", 2, vec![leg(ACQUIRE, "ETH", "w", "", U)]),
            row(3, "new", "x", 3, vec![leg(ACQUIRE, "ETH", "w", "", U)]),
            row(4, "new", "y", 4, vec![leg(ACQUIRE, "ETH", "w", "", U)]),
        ];
        let ledger = [("old", "same"), ("old2", "was")];
        let d = run(&rows, true, &ledger, &Book::new()).unwrap();
        assert_eq!(
            d.outcomes,
            vec![
                Outcome::Duplicate,
                Outcome::Conflict,
                Outcome::Taken(0),
                Outcome::Twin(2),
                Outcome::Conflict
            ]
        );
        assert_eq!(d.balances, vec![(("ETH", "w"), (U, 2))]);
    }

    #[test]
    fn a_twin_of_a_short_row_is_short_through_it() {
        let rows = [
            row(0, "s", "h", 5, vec![leg(REMOVE, "SOL", "w", "", U)]),
            row(1, "s", "h", 6, vec![leg(REMOVE, "SOL", "w", "", U)]),
        ];
        let d = run(&rows, true, &[], &Book::new()).unwrap();
        assert!(matches!(d.outcomes[0], Outcome::Short { .. }));
        assert_eq!(d.outcomes[1], Outcome::Twin(0));
        assert!(d.taken.is_empty() && d.balances.is_empty());
    }

    #[test]
    fn a_move_takes_from_one_wallet_and_gives_to_another() {
        let mut book = Book::new();
        book.insert(("BTC", "a"), (2 * U, 100));
        let rows = [row(0, "t", "h", 100, vec![leg(MOVE, "BTC", "a", "b", U)])];
        let d = run(&rows, true, &[], &book).unwrap();
        assert_eq!(d.taken, vec![0]);
        assert_eq!(
            d.balances,
            vec![(("BTC", "a"), (U, 100)), (("BTC", "b"), (U, 100))]
        );
        // Moving more than the wallet holds is short in the giving wallet.
        let rows = [row(
            0,
            "t",
            "h",
            100,
            vec![leg(MOVE, "BTC", "a", "b", 3 * U)],
        )];
        let d = run(&rows, true, &[], &book).unwrap();
        assert_eq!(
            d.outcomes[0],
            Outcome::Short {
                asset: "BTC",
                wallet: "a",
                shortfall: U
            }
        );
    }

    #[test]
    fn a_backdated_batch_or_one_out_of_range_is_not_decided() {
        let mut book = Book::new();
        book.insert(("BTC", "a"), (U, 50));
        let rows = [row(0, "t", "h", 49, vec![leg(ACQUIRE, "BTC", "a", "", U)])];
        assert_eq!(run(&rows, true, &[], &book), Err(Unfit::Backdated));
        let rows = [row(0, "t", "h", 50, vec![leg(ACQUIRE, "BTC", "a", "", U)])];
        assert!(run(&rows, true, &[], &book).is_ok());
        let mut book = Book::new();
        book.insert(("BTC", "a"), (i128::MAX - 1, 1));
        let rows = [row(0, "t", "h", 2, vec![leg(ACQUIRE, "BTC", "a", "", U)])];
        assert_eq!(run(&rows, true, &[], &book), Err(Unfit::OutOfRange));
        let none = decide::<()>(&rows, true, |_, _| Ok(None), |_, _| Ok(None));
        assert_eq!(none, Err(Unfit::OutOfRange));
    }

    #[test]
    fn tx_ids_are_time_first_and_distinct() {
        let ids = tx_ids(1000, 0x1_2345_6789, 42);
        assert!(ids
            .iter()
            .all(|id| id.len() == 27 && id.starts_with("tx_00123456789")));
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 1000);
        assert_ne!(tx_ids(1, 0, 1), tx_ids(1, 0, 2));
    }
}
