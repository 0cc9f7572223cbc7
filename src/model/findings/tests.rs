//! Findings on fixed snapshots, including what loopback cannot produce:
//! SYN floods, retransmissions and port exhaustion.

use super::*;
use crate::model::fixture::{self, socket};
use crate::model::socket::{Proto, TcpInfo};
use std::time::UNIX_EPOCH;

fn at(snap: &mut Snapshot, secs: u64) {
    snap.set_taken_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs));
}

/// Findings after recording `snaps` in order.
fn run(snaps: &[Snapshot]) -> Vec<Finding> {
    run_filtered(snaps, "")
}

fn run_filtered(snaps: &[Snapshot], filter: &str) -> Vec<Finding> {
    let mut h = History::default();
    for s in snaps {
        h.record(s);
    }
    analyze(
        snaps.last().expect("a snapshot"),
        &h,
        &Filter::parse(filter).unwrap(),
    )
}

fn of_kind(findings: &[Finding], kind: Kind) -> Vec<&Finding> {
    findings.iter().filter(|f| f.kind == kind).collect()
}

fn set_sysctl(snap: &mut Snapshot, name: &str, value: &str) {
    snap.system.sysctls.insert(name.into(), value.into());
}

fn set_counter(snap: &mut Snapshot, name: &str, value: u64) {
    snap.system.counters.insert(name.into(), value);
}

/// `n` CLOSE_WAIT sockets on port 6800 held by redis (pid 1000).
fn add_close_wait(snap: &mut Snapshot, n: u32, first_inode: u64) {
    for i in 0..n {
        let remote = format!("10.0.1.{}:{}", i % 200 + 1, 40000 + i);
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::CloseWait,
            "10.0.0.1:6800",
            &remote,
            first_inode + u64::from(i),
            999,
            &[(1000, 100 + i)],
        ));
    }
}

#[test]
fn a_few_fresh_close_wait_sockets_are_only_info() {
    let findings = run(&[fixture::small()]);
    let cw = of_kind(&findings, Kind::CloseWaitLeak);
    assert_eq!(cw.len(), 1);
    let f = cw[0];
    assert_eq!(f.severity, Severity::Info);
    assert_eq!((f.pid, f.port, f.count), (Some(1000), Some(6800), 2));
    assert_eq!(f.process.as_deref(), Some("redis-server"));
    assert_eq!(f.filter, "pid:1000 state:close-wait");
}

#[test]
fn close_wait_leak_severity_rises_with_count_and_growth() {
    // 50 young ones, not growing: a busy proxy can have that many.
    let mut a = fixture::small();
    add_close_wait(&mut a, 48, 10_000);
    let findings = run(std::slice::from_ref(&a));
    let f = of_kind(&findings, Kind::CloseWaitLeak)[0];
    assert_eq!((f.severity, f.count), (Severity::Info, 50));

    // 120 is a warning whatever their age.
    let mut many = a.clone();
    add_close_wait(&mut many, 70, 30_000);
    let findings = run(&[many]);
    let f = of_kind(&findings, Kind::CloseWaitLeak)[0];
    assert_eq!((f.severity, f.count), (Severity::Warning, 120));

    // 50 growing to 60 in a minute is a warning (five samples, 15 s apart:
    // growth is a fit over 15 s or more).
    let grown: Vec<Snapshot> = [(0, 0), (15, 2), (30, 5), (45, 7), (60, 10)]
        .into_iter()
        .map(|(t, extra)| {
            let mut s = a.clone();
            at(&mut s, t);
            add_close_wait(&mut s, extra, 40_000);
            s
        })
        .collect();
    let findings = run(&grown);
    let f = of_kind(&findings, Kind::CloseWaitLeak)[0];
    assert_eq!(f.severity, Severity::Warning);
    assert!((f.growth_per_min.unwrap() - 10.0).abs() < 1e-9, "{f:#?}");
    assert_eq!(f.growth_window_s, Some(60.0));

    // Two samples are not enough for a growth figure at all.
    let mut later = a.clone();
    at(&mut later, 60);
    add_close_wait(&mut later, 10, 40_000);
    let mut before = a.clone();
    at(&mut before, 0);
    let f = of_kind(&run(&[before, later]), Kind::CloseWaitLeak)[0].clone();
    assert_eq!(f.growth_per_min, None);

    // 150 more in 30 s: +300/min with 200 held is critical.
    let leak: Vec<Snapshot> = (0..=6)
        .map(|i| {
            let mut s = a.clone();
            at(&mut s, i * 5);
            add_close_wait(&mut s, i as u32 * 25, 20_000);
            s
        })
        .collect();
    let findings = run(&leak);
    let f = of_kind(&findings, Kind::CloseWaitLeak)[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.count, 200);
    assert_eq!(f.new_since_last, Some(25));
    assert!((f.growth_per_min.unwrap() - 300.0).abs() < 1e-9, "{f:#?}");
    assert!(f.summary.contains("growing by 300/min"), "{}", f.summary);
    assert!(!f.first_seen_exact, "the oldest were there from the start");
    assert_eq!(f.ports, vec![6800]);
    assert!(findings[0].kind == Kind::CloseWaitLeak, "most severe first");
}

