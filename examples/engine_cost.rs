//! Where a refresh's CPU goes at scale, on a synthetic table (no system
//! access): `cargo run --release --example engine_cost -- [SOCKETS]`.
//!
//! Prints the median CPU time (this thread's) of 5 runs of each step the engine and the UI take per
//! sample: merging a trouble refresh into the last full dump, recording the
//! history, analysing findings, building and sorting the rows by process.

use sockscope::app::keymap::Keymap;
use sockscope::model::fixture::{self, socket};
use sockscope::model::view::Grouping;
use sockscope::model::{Filter, Proto, Snapshot, TcpState};
use std::sync::Arc;
use std::time::Duration;

fn table(n: usize, shift: u64) -> Snapshot {
    let mut snap = fixture::small();
    snap.advance(Duration::from_secs(shift));
    let states = [
        (TcpState::Established, 75),
        (TcpState::CloseWait, 8),
        (TcpState::FinWait2, 8),
        (TcpState::TimeWait, 9),
    ];
    let mut i = 0usize;
    for (state, pct) in states {
        for _ in 0..n * pct / 100 {
            let pid = 2000 + (i % 8) as u32;
            let owners: Vec<(u32, u32)> =
                if state == TcpState::TimeWait || state == TcpState::FinWait2 {
                    vec![]
                } else {
                    vec![(pid, 10 + i as u32)]
                };
            snap.sockets.push(socket(
                Proto::Tcp,
                state,
                &format!("127.77.0.{}:{}", 1 + i % 8, 7000),
                &format!(
                    "127.77.{}.{}:{}",
                    1 + i / 60_000,
                    1 + i % 250,
                    1024 + i % 60_000
                ),
                if owners.is_empty() {
                    0
                } else {
                    5_000_000 + i as u64
                },
                0,
                &owners,
            ));
            i += 1;
        }
    }
    for pid in 2000..2008 {
        snap.processes.insert(
            pid,
            fixture::process(pid, "loadgen", "loadgen --worker", 0, "root"),
        );
    }
    snap
}

/// CPU time of this thread: what a step costs, whatever else the machine
/// is doing.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn time<T>(label: &str, mut f: impl FnMut() -> T) {
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let t = thread_cpu();
            std::hint::black_box(f());
            thread_cpu() - t
        })
        .collect();
    runs.sort();
    println!("{label:<40} {:>8.1} ms", runs[2].as_secs_f64() * 1000.0);
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(130_000);
    let full = table(n, 0);
    let mut trouble = table(n, 1);
    trouble.sockets.retain(|s| s.state != TcpState::Established);
    println!(
        "{} sockets, a trouble refresh of {}; a socket is {} bytes (tcp_info {})",
        full.sockets.len(),
        trouble.sockets.len(),
        std::mem::size_of::<sockscope::model::Socket>(),
        std::mem::size_of::<Option<sockscope::model::TcpInfo>>()
    );
    time("clone of the full dump's sockets", || full.sockets.clone());
    let index = sockscope::engine::merge::index(&full);
    time("index of the full dump by inode", || {
        sockscope::engine::merge::index(&full)
    });
    time("merge a trouble refresh", || {
        sockscope::engine::merge::trouble_into(&full, &index, trouble.clone())
    });
    let merged = Arc::new(sockscope::engine::merge::trouble_into(
        &full,
        &index,
        trouble.clone(),
    ));
    let mut history = sockscope::model::history::History::default();
    history.record(&full);
    time("history.record", || {
        let mut h = history.clone();
        h.record(&merged);
        h
    });
    time("history.clone (shared with the UI)", || history.clone());
    time("history.record_partial", || {
        let mut h = history.clone();
        h.record_partial(&merged);
        h
    });
    time("clone of the trouble refresh (in merge)", || {
        trouble.clone()
    });
    history.record(&merged);
    time("holders (derived once per sample)", || {
        let s = (*merged).clone();
        s.holders();
        s
    });
    merged.holders();
    time("findings::analyze", || {
        sockscope::model::findings::analyze(&merged, &history, &Filter::default())
    });
    let mut analyzer = sockscope::engine::Analyzer::new();
    let analysis = analyzer.digest(Arc::clone(&merged), None, None);
    let mut app = sockscope::app::App::new(
        Keymap::defaults(),
        Filter::default(),
        Duration::from_secs(1),
    );
    time("rows by process (filter, group, sort)", || {
        app.handle(sockscope::app::Event::Analysis(Arc::clone(&analysis)));
    });
    let all: Vec<usize> = (0..merged.sockets.len()).collect();
    let ctx = sockscope::model::view::ViewCtx {
        snap: &merged,
        history: &history,
        now: merged.monotonic,
        names: None,
        prefer: Vec::new(),
    };
    for (col, label) in [(0, "STATE"), (2, "LOCAL"), (3, "REMOTE"), (8, "AGE")] {
        time(&format!("rows of the connections view by {label}"), || {
            let mut rows = sockscope::model::view::build(Grouping::Flat, &merged, &all);
            sockscope::model::view::sort(&mut rows, col, false, &ctx);
            rows
        });
    }
    time("first page (40 rows) of the connections view", || {
        let rows = sockscope::model::view::build(Grouping::Flat, &merged, &all);
        sockscope::model::view::ConnSort::new(&rows, 0, false, &ctx).head(40)
    });
}
