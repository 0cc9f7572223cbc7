//! Fixed snapshots for tests and demos: a redis with a CLOSE_WAIT leak on
//! port 6800, an nginx, a resolver and a client. Nothing here reads the system.

use super::snapshot::{Snapshot, SourceKind, SystemContext};
use super::socket::{Family, Owner, Process, Proto, Socket, TcpState};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// A socket with the given fields and everything else empty.
pub fn socket(
    proto: Proto,
    state: TcpState,
    local: &str,
    remote: &str,
    inode: u64,
    uid: u32,
    owners: &[(u32, u32)],
) -> Socket {
    let local: std::net::SocketAddr = local.parse().expect("fixture address");
    let remote: std::net::SocketAddr = remote.parse().expect("fixture address");
    Socket {
        proto,
        family: if local.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        },
        state,
        local,
        remote,
        inode,
        uid,
        recv_q: 0,
        send_q: 0,
        timer: None,
        retransmits: 0,
        cookie: inode,
        tcp_info: (proto == Proto::Tcp && inode != 0).then(Box::default),
        owners: owners.iter().map(|&(pid, fd)| Owner { pid, fd }).collect(),
        netns: crate::model::HOST_NETNS,
    }
}

pub fn process(pid: u32, name: &str, cmdline: &str, uid: u32, user: &str) -> Process {
    Process {
        pid,
        name: name.to_string(),
        cmdline: cmdline.to_string(),
        uid: Some(uid),
        user: Some(user.to_string()),
        closed_sockets: 0,
        state: None,
        netns: crate::model::HOST_NETNS,
    }
}

/// Eight sockets; inodes are chosen to be readable in assertions.
pub fn small() -> Snapshot {
    use Proto::*;
    use TcpState::*;
    let sockets = vec![
        socket(
            Tcp,
            Listen,
            "0.0.0.0:6800",
            "0.0.0.0:0",
            101,
            999,
            &[(1000, 6)],
        ),
        socket(
            Tcp,
            CloseWait,
            "127.0.0.1:6800",
            "127.0.0.1:51000",
            102,
            999,
            &[(1000, 7)],
        ),
        socket(
            Tcp,
            CloseWait,
            "10.0.0.1:6800",
            "10.0.0.9:41000",
            103,
            999,
            &[(1000, 8)],
        ),
        socket(
            Tcp,
            FinWait2,
            "127.0.0.1:51000",
            "127.0.0.1:6800",
            104,
            1000,
            &[(5000, 3)],
        ),
        socket(
            Tcp,
            Listen,
            "0.0.0.0:80",
            "0.0.0.0:0",
            201,
            33,
            &[(4242, 5)],
        ),
        socket(
            Tcp,
            Established,
            "[::ffff:127.0.0.1]:80",
            "[2001:db8::5]:50000",
            202,
            33,
            &[(4242, 9)],
        ),
        socket(
            Udp,
            Close,
            "0.0.0.0:53",
            "0.0.0.0:0",
            301,
            101,
            &[(700, 12)],
        ),
        socket(Tcp, TimeWait, "127.0.0.1:80", "127.0.0.1:52000", 0, 0, &[]),
    ];
    let processes: HashMap<u32, Process> = [
        process(1000, "redis-server", "redis-server *:6800", 999, "redis"),
        process(4242, "nginx", "nginx: worker process", 33, "www-data"),
        process(
            700,
            "systemd-resolve",
            "/lib/systemd/systemd-resolved",
            101,
            "systemd-resolve",
        ),
        process(5000, "python3", "python3 client.py", 1000, "alice"),
    ]
    .into_iter()
    .map(|p| (p.pid, p))
    .collect();
    let users = [
        (0, "root"),
        (33, "www-data"),
        (101, "systemd-resolve"),
        (999, "redis"),
        (1000, "alice"),
    ]
    .into_iter()
    .map(|(u, n)| (u, n.to_string()))
    .collect();
    let mut system = SystemContext::default();
    for (k, v) in [
        ("net.ipv4.tcp_fin_timeout", "60"),
        ("net.ipv4.ip_local_port_range", "32768 60999"),
        ("net.core.somaxconn", "4096"),
        ("net.ipv4.tcp_max_tw_buckets", "262144"),
    ] {
        system.sysctls.insert(k.to_string(), v.to_string());
    }
    Snapshot {
        taken_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        monotonic: Duration::from_secs(1_800_000_000),
        source: SourceKind::Fixture,
        source_note: None,
        sockets,
        processes,
        users,
        attribution: Default::default(),
        system,
        derived: Default::default(),
        transitions: None,
        namespaces: Default::default(),
        reused_table: None,
    }
}

