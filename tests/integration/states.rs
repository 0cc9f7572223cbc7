//! Every TCP state a loopback connection goes through, and UDP, IPv6 and
//! shared sockets, each listed with the right ports and owner.

use crate::common;

use common::{Holder, OwnerRow, Row, exe_comm, poll_row, snapshot_json};

fn owned_by(pid: u32, fd: u32) -> Vec<OwnerRow> {
    vec![OwnerRow {
        pid,
        fd,
        process: Some(exe_comm()),
    }]
}

fn assert_owned(row: &Row, pid: u32, fd: u32) {
    assert_eq!(row.pid, Some(pid), "pid of {row:#?}");
    assert_eq!(
        row.process.as_deref(),
        Some(exe_comm().as_str()),
        "{row:#?}"
    );
    assert_eq!(row.owners, owned_by(pid, fd), "owners of {row:#?}");
}

fn assert_orphan(row: &Row) {
    assert_eq!(row.pid, None, "{row:#?}");
    assert_eq!(row.process, None, "{row:#?}");
    assert!(row.owners.is_empty(), "{row:#?}");
    assert_eq!(
        row.inode, 0,
        "a socket no file refers to has no inode: {row:#?}"
    );
}

/// Waits for the one TCP row with these ports in `state`.
fn tcp_row(local: u16, remote: u16, state: &str) -> Row {
    let filter = format!("lport:{local}");
    poll_row(
        &format!("tcp {local} -> {remote} in {state}"),
        &["proto:tcp", &filter],
        |r| r.is("tcp", local, remote) && r.state == state,
    )
}

#[test]
fn listener_held_by_a_child_is_listed_with_its_pid_and_name() {
    let mut h = Holder::new();
    let (id, port) = h.listen("127.0.0.1:0");
    let fd = h.fd(id);
    let row = tcp_row(port, 0, "LISTEN");
    assert_eq!(row.family, 4);
    assert_eq!(row.local_addr, "127.0.0.1");
    assert_eq!(row.remote_addr, "0.0.0.0");
    assert_ne!(row.inode, 0);
    assert_owned(&row, h.pid(), fd);
}

#[test]
fn listener_held_by_the_test_itself_is_attributed_to_the_test_pid() {
    use sockscope::collect::{Collector, Options, SourceChoice, SystemCollector};
    use std::os::fd::AsRawFd;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let me = std::process::id();
    // No process is half-way between fork and exec (holding a copy of our
    // descriptors) while we look.
    let _no_spawns = common::SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // The one-shot full scan and the monitor's incremental scan (twice, so the
    // second answer comes from its cache) must agree.
    for (incremental, rounds) in [(false, 1), (true, 2)] {
        let mut collector = SystemCollector::new(Options {
            source: SourceChoice::Netlink,
            tcp_info: false,
            owners: true,
            incremental,
            namespaces: true,
        });
        let mut snap = collector.collect().unwrap();
        for _ in 1..rounds {
            snap = collector.collect().unwrap();
        }
        let ours: Vec<_> = snap
            .sockets
            .iter()
            .filter(|s| s.local.port() == port && s.state == sockscope::model::TcpState::Listen)
            .collect();
        assert_eq!(ours.len(), 1, "{ours:#?}");
        assert_eq!(
            ours[0].owners.as_slice(),
            [sockscope::model::Owner {
                pid: me,
                fd: listener.as_raw_fd() as u32
            }]
        );
        assert_eq!(snap.owner_name(ours[0]), Some(exe_comm().as_str()));
    }
}

#[test]
fn established_pair_lists_both_ends_with_their_owner() {
    let mut h = Holder::new();
    let p = h.connected_pair("127.0.0.1:0");
    let (client_fd, server_fd) = (h.fd(p.client), h.fd(p.server));

    let client = tcp_row(p.client_port, p.port, "ESTABLISHED");
    assert_eq!(
        (client.local_addr.as_str(), client.remote_addr.as_str()),
        ("127.0.0.1", "127.0.0.1")
    );
    assert_owned(&client, h.pid(), client_fd);

    let server = tcp_row(p.port, p.client_port, "ESTABLISHED");
    assert_owned(&server, h.pid(), server_fd);
    assert_ne!(server.inode, client.inode);
}

#[test]
fn close_wait_socket_is_attributed_to_the_holding_child() {
    let mut h = Holder::new();
    let p = h.connected_pair("127.0.0.1:0");
    let server_fd = h.fd(p.server);
    h.close(p.client);
    let row = tcp_row(p.port, p.client_port, "CLOSE_WAIT");
    assert_owned(&row, h.pid(), server_fd);
}

#[test]
fn closing_side_left_in_fin_wait2_is_an_orphan_without_owner() {
    let mut h = Holder::new();
    let p = h.connected_pair("127.0.0.1:0");
    h.close(p.client);
    let row = tcp_row(p.client_port, p.port, "FIN_WAIT2");
    assert_orphan(&row);
    // and its peer is still ours, waiting for us to close
    let peer = tcp_row(p.port, p.client_port, "CLOSE_WAIT");
    assert_eq!(peer.pid, Some(h.pid()));
}

