//! The leg store: every leg of a portfolio's ledger, kept in replay order
//! (time_ms, tx, leg). Appends are validated as a whole before anything
//! changes; backdated legs only mark the store unsorted, and the next
//! reader sorts once (a run-aware stable sort: near linear when a short
//! unsorted tail follows a sorted ledger).

use super::fixed;
use super::fxhash::{FxHashMap, FxHashSet};
use super::pool::MAX_TX;
use super::{LedgerError, ACQUIRE, DISPOSE, MOVE, REMOVE};

/// A lot the caller names for a disposal, removal or move: the acquiring
/// leg's (tx, leg) and the quantity taken from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub lot_tx: i64,
    pub lot_leg: u8,
    pub qty: i128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    pub time_ms: i64,
    pub tx: i64,
    pub leg: u8,
    pub kind: u8,
    pub asset: u32,
    pub wallet: u32,
    /// MOVE only: the receiving wallet.
    pub to_wallet: u32,
    /// > 0.
    pub qty: i128,
    /// ACQUIRE: the cost basis; DISPOSE: net proceeds; None: not valued yet.
    pub amount: Option<i128>,
    pub selections: Option<Box<[Selection]>>,
}

impl Leg {
    pub fn order_key(&self) -> (i64, i64, u8) {
        (self.time_ms, self.tx, self.leg)
    }
}

/// A named lot as the caller sends it: (lot_tx, lot_leg, qty text).
pub type NamedLot<'a> = (i64, i64, &'a str);

/// One append as the bindings receive it: columns of equal length, amounts
/// still text, selections keyed by position in the batch.
pub struct LegInput<'a> {
    pub tx: &'a [i64],
    pub leg: &'a [u8],
    pub kind: &'a [u8],
    pub time_ms: &'a [i64],
    pub asset: &'a [u32],
    pub wallet: &'a [u32],
    pub to_wallet: &'a [u32],
    pub qty: &'a [&'a str],
    pub amount: &'a [&'a str],
    pub selections: &'a [(usize, Vec<NamedLot<'a>>)],
}

impl LegInput<'_> {
    /// The batch as legs, or the first problem naming its position and field.
    pub fn parse(&self) -> Result<Vec<Leg>, LedgerError> {
        let n = self.tx.len();
        for (name, len) in [
            ("leg", self.leg.len()),
            ("kind", self.kind.len()),
            ("time_ms", self.time_ms.len()),
            ("asset", self.asset.len()),
            ("wallet", self.wallet.len()),
            ("to_wallet", self.to_wallet.len()),
            ("qty", self.qty.len()),
            ("amount", self.amount.len()),
        ] {
            if len != n {
                return Err(LedgerError::new(format!(
                    "{name} has {len} values but tx has {n}; every column needs one per leg"
                )));
            }
        }
        let mut legs = Vec::with_capacity(n);
        for i in 0..n {
            let at = |e: LedgerError, field: &str| e.subject(format!("leg {i}: {field}"));
            let qty = fixed::parse(self.qty[i]).map_err(|e| at(e, "qty"))?;
            let amount = match self.amount[i] {
                "" => None,
                text => Some(fixed::parse(text).map_err(|e| at(e, "amount"))?),
            };
            legs.push(Leg {
                time_ms: self.time_ms[i],
                tx: self.tx[i],
                leg: self.leg[i],
                kind: self.kind[i],
                asset: self.asset[i],
                wallet: self.wallet[i],
                to_wallet: self.to_wallet[i],
                qty,
                amount,
                selections: None,
            });
        }
        for (pos, picks) in self.selections {
            let Some(target) = legs.get_mut(*pos) else {
                return Err(LedgerError::new(format!(
                    "selections: position {pos} is not in this batch of {n} legs"
                )));
            };
            let mut parsed = Vec::with_capacity(picks.len());
            for (k, &(lot_tx, lot_leg, qty)) in picks.iter().enumerate() {
                let field = format!("leg {pos}: selection {k}");
                let lot_leg = u8::try_from(lot_leg).map_err(|_| {
                    LedgerError::new(format!("{field}: lot leg {lot_leg} is not in 0..=255"))
                })?;
                let qty = fixed::parse(qty).map_err(|e| e.subject(format!("{field} qty")))?;
                parsed.push(Selection {
                    lot_tx,
                    lot_leg,
                    qty,
                });
            }
            target.selections = Some(parsed.into_boxed_slice());
        }
        Ok(legs)
    }
}