/// [`small`] `n` seconds later with `n` more CLOSE_WAIT sockets held by
/// redis-server (pid 1000) on port 6800: a leak growing by one a second, as
/// frames of a recording.
pub fn leaking(n: u64) -> Snapshot {
    let mut snap = small();
    snap.advance(Duration::from_secs(n));
    for i in 0..n {
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::CloseWait,
            "127.0.0.1:6800",
            &format!("127.0.0.1:{}", 41000 + i),
            7000 + i,
            0,
            &[(1000, 50 + i as u32)],
        ));
    }
    snap
}

/// [`small`] plus a forking server on 127.0.0.1:6900: parent 100 and child
/// 101 (both `oracle`) hold the listener and three CLOSE_WAIT connections
/// (the child inherited them), and 101 holds one more of its own.
pub fn forked() -> Snapshot {
    let mut snap = small();
    let both = |fd: u32| [(100, fd), (101, fd)];
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::Listen,
        "127.0.0.1:6900",
        "0.0.0.0:0",
        9001,
        0,
        &both(3),
    ));
    for i in 0..3u16 {
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::CloseWait,
            "127.0.0.1:6900",
            &format!("127.0.0.1:{}", 50000 + i),
            9100 + u64::from(i),
            0,
            &both(4 + u32::from(i)),
        ));
    }
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::CloseWait,
        "127.0.0.1:6900",
        "127.0.0.1:50010",
        9200,
        0,
        &[(101, 9)],
    ));
    snap.processes
        .insert(100, process(100, "oracle", "oracle --serve", 0, "root"));
    snap.processes
        .insert(101, process(101, "oracle", "oracle --serve", 0, "root"));
    snap
}

/// [`small`] plus a prefork pool on *:8080: master 200 and `workers`
/// workers (201, 202, ...) all hold the listener; each worker holds `leaks`
/// CLOSE_WAIT connections of its own.
pub fn prefork(workers: u32, leaks: u32) -> Snapshot {
    let mut snap = small();
    let pids: Vec<(u32, u32)> = (0..=workers).map(|w| (200 + w, 3)).collect();
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::Listen,
        "0.0.0.0:8080",
        "0.0.0.0:0",
        8000,
        33,
        &pids,
    ));
    snap.processes
        .insert(200, process(200, "gunicorn", "gunicorn: master", 33, "www"));
    for w in 1..=workers {
        let pid = 200 + w;
        snap.processes
            .insert(pid, process(pid, "gunicorn", "gunicorn: worker", 33, "www"));
        for i in 0..leaks {
            snap.sockets.push(socket(
                Proto::Tcp,
                TcpState::CloseWait,
                "10.0.0.1:8080",
                &format!("10.0.0.{}:{}", 10 + w, 40000 + i),
                u64::from(80_000 + w * 1000 + i),
                33,
                &[(pid, 10 + i)],
            ));
        }
    }
    snap
}

