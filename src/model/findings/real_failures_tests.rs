//! The rules behind issue 17, on fixed snapshots: real servers as they
//! really fail (stopped workers, a proxy waiting on its backend, port
//! exhaustion under tcp_tw_reuse, SYN retries at a full queue).

use super::*;
use crate::model::Attribution;
use crate::model::fixture::{self, socket};
use crate::model::socket::{ProcState, Proto};
use std::time::UNIX_EPOCH;

fn at(snap: &mut Snapshot, secs: u64) {
    snap.set_taken_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs));
}

fn run(snaps: &[Snapshot]) -> Vec<Finding> {
    let mut h = History::default();
    for s in snaps {
        h.record(s);
    }
    analyze(snaps.last().unwrap(), &h, &Filter::default())
}

fn of_kind(findings: &[Finding], kind: Kind) -> Vec<&Finding> {
    findings.iter().filter(|f| f.kind == kind).collect()
}

fn counters(snap: &mut Snapshot, pairs: &[(&str, u64)]) {
    for (k, v) in pairs {
        snap.system.counters.insert(k.to_string(), *v);
    }
}

#[test]
fn stopped_workers_are_named_first_and_the_master_only_holds_the_listener() {
    let findings = run(&[fixture::stopped_workers()]);
    let stalled = of_kind(&findings, Kind::AcceptStalled);
    assert_eq!(stalled.len(), 1, "{findings:#?}");
    let f = stalled[0];
    assert!(
        f.summary.starts_with(
            "port 18180: both nginx workers (29947 and 29948) are stopped (SIGSTOP): nothing \
             accepts on :18180; the master 29945 only holds the listener"
        ),
        "{}",
        f.summary
    );
    assert_eq!(f.pid, Some(29947), "a stopped worker, not the master");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.next_step.contains("kill -CONT 29947 29948"),
        "{}",
        f.next_step
    );
    assert!(
        !f.summary.contains("not calling accept()"),
        "the master is not blamed: {}",
        f.summary
    );
    // The same listener with the workers running: no state evidence.
    let mut running = fixture::stopped_workers();
    for p in running.processes.values_mut() {
        p.state = Some(ProcState::Sleeping);
    }
    let findings = run(&[running]);
    let f = of_kind(&findings, Kind::AcceptStalled)[0];
    assert!(!f.summary.contains("stopped"), "{}", f.summary);
    assert_eq!(
        f.pid,
        Some(29947),
        "the worker holding accepted connections"
    );
}

#[test]
fn a_queue_full_at_a_listener_whose_accepters_are_stopped_says_so_without_an_accept_stall() {
    // The queue full of connections still ESTABLISHED (no client gave up
    // yet) and first seen now: listen_queue_full alone tells it.
    let mut snap = fixture::stopped_workers();
    for s in &mut snap.sockets {
        if s.local.port() == 18180 && s.inode == 0 && s.state == TcpState::CloseWait {
            s.state = TcpState::Established;
        }
    }
    let mut b = snap.clone();
    counters(&mut snap, &[("TcpExt.ListenOverflows", 0)]);
    at(&mut b, 2);
    counters(&mut b, &[("TcpExt.ListenOverflows", 40)]);
    let mut h = History::default();
    h.record(&b);
    let findings = analyze(&b, &h, &Filter::default());
    let full = of_kind(&findings, Kind::ListenQueueFull);
    assert_eq!(full.len(), 1, "{findings:#?}");
    assert!(
        full[0]
            .summary
            .contains("both nginx workers (29947 and 29948) are stopped (SIGSTOP)"),
        "{}",
        full[0].summary
    );
    assert_eq!(full[0].pid, Some(29947));
    assert_eq!(full[0].severity, Severity::Critical);
}

#[test]
fn fin_wait2_peers_count_once_each_by_their_real_holder_or_the_accept_queue() {
    let findings = run(&[fixture::stopped_workers()]);
    let orphans: Vec<&Finding> = of_kind(&findings, Kind::FinWait2)
        .into_iter()
        .filter(|f| f.filter.contains("pid:none"))
        .collect();
    assert_eq!(orphans.len(), 1, "{findings:#?}");
    let f = orphans[0];
    assert_eq!(f.count, 27);
    let split: Vec<(u64, Option<u32>, bool)> =
        f.peers.iter().map(|p| (p.count, p.pid, p.queued)).collect();
    assert_eq!(
        split,
        vec![
            (17, Some(29945), true),
            (9, Some(29947), false),
            (1, Some(29948), false)
        ]
    );
    assert_eq!(f.peers.iter().map(|p| p.count).sum::<u64>(), 27);
    assert!(f.message.contains("not accepted yet"), "{}", f.message);
}

