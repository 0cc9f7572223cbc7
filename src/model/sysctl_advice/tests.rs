//! Tests of the sysctls view's content: texts, timeouts and live context.

use super::*;
use crate::model::fixture;

fn snap_with(sysctls: &[(&str, &str)]) -> Snapshot {
    let mut snap = fixture::small();
    for (k, v) in sysctls {
        snap.system.sysctls.insert(k.to_string(), v.to_string());
    }
    snap
}

fn ctx(snap: &Snapshot, name: &str) -> Option<Context> {
    let f = facts(snap, &CounterHistory::default());
    context_for(name, snap, &f)
}

#[test]
fn every_documented_sysctl_is_collected_and_has_text() {
    for d in docs() {
        assert!(
            crate::collect::system::SYSCTLS.contains(&d.name.as_str()),
            "{} is documented but not collected",
            d.name
        );
        assert!(d.affects.len() > 20 && d.advice.len() > 20, "{}", d.name);
    }
    for name in crate::collect::system::SYSCTLS {
        assert!(
            doc(name).is_some(),
            "{name} is collected but not documented"
        );
    }
}

#[test]
fn no_advice_recommends_tcp_tw_recycle() {
    for d in docs() {
        let text = format!("{} {}", d.affects, d.advice);
        if text.contains("tcp_tw_recycle") {
            assert!(
                text.contains("Never use tcp_tw_recycle") && text.contains("removed in Linux 4.12"),
                "{}: {text}",
                d.name
            );
        }
    }
}

#[test]
fn timeouts_match_the_kernel_documentation() {
    // ip-sysctl.rst: tcp_retries2 = 15 is 924.6 s, 8 is the first value over 100 s.
    assert!((retries2_timeout(15) - 924.6).abs() < 0.01);
    assert!(retries2_timeout(8) > 100.0 && retries2_timeout(7) < 100.0);
    // tcp_synack_retries = 5: 63 s; tcp_syn_retries = 6: 127 s without
    // linear timeouts, 131 s with tcp_syn_linear_timeouts = 4.
    assert_eq!(doubling_timeout(5, 0), 63.0);
    assert_eq!(doubling_timeout(6, 0), 127.0);
    assert_eq!(doubling_timeout(6 + 4, 4), 131.0);
    assert_eq!(format_secs(924.6), "15.4 min");
    assert_eq!(format_secs(7875.0), "2h11m");
    assert_eq!(format_secs(63.0), "63 s");
    assert_eq!(format_secs(131.0), "131 s");
}

#[test]
fn syn_retries_context_counts_linear_timeouts() {
    let snap = snap_with(&[
        ("net.ipv4.tcp_syn_retries", "6"),
        ("net.ipv4.tcp_syn_linear_timeouts", "4"),
    ]);
    assert_eq!(
        ctx(&snap, "net.ipv4.tcp_syn_retries").unwrap().short,
        "connect() fails after ~131 s"
    );
    let older = snap_with(&[("net.ipv4.tcp_syn_retries", "6")]);
    assert_eq!(
        ctx(&older, "net.ipv4.tcp_syn_retries").unwrap().short,
        "connect() fails after ~127 s"
    );
}

#[test]
fn time_wait_is_measured_against_max_tw_buckets() {
    let mut snap = snap_with(&[("net.ipv4.tcp_max_tw_buckets", "1000")]);
    snap.system.sockstat.insert("TCP.tw".into(), 950);
    let c = ctx(&snap, "net.ipv4.tcp_max_tw_buckets").unwrap();
    assert_eq!(
        (c.short.as_str(), c.level),
        ("TIME_WAIT table 950 (95%)", Level::Trouble)
    );
    snap.system.sockstat.remove("TCP.tw");
    let c = ctx(&snap, "net.ipv4.tcp_max_tw_buckets").unwrap();
    assert_eq!(
        c.short, "TIME_WAIT table 1 (0%)",
        "falls back to counting sockets"
    );
    assert_eq!(c.level, Level::Info);
}

#[test]
fn an_overflowing_time_wait_table_is_trouble() {
    let mut counters = CounterHistory::default();
    let at = |s| std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let one = |v| {
        [("TcpExt.TCPTimeWaitOverflow".to_string(), v)]
            .into_iter()
            .collect()
    };
    counters.record(at(100), &one(5));
    counters.record(at(110), &one(12));
    let snap = snap_with(&[("net.ipv4.tcp_max_tw_buckets", "1000")]);
    let f = facts(&snap, &counters);
    let c = context_for("net.ipv4.tcp_max_tw_buckets", &snap, &f).unwrap();
    assert_eq!(
        (c.short.as_str(), c.level),
        ("overflowed +7 in last min", Level::Trouble)
    );
}