/// Checks one leg on its own (position `i` in its batch).
fn check_leg(i: usize, leg: &Leg) -> Result<(), LedgerError> {
    let err = |why: String| Err(LedgerError::new(format!("leg {i}: {why}")));
    if !(ACQUIRE..=MOVE).contains(&leg.kind) {
        return err(format!(
            "kind {} is not 1 (acquire), 2 (dispose), 3 (remove) or 4 (move)",
            leg.kind
        ));
    }
    if !(0..=MAX_TX).contains(&leg.tx) {
        return err(format!("tx {} must be in 0..=2^55-1", leg.tx));
    }
    if leg.qty <= 0 {
        return err(format!(
            "qty must be greater than zero, got '{}'",
            fixed::format(leg.qty)
        ));
    }
    if let Some(picks) = &leg.selections {
        if !matches!(leg.kind, DISPOSE | REMOVE | MOVE) {
            return err("selections are only for disposals, removals and moves".into());
        }
        let mut total: i128 = 0;
        for (k, s) in picks.iter().enumerate() {
            if s.qty <= 0 {
                return err(format!(
                    "selection {k}: qty must be greater than zero, got '{}'",
                    fixed::format(s.qty)
                ));
            }
            total = fixed::add(total, s.qty).map_err(|e| e.context(format!("leg {i}")))?;
        }
        if total != leg.qty {
            return err(format!(
                "selections: the selected lots total '{}' but qty is '{}'",
                fixed::format(total),
                fixed::format(leg.qty)
            ));
        }
    }
    Ok(())
}

fn is_take(l: &Leg) -> bool {
    matches!(l.kind, DISPOSE | REMOVE)
}

/// The legs of a portfolio in replay order.
#[derive(Default)]
pub struct Ledger {
    legs: Vec<Leg>,
    sorted: bool,
    /// tx -> its leg numbers below 64 as a bit mask (transactions have a few
    /// legs); refuses a (tx, leg) twice and makes `remove_tx` of an absent
    /// tx free.
    ids: FxHashMap<i64, u64>,
    /// Leg numbers 64..=255, should any transaction have that many.
    high_ids: FxHashSet<(i64, u8)>,
    /// Legs that name lots, and DISPOSE/REMOVE legs: kept here so a replay
    /// does not pass over every leg to count them.
    named: usize,
    takes: usize,
}

impl Ledger {
    pub fn new() -> Self {
        Ledger {
            sorted: true,
            ..Ledger::default()
        }
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    fn contains(&self, tx: i64, leg: u8) -> bool {
        if leg < 64 {
            self.ids.get(&tx).is_some_and(|m| m & (1 << leg) != 0)
        } else {
            self.high_ids.contains(&(tx, leg))
        }
    }

    /// Adds a batch: every leg is checked (and no (tx, leg) may repeat,
    /// within the batch or with the ledger) before anything changes.
    pub fn append(&mut self, batch: Vec<Leg>) -> Result<(), LedgerError> {
        for (i, leg) in batch.iter().enumerate() {
            check_leg(i, leg)?;
        }
        // Repeats inside the batch: free when (tx, leg) increase, as they do
        // when the caller numbers transactions in order; else sort ids.
        let increasing = batch
            .windows(2)
            .all(|w| (w[0].tx, w[0].leg) < (w[1].tx, w[1].leg));
        if !increasing {
            let mut ids: Vec<(i64, u8, usize)> = batch
                .iter()
                .enumerate()
                .map(|(i, l)| (l.tx, l.leg, i))
                .collect();
            ids.sort_unstable();
            let repeat = ids
                .windows(2)
                .filter(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1))
                .map(|w| w[1].2)
                .min();
            if let Some(i) = repeat {
                return Err(LedgerError::new(format!(
                    "leg {i}: tx {} leg {} is twice in this batch",
                    batch[i].tx, batch[i].leg
                )));
            }
        }
        if !self.ids.is_empty() || !self.high_ids.is_empty() {
            if let Some((i, l)) = batch
                .iter()
                .enumerate()
                .find(|(_, l)| self.contains(l.tx, l.leg))
            {
                return Err(LedgerError::new(format!(
                    "leg {i}: tx {} leg {} is already in the ledger; remove_tx it first \
                     to replace it",
                    l.tx, l.leg
                )));
            }
        }
        self.ids.reserve(batch.len());
        for l in &batch {
            let mask = self.ids.entry(l.tx).or_insert(0);
            if l.leg < 64 {
                *mask |= 1 << l.leg;
            } else {
                self.high_ids.insert((l.tx, l.leg));
            }
        }
        let batch_sorted = batch
            .windows(2)
            .all(|w| w[0].order_key() < w[1].order_key());
        let follows = match (self.legs.last(), batch.first()) {
            (Some(last), Some(first)) => last.order_key() < first.order_key(),
            _ => true,
        };
        self.sorted = self.sorted && batch_sorted && follows;
        self.named += batch.iter().filter(|l| l.selections.is_some()).count();
        self.takes += batch.iter().filter(|l| is_take(l)).count();
        self.legs.extend(batch);
        Ok(())
    }