#[test]
fn close_wait_held_by_stopped_workers_says_they_are_stopped_first() {
    let findings = run(&[fixture::stopped_workers()]);
    let f = of_kind(&findings, Kind::CloseWaitLeak)[0];
    assert!(
        f.summary
            .starts_with("pids 29947 and 29948 are stopped (SIGSTOP): "),
        "{}",
        f.summary
    );
    assert!(
        f.next_step.starts_with("They are stopped"),
        "{}",
        f.next_step
    );
}

#[test]
fn a_proxy_waiting_on_a_local_backend_names_the_backend_at_its_severity() {
    let findings = run(&[fixture::proxy_chain(5, 120)]);
    let cw: Vec<&Finding> = of_kind(&findings, Kind::CloseWaitLeak)
        .into_iter()
        .filter(|f| f.pid != Some(1000)) // the fixture's own redis leak
        .collect();
    assert_eq!(cw.len(), 2, "{findings:#?}");
    let (backend, proxy) = (cw[0], cw[1]);
    assert_eq!(
        backend.pid,
        Some(4000),
        "the root comes first: {findings:#?}"
    );
    assert_eq!(proxy.pid, Some(3000));
    assert_eq!(backend.severity, Severity::Warning, "stuck for 2 minutes");
    assert_eq!(proxy.severity, backend.severity);
    assert!(
        proxy.summary.starts_with(
            "python3 (pid 4000) does not close its ends of 5 upstream connections: haproxy \
             (pid 3000) waits on it"
        ),
        "{}",
        proxy.summary
    );
    assert!(
        !proxy.next_step.contains("Find the code path in haproxy"),
        "{}",
        proxy.next_step
    );
    assert!(proxy.next_step.contains("Look at python3 (pid 4000)"));
    assert!(
        backend
            .message
            .contains("haproxy (pid 3000) waits on these")
    );
    // The proxy's own filter still lists exactly its sockets.
    let snap = fixture::proxy_chain(5, 120);
    let matched = snap
        .sockets
        .iter()
        .filter(|s| Filter::parse(&proxy.filter).unwrap().matches(s, &snap))
        .count() as u64;
    assert_eq!(matched, proxy.count);

    // A young backend leak: both are info, the proxy no higher than its root.
    let findings = run(&[fixture::proxy_chain(5, 0)]);
    let cw: Vec<&Finding> = of_kind(&findings, Kind::CloseWaitLeak)
        .into_iter()
        .filter(|f| f.pid != Some(1000))
        .collect();
    assert!(cw.iter().all(|f| f.severity == Severity::Info), "{cw:#?}");
}

#[test]
fn ports_reused_as_fast_as_tw_reuse_allows_are_critical_not_info() {
    // 1000 of 1000 ports, all younger than 1.5 s: recycled about once a second.
    let findings = run(&[fixture::port_churn(1000, 1500)]);
    let f = of_kind(&findings, Kind::TimeWaitPressure)[0];
    assert_eq!(f.severity, Severity::Critical, "{f:#?}");
    assert!(
        f.summary.contains("capped at about 1000/s"),
        "{}",
        f.summary
    );
    assert!(f.message.contains("EADDRNOTAVAIL"), "{}", f.message);
    assert!(f.message.contains("median TIME_WAIT"), "{}", f.message);

    // The same ports, but TIME_WAITs tens of seconds old: reuse takes them
    // over as needed, no connect fails: info.
    let findings = run(&[fixture::port_churn(1000, 59_000)]);
    let f = of_kind(&findings, Kind::TimeWaitPressure)[0];
    assert_eq!(f.severity, Severity::Info, "{f:#?}");

    // Ages unknown, but the kernel counts TIME_WAIT takeovers at the range's pace.
    let mut a = fixture::port_churn(1000, 0);
    for s in &mut a.sockets {
        s.timer = None;
    }
    counters(&mut a, &[("TcpExt.TWRecycled", 10_000)]);
    let mut b = a.clone();
    at(&mut b, 2);
    counters(&mut b, &[("TcpExt.TWRecycled", 11_800)]);
    let findings = run(&[a, b]);
    let f = of_kind(&findings, Kind::TimeWaitPressure)[0];
    assert_eq!(f.severity, Severity::Critical, "{f:#?}");
    assert!(f.message.contains("TcpExt.TWRecycled"), "{}", f.message);
}

