//! What an action would touch, worked out from a snapshot: pure, shared by
//! the monitor's dialogs and the `kill` / `destroy` commands.

use crate::model::{Snapshot, Socket, TcpState};
use std::net::SocketAddr;

/// A process that holds matching sockets, as the confirmation shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// As in the snapshot; may hold any byte (sanitize to show).
    pub name: String,
    pub user: Option<String>,
    pub cmdline: String,
    /// Every socket it holds in the snapshot, and how many are CLOSE_WAIT.
    pub sockets: u32,
    pub close_wait: u32,
    /// Of those, how many the filter matched (CLI).
    pub matching: u32,
    /// (fd, inode) pairs it holds, listeners first: [`super::signal::Target::open`]
    /// checks one is still held before it trusts the pid.
    pub holds: Vec<(u32, u64)>,
}

/// Every socket `pid` holds: (total, CLOSE_WAIT) and its (fd, inode) pairs,
/// listeners first (they live longest), at most `HOLDS_CHECKED`.
pub fn holdings(snap: &Snapshot, pid: u32) -> (u32, u32, Vec<(u32, u64)>) {
    let mut total = 0;
    let mut close_wait = 0;
    let mut holds: Vec<(bool, u32, u64)> = Vec::new();
    for s in &snap.sockets {
        let mine: Vec<u32> = s
            .owners
            .iter()
            .filter(|o| o.pid == pid)
            .map(|o| o.fd)
            .collect();
        if mine.is_empty() {
            continue;
        }
        total += 1;
        if s.state == TcpState::CloseWait {
            close_wait += 1;
        }
        if s.inode != 0 {
            holds.extend(
                mine.iter()
                    .map(|&fd| (s.state != TcpState::Listen, fd, s.inode)),
            );
        }
    }
    holds.sort_unstable();
    let holds = holds
        .into_iter()
        .take(super::signal::HOLDS_CHECKED)
        .map(|(_, fd, inode)| (fd, inode))
        .collect();
    (total, close_wait, holds)
}

/// One [`Owner`] for `pid`, with how many of `matching` it holds.
pub fn owner(snap: &Snapshot, pid: u32, matching: u32) -> Owner {
    let (sockets, close_wait, holds) = holdings(snap, pid);
    let p = snap.process(pid);
    Owner {
        pid,
        name: p.map(|p| p.name.clone()).unwrap_or_else(|| "?".into()),
        user: p.and_then(|p| p.user.clone()),
        cmdline: p.map(|p| p.cmdline.clone()).unwrap_or_default(),
        sockets,
        close_wait,
        matching,
        holds,
    }
}

/// The distinct processes holding any of `sockets`, by pid.
pub fn owners(snap: &Snapshot, sockets: &[&Socket]) -> Vec<Owner> {
    let mut counts: std::collections::BTreeMap<u32, u32> = Default::default();
    for s in sockets {
        let mut pids: Vec<u32> = s.owners.iter().map(|o| o.pid).collect();
        pids.dedup();
        for pid in pids {
            *counts.entry(pid).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(pid, n)| owner(snap, pid, n))
        .collect()
}

/// The SSH connection this session came in on, from `$SSH_CONNECTION`
/// (`client_ip client_port server_ip server_port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshSession {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

impl SshSession {
    pub fn parse(text: &str) -> Option<SshSession> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [cip, cport, sip, sport] = words[..] else {
            return None;
        };
        Some(SshSession {
            client: SocketAddr::new(cip.parse().ok()?, cport.parse().ok()?),
            server: SocketAddr::new(sip.parse().ok()?, sport.parse().ok()?),
        })
    }

    pub fn from_env() -> Option<SshSession> {
        SshSession::parse(&std::env::var("SSH_CONNECTION").ok()?)
    }

    /// The server's end of this session (a v4-mapped address counts as v4).
    pub fn is(&self, s: &Socket) -> bool {
        let same = |a: &SocketAddr, b: &SocketAddr| {
            a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
        };
        same(&s.local, &self.server) && same(&s.remote, &self.client)
    }

    /// Whether `pid` holds this session's socket in the snapshot.
    pub fn held_by(&self, snap: &Snapshot, pid: u32) -> bool {
        snap.sockets
            .iter()
            .any(|s| self.is(s) && s.owners.iter().any(|o| o.pid == pid))
    }
}

impl std::fmt::Display for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "from {}",
            crate::model::socket::format_addr(&self.client)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    #[test]
    fn holdings_count_every_socket_of_the_process_listeners_first() {
        let snap = fixture::small();
        let (total, cw, holds) = holdings(&snap, 1000);
        assert_eq!((total, cw), (3, 2));
        assert_eq!(holds, vec![(6, 101), (7, 102), (8, 103)]);
        assert_eq!(holdings(&snap, 12345), (0, 0, vec![]));
    }

    #[test]
    fn owners_of_matching_sockets_are_distinct_and_counted() {
        let snap = fixture::small();
        let all: Vec<&Socket> = snap.sockets.iter().collect();
        let owners = owners(&snap, &all);
        let pids: Vec<u32> = owners.iter().map(|o| o.pid).collect();
        assert_eq!(pids, [700, 1000, 4242, 5000]);
        let redis = &owners[1];
        assert_eq!(redis.name, "redis-server");
        assert_eq!(redis.user.as_deref(), Some("redis"));
        assert_eq!((redis.sockets, redis.close_wait, redis.matching), (3, 2, 3));
    }

    #[test]
    fn ssh_connection_is_parsed_and_matched_on_the_server_side() {
        let ssh = SshSession::parse("127.0.0.1 51000 127.0.0.1 6800").unwrap();
        let snap = fixture::small();
        assert!(
            ssh.is(&snap.sockets[1]),
            "redis's CLOSE_WAIT socket is the session"
        );
        assert!(!ssh.is(&snap.sockets[3]), "the client's end is not ours");
        assert!(ssh.held_by(&snap, 1000));
        assert!(!ssh.held_by(&snap, 5000));
        let v6 = SshSession::parse("2001:db8::5 50000 ::ffff:127.0.0.1 80").unwrap();
        assert!(v6.is(&snap.sockets[5]));
        assert_eq!(SshSession::parse(""), None);
        assert_eq!(SshSession::parse("1.2.3.4 22"), None);
        assert_eq!(SshSession::parse("a b c d"), None);
    }
}