    /// Removes every leg of `tx`; returns how many.
    pub fn remove_tx(&mut self, tx: i64) -> usize {
        if self.ids.remove(&tx).is_none() {
            return 0;
        }
        self.high_ids.retain(|&(t, _)| t != tx);
        let before = self.legs.len();
        let (mut named, mut takes) = (0, 0);
        // Order is kept, so a sorted store stays sorted.
        self.legs.retain(|l| {
            let keep = l.tx != tx;
            if !keep {
                named += usize::from(l.selections.is_some());
                takes += usize::from(is_take(l));
            }
            keep
        });
        self.named -= named;
        self.takes -= takes;
        before - self.legs.len()
    }

    /// The legs in replay order.
    pub fn legs(&mut self) -> &[Leg] {
        if !self.sorted {
            self.legs.sort_by_key(Leg::order_key);
            self.sorted = true;
        }
        &self.legs
    }

    /// Whether any leg names its lots.
    pub fn has_selections(&self) -> bool {
        self.named > 0
    }

    /// How many legs dispose or remove (each makes at least one match row).
    pub fn take_count(&self) -> usize {
        self.takes
    }

    /// Every (asset, wallet) the legs touch, with its balance after all of
    /// them and the time of the latest leg touching it, sorted by key. What
    /// a book needs for its O(1) oversell check, computed once after a bulk
    /// load instead of leg by leg in Python.
    pub fn balances(&self) -> Result<Vec<Balance>, LedgerError> {
        let mut by_key: FxHashMap<(u32, u32), (i128, i64)> = FxHashMap::default();
        for leg in &self.legs {
            let ctx = |e: LedgerError| e.context(format!("tx {}", leg.tx));
            let (take_from, give_to) = match leg.kind {
                ACQUIRE => (None, Some(leg.wallet)),
                DISPOSE | REMOVE => (Some(leg.wallet), None),
                _ => (Some(leg.wallet), Some(leg.to_wallet)),
            };
            for (wallet, incoming) in [(take_from, false), (give_to, true)] {
                let Some(w) = wallet else { continue };
                let entry = by_key.entry((leg.asset, w)).or_insert((0, i64::MIN));
                entry.0 = if incoming {
                    fixed::add(entry.0, leg.qty)
                } else {
                    fixed::sub(entry.0, leg.qty)
                }
                .map_err(ctx)?;
                entry.1 = entry.1.max(leg.time_ms);
            }
        }
        let mut out: Vec<Balance> = by_key
            .into_iter()
            .map(|((asset, wallet), (balance, last_ms))| Balance {
                asset,
                wallet,
                balance,
                last_ms,
            })
            .collect();
        out.sort_unstable_by_key(|b| (b.asset, b.wallet));
        Ok(out)
    }