#[test]
fn syn_retries_at_a_full_queue_are_the_queues_symptom_not_packet_loss() {
    let mut a = fixture::stopped_workers();
    counters(
        &mut a,
        &[
            ("Tcp.RetransSegs", 1000),
            ("TcpExt.TCPSynRetrans", 900),
            ("Tcp.OutSegs", 10_000),
            ("TcpExt.ListenOverflows", 0),
        ],
    );
    let mut b = a.clone();
    at(&mut b, 2);
    // 74 retransmissions in 2 s, all SYNs; 24 segments sent.
    counters(
        &mut b,
        &[
            ("Tcp.RetransSegs", 1074),
            ("TcpExt.TCPSynRetrans", 974),
            ("Tcp.OutSegs", 10_024),
            ("TcpExt.ListenOverflows", 40),
        ],
    );
    let findings = run(&[a, b]);
    assert!(
        of_kind(&findings, Kind::Retransmissions).is_empty(),
        "no loss finding: {findings:#?}"
    );
    let f = of_kind(&findings, Kind::AcceptStalled)[0];
    assert!(
        f.message.contains("TcpExt.TCPSynRetrans rose by 74"),
        "{}",
        f.message
    );
    assert!(f.message.contains("not packet loss"), "{}", f.message);
}

#[test]
fn data_retransmissions_are_a_share_of_outsegs_plus_retranssegs() {
    let mut a = fixture::small();
    counters(
        &mut a,
        &[
            ("Tcp.RetransSegs", 0),
            ("TcpExt.TCPSynRetrans", 0),
            ("Tcp.OutSegs", 0),
        ],
    );
    let mut b = a.clone();
    at(&mut b, 2);
    // 300 resent, 100 sent new: 75% of what went out, not "300%".
    counters(
        &mut b,
        &[
            ("Tcp.RetransSegs", 300),
            ("TcpExt.TCPSynRetrans", 0),
            ("Tcp.OutSegs", 100),
        ],
    );
    let findings = run(&[a, b]);
    let f = of_kind(&findings, Kind::Retransmissions)[0];
    assert!(f.summary.contains("(75% of segments sent"), "{}", f.summary);
}

#[test]
fn unanswered_connects_are_told_as_syn_retries_naming_the_server() {
    let mut a = fixture::small();
    counters(
        &mut a,
        &[
            ("Tcp.RetransSegs", 0),
            ("TcpExt.TCPSynRetrans", 0),
            ("Tcp.OutSegs", 0),
        ],
    );
    let mut b = a.clone();
    at(&mut b, 2);
    counters(
        &mut b,
        &[
            ("Tcp.RetransSegs", 6),
            ("TcpExt.TCPSynRetrans", 6),
            ("Tcp.OutSegs", 10),
        ],
    );
    let mut s = socket(
        Proto::Tcp,
        TcpState::SynSent,
        "10.0.0.1:40500",
        "192.0.2.80:443",
        77_000,
        1000,
        &[(5000, 9)],
    );
    s.retransmits = 2;
    b.sockets.push(s);
    let findings = run(&[a, b]);
    let f = of_kind(&findings, Kind::Retransmissions);
    assert_eq!(f.len(), 1, "{findings:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].summary.contains("192.0.2.80:443"), "{}", f[0].summary);
    assert_eq!(f[0].pid, Some(5000));
    assert_eq!(f[0].filter, "state:syn-sent");
}

#[test]
fn a_socket_passed_by_pid_1_counts_with_its_receiver_as_the_filter_lists_it() {
    // systemd (pid 1) passed a socket to 700 and kept it; 700 holds another.
    let mut snap = fixture::small();
    snap.processes
        .insert(1, fixture::process(1, "systemd", "/sbin/init", 0, "root"));
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::CloseWait,
        "127.0.0.1:7070",
        "127.0.0.1:51070",
        88_001,
        0,
        &[(1, 40), (700, 3)],
    ));
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::CloseWait,
        "127.0.0.1:7070",
        "127.0.0.1:51071",
        88_002,
        0,
        &[(700, 4)],
    ));
    let findings = analyze(
        &snap,
        &History::default(),
        &Filter::parse("lport:7070").unwrap(),
    );
    let cw = of_kind(&findings, Kind::CloseWaitLeak);
    assert_eq!(cw.len(), 1, "{cw:#?}");
    let f = cw[0];
    let matched = snap
        .sockets
        .iter()
        .filter(|s| Filter::parse(&f.filter).unwrap().matches(s, &snap))
        .count() as u64;
    assert_eq!(f.count, 2, "{f:#?}");
    assert_eq!(
        matched, f.count,
        "filter {} lists what the finding counts",
        f.filter
    );
    assert_eq!(f.pid, Some(700));
}