#[test]
fn listener_backlogs_are_compared_with_somaxconn() {
    let mut snap = snap_with(&[("net.core.somaxconn", "4096")]);
    // Port 80 (nginx): backlog 511, 3 waiting. Port 6800 (redis): backlog 4096.
    for s in snap
        .sockets
        .iter_mut()
        .filter(|s| s.state == TcpState::Listen)
    {
        if s.local.port() == 80 {
            (s.send_q, s.recv_q) = (511, 3);
        } else {
            s.send_q = 4096;
        }
    }
    let f = facts(&snap, &CounterHistory::default());
    assert_eq!(f.largest_backlog.as_ref().unwrap().port, 6800);
    assert_eq!(f.fullest_queue.as_ref().unwrap().port, 80);
    let c = context_for("net.core.somaxconn", &snap, &f).unwrap();
    assert_eq!(c.short, "largest backlog 4096 (:6800 redis-server)");
    assert!(c.detail.contains("at this cap"), "{}", c.detail);
    // Port 80's queue holds its backlog: not full yet (the kernel takes one more).
    for s in snap
        .sockets
        .iter_mut()
        .filter(|s| s.local.port() == 80 && s.state == TcpState::Listen)
    {
        s.recv_q = 511;
    }
    let f = facts(&snap, &CounterHistory::default());
    let c = context_for("net.core.somaxconn", &snap, &f).unwrap();
    assert_eq!(c.level, Level::Info, "{c:?}");
    // One more: full, and that is what matters now.
    for s in snap
        .sockets
        .iter_mut()
        .filter(|s| s.local.port() == 80 && s.state == TcpState::Listen)
    {
        s.recv_q = 512;
    }
    let f = facts(&snap, &CounterHistory::default());
    let c = context_for("net.core.somaxconn", &snap, &f).unwrap();
    assert_eq!(
        (c.short.as_str(), c.level),
        ("accept queue full: :80 nginx", Level::Trouble)
    );
}

#[test]
fn backlogs_unknown_from_proc_give_no_context() {
    let snap = snap_with(&[("net.core.somaxconn", "4096")]);
    assert_eq!(
        ctx(&snap, "net.core.somaxconn"),
        None,
        "fixture listeners show Send-Q 0"
    );
}

#[test]
fn port_range_counts_connections_per_destination() {
    let mut snap = snap_with(&[("net.ipv4.ip_local_port_range", "50000 50009")]);
    // Four connections from ephemeral ports to 127.0.0.1:6800; one is the fixture's.
    for port in 50001..50004 {
        let mut s = snap.sockets[3].clone();
        s.local.set_port(port);
        s.inode += u64::from(port);
        snap.sockets.push(s);
    }
    snap.sockets[3].local.set_port(50000);
    let c = ctx(&snap, "net.ipv4.ip_local_port_range").unwrap();
    assert_eq!(c.short, "10 ports; 4 to 127.0.0.1:6800");
    assert_eq!(c.level, Level::Info, "40% of the range");
}

#[test]
fn syncookies_values_are_explained() {
    for (v, short, level) in [
        ("0", "off", Level::Warn),
        ("1", "on when a SYN queue overflows", Level::Info),
        ("2", "always (meant for testing)", Level::Warn),
    ] {
        let snap = snap_with(&[("net.ipv4.tcp_syncookies", v)]);
        let c = ctx(&snap, "net.ipv4.tcp_syncookies").unwrap();
        assert_eq!((c.short.as_str(), c.level), (short, level), "value {v}");
    }
    let on = snap_with(&[("net.ipv4.tcp_syncookies", "1")]);
    assert_eq!(
        ctx(&on, "net.ipv4.tcp_max_syn_backlog").unwrap().short,
        "no effect: syncookies on"
    );
}

#[test]
fn tw_reuse_without_timestamps_is_flagged() {
    let snap = snap_with(&[
        ("net.ipv4.tcp_tw_reuse", "1"),
        ("net.ipv4.tcp_timestamps", "0"),
    ]);
    assert_eq!(
        ctx(&snap, "net.ipv4.tcp_tw_reuse").unwrap().level,
        Level::Warn
    );
    let snap = snap_with(&[
        ("net.ipv4.tcp_tw_reuse", "2"),
        ("net.ipv4.tcp_timestamps", "1"),
    ]);
    assert_eq!(
        ctx(&snap, "net.ipv4.tcp_tw_reuse").unwrap().short,
        "loopback only; TIME_WAIT 1"
    );
}

#[test]
fn keepalive_context_adds_up_the_three_values() {
    let snap = snap_with(&[
        ("net.ipv4.tcp_keepalive_time", "7200"),
        ("net.ipv4.tcp_keepalive_intvl", "75"),
        ("net.ipv4.tcp_keepalive_probes", "9"),
    ]);
    let c = ctx(&snap, "net.ipv4.tcp_keepalive_intvl").unwrap();
    assert_eq!(c.short, "dead peer found after ~2h11m");
}

#[test]
fn orphan_fin_wait2_and_orphans_are_counted() {
    let mut snap = snap_with(&[("net.ipv4.tcp_max_orphans", "100")]);
    let mut orphan = snap.sockets[3].clone();
    orphan.inode = 0;
    orphan.owners.clear();
    snap.sockets.push(orphan);
    snap.system.sockstat.insert("TCP.orphan".into(), 30);
    assert_eq!(
        ctx(&snap, "net.ipv4.tcp_fin_timeout").unwrap().short,
        "orphaned FIN_WAIT2 1"
    );
    let c = ctx(&snap, "net.ipv4.tcp_max_orphans").unwrap();
    assert_eq!(
        (c.short.as_str(), c.level),
        ("orphans 30 (30%)", Level::Warn)
    );
}

#[test]
fn assess_lists_documented_sysctls_in_order_then_the_rest() {
    let snap = snap_with(&[("net.ipv4.zzz_unknown", "1")]);
    let names: Vec<String> = assess(&snap, &CounterHistory::default())
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        names,
        [
            "net.core.somaxconn",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_max_tw_buckets",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.zzz_unknown"
        ]
    );
}