#[test]
fn a_thousand_close_wait_sockets_are_critical_without_history() {
    let mut a = fixture::small();
    add_close_wait(&mut a, 1000, 10_000);
    let f = run(&[a])
        .into_iter()
        .find(|f| f.kind == Kind::CloseWaitLeak)
        .unwrap();
    assert_eq!(f.severity, Severity::Critical);
}

#[test]
fn one_close_wait_socket_stuck_for_minutes_is_a_warning() {
    let mut a = fixture::small();
    // tcp_info: the peer's FIN (the last ACK received) came 5 minutes ago.
    a.sockets[1].tcp_info = Some(Box::new(TcpInfo {
        last_ack_recv_ms: 300_000,
        ..TcpInfo::default()
    }));
    let f = run(std::slice::from_ref(&a))
        .into_iter()
        .find(|f| f.kind == Kind::CloseWaitLeak)
        .unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.first_seen,
        Some(a.taken_at - Duration::from_secs(300)),
        "the age comes from tcp_info's last ACK"
    );
}

#[test]
fn close_wait_message_says_what_happened_and_what_to_do() {
    let f = run(&[fixture::small()])
        .into_iter()
        .find(|f| f.kind == Kind::CloseWaitLeak)
        .unwrap();
    assert!(
        f.message.contains("has not called close()"),
        "{}",
        f.message
    );
    assert!(
        f.message
            .contains("127.0.0.1 (1; python3 (pid 5000) on this machine, its end in FIN_WAIT2)"),
        "{}",
        f.message
    );
    assert!(f.next_step.contains("Restarting the process frees"));
    assert!(
        f.next_step
            .contains("a falling CLOSE_WAIT count does not mean the leak stopped")
    );
}

#[test]
fn owned_fin_wait2_points_at_the_local_peer_in_close_wait() {
    let findings = run(&[fixture::small()]);
    let f = of_kind(&findings, Kind::FinWait2)[0];
    assert_eq!(
        (f.pid, f.port),
        (Some(5000), Some(6800)),
        "the service it talks to"
    );
    assert_eq!(f.peers[0].pid, Some(1000));
    assert_eq!(f.peers[0].state, Some(TcpState::CloseWait));
    assert!(
        f.message.contains("redis-server (pid 1000)"),
        "{}",
        f.message
    );
    assert!(f.message.contains("tcp_fin_timeout does not apply"));
}

#[test]
fn orphaned_fin_wait2_cites_tcp_fin_timeout() {
    let mut a = fixture::small();
    for i in 0..5 {
        a.sockets.push(socket(
            Proto::Tcp,
            TcpState::FinWait2,
            "10.0.0.1:80",
            &format!("10.0.9.9:{}", 30000 + i),
            0,
            0,
            &[],
        ));
    }
    let findings = run(&[a]);
    let orphans: Vec<_> = of_kind(&findings, Kind::FinWait2)
        .into_iter()
        .filter(|f| f.pid.is_none())
        .collect();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].count, 5);
    assert_eq!(orphans[0].severity, Severity::Info);
    assert!(
        orphans[0]
            .summary
            .contains("net.ipv4.tcp_fin_timeout = 60 s")
    );
}