/// nginx on 127.0.0.1:18180 with both workers stopped (SIGSTOP): master
/// 29945 and workers 29947, 29948 hold the listener (backlog 16); clients
/// gave up on 27 connections (their ends orphaned in FIN_WAIT2): 9 accepted
/// by 29947, 1 by 29948, 17 still in the accept queue (CLOSE_WAIT, inode 0).
pub fn stopped_workers() -> Snapshot {
    use super::socket::ProcState;
    let mut snap = small();
    let (master, w1, w2) = (29945, 29947, 29948);
    let mut l = socket(
        Proto::Tcp,
        TcpState::Listen,
        "127.0.0.1:18180",
        "0.0.0.0:0",
        18180,
        33,
        &[(master, 6), (w1, 6), (w2, 6)],
    );
    l.recv_q = 17;
    l.send_q = 16;
    snap.sockets.push(l);
    for i in 0..27u16 {
        let client = format!("127.0.0.1:{}", 45000 + i);
        let (inode, owners): (u64, Vec<(u32, u32)>) = match i {
            0..9 => (60_000 + u64::from(i), vec![(w1, 20 + u32::from(i))]),
            9 => (60_009, vec![(w2, 20)]),
            _ => (0, vec![]),
        };
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::CloseWait,
            "127.0.0.1:18180",
            &client,
            inode,
            33,
            &owners,
        ));
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::FinWait2,
            &client,
            "127.0.0.1:18180",
            0,
            1000,
            &[],
        ));
    }
    for (pid, cmd, state) in [
        (master, "nginx: master process", ProcState::Sleeping),
        (w1, "nginx: worker process", ProcState::Stopped),
        (w2, "nginx: worker process", ProcState::Stopped),
    ] {
        let mut p = process(pid, "nginx", cmd, 33, "www-data");
        p.state = Some(state);
        snap.processes.insert(pid, p);
    }
    snap
}

/// A tcp-mode proxy in front of a backend that never closes: haproxy 3000
/// on 127.0.0.1:18200 holds `n` client connections in CLOSE_WAIT (the
/// clients' ends orphaned in FIN_WAIT2) and passed the close on: its `n`
/// upstream connections to 127.0.0.1:18300 are FIN_WAIT2, and the backend,
/// python3 4000, holds their other ends in CLOSE_WAIT, last heard from
/// `backend_age_s` seconds ago.
pub fn proxy_chain(n: u16, backend_age_s: u32) -> Snapshot {
    let mut snap = small();
    let (proxy, backend) = (3000, 4000);
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::Listen,
        "127.0.0.1:18200",
        "0.0.0.0:0",
        18200,
        0,
        &[(proxy, 5)],
    ));
    snap.sockets.push(socket(
        Proto::Tcp,
        TcpState::Listen,
        "127.0.0.1:18300",
        "0.0.0.0:0",
        18300,
        0,
        &[(backend, 3)],
    ));
    for i in 0..n {
        let client = format!("127.0.0.1:{}", 46000 + i);
        let upstream = format!("127.0.0.1:{}", 47000 + i);
        let fd = 10 + 2 * u32::from(i);
        let i64_ = u64::from(i);
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::FinWait2,
            &client,
            "127.0.0.1:18200",
            0,
            1000,
            &[],
        ));
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::CloseWait,
            "127.0.0.1:18200",
            &client,
            61_000 + i64_,
            0,
            &[(proxy, fd)],
        ));
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::FinWait2,
            &upstream,
            "127.0.0.1:18300",
            62_000 + i64_,
            0,
            &[(proxy, fd + 1)],
        ));
        let mut b = socket(
            Proto::Tcp,
            TcpState::CloseWait,
            "127.0.0.1:18300",
            &upstream,
            63_000 + i64_,
            0,
            &[(backend, 10 + u32::from(i))],
        );
        if let Some(t) = b.tcp_info.as_mut() {
            t.last_ack_recv_ms = backend_age_s * 1000;
        }
        snap.sockets.push(b);
    }
    snap.processes.insert(
        proxy,
        process(proxy, "haproxy", "haproxy -f cfg -db", 0, "root"),
    );
    snap.processes.insert(
        backend,
        process(backend, "python3", "python3 backend.py", 0, "root"),
    );
    snap
}