#[test]
fn half_closed_socket_in_fin_wait2_keeps_its_owner_and_its_peer_is_close_wait() {
    let mut h = Holder::new();
    let p = h.connected_pair("127.0.0.1:0");
    let (client_fd, server_fd) = (h.fd(p.client), h.fd(p.server));
    h.shutdown_write(p.client);

    let client = tcp_row(p.client_port, p.port, "FIN_WAIT2");
    assert_owned(&client, h.pid(), client_fd);
    assert_ne!(client.inode, 0);

    let server = tcp_row(p.port, p.client_port, "CLOSE_WAIT");
    assert_owned(&server, h.pid(), server_fd);
}

#[test]
fn active_closer_is_left_in_time_wait_without_owner() {
    let mut h = Holder::new();
    let p = h.connected_pair("127.0.0.1:0");
    h.close(p.client);
    tcp_row(p.port, p.client_port, "CLOSE_WAIT");
    h.close(p.server);
    let row = tcp_row(p.client_port, p.port, "TIME_WAIT");
    assert_orphan(&row);
    // The passive closer is gone once its FIN is acknowledged.
    common::poll("the passive closer to disappear", || {
        let rows = snapshot_json(&["proto:tcp", &format!("lport:{}", p.port)]);
        (!rows.iter().any(|r| r.is("tcp", p.port, p.client_port))).then_some(())
    });
}

#[test]
fn bound_udp_socket_is_close_and_connected_udp_socket_is_established() {
    let mut h = Holder::new();
    let (bound, bound_port) = h.udp("127.0.0.1:0");
    let (connected, connected_port) = h.udp("127.0.0.1:0");
    h.udp_connect(connected, &format!("127.0.0.1:{bound_port}"));
    let (bound_fd, connected_fd) = (h.fd(bound), h.fd(connected));

    let row = poll_row(
        "bound UDP socket",
        &["proto:udp", &format!("lport:{bound_port}")],
        |r| r.is("udp", bound_port, 0),
    );
    assert_eq!(row.state, "CLOSE");
    assert_eq!((row.family, row.local_addr.as_str()), (4, "127.0.0.1"));
    assert_eq!(row.remote_addr, "0.0.0.0");
    assert_owned(&row, h.pid(), bound_fd);

    let row = poll_row(
        "connected UDP socket",
        &["proto:udp", &format!("lport:{connected_port}")],
        |r| r.is("udp", connected_port, bound_port),
    );
    assert_eq!(row.state, "ESTABLISHED");
    assert_eq!(row.remote_addr, "127.0.0.1");
    assert_owned(&row, h.pid(), connected_fd);
}

#[test]
fn ipv6_loopback_listener_and_connection_are_family_6() {
    if !common::ipv6_loopback() {
        return;
    }
    let mut h = Holder::new();
    let p = h.connected_pair("[::1]:0");
    let (listener_fd, client_fd, server_fd) = (h.fd(p.listener), h.fd(p.client), h.fd(p.server));

    let listener = tcp_row(p.port, 0, "LISTEN");
    assert_eq!(listener.family, 6);
    assert_eq!(listener.local_addr, "::1");
    assert_eq!(listener.remote_addr, "::");
    assert_owned(&listener, h.pid(), listener_fd);

    for (local, remote, fd) in [
        (p.client_port, p.port, client_fd),
        (p.port, p.client_port, server_fd),
    ] {
        let row = tcp_row(local, remote, "ESTABLISHED");
        assert_eq!(row.family, 6);
        assert_eq!(
            (row.local_addr.as_str(), row.remote_addr.as_str()),
            ("::1", "::1")
        );
        assert_owned(&row, h.pid(), fd);
    }
}

#[test]
fn socket_shared_with_a_child_process_lists_both_owners() {
    let mut h = Holder::new();
    let (id, port) = h.listen("127.0.0.1:0");
    let fd = h.fd(id);
    let heir = h.share(id);
    let mut expected = vec![
        OwnerRow {
            pid: h.pid(),
            fd,
            process: Some(exe_comm()),
        },
        // The child has it as its stderr.
        OwnerRow {
            pid: heir,
            fd: 2,
            process: Some("sh".into()),
        },
    ];
    expected.sort();
    let row = tcp_row(port, 0, "LISTEN");
    assert_eq!(row.owners, expected);
    assert_eq!(row.pid, Some(expected[0].pid), "pid is the first owner");
    assert_eq!(row.process, expected[0].process);

    // The table says there is one more.
    let out = common::output(&mut common::sockscope(&[
        "snapshot",
        &format!("lport:{port}"),
        "state:listen",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{port} ")))
        .unwrap_or_else(|| panic!("no row for {port} in\n{text}"));
    assert!(line.contains(" (+1)"), "{line}");
}
