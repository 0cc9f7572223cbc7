//! Findings about shared holders, services, accept queues and descriptors
//! of closed sockets, on fixed snapshots.

use super::*;
use crate::model::fixture::{self, socket};
use crate::model::{Proto, TcpState};

fn of_kind(findings: &[Finding], kind: Kind) -> Vec<&Finding> {
    findings.iter().filter(|f| f.kind == kind).collect()
}

fn analyze_port(snap: &Snapshot, port: &str) -> Vec<Finding> {
    analyze(snap, &History::default(), &Filter::parse(port).unwrap())
}

#[test]
fn a_forked_server_and_its_child_make_one_close_wait_finding_naming_both() {
    let snap = fixture::forked();
    let findings = analyze_port(&snap, "6900");
    let cw = of_kind(&findings, Kind::CloseWaitLeak);
    assert_eq!(cw.len(), 1, "{findings:#?}");
    let f = cw[0];
    assert_eq!(f.count, 4);
    assert_eq!(f.pids, vec![100, 101]);
    assert_eq!(f.shared, 3);
    assert_eq!(f.pid, Some(101), "the one holding most");
    assert_eq!(
        f.holders
            .iter()
            .map(|h| (h.pid, h.count))
            .collect::<Vec<_>>(),
        vec![(101, 4), (100, 3)]
    );
    assert!(
        f.summary.starts_with("oracle (pids 100 and 101) holds 4 sockets in CLOSE_WAIT on port 6900; 3 of them are held by more than one"),
        "{}",
        f.summary
    );
    assert!(
        f.next_step.contains("Every holder must close them or exit"),
        "{}",
        f.next_step
    );
    assert!(
        !f.next_step.contains("Restarting the process frees"),
        "{}",
        f.next_step
    );
    assert_eq!(f.filter, "pid:100,101 state:close-wait");
    let matched = snap
        .sockets
        .iter()
        .filter(|s| Filter::parse(&f.filter).unwrap().matches(s, &snap))
        .count() as u64;
    assert_eq!(matched, f.count, "the finding's filter lists its sockets");
}

#[test]
fn both_holding_the_same_sockets_is_said_in_the_summary() {
    let mut snap = fixture::forked();
    snap.sockets.retain(|s| s.inode != 9200);
    let f = &of_kind(&analyze_port(&snap, "6900"), Kind::CloseWaitLeak)[0].clone();
    assert!(
        f.summary.ends_with("; both hold the same 3"),
        "{}",
        f.summary
    );
}

#[test]
fn eight_prefork_workers_leaking_alike_give_one_finding_for_the_pool() {
    let snap = fixture::prefork(8, 5);
    let findings = analyze_port(&snap, "8080");
    let cw = of_kind(&findings, Kind::CloseWaitLeak);
    assert_eq!(cw.len(), 1, "{findings:#?}");
    let f = cw[0];
    assert_eq!(f.count, 40);
    assert_eq!(f.pids, (201..=208).collect::<Vec<_>>());
    assert_eq!(f.process.as_deref(), Some("gunicorn"));
    assert!(
        f.summary
            .starts_with("gunicorn (8 processes: pids 201, 202, 203 and 5 more) holds 40 sockets"),
        "{}",
        f.summary
    );
    assert!(
        f.message.contains("Each process holds its own"),
        "{}",
        f.message
    );
}

/// The listener 127.0.0.1:6900 of the forked server with `waiting`
/// unaccepted connections, `gave_up` of them in CLOSE_WAIT.
fn queued(waiting: u16, gave_up: u16) -> Snapshot {
    let mut snap = fixture::forked();
    snap.sockets
        .retain(|s| s.local.port() != 6900 || s.state == TcpState::Listen);
    for i in 0..waiting {
        let state = if i < gave_up {
            TcpState::CloseWait
        } else {
            TcpState::Established
        };
        let mut s = socket(
            Proto::Tcp,
            state,
            "127.0.0.1:6900",
            &format!("127.0.0.1:{}", 41000 + i),
            0,
            0,
            &[],
        );
        s.cookie = 60_000 + u64::from(i);
        snap.sockets.push(s);
    }
    let l = snap.sockets.iter_mut().find(|s| s.inode == 9001).unwrap();
    l.recv_q = u32::from(waiting);
    l.send_q = 128;
    snap
}

