//! The replay: legs in order (time_ms, tx, leg) through the lot pools,
//! one match row per (disposal or removal leg, consumed lot piece).
//!
//! - ACQUIRE opens a lot keyed (time_ms, tx, leg) at its cost.
//! - DISPOSE / REMOVE take lots by the method of the disposal's UTC year
//!   (or the lots the leg names); DISPOSE splits its proceeds over the
//!   pieces by qty (each piece mul_div(rest, q, rest_qty), so the last
//!   takes the remainder and the pieces sum to the proceeds exactly).
//! - MOVE, per wallet only, takes lots the same way and puts the pieces in
//!   the receiving wallet's pool with their id, date and basis; in a
//!   universal pool a move changes no lot.
//! - Missing lots: an error, or with negative balances allowed a phantom
//!   piece (lot_tx -1) with zero basis acquired at the disposal (a move
//!   just moves what there is).

use super::calendar::{long_term, year_of_ms};
use super::fixed::{self, mul_div};
use super::pool::{Book, Piece, Take};
use super::{Ledger, LedgerError, Leg, ACQUIRE, DISPOSE, MOVE, PHANTOM_LOT_TX, REMOVE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Method {
    Fifo = 1,
    Lifo = 2,
    Hifo = 3,
    AverageCost = 4,
    SpecificLot = 5,
}

impl Method {
    pub fn from_code(code: i64) -> Result<Method, LedgerError> {
        Ok(match code {
            1 => Method::Fifo,
            2 => Method::Lifo,
            3 => Method::Hifo,
            4 => Method::AverageCost,
            5 => Method::SpecificLot,
            _ => {
                return Err(LedgerError::new(format!(
                    "method {code} is not 1 (FIFO), 2 (LIFO), 3 (HIFO), 4 (AVERAGE_COST) \
                     or 5 (SPECIFIC_LOT)"
                )))
            }
        })
    }

    /// How a leg that names no lots is taken, and the method that reports.
    pub fn take(self) -> (Take<'static>, Method) {
        match self {
            Method::Fifo | Method::SpecificLot => (Take::Fifo, Method::Fifo),
            Method::Lifo => (Take::Lifo, Method::Lifo),
            Method::Hifo => (Take::Hifo, Method::Hifo),
            Method::AverageCost => (Take::Average, Method::AverageCost),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// (from_year, method), strictly increasing years; a year before the
    /// first uses the first method.
    pub methods: Vec<(i64, Method)>,
    pub per_wallet: bool,
    pub allow_negative: bool,
    /// Replay only the legs at or before this time (lots as of a past
    /// moment); None: every leg.
    pub until_ms: Option<i64>,
}

impl ReplayOptions {
    pub fn new(
        methods: &[(i64, i64)],
        per_wallet: bool,
        allow_negative: bool,
    ) -> Result<Self, LedgerError> {
        if methods.is_empty() {
            return Err(LedgerError::new(
                "methods: give at least one (from_year, method)".into(),
            ));
        }
        if methods.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(LedgerError::new(
                "methods: from_year must be strictly increasing".into(),
            ));
        }
        let methods = methods
            .iter()
            .map(|&(y, m)| Ok((y, Method::from_code(m).map_err(|e| e.context("methods"))?)))
            .collect::<Result<_, LedgerError>>()?;
        Ok(ReplayOptions {
            methods,
            per_wallet,
            allow_negative,
            until_ms: None,
        })
    }

    /// The same options, stopping after the last leg at or before `until_ms`.
    pub fn until(mut self, until_ms: Option<i64>) -> Self {
        self.until_ms = until_ms;
        self
    }

    fn method_at(&self, time_ms: i64) -> Method {
        let year = year_of_ms(time_ms);
        let k = self.methods.partition_point(|&(y, _)| y <= year);
        self.methods[k.saturating_sub(1)].1
    }
}

/// One match row: a (disposal or removal leg, consumed lot piece). A row's
/// amounts that are unknown (or, for a removal's proceeds, not applicable)
/// have their `*_known` flag false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchRow {
    pub qty: i128,
    pub basis: i128,
    pub proceeds: i128,
    pub tx: i64,
    pub lot_tx: i64,
    pub disposed_ms: i64,
    pub acquired_ms: i64,
    pub asset: u32,
    /// The disposal's wallet.
    pub wallet: u32,
    pub leg: u8,
    pub kind: u8,
    pub lot_leg: u8,
    pub method: u8,
    pub long_term: bool,
    pub basis_known: bool,
    pub proceeds_known: bool,
}

impl MatchRow {
    /// The disposal's proceeds or the lot's cost is unknown (a removal has
    /// no proceeds to know).
    pub fn unknown(&self) -> bool {
        !self.basis_known || (self.kind == DISPOSE && !self.proceeds_known)
    }

    /// gain = proceeds - basis, when both are known.
    pub fn gain(&self) -> Result<Option<i128>, LedgerError> {
        if self.basis_known && self.proceeds_known {
            Ok(Some(fixed::sub(self.proceeds, self.basis)?))
        } else {
            Ok(None)
        }
    }
}

/// The match rows in replay order (rows, not columns: one write per row in
/// the hot loop; the bindings turn them into columns once).
#[derive(Clone, Debug, Default)]
pub struct Matches {
    pub rows: Vec<MatchRow>,
}

impl Matches {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// One field of every row.
    pub fn col<T>(&self, f: impl Fn(&MatchRow) -> T) -> Vec<T> {
        self.rows.iter().map(f).collect()
    }
}

/// The open lots at the end of the replay, by (asset, wallet), then FIFO.
#[derive(Clone, Debug, Default)]
pub struct OpenLots {
    pub lot_tx: Vec<i64>,
    pub lot_leg: Vec<u8>,
    pub asset: Vec<u32>,
    pub wallet: Vec<u32>,
    pub acquired_ms: Vec<i64>,
    pub unknown: Vec<bool>,
    pub qty: Vec<i128>,
    pub cost: Vec<i128>,
    pub original_qty: Vec<i128>,
}

impl OpenLots {
    pub fn len(&self) -> usize {
        self.lot_tx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lot_tx.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct ReplayResult {
    pub matches: Matches,
    pub lots: OpenLots,
    /// The final pools (materialized), for previews.
    pub book: Book,
    pub per_wallet: bool,
}

/// Replays the ledger's legs in replay order under `opts`.
pub fn replay(ledger: &mut Ledger, opts: &ReplayOptions) -> Result<ReplayResult, LedgerError> {
    // Counted by the ledger: a pass over every leg here would cost as much
    // as a tenth of the replay.
    let (named, takes) = (ledger.has_selections(), ledger.take_count());
    let legs = ledger.legs();
    let mut book = Book::default();
    if named {
        book.acquired = legs
            .iter()
            .filter(|l| l.kind == ACQUIRE)
            .map(|l| ((l.tx, l.leg), l.time_ms))
            .collect();
    }
    // Disposals take one to a few lots. Pages of the reserve that are never
    // written cost nothing; one too small costs a copy of every row so far.
    let mut m = Matches {
        rows: Vec::with_capacity(takes * 3),
    };
    let mut pieces: Vec<Piece> = Vec::new();
    // Legs are in replay order (time, tx, leg): a cut-off is a prefix.
    let end = match opts.until_ms {
        Some(until) => legs.partition_point(|l| l.time_ms <= until),
        None => legs.len(),
    };
    for leg in &legs[..end] {
        apply(&mut book, &mut m, &mut pieces, leg, opts)
            .map_err(|e| e.context(format!("tx {}", leg.tx)))?;
    }
    let lots = open_lots(&mut book)?;
    Ok(ReplayResult {
        matches: m,
        lots,
        book,
        per_wallet: opts.per_wallet,
    })
}

fn pool_wallet(per_wallet: bool, wallet: u32) -> u32 {
    if per_wallet {
        wallet
    } else {
        0
    }
}

fn apply(
    book: &mut Book,
    m: &mut Matches,
    pieces: &mut Vec<Piece>,
    leg: &Leg,
    opts: &ReplayOptions,
) -> Result<(), LedgerError> {
    let wallet = pool_wallet(opts.per_wallet, leg.wallet);
    if leg.kind == ACQUIRE {
        let pid = book.pool_id(leg.asset, wallet);
        let key = (leg.time_ms, leg.tx, leg.leg);
        let cost = leg.amount.unwrap_or(0);
        return book.add_lot(pid, key, leg.qty, cost, leg.amount.is_none(), leg.qty);
    }
    if leg.kind == MOVE && (!opts.per_wallet || leg.wallet == leg.to_wallet) {
        return Ok(());
    }
    let (how, method) = match leg.selections.as_deref() {
        Some(picks) => (Take::Selected(picks), Method::SpecificLot),
        None => opts.method_at(leg.time_ms).take(),
    };
    let pid = book.pool_id(leg.asset, wallet);
    pieces.clear();
    let short = book.take(pid, leg.qty, how, pieces)?;
    if short > 0 && !opts.allow_negative {
        return Err(LedgerError::new(format!(
            "asset {} wallet {} short by {}",
            leg.asset,
            leg.wallet,
            fixed::format(short)
        )));
    }
    if leg.kind == MOVE {
        let to = book.pool_id(leg.asset, leg.to_wallet);
        for p in pieces.iter() {
            book.add_lot(to, p.key, p.qty, p.basis, p.unknown, p.original_qty)?;
        }
        return Ok(());
    }
    if short > 0 {
        pieces.push(Piece {
            key: (leg.time_ms, PHANTOM_LOT_TX, 0),
            qty: short,
            basis: 0,
            unknown: false,
            original_qty: short,
        });
    }
    let proceeds = if leg.kind == DISPOSE {
        leg.amount
    } else {
        None
    };
    let (mut rest, mut rest_qty) = (proceeds.unwrap_or(0), leg.qty);
    for p in pieces.iter() {
        let share = if p.qty == rest_qty {
            rest
        } else {
            mul_div(rest, p.qty, rest_qty)?
        };
        rest -= share;
        rest_qty -= p.qty;
        m.rows.push(MatchRow {
            qty: p.qty,
            basis: p.basis,
            proceeds: share,
            tx: leg.tx,
            lot_tx: p.key.1,
            disposed_ms: leg.time_ms,
            acquired_ms: p.key.0,
            asset: leg.asset,
            wallet: leg.wallet,
            leg: leg.leg,
            kind: leg.kind,
            lot_leg: p.key.2,
            method: method as u8,
            long_term: long_term(p.key.0, leg.time_ms),
            basis_known: !p.unknown,
            proceeds_known: proceeds.is_some(),
        });
    }
    debug_assert!(leg.kind == DISPOSE || leg.kind == REMOVE);
    Ok(())
}

/// Materializes every averaged pool and lists the open lots.
fn open_lots(book: &mut Book) -> Result<OpenLots, LedgerError> {
    for pid in 0..book.pools.len() as u32 {
        book.materialize(pid)?;
    }
    let mut order: Vec<u32> = (0..book.pools.len() as u32).collect();
    order.sort_by_key(|&p| (book.pools[p as usize].asset, book.pools[p as usize].wallet));
    let mut out = OpenLots::default();
    for pid in order {
        let pool = &book.pools[pid as usize];
        for lot in pool.open.values() {
            out.lot_tx.push(lot.key.1);
            out.lot_leg.push(lot.key.2);
            out.asset.push(pool.asset);
            out.wallet.push(pool.wallet);
            out.acquired_ms.push(lot.key.0);
            out.unknown.push(lot.unknown);
            out.qty.push(lot.qty);
            out.cost.push(lot.cost);
            out.original_qty.push(lot.original_qty);
        }
    }
    Ok(out)
}

/// Totals of match rows by term: (proceeds, basis, gain, rows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TermTotals {
    pub proceeds: i128,
    pub basis: i128,
    pub gain: i128,
    pub rows: i64,
}

/// Short- and long-term totals over the taxable rows (disposals) among
/// `idx`; an unknown amount is an error naming its transaction.
pub fn sum_matches(m: &Matches, idx: &[i64]) -> Result<[TermTotals; 2], LedgerError> {
    let mut t = [TermTotals::default(), TermTotals::default()];
    for &i in idx {
        let r = &m.rows[row_index(i, m.len())?];
        if r.kind != DISPOSE {
            continue;
        }
        if r.unknown() {
            let what = if r.proceeds_known {
                format!("the cost basis of lot {}.{}", r.lot_tx, r.lot_leg)
            } else {
                "the proceeds".to_string()
            };
            return Err(LedgerError::new(format!(
                "tx {}: {what} is unknown (not valued yet)",
                r.tx
            )));
        }
        let s = &mut t[usize::from(r.long_term)];
        let ctx = |e: LedgerError| e.context(format!("tx {}", r.tx));
        s.proceeds = fixed::add(s.proceeds, r.proceeds).map_err(ctx)?;
        s.basis = fixed::add(s.basis, r.basis).map_err(ctx)?;
        s.gain = fixed::add(s.gain, fixed::sub(r.proceeds, r.basis).map_err(ctx)?).map_err(ctx)?;
        s.rows += 1;
    }
    Ok(t)
}

/// `i` as an index into `len` rows.
pub fn row_index(i: i64, len: usize) -> Result<usize, LedgerError> {
    usize::try_from(i)
        .ok()
        .filter(|&u| u < len)
        .ok_or_else(|| LedgerError::new(format!("idx: row {i} is not in 0..{len}")))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