/// A client (pid 5000) that opened `n` connections to 10.1.1.1:5432 from
/// ports 40000.., `tw` of them now in TIME_WAIT; 100 ephemeral ports.
fn port_pressure(n: u16, tw: u16, tw_reuse: &str) -> Snapshot {
    let mut a = fixture::small();
    set_sysctl(&mut a, "net.ipv4.ip_local_port_range", "40000 40099");
    set_sysctl(&mut a, "net.ipv4.tcp_tw_reuse", tw_reuse);
    for i in 0..n {
        let local = format!("10.0.0.1:{}", 40000 + i);
        let (state, inode, owners): (_, u64, &[(u32, u32)]) = if i < tw {
            (TcpState::TimeWait, 0, &[])
        } else {
            (TcpState::Established, 50_000 + u64::from(i), &[(5000, 200)])
        };
        a.sockets.push(socket(
            Proto::Tcp,
            state,
            &local,
            "10.1.1.1:5432",
            inode,
            1000,
            owners,
        ));
    }
    a
}

#[test]
fn ephemeral_ports_running_out_is_critical_and_names_the_client() {
    let findings = run(&[port_pressure(90, 85, "0")]);
    let f = of_kind(&findings, Kind::TimeWaitPressure)[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.count, 85);
    assert_eq!(f.port, Some(5432));
    assert_eq!(f.pid, Some(5000), "the process still connected there");
    assert!(
        f.summary.contains("90 of 100 ephemeral ports"),
        "{}",
        f.summary
    );
    assert!(f.message.contains("active closer"), "{}", f.message);
    assert!(f.message.contains("EADDRNOTAVAIL"), "{}", f.message);
    assert_eq!(f.filter, "state:time-wait raddr:10.1.1.1 rport:5432");
}

#[test]
fn tw_reuse_means_only_live_connections_count_against_the_range() {
    let findings = run(&[port_pressure(90, 85, "1")]);
    let f = of_kind(&findings, Kind::TimeWaitPressure)[0];
    assert_eq!(f.severity, Severity::Info);
    assert!(f.message.contains("tcp_tw_reuse lets"), "{}", f.message);
    let findings = run(&[port_pressure(60, 5, "1")]);
    assert_eq!(
        of_kind(&findings, Kind::TimeWaitPressure)[0].severity,
        Severity::Warning
    );
}