/// A client that opened and closed connections to 127.0.0.1:18400 as fast
/// as it could from a 1000-port range under `tcp_tw_reuse = 2`: `n` ports in
/// TIME_WAIT towards it, aged 0 to `max_age_ms` (from their timers).
pub fn port_churn(n: u16, max_age_ms: u64) -> Snapshot {
    let mut snap = small();
    for (k, v) in [
        ("net.ipv4.ip_local_port_range", "40000 40999"),
        ("net.ipv4.tcp_tw_reuse", "2"),
        ("net.ipv4.tcp_timestamps", "1"),
    ] {
        snap.system.sysctls.insert(k.to_string(), v.to_string());
    }
    for i in 0..n {
        let mut s = socket(
            Proto::Tcp,
            TcpState::TimeWait,
            &format!("127.0.0.1:{}", 40000 + i),
            "127.0.0.1:18400",
            0,
            0,
            &[],
        );
        let age = max_age_ms * u64::from(i) / u64::from(n.max(1));
        s.timer = Some(super::socket::Timer {
            kind: super::socket::TimerKind::TimeWait,
            expires_ms: Some(60_000 - age),
        });
        snap.sockets.push(s);
    }
    snap
}

/// The inode of [`containers`]' web container namespace.
pub const WEB_NETNS: u64 = 4026532345;
/// The inode of [`containers`]' second namespace.
pub const BLUE_NETNS: u64 = 4026532400;

/// [`small`] plus two other network namespaces: a docker container
/// `web-7f9c` of pod `shop/web-7f9c` whose python3 (pid 4242) listens on
/// 127.0.0.1:8080 and holds 300 CLOSE_WAIT there, and an `ip netns` `blue`
/// whose nc (pid 4300) has a connection with the same 4-tuple as one of
/// the container's.
pub fn containers() -> Snapshot {
    use super::netns::{NamespaceInfo, Namespaces};
    let mut snap = small();
    let mut web = process(4242, "python3", "python3 app.py", 0, "root");
    web.netns = WEB_NETNS;
    snap.processes.insert(4242, web);
    let mut nc = process(4300, "nc", "nc -l 8080", 0, "root");
    nc.netns = BLUE_NETNS;
    snap.processes.insert(4300, nc);
    let mut push = |mut s: Socket, netns: u64| {
        s.netns = netns;
        snap.sockets.push(s);
    };
    push(
        socket(
            Proto::Tcp,
            TcpState::Listen,
            "127.0.0.1:8080",
            "0.0.0.0:0",
            9000,
            0,
            &[(4242, 3)],
        ),
        WEB_NETNS,
    );
    for i in 0..300u64 {
        push(
            socket(
                Proto::Tcp,
                TcpState::CloseWait,
                "127.0.0.1:8080",
                &format!("127.0.0.1:{}", 50000 + i),
                9100 + i,
                0,
                &[(4242, 10 + i as u32)],
            ),
            WEB_NETNS,
        );
    }
    push(
        socket(
            Proto::Tcp,
            TcpState::Listen,
            "127.0.0.1:8080",
            "0.0.0.0:0",
            9600,
            0,
            &[(4300, 3)],
        ),
        BLUE_NETNS,
    );
    push(
        socket(
            Proto::Tcp,
            TcpState::Established,
            "127.0.0.1:8080",
            "127.0.0.1:50000",
            9601,
            0,
            &[(4300, 4)],
        ),
        BLUE_NETNS,
    );
    let web_ns = NamespaceInfo {
        inode: WEB_NETNS,
        name: "web-7f9c".into(),
        runtime: Some("containerd".into()),
        container_id: Some("7f9c2ab34e5d".repeat(5) + "abcd"),
        container: Some("web-7f9c".into()),
        pod: Some("shop/web-7f9c".into()),
        hostname: Some("web-7f9c".into()),
        mount: None,
        pids: vec![4242],
        processes: 1,
        sockets: 301,
        error: None,
        source: Some("netlink".into()),
        system: std::sync::Arc::new(snap.system.clone()),
    };
    let blue_ns = NamespaceInfo {
        inode: BLUE_NETNS,
        name: "blue".into(),
        mount: Some("/run/netns/blue".into()),
        pids: vec![4300],
        processes: 1,
        sockets: 2,
        source: Some("netlink".into()),
        system: std::sync::Arc::new(snap.system.clone()),
        ..NamespaceInfo::default()
    };
    snap.namespaces = Namespaces {
        list: std::sync::Arc::new([(WEB_NETNS, web_ns), (BLUE_NETNS, blue_ns)].into()),
        unreadable: 0,
        unknown_processes: 0,
    };
    snap
}
