//! Fixed snapshots for tests and demos: a redis with a CLOSE_WAIT leak on
//! port 6800, an nginx, a resolver and a client. Nothing here reads the system.

use super::snapshot::{Snapshot, SourceKind, SystemContext};
use super::socket::{Family, Owner, Process, Proto, Socket, TcpInfo, TcpState};
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
        tcp_info: (proto == Proto::Tcp && inode != 0).then(TcpInfo::default),
        owners: owners.iter().map(|&(pid, fd)| Owner { pid, fd }).collect(),
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
        source: SourceKind::Fixture,
        sockets,
        processes,
        users,
        attribution: Default::default(),
        system,
        derived: Default::default(),
    }
}

/// [`small`] `n` seconds later with `n` more CLOSE_WAIT sockets held by
/// redis-server (pid 1000) on port 6800: a leak growing by one a second, as
/// frames of a recording.
pub fn leaking(n: u64) -> Snapshot {
    let mut snap = small();
    snap.taken_at += Duration::from_secs(n);
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