#[test]
fn a_full_accept_queue_with_overflows_is_critical() {
    let mut a = fixture::small();
    set_counter(&mut a, "TcpExt.ListenOverflows", 10);
    let mut b = a.clone();
    at(&mut b, 2);
    set_counter(&mut b, "TcpExt.ListenOverflows", 17);
    set_sysctl(&mut b, "net.core.somaxconn", "128");
    let listener = &mut b.sockets[4];
    assert_eq!(listener.state, TcpState::Listen);
    listener.recv_q = 129;
    listener.send_q = 128;
    let findings = run(&[a, b]);
    let f = of_kind(&findings, Kind::ListenQueueFull)[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!((f.pid, f.port), (Some(4242), Some(80)));
    assert!(
        f.message.contains("ListenOverflows rose by 7"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("has not called accept()"),
        "{}",
        f.message
    );
    assert!(
        f.next_step.contains("capped by net.core.somaxconn = 128"),
        "{}",
        f.next_step
    );
}

#[test]
fn overflows_with_no_full_queue_now_are_a_warning_but_not_under_a_filter() {
    let mut a = fixture::small();
    set_counter(&mut a, "TcpExt.ListenOverflows", 10);
    let mut b = a.clone();
    at(&mut b, 2);
    set_counter(&mut b, "TcpExt.ListenOverflows", 12);
    let findings = run(&[a.clone(), b.clone()]);
    assert_eq!(
        of_kind(&findings, Kind::ListenQueueFull)[0].severity,
        Severity::Warning
    );
    let findings = run_filtered(&[a, b], "port:6800");
    assert!(of_kind(&findings, Kind::ListenQueueFull).is_empty());
}

#[test]
fn syn_flood_names_the_listener_and_the_syncookies_setting() {
    let mut a = fixture::small();
    set_sysctl(&mut a, "net.ipv4.tcp_syncookies", "1");
    set_sysctl(&mut a, "net.ipv4.tcp_max_syn_backlog", "4096");
    for i in 0..300u32 {
        let remote = format!("198.51.100.{}:{}", i % 250 + 1, 1024 + i);
        a.sockets.push(socket(
            Proto::Tcp,
            TcpState::SynRecv,
            "10.0.0.1:80",
            &remote,
            0,
            0,
            &[],
        ));
    }
    // Against the listener's backlog: 300 of 4096 is normal on a busy server,
    // 300 of 511 is more than half.
    a.sockets[4].send_q = 4096;
    assert!(of_kind(&run(&[a.clone()]), Kind::SynFlood).is_empty());
    a.sockets[4].send_q = 511;
    let findings = run(&[a.clone()]);
    let f = of_kind(&findings, Kind::SynFlood)[0];
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.message.contains("of the listener's backlog (511)"),
        "{}",
        f.message
    );
    assert_eq!((f.pid, f.port, f.count), (Some(4242), Some(80), 300));
    assert!(
        f.message.contains("net.ipv4.tcp_syncookies = 1"),
        "{}",
        f.message
    );
    assert!(f.message.contains("SYN flood"), "{}", f.message);

    // The SYN queue overflowing and dropping makes it critical.
    set_counter(&mut a, "TcpExt.TCPReqQFullDrop", 0);
    let mut b = a.clone();
    at(&mut b, 2);
    set_counter(&mut b, "TcpExt.TCPReqQFullDrop", 40);
    set_sysctl(&mut b, "net.ipv4.tcp_syncookies", "0");
    let findings = run(&[a, b]);
    let f = of_kind(&findings, Kind::SynFlood)[0];
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.next_step.contains("Turn on net.ipv4.tcp_syncookies = 1"));
}

#[test]
fn a_few_syn_recv_are_normal() {
    let mut a = fixture::small();
    a.sockets.push(socket(
        Proto::Tcp,
        TcpState::SynRecv,
        "10.0.0.1:80",
        "198.51.100.1:3000",
        0,
        0,
        &[],
    ));
    assert!(of_kind(&run(&[a]), Kind::SynFlood).is_empty());
}

/// nginx serving `n` clients with traffic; `lossy` of them to 192.0.2.7
/// retransmitting 10% of their segments.
fn serving(n: u32, lossy: u32) -> Snapshot {
    let mut a = fixture::small();
    for i in 0..n {
        let remote = if i < lossy {
            format!("192.0.2.7:{}", 20000 + i)
        } else {
            format!("203.0.113.{}:{}", i % 200 + 1, 20000 + i)
        };
        let mut s = socket(
            Proto::Tcp,
            TcpState::Established,
            "10.0.0.1:80",
            &remote,
            70_000 + u64::from(i),
            33,
            &[(4242, 1000 + i)],
        );
        s.tcp_info = Some(Box::new(TcpInfo {
            segs_out: 2000,
            segs_in: 1500,
            total_retrans: if i < lossy { 200 } else { 1 },
            bytes_acked: 5_000_000,
            bytes_received: 100_000,
            ..TcpInfo::default()
        }));
        a.sockets.push(s);
    }
    a
}

#[test]
fn retransmitting_connections_with_a_rising_rate_are_a_warning_naming_the_host() {
    let mut a = serving(50, 5);
    set_counter(&mut a, "Tcp.RetransSegs", 1000);
    set_counter(&mut a, "Tcp.OutSegs", 100_000);
    let mut b = a.clone();
    at(&mut b, 2);
    set_counter(&mut b, "Tcp.RetransSegs", 1100);
    set_counter(&mut b, "Tcp.OutSegs", 104_000);
    let findings = run(&[a.clone(), b]);
    let f = of_kind(&findings, Kind::Retransmissions)[0];
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.count, 5);
    assert_eq!(f.peers[0].addr, "192.0.2.7");
    assert_eq!((f.pid, f.port), (Some(4242), Some(80)));
    assert!(
        f.message.contains("200 of 2000") || f.message.contains("1000 of 10000"),
        "{}",
        f.message
    );
    assert!(
        // 100 retransmitted of 4000 + 100 segments sent (OutSegs leaves
        // retransmissions out).
        f.message
            .contains("RetransSegs less TcpExt.TCPSynRetrans is rising at 50/s (2.4% of"),
        "{}",
        f.message
    );
    assert!(f.next_step.contains("mtr 192.0.2.7"));

    // The same connections with the counter flat: old loss, only info.
    let mut c = a.clone();
    at(&mut c, 2);
    let findings = run(&[a, c]);
    assert_eq!(
        of_kind(&findings, Kind::Retransmissions)[0].severity,
        Severity::Info
    );
}