#[test]
fn the_attribution_note_states_true_counts_and_causes() {
    let quiet = Attribution {
        unreadable_processes: 1,
        unattributed_sockets: 0,
        as_root: true,
        hidden_pids: false,
    };
    let note = quiet.note().unwrap();
    assert!(!note.contains("0 sockets"), "{note}");
    assert!(note.contains("1 process could not be read"), "{note}");
    assert!(
        note.contains("every socket in view was attributed"),
        "{note}"
    );
    let elsewhere = Attribution {
        unreadable_processes: 0,
        unattributed_sockets: 2,
        as_root: true,
        hidden_pids: false,
    };
    let note = elsewhere.note().unwrap();
    assert!(
        note.starts_with("2 sockets have no known owner: they are held by a thread"),
        "{note}"
    );
    assert!(note.contains("changed hands during the scan"), "{note}");
    assert!(!note.contains("refuse"), "{note}");
    assert_eq!(Attribution::default().note(), None);
}

#[test]
fn uninterruptible_sleep_is_evidence_at_a_stale_queue_but_not_for_close_wait_alone() {
    let mut snap = fixture::stopped_workers();
    for pid in [29947, 29948] {
        snap.processes.get_mut(&pid).unwrap().state = Some(ProcState::DiskSleep);
    }
    let findings = run(&[snap]);
    let stalled = of_kind(&findings, Kind::AcceptStalled)[0];
    assert!(
        stalled.summary.contains("are in uninterruptible sleep (D)"),
        "{}",
        stalled.summary
    );
    assert!(
        stalled.next_step.contains("/proc/29947/stack"),
        "{}",
        stalled.next_step
    );
    let cw = of_kind(&findings, Kind::CloseWaitLeak)[0];
    assert!(!cw.summary.contains("uninterruptible"), "{}", cw.summary);
}

#[test]
fn a_debugger_and_a_zombie_are_told_apart_from_sigstop() {
    let mut snap = fixture::stopped_workers();
    snap.processes.get_mut(&29947).unwrap().state = Some(ProcState::Traced);
    snap.processes.get_mut(&29948).unwrap().state = Some(ProcState::Zombie);
    let findings = run(&[snap]);
    let f = of_kind(&findings, Kind::AcceptStalled)[0];
    assert!(
        f.summary
            .contains("29947 stopped by a debugger and 29948 a zombie"),
        "{}",
        f.summary
    );
    assert!(f.next_step.contains("TracerPid"), "{}", f.next_step);
    assert!(
        f.next_step.contains("its parent must reap it"),
        "{}",
        f.next_step
    );
}

#[test]
fn orphaned_fin_wait2_towards_stopped_workers_points_at_the_accepting_worker_and_the_queue() {
    let findings = run(&[fixture::stopped_workers()]);
    let f = of_kind(&findings, Kind::FinWait2)
        .into_iter()
        .find(|f| f.filter.contains("pid:none"))
        .unwrap();
    assert!(
        f.next_step.contains("nginx (pid 29947) holds them"),
        "{}",
        f.next_step
    );
    assert!(
        f.next_step
            .contains("pids 29947 and 29948 are stopped (SIGSTOP)"),
        "{}",
        f.next_step
    );
    assert!(
        f.next_step.contains("17 of them were never accepted"),
        "{}",
        f.next_step
    );
}

#[test]
fn a_proxy_chain_on_a_busy_backend_port_is_followed_through_every_connection() {
    // 300 connections on the backend's port: each other end is found by
    // its remote port among them, not by reading the port's every socket.
    let findings = run(&[fixture::proxy_chain(300, 120)]);
    let proxy = of_kind(&findings, Kind::CloseWaitLeak)
        .into_iter()
        .find(|f| f.pid == Some(3000))
        .expect("the proxy's finding");
    assert!(
        proxy.summary.starts_with(
            "python3 (pid 4000) does not close its ends of 300 upstream connections: haproxy \
             (pid 3000) waits on it"
        ),
        "{}",
        proxy.summary
    );
    let backend = of_kind(&findings, Kind::CloseWaitLeak)
        .into_iter()
        .find(|f| f.pid == Some(4000))
        .expect("the backend's finding");
    let peer = backend.peers.first().expect("its peers");
    assert_eq!(
        (peer.pid, peer.count),
        (Some(3000), 300),
        "{:?}",
        backend.peers
    );
}
