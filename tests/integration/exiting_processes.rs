//! Processes come and go while sockscope scans: it never fails because of
//! that, and never reports a socket as held by a process that did not hold it.

use crate::common;

use common::{Helper, Row, output, parse_rows, sockscope};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Short-lived holders to start (and kill) in all.
const CHILDREN: usize = 300;
/// Holders alive at once.
const ALIVE: usize = 12;
/// Started together, then waited for together.
const BATCH: usize = 6;
/// Scans that must have run while holders came and went.
const MIN_SCANS: usize = 5;

struct Scan {
    code: Option<i32>,
    stderr: String,
    rows: Vec<Row>,
}

#[test]
fn processes_exiting_during_scans_never_cause_an_error_or_a_wrong_owner() {
    let stop = Arc::new(AtomicBool::new(false));
    let scans_done = Arc::new(AtomicUsize::new(0));
    let scanner = {
        let (stop, scans_done) = (stop.clone(), scans_done.clone());
        std::thread::spawn(move || {
            let mut scans = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let out = output(&mut sockscope(&[
                    "snapshot",
                    "--json",
                    "proto:tcp",
                    "state:listen",
                    "addr:127.0.0.1",
                ]));
                let rows = if out.status.success() {
                    parse_rows(&out.stdout)
                } else {
                    Vec::new()
                };
                scans.push(Scan {
                    code: out.status.code(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    rows,
                });
                scans_done.fetch_add(1, Ordering::Relaxed);
            }
            scans
        })
    };

    // port -> every pid that held it (a port may be reused after its holder dies)
    let mut held_by: HashMap<u16, HashSet<u32>> = HashMap::new();
    let mut pids = HashSet::new();
    let mut alive: VecDeque<Helper> = VecDeque::new();
    let mut started = 0;
    let mut killed = 0;
    let mut ended = 0;
    // Keep going until enough holders have lived and died *and* enough scans
    // ran meanwhile (bounded, in case scans hang).
    while started < CHILDREN || scans_done.load(Ordering::Relaxed) < MIN_SCANS {
        assert!(started < 20 * CHILDREN, "scans are not finishing");
        let batch: Vec<Helper> = (0..BATCH).map(|_| Helper::role("churn", &[])).collect();
        for mut h in batch {
            let port: u16 = h.reply()[0].parse().unwrap();
            held_by.entry(port).or_default().insert(h.pid);
            pids.insert(h.pid);
            alive.push_back(h);
            started += 1;
        }
        while alive.len() > ALIVE {
            let h = alive.pop_front().unwrap();
            // Half die at once, half exit by themselves when their stdin closes.
            ended += 1;
            if ended % 2 == 0 {
                h.kill();
                killed += 1;
            } else {
                drop(h);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let scans = scanner.join().expect("scanner thread");
    drop(alive);

    let mut attributed = 0;
    for (i, scan) in scans.iter().enumerate() {
        assert_eq!(scan.code, Some(0), "scan {i} failed: {}", scan.stderr);
        common::assert_stderr_is_at_most_the_note(scan.stderr.as_bytes());
        for row in &scan.rows {
            assert_eq!(row.pid, row.owners.first().map(|o| o.pid), "{row:#?}");
            assert_eq!(
                row.process,
                row.owners.first().and_then(|o| o.process.clone())
            );
            let our_port = held_by.get(&row.local_port);
            for o in &row.owners {
                let named_after = o
                    .process
                    .as_deref()
                    .and_then(|n| n.strip_prefix('c'))
                    .and_then(|n| n.parse::<u32>().ok());
                // Ours by pid or by the name a churn child gives itself, never
                // by port alone: another process may reuse a port one of ours held.
                let ours = pids.contains(&o.pid) || named_after.is_some_and(|p| pids.contains(&p));
                if !ours {
                    continue;
                }
                assert!(
                    our_port.is_some_and(|holders| holders.contains(&o.pid)),
                    "scan {i}: port {} reported as held by pid {}, which never held it \
                     (held by {our_port:?})",
                    row.local_port,
                    o.pid
                );
                assert_eq!(
                    o.process,
                    Some(format!("c{}", o.pid)),
                    "scan {i}: pid {} has the wrong name",
                    o.pid
                );
                attributed += 1;
            }
        }
    }
    assert!(scans.len() >= MIN_SCANS);
    assert!(killed > 0 && started >= CHILDREN);
    assert!(
        attributed > 0,
        "no scan saw any of the {started} holders: the test proved nothing"
    );
    eprintln!(
        "{started} holders ({killed} killed), {} scans, {attributed} owners checked",
        scans.len()
    );
}