#[test]
fn an_accept_queue_given_up_on_is_critical_from_the_first_sample_and_comes_first() {
    let mut snap = queued(56, 40);
    snap.attribution.as_root = true;
    let findings = analyze_port(&snap, "6900");
    let f = &findings[0];
    assert_eq!(f.kind, Kind::AcceptStalled, "{findings:#?}");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.summary,
        "port 6900: none of oracle (pids 100 and 101) is calling accept(): 56 connections waiting, 40 already given up by their clients"
    );
    assert_eq!(f.related, vec![Kind::CloseWaitLeak]);
    let cw = of_kind(&findings, Kind::CloseWaitLeak);
    assert_eq!(cw.len(), 1);
    assert_eq!(
        cw[0].pids,
        vec![100, 101],
        "queued sockets belong to the listener's holders"
    );
    assert!(
        cw[0].message.contains("40 of them were never accepted"),
        "{}",
        cw[0].message
    );
    for f in &findings {
        let text = format!("{} {} {}", f.summary, f.message, f.next_step);
        assert!(!text.contains("unknown process"), "{text}");
        assert!(!text.contains("run as root"), "{text}");
    }
}

#[test]
fn a_queue_still_waiting_a_sample_later_is_stalled_and_one_being_drained_is_not() {
    let first = queued(3, 0);
    let mut history = History::default();
    history.record(&first);
    // First sample, nothing given up: not enough to say.
    let f = analyze(&first, &history, &Filter::default());
    assert!(of_kind(&f, Kind::AcceptStalled).is_empty(), "{f:#?}");
    // A second later the same three still wait.
    let mut second = queued(3, 0);
    second.advance(std::time::Duration::from_secs(1));
    history.record(&second);
    let f = analyze(&second, &history, &Filter::default());
    let stalled = of_kind(&f, Kind::AcceptStalled);
    assert_eq!(stalled.len(), 1, "{f:#?}");
    assert_eq!(stalled[0].severity, Severity::Warning);
    assert!(
        stalled[0]
            .message
            .contains("3 of them were already waiting a sample ago")
    );
    // Others arrived instead (the program accepted the first three).
    let mut third = queued(0, 0);
    third.advance(std::time::Duration::from_secs(2));
    for i in 0..3u16 {
        let mut s = socket(
            Proto::Tcp,
            TcpState::Established,
            "127.0.0.1:6900",
            &format!("127.0.0.1:{}", 42000 + i),
            0,
            0,
            &[],
        );
        s.cookie = 61_000 + u64::from(i);
        third.sockets.push(s);
    }
    history.record(&third);
    let f = analyze(&third, &history, &Filter::default());
    assert!(of_kind(&f, Kind::AcceptStalled).is_empty(), "{f:#?}");
}

#[test]
fn descriptors_of_closed_sockets_are_a_finding_per_service_and_growth_warns() {
    let mut snap = fixture::forked();
    snap.processes.get_mut(&101).unwrap().closed_sockets = 5;
    let mut history = History::default();
    history.record(&snap);
    let f = analyze(&snap, &history, &Filter::default());
    let held = of_kind(&f, Kind::ClosedSocketsHeld);
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].count, held[0].severity), (5, Severity::Info));
    assert!(
        held[0].summary.starts_with(
            "oracle (pid 101) holds 5 descriptors of TCP sockets that are already closed"
        ),
        "{}",
        held[0].summary
    );
    // Five more every 4 s, for 16 s: 75 a minute, fitted.
    let mut later = snap.clone();
    for step in 1..=4u32 {
        later = snap.clone();
        later.advance(std::time::Duration::from_secs(u64::from(4 * step)));
        later.processes.get_mut(&101).unwrap().closed_sockets = 5 + 5 * step;
        history.record(&later);
    }
    let f = analyze(&later, &history, &Filter::default());
    let held = of_kind(&f, Kind::ClosedSocketsHeld);
    assert_eq!(held[0].count, 25);
    assert_eq!(held[0].severity, Severity::Warning);
    let growth = held[0].growth_per_min.expect("a fit over 16 s");
    assert!((growth - 75.0).abs() < 0.01, "{growth}");
    assert!(
        held[0].summary.ends_with(", growing by 75/min"),
        "{}",
        held[0].summary
    );
    // Another port's filter leaves it out.
    let f = analyze(&later, &history, &Filter::parse("6800").unwrap());
    assert!(of_kind(&f, Kind::ClosedSocketsHeld).is_empty());
}
