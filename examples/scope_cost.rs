//! What a collection of the trouble states costs next to a full one, on
//! this machine's socket table as it is (start `loadgen` first for a large
//! one):
//!
//! ```text
//! cargo run --release --example scope_cost -- [ROUNDS]
//! ```
//!
//! Prints, for the full table and for [`Scope::trouble`], the sockets
//! collected and the median and worst wall time per collection of an
//! incremental collector (as the monitor runs it), with and without the
//! owner scan, `tcp_info` left out as above 20k sockets.

use sockscope::collect::{Collector, Options, Scope, SystemCollector};
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    for owners in [true, false] {
        measure(rounds, owners);
    }
}

fn measure(rounds: usize, owners: bool) {
    let mut collector = SystemCollector::new(Options {
        tcp_info: false,
        incremental: true,
        namespaces: true,
        owners,
        ..Options::default()
    });
    // The first full collection fills the owner tracker's cache.
    collector.collect().expect("collect");
    let what = if owners { "with owners" } else { "no owners" };
    for (name, scope) in [("full", Scope::ALL), ("trouble", Scope::trouble())] {
        let mut took = Vec::with_capacity(rounds);
        let mut sockets = 0;
        for _ in 0..rounds {
            let start = Instant::now();
            let snap = collector.collect_scope(scope).expect("collect");
            took.push(start.elapsed());
            sockets = snap.sockets.len();
        }
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:8} {what:12} {sockets:7} sockets  median {:7.1} ms  worst {:7.1} ms",
            ms(took[took.len() / 2]),
            ms(took[took.len() - 1])
        );
    }
}