#[test]
fn a_busy_healthy_server_produces_no_warning() {
    let mut a = serving(500, 0);
    set_counter(&mut a, "Tcp.RetransSegs", 1000);
    set_counter(&mut a, "Tcp.OutSegs", 100_000);
    set_counter(&mut a, "TcpExt.ListenOverflows", 3);
    let mut b = a.clone();
    at(&mut b, 2);
    set_counter(&mut b, "Tcp.RetransSegs", 1001);
    set_counter(&mut b, "Tcp.OutSegs", 190_000);
    // Without the fixture's little redis leak and half-closed client.
    for s in [&mut a, &mut b] {
        s.sockets
            .retain(|s| !matches!(s.state, TcpState::CloseWait | TcpState::FinWait2));
    }
    let findings = run(&[a, b]);
    assert_eq!(worst(&findings), None, "{findings:#?}");
}

#[test]
fn one_client_with_most_connections_is_reported_as_info() {
    let mut a = serving(30, 0);
    for i in 0..60u32 {
        a.sockets.push(socket(
            Proto::Tcp,
            TcpState::Established,
            "10.0.0.1:80",
            &format!("192.0.2.99:{}", 30000 + i),
            90_000 + u64::from(i),
            33,
            &[(4242, 3000 + i)],
        ));
    }
    let findings = run(&[a]);
    let f = of_kind(&findings, Kind::TopClients)[0];
    assert_eq!(f.severity, Severity::Info);
    assert_eq!((f.port, f.count), (Some(80), 60));
    assert!(
        f.summary.starts_with("192.0.2.99 holds 60 of 91"),
        "{}",
        f.summary
    );
}

#[test]
fn a_filter_limits_findings_to_the_sockets_asked_about() {
    let findings = run_filtered(&[fixture::small()], "pid:5000");
    assert!(
        findings.iter().all(|f| f.kind == Kind::FinWait2),
        "{findings:#?}"
    );
}