    /// The first point in replay order where an (asset, wallet) balance goes
    /// below zero: (tx, asset, wallet, time_ms, shortfall > 0).
    pub fn first_negative(&mut self) -> Result<Option<Shortfall>, LedgerError> {
        let mut balance: FxHashMap<(u32, u32), i128> = FxHashMap::default();
        for leg in self.legs() {
            let ctx = |e: LedgerError| e.context(format!("tx {}", leg.tx));
            let (take_from, give_to) = match leg.kind {
                ACQUIRE => (None, Some(leg.wallet)),
                DISPOSE | REMOVE => (Some(leg.wallet), None),
                _ => (Some(leg.wallet), Some(leg.to_wallet)),
            };
            if let Some(w) = take_from {
                let b = balance.entry((leg.asset, w)).or_insert(0);
                *b = fixed::sub(*b, leg.qty).map_err(ctx)?;
                if *b < 0 {
                    return Ok(Some(Shortfall {
                        tx: leg.tx,
                        asset: leg.asset,
                        wallet: w,
                        time_ms: leg.time_ms,
                        short: -*b,
                    }));
                }
            }
            if let Some(w) = give_to {
                let b = balance.entry((leg.asset, w)).or_insert(0);
                *b = fixed::add(*b, leg.qty).map_err(ctx)?;
            }
        }
        Ok(None)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub asset: u32,
    pub wallet: u32,
    pub balance: i128,
    pub last_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub tx: i64,
    pub asset: u32,
    pub wallet: u32,
    pub time_ms: i64,
    pub short: i128,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ledger::fixed::ONE;

    /// A leg for tests: amounts in whole units as text.
    pub(crate) fn leg(tx: i64, kind: u8, time_ms: i64, qty: &str, amount: &str) -> Leg {
        Leg {
            time_ms,
            tx,
            leg: 0,
            kind,
            asset: 1,
            wallet: 1,
            to_wallet: 0,
            qty: fixed::parse(qty).unwrap(),
            amount: if amount.is_empty() {
                None
            } else {
                Some(fixed::parse(amount).unwrap())
            },
            selections: None,
        }
    }

    #[test]
    fn parses_a_batch_and_names_bad_fields() {
        let sel = vec![(1usize, vec![(10i64, 0i64, "0.5")])];
        let input = LegInput {
            tx: &[10, 11],
            leg: &[0, 0],
            kind: &[ACQUIRE, DISPOSE],
            time_ms: &[1, 2],
            asset: &[3, 3],
            wallet: &[0, 0],
            to_wallet: &[0, 0],
            qty: &["1", "0.5"],
            amount: &["100", ""],
            selections: &sel,
        };
        let legs = input.parse().unwrap();
        assert_eq!(legs[0].amount, Some(100 * ONE));
        assert_eq!(legs[1].amount, None);
        assert_eq!(
            legs[1].selections.as_deref(),
            Some(
                &[Selection {
                    lot_tx: 10,
                    lot_leg: 0,
                    qty: ONE / 2
                }][..]
            )
        );
        let bad = LegInput {
            qty: &["1", "1e5"],
            ..input
        };
        let e = bad.parse().unwrap_err().to_string();
        assert!(e.starts_with("leg 1: qty '1e5' is not"), "{e}");
        let bad = LegInput {
            amount: &["1", " 2"],
            ..input
        };
        assert!(bad
            .parse()
            .unwrap_err()
            .to_string()
            .starts_with("leg 1: amount ' 2'"));
        let bad = LegInput {
            kind: &[1],
            ..input
        };
        assert!(bad
            .parse()
            .unwrap_err()
            .to_string()
            .starts_with("kind has 1 values"));
        let sel = vec![(5usize, vec![(10i64, 0i64, "0.5")])];
        let bad = LegInput {
            selections: &sel,
            ..input
        };
        assert!(bad.parse().is_err());
        let sel = vec![(1usize, vec![(10i64, 300i64, "0.5")])];
        let bad = LegInput {
            selections: &sel,
            ..input
        };
        assert!(bad.parse().unwrap_err().to_string().contains("lot leg 300"));
    }

    #[test]
    fn append_is_atomic_and_refuses_repeats() {
        let mut l = Ledger::new();
        l.append(vec![leg(1, ACQUIRE, 10, "1", "5")]).unwrap();
        // A good leg followed by a repeat: nothing of the batch goes in.
        let e = l
            .append(vec![
                leg(2, ACQUIRE, 5, "1", "5"),
                leg(1, DISPOSE, 20, "1", "5"),
            ])
            .unwrap_err();
        assert!(
            e.to_string().starts_with("leg 1: tx 1 leg 0 is already"),
            "{e}"
        );
        let mut high = leg(1, ACQUIRE, 10, "1", "5");
        high.leg = 200;
        l.append(vec![high.clone()]).unwrap();
        assert!(l.append(vec![high]).is_err());
        assert_eq!(l.remove_tx(1), 2);
        l.append(vec![leg(1, ACQUIRE, 10, "1", "5")]).unwrap();
        assert_eq!(l.len(), 1);
        let e = l
            .append(vec![
                leg(2, ACQUIRE, 5, "1", "5"),
                leg(2, ACQUIRE, 5, "1", "5"),
            ])
            .unwrap_err();
        assert_eq!(e.to_string(), "leg 1: tx 2 leg 0 is twice in this batch");
        let e = l
            .append(vec![
                leg(4, ACQUIRE, 5, "1", "5"),
                leg(3, ACQUIRE, 5, "1", "5"),
                leg(4, ACQUIRE, 5, "1", "5"),
            ])
            .unwrap_err();
        assert_eq!(e.to_string(), "leg 2: tx 4 leg 0 is twice in this batch");
        let mut zero = leg(3, ACQUIRE, 5, "1", "5");
        zero.qty = 0;
        assert!(l.append(vec![zero]).is_err());
        let mut odd = leg(3, 9, 5, "1", "5");
        assert!(l.append(vec![odd.clone()]).is_err());
        odd.kind = ACQUIRE;
        odd.selections = Some(vec![].into_boxed_slice());
        assert!(l.append(vec![odd]).is_err());
        let mut short = leg(3, DISPOSE, 5, "1", "5");
        short.selections = Some(
            vec![Selection {
                lot_tx: 1,
                lot_leg: 0,
                qty: ONE / 2,
            }]
            .into_boxed_slice(),
        );
        let e = l.append(vec![short]).unwrap_err().to_string();
        assert!(e.contains("total '0.5' but qty is '1'"), "{e}");
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn keeps_replay_order_with_backdated_legs_and_removal() {
        let mut l = Ledger::new();
        l.append(vec![
            leg(5, ACQUIRE, 100, "1", "1"),
            leg(6, ACQUIRE, 200, "1", "1"),
        ])
        .unwrap();
        l.append(vec![
            leg(7, ACQUIRE, 50, "1", "1"),
            leg(4, ACQUIRE, 200, "1", "1"),
        ])
        .unwrap();
        let order: Vec<i64> = l.legs().iter().map(|g| g.tx).collect();
        assert_eq!(order, vec![7, 5, 4, 6]);
        assert_eq!(l.remove_tx(5), 1);
        assert_eq!(l.remove_tx(5), 0);
        assert_eq!(l.remove_tx(99), 0);
        let order: Vec<i64> = l.legs().iter().map(|g| g.tx).collect();
        assert_eq!(order, vec![7, 4, 6]);
        // Removed ids may come back.
        l.append(vec![leg(5, DISPOSE, 1, "1", "1")]).unwrap();
        assert_eq!(l.legs()[0].tx, 5);
        assert_eq!((l.take_count(), l.has_selections()), (1, false));
        let mut named = leg(8, REMOVE, 1, "1", "1");
        named.selections = Some(
            vec![Selection {
                lot_tx: 7,
                lot_leg: 0,
                qty: ONE,
            }]
            .into_boxed_slice(),
        );
        l.append(vec![named]).unwrap();
        assert_eq!((l.take_count(), l.has_selections()), (2, true));
        l.remove_tx(8);
        l.remove_tx(5);
        assert_eq!((l.take_count(), l.has_selections()), (0, false));
    }

    #[test]
    fn balances_sum_every_leg_per_asset_and_wallet() {
        let mut l = Ledger::new();
        let mut buy = leg(1, ACQUIRE, 10, "2.5", "100");
        buy.wallet = 1;
        let mut moved = leg(2, MOVE, 30, "1", "0");
        moved.to_wallet = 2;
        let sold = leg(3, DISPOSE, 20, "0.5", "40");
        let mut other = leg(4, ACQUIRE, 5, "7", "1");
        other.asset = 2;
        l.append(vec![buy, moved, sold, other]).unwrap();
        let got: Vec<_> = l
            .balances()
            .unwrap()
            .into_iter()
            .map(|b| (b.asset, b.wallet, fixed::format(b.balance), b.last_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1, "1".to_string(), 30),
                (1, 2, "1".to_string(), 30),
                (2, 1, "7".to_string(), 5),
            ]
        );
    }

    #[test]
    fn first_negative_follows_replay_order_not_append_order() {
        let mut l = Ledger::new();
        // Buy 2 at t=100, sell 1.5 at t=300.
        l.append(vec![
            leg(1, ACQUIRE, 100, "2", "10"),
            leg(2, DISPOSE, 300, "1.5", "9"),
        ])
        .unwrap();
        assert_eq!(l.first_negative().unwrap(), None);
        // Backdated: a sale of 1 at t=50, before the buy: short by 1 there.
        l.append(vec![leg(3, DISPOSE, 50, "1", "1")]).unwrap();
        let s = l.first_negative().unwrap().unwrap();
        assert_eq!(
            (s.tx, s.asset, s.wallet, s.time_ms, s.short),
            (3, 1, 1, 50, ONE)
        );
        l.remove_tx(3);
        // A move of 1 from wallet 1 to 2 at t=200 leaves 1 in wallet 1;
        // the 1.5 sale at t=300 is then short by 0.5.
        let mut mv = leg(4, MOVE, 200, "1", "");
        mv.to_wallet = 2;
        l.append(vec![mv]).unwrap();
        let s = l.first_negative().unwrap().unwrap();
        assert_eq!((s.tx, s.wallet, s.short), (2, 1, ONE / 2));
        // Wallet 2 going negative names wallet 2.
        let mut sale = leg(5, DISPOSE, 250, "1.25", "1");
        sale.wallet = 2;
        l.append(vec![sale]).unwrap();
        let s = l.first_negative().unwrap().unwrap();
        assert_eq!((s.tx, s.wallet, s.time_ms, s.short), (5, 2, 250, ONE / 4));
    }
}
