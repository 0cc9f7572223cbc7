//! netlink sock_diag and /proc/net describe the same sockets the same way.

use crate::common;

use common::{Holder, Row, identity, snapshot_json};
use std::collections::BTreeSet;

/// (proto, local port, remote port, state) of every socket the test made.
type Expected = BTreeSet<(String, u16, u16, String)>;

/// The rows for the test's own sockets: their port pairs are unique on loopback.
fn ours<'a>(rows: &'a [Row], expected: &Expected) -> Vec<&'a Row> {
    let keys: BTreeSet<_> = expected
        .iter()
        .map(|(p, l, r, _)| (p.as_str(), *l, *r))
        .collect();
    rows.iter()
        .filter(|r| keys.contains(&(r.proto.as_str(), r.local_port, r.remote_port)))
        .collect()
}

fn states(rows: &[&Row]) -> Expected {
    rows.iter()
        .map(|r| {
            (
                r.proto.clone(),
                r.local_port,
                r.remote_port,
                r.state.clone(),
            )
        })
        .collect()
}

/// Sockets on 127.0.0.1 and ::1 (the filter keeps the output small on a
/// machine with many other sockets).
fn loopback(args: &[&str]) -> Vec<Row> {
    let mut rows = Vec::new();
    for addr in ["addr:127.0.0.1", "addr:::1"] {
        let mut all = args.to_vec();
        all.push(addr);
        rows.extend(snapshot_json(&all));
    }
    rows
}

#[test]
fn netlink_and_proc_list_the_same_sockets_states_inodes_and_owners() {
    let mut h = Holder::new();

    // A listener with an established connection, both ends ours.
    let est = h.connected_pair("127.0.0.1:0");
    let mut sockets = vec![
        ("tcp", est.port, 0, "LISTEN"),
        ("tcp", est.client_port, est.port, "ESTABLISHED"),
        ("tcp", est.port, est.client_port, "ESTABLISHED"),
    ];

    // CLOSE_WAIT (owned) and the orphan FIN_WAIT2 the closer leaves behind.
    let cw = h.connected_pair("127.0.0.1:0");
    h.close(cw.client);
    sockets.extend([
        ("tcp", cw.port, 0, "LISTEN"),
        ("tcp", cw.port, cw.client_port, "CLOSE_WAIT"),
        ("tcp", cw.client_port, cw.port, "FIN_WAIT2"),
    ]);

    // Owned FIN_WAIT2 after shutdown(Write).
    let fw = h.connected_pair("127.0.0.1:0");
    h.shutdown_write(fw.client);
    sockets.extend([
        ("tcp", fw.port, 0, "LISTEN"),
        ("tcp", fw.client_port, fw.port, "FIN_WAIT2"),
        ("tcp", fw.port, fw.client_port, "CLOSE_WAIT"),
    ]);

    // TIME_WAIT: both closed, client first.
    let tw = h.connected_pair("127.0.0.1:0");
    h.close(tw.client);
    h.close(tw.server);
    sockets.extend([
        ("tcp", tw.port, 0, "LISTEN"),
        ("tcp", tw.client_port, tw.port, "TIME_WAIT"),
    ]);

    // UDP, bound and connected.
    let (_, u4) = h.udp("127.0.0.1:0");
    let (c4, cu4) = h.udp("127.0.0.1:0");
    h.udp_connect(c4, &format!("127.0.0.1:{u4}"));
    sockets.extend([("udp", u4, 0, "CLOSE"), ("udp", cu4, u4, "ESTABLISHED")]);

    // IPv6, TCP and UDP.
    if common::ipv6_loopback() {
        let v6 = h.connected_pair("[::1]:0");
        let (_, u6) = h.udp("[::1]:0");
        sockets.extend([
            ("tcp", v6.port, 0, "LISTEN"),
            ("tcp", v6.client_port, v6.port, "ESTABLISHED"),
            ("tcp", v6.port, v6.client_port, "ESTABLISHED"),
            ("udp", u6, 0, "CLOSE"),
        ]);
    }
    let expected: Expected = sockets
        .iter()
        .map(|(p, l, r, s)| (p.to_string(), *l, *r, s.to_string()))
        .collect();

    // Wait until the kernel has settled on every expected state.
    let netlink = common::poll("every socket in its expected state", || {
        let rows = loopback(&["--source", "netlink"]);
        let seen = states(&ours(&rows, &expected));
        (seen == expected).then_some(rows)
    });
    let proc = loopback(&["--source", "proc"]);
    let netlink = ours(&netlink, &expected);
    let proc = ours(&proc, &expected);

    assert_eq!(states(&proc), expected, "/proc/net saw other states");
    assert_eq!(netlink.len(), expected.len(), "{netlink:#?}");
    assert_eq!(proc.len(), expected.len(), "{proc:#?}");

    let mut a: Vec<_> = netlink.iter().map(|r| identity(r)).collect();
    let mut b: Vec<_> = proc.iter().map(|r| identity(r)).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "netlink (left) and /proc (right) disagree");

    // The listing is not vacuous: owned sockets carry our child's pid, and
    // the two runs really came from two different sources (only netlink
    // knows socket cookies).
    let owned = netlink.iter().filter(|r| r.pid == Some(h.pid())).count();
    let orphans = netlink.iter().filter(|r| r.inode == 0).count();
    assert_eq!(orphans, 2, "the closer's FIN_WAIT2 and the TIME_WAIT");
    assert_eq!(owned, expected.len() - orphans, "all the others are owned");
    assert!(
        netlink
            .iter()
            .filter(|r| r.inode != 0)
            .all(|r| r.cookie != "0000000000000000")
    );
    assert!(proc.iter().all(|r| r.cookie == "0000000000000000"));
}
