//! Replay time of a 1,000,000-leg ledger (half buys, half sells over 50
//! assets and 3 wallets, random quantities and prices) for every method,
//! universal and per wallet, in two shapes:
//! - "shallow": each sale takes a random 1-100% of what its wallet holds,
//!   so pools stay small (hundreds of open lots in all);
//! - "deep": each sale takes half of what a buy brings on average, so pools
//!   grow to thousands of lots each (a quarter million open at the end).
//!
//! `cargo run --release --example ledger_bench [legs]`; prints, asserts
//! nothing. LEDGER_BENCH_ONLY=HIFO runs one method (for a profiler).

use std::time::Instant;

use core_rs::ledger::fixed::ONE;
use core_rs::ledger::{replay, Ledger, Leg, ReplayOptions, ACQUIRE, DISPOSE};

fn legs(n: usize, deep: bool) -> Vec<Leg> {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Per asset and wallet, what has been bought and not sold yet, so sales
    // never run short.
    let mut held = [[0i128; 3]; 50];
    let mut legs = Vec::with_capacity(n);
    let start_ms: i64 = 1_600_000_000_000;
    for i in 0..n {
        let asset = (rand() % 50) as usize;
        let wallet = (rand() % 3) as usize;
        let time_ms = start_ms + (i as i64) * 60_000;
        let qty_units = 1 + (rand() % 1_000_000) as i128; // 10^-6 .. 1
        let price = 1_000 + (rand() % 60_000) as i128; // dollars a unit
        let buy = i % 2 == 0 || held[asset][wallet] == 0;
        let qty = if buy {
            qty_units * ONE / 1_000_000
        } else if deep {
            (qty_units * ONE / 2_000_000).min(held[asset][wallet])
        } else {
            (held[asset][wallet] * (1 + (rand() % 100) as i128) / 100).max(1)
        };
        let amount = qty / 1_000_000 * price * 1_000_000;
        held[asset][wallet] += if buy { qty } else { -qty };
        legs.push(Leg {
            time_ms,
            tx: i as i64,
            leg: 0,
            kind: if buy { ACQUIRE } else { DISPOSE },
            asset: asset as u32,
            wallet: wallet as u32,
            to_wallet: 0,
            qty,
            amount: Some(amount),
            selections: None,
        });
    }
    legs
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let only = std::env::var("LEDGER_BENCH_ONLY").ok();
    for deep in [false, true] {
        let shape = if deep { "deep" } else { "shallow" };
        let mut ledger = Ledger::new();
        let legs = legs(n, deep);
        let t = Instant::now();
        ledger.append(legs).expect("valid legs");
        println!(
            "{shape}: append {n} legs: {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        let t = Instant::now();
        ledger.first_negative().expect("in range");
        println!(
            "{shape}: first_negative: {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        for (name, code) in [("FIFO", 1), ("LIFO", 2), ("HIFO", 3), ("AVERAGE_COST", 4)] {
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            for per_wallet in [false, true] {
                let opts = ReplayOptions::new(&[(i64::from(i32::MIN), code)], per_wallet, true)
                    .expect("valid options");
                let t = Instant::now();
                let r = replay(&mut ledger, &opts).expect("replays");
                println!(
                    "{shape}: {name:>12} {}: {:>5.0} ms ({} match rows, {} open lots)",
                    if per_wallet {
                        "per wallet"
                    } else {
                        "universal "
                    },
                    t.elapsed().as_secs_f64() * 1e3,
                    r.matches.len(),
                    r.lots.len()
                );
            }
        }
    }
}