#[test]
fn json_has_the_documented_fields() {
    let f = run(&[fixture::small()])
        .into_iter()
        .find(|f| f.kind == Kind::CloseWaitLeak)
        .unwrap();
    let v = serde_json::to_value(&f).unwrap();
    for field in [
        "kind",
        "severity",
        "pid",
        "pids",
        "process",
        "port",
        "count",
        "first_seen",
        "message",
        "next_step",
        "filter",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert_eq!(v["kind"], "close_wait_leak");
    assert_eq!(v["severity"], "info");
    assert_eq!(v["first_seen"], "2027-01-15T08:00:00Z");
}

#[test]
fn retransmissions_without_segs_out_from_a_short_tcp_info_are_not_a_share_of_nothing() {
    // A 3.x kernel's tcp_info ends before tcpi_segs_out: the collector
    // leaves it 0.
    let mut a = serving(50, 5);
    for s in &mut a.sockets {
        if let Some(t) = &mut s.tcp_info {
            t.segs_out = 0;
        }
    }
    let mut b = a.clone();
    at(&mut b, 2);
    let findings = run(&[a, b]);
    assert!(of_kind(&findings, Kind::Retransmissions).is_empty());
}

#[test]
fn a_half_closed_connections_other_end_is_never_taken_from_an_established_entry() {
    // A trouble refresh merged into an older full dump: the client's end is
    // fresh in FIN_WAIT2; the server's end is gone since (it would be in
    // the refresh otherwise) and only its ESTABLISHED entry of the full dump
    // is left. That entry is not the other end now.
    let mut snap = fixture::small();
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::FinWait2,
        "127.0.0.1:52000",
        "127.0.0.1:7000",
        0,
        1000,
        &[],
    ));
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::Established,
        "127.0.0.1:7000",
        "127.0.0.1:52000",
        301,
        1000,
        &[(6000, 4)],
    ));
    // The other way round: a CLOSE_WAIT of the fixture's redis whose
    // client's end is gone, an ESTABLISHED entry of it left.
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::CloseWait,
        "127.0.0.1:6800",
        "127.0.0.1:53000",
        302,
        999,
        &[(1000, 40)],
    ));
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::Established,
        "127.0.0.1:53000",
        "127.0.0.1:6800",
        303,
        1000,
        &[(6001, 4)],
    ));
    let h = {
        let mut h = History::default();
        h.record(&snap);
        h
    };
    let findings = analyze(&snap, &h, &Filter::default());
    let leak = findings
        .iter()
        .find(|f| f.kind == Kind::CloseWaitLeak && f.pid == Some(1000))
        .expect("redis's CLOSE_WAIT finding");
    assert!(
        leak.peers.iter().all(|p| p.pid != Some(6001)),
        "the stale ESTABLISHED entry was taken for the other end: {:?}",
        leak.peers
    );
    let orphans = findings
        .iter()
        .find(|f| f.kind == Kind::FinWait2 && f.pid.is_none())
        .expect("the orphaned FIN_WAIT2 finding");
    let to_7000: Vec<&Peer> = orphans
        .peers
        .iter()
        .filter(|p| p.pid == Some(6000))
        .collect();
    assert!(
        to_7000.is_empty(),
        "the stale ESTABLISHED entry was taken for the other end: {:?}",
        orphans.peers
    );
    // The fixture's own FIN_WAIT2 still finds its other end in CLOSE_WAIT.
    let held = findings
        .iter()
        .find(|f| f.kind == Kind::FinWait2 && f.pid == Some(5000))
        .expect("python3's FIN_WAIT2 finding");
    assert!(
        held.peers
            .iter()
            .any(|p| p.pid == Some(1000) && p.state == Some(TcpState::CloseWait)),
        "{:?}",
        held.peers
    );
}

#[test]
fn a_small_port_index_finds_what_the_dense_one_finds() {
    // Ports and addresses shared in every way: many sockets on one local
    // port, pairs told apart only by address, IPv4 against IPv4-mapped.
    let mut snap = fixture::small();
    for i in 0..600u32 {
        let (local_port, remote_port) = (7000 + (i % 7) as u16, 30_000 + (i % 50) as u16);
        let local = if i % 5 == 0 {
            format!("[::ffff:127.0.0.{}]:{local_port}", 1 + i % 3)
        } else {
            format!("127.0.0.{}:{local_port}", 1 + i % 3)
        };
        let remote = format!("127.0.{}.{}:{remote_port}", i % 2, 1 + i % 4);
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::Established,
            &local,
            &remote,
            u64::from(i) + 1,
            0,
            &[],
        ));
    }
    let all: Vec<&Socket> = snap.sockets.iter().collect();
    let small = PortIndex::build(&all, true);
    let dense = PortIndex::build(&all, false);
    let mut found = 0;
    for s in &all {
        assert_eq!(small.at(s.local.port()), dense.at(s.local.port()));
        let (l, r) = (canonical(s.local), canonical(s.remote));
        let a: Vec<u32> = small.candidates(l, r).collect();
        let b: Vec<u32> = dense.candidates(l, r).collect();
        assert_eq!(a, b, "{s:?}");
        // Every socket is among its own candidates.
        let me = all.iter().position(|o| std::ptr::eq(*o, *s)).unwrap() as u32;
        assert!(a.contains(&me), "{s:?}");
        found += a.len();
    }
    assert!(found >= all.len());
    // A port nobody is on.
    assert!(small.at(1).is_empty() && dense.at(1).is_empty());
    assert!(small.at(u16::MAX).is_empty() && dense.at(u16::MAX).is_empty());
}
