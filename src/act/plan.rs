//! What an action would touch, worked out from a snapshot: pure, shared by
//! the monitor's dialogs and the `kill` / `destroy` commands.

use crate::model::{Snapshot, Socket, TcpState, holders};
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

/// The distinct processes holding any of `sockets` (a connection in an
/// accept queue: its listener's holders), by pid.
pub fn owners(snap: &Snapshot, sockets: &[&Socket]) -> Vec<Owner> {
    let mut counts: std::collections::BTreeMap<u32, u32> = Default::default();
    for s in sockets {
        for pid in holders::pids(holders::effective(snap, s)) {
            *counts.entry(pid).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(pid, n)| owner(snap, pid, n))
        .collect()
}

/// What ending the processes `pids` would free of `sockets`: a socket is
/// freed only when every process holding it has closed it or exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frees {
    pub pids: Vec<u32>,
    /// Sockets of the selection that only these processes hold.
    pub freed: u32,
    pub freed_close_wait: u32,
    /// The selection's size.
    pub of: u32,
    pub of_close_wait: u32,
    /// Other processes that hold the rest, with how many each.
    pub kept_by: Vec<(u32, u32)>,
}

pub fn frees(snap: &Snapshot, sockets: &[&Socket], pids: &[u32]) -> Frees {
    let mut f = Frees {
        pids: pids.to_vec(),
        freed: 0,
        freed_close_wait: 0,
        of: sockets.len() as u32,
        of_close_wait: 0,
        kept_by: Vec::new(),
    };
    let mut kept: std::collections::BTreeMap<u32, u32> = Default::default();
    for s in sockets {
        let cw = s.state == TcpState::CloseWait;
        f.of_close_wait += u32::from(cw);
        let holders: Vec<u32> = holders::pids(holders::effective(snap, s)).collect();
        let others: Vec<u32> = holders
            .iter()
            .copied()
            .filter(|p| !pids.contains(p))
            .collect();
        if others.is_empty() && !holders.is_empty() {
            f.freed += 1;
            f.freed_close_wait += u32::from(cw);
        }
        for p in others {
            *kept.entry(p).or_default() += 1;
        }
    }
    f.kept_by = kept.into_iter().collect();
    f.kept_by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    f
}

impl Frees {
    /// For a dialog line: `frees 1/5 (1 CLOSE_WAIT); 100 holds the rest`.
    pub fn short(&self) -> String {
        let mut text = format!("frees {}/{}", self.freed, self.of);
        if self.of_close_wait > 0 {
            text.push_str(&format!(" ({} CLOSE_WAIT)", self.freed_close_wait));
        }
        match &self.kept_by[..] {
            [] => {}
            [(p, _)] => text.push_str(&format!("; {p} holds the rest")),
            [(p, _), more @ ..] => text.push_str(&format!("; {p} +{} hold the rest", more.len())),
        }
        text
    }

    /// `frees 30 of 30 sockets (30 CLOSE_WAIT)`, or `frees 0 of 30 sockets
    /// (30 CLOSE_WAIT): 13949 holds them too`.
    pub fn describe(&self, snap: &Snapshot) -> String {
        let cw = |n: u32| {
            if self.of_close_wait > 0 {
                format!(" ({n} CLOSE_WAIT)")
            } else {
                String::new()
            }
        };
        let mut text = format!(
            "frees {} of {} socket{}{}",
            self.freed,
            self.of,
            if self.of == 1 { "" } else { "s" },
            cw(self.freed_close_wait)
        );
        if !self.kept_by.is_empty() {
            let who: Vec<String> = self
                .kept_by
                .iter()
                .take(3)
                .map(|(p, _)| match snap.process(*p) {
                    Some(proc_) => format!("{p} ({})", proc_.name),
                    None => p.to_string(),
                })
                .collect();
            let more = self.kept_by.len().saturating_sub(3);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let verb = if self.kept_by.len() == 1 {
                "holds"
            } else {
                "hold"
            };
            text.push_str(&format!(": {}{tail} {verb} them too", who.join(", ")));
        }
        text
    }
}

/// What is still there of a selection after an action: the sockets with
/// these keys that the new snapshot still has, and who holds them.
pub fn still_held(
    snap: &Snapshot,
    keys: &std::collections::HashSet<crate::model::ConnKey>,
) -> (u32, Vec<(u32, u32)>) {
    let mut left = 0;
    let mut by: std::collections::BTreeMap<u32, u32> = Default::default();
    for s in &snap.sockets {
        if keys.contains(&s.key()) {
            left += 1;
            for p in holders::pids(holders::effective(snap, s)) {
                *by.entry(p).or_default() += 1;
            }
        }
    }
    let mut by: Vec<(u32, u32)> = by.into_iter().collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    (left, by)
}

/// What a destroy would touch, and what would hurt.
#[derive(Debug, Clone, PartialEq)]
pub struct DestroyPlan<'a> {
    pub sockets: Vec<&'a Socket>,
    /// Listeners left out: a row's destroy spares them unless asked for.
    pub spared_listeners: usize,
    /// What would hurt the service: its listener, live connections.
    pub warnings: Vec<String>,
    /// Each socket's cookie and the processes holding a descriptor of it:
    /// those stay open after the destroy (see [`descriptors_left`]).
    pub held: Vec<(u64, Vec<u32>)>,
}

/// Plans a destroy of `sockets`. `listeners`: include LISTEN sockets (the
/// user asked for them by state); else they are left out and counted.
/// `busy` tells a connection that carries traffic now.
pub fn destroy_plan<'a>(
    sockets: Vec<&'a Socket>,
    listeners: bool,
    busy: impl Fn(&Socket) -> bool,
) -> DestroyPlan<'a> {
    let before = sockets.len();
    let sockets: Vec<&Socket> = sockets
        .into_iter()
        .filter(|s| listeners || s.state != TcpState::Listen)
        .collect();
    let spared_listeners = before - sockets.len();
    let mut warnings = Vec::new();
    let listening: Vec<String> = sockets
        .iter()
        .filter(|s| s.state == TcpState::Listen && s.proto == crate::model::Proto::Tcp)
        .map(|s| crate::model::socket::format_addr(&s.local))
        .collect();
    if !listening.is_empty() {
        let n = listening.len();
        warnings.push(format!(
            "includes the listener{} {}: new clients will be refused",
            if n == 1 { "" } else { "s" },
            listening
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
                + &if n > 3 {
                    format!(" and {} more", n - 3)
                } else {
                    String::new()
                }
        ));
    }
    let established: Vec<&&Socket> = sockets
        .iter()
        .filter(|s| s.state == TcpState::Established && s.proto == crate::model::Proto::Tcp)
        .collect();
    let carrying = established.iter().filter(|s| busy(s)).count();
    if !established.is_empty() {
        let n = established.len();
        let traffic = if carrying > 0 {
            format!(", {carrying} carrying traffic")
        } else {
            String::new()
        };
        warnings.push(format!(
            "{n} live ESTABLISHED connection{}{traffic}: their clients get a reset",
            if n == 1 { "" } else { "s" }
        ));
    }
    let held = sockets
        .iter()
        .filter(|s| !s.owners.is_empty())
        .map(|s| (s.cookie, holders::pids(&s.owners).collect()))
        .collect();
    DestroyPlan {
        sockets,
        spared_listeners,
        warnings,
        held,
    }
}

/// Per process, the descriptors it still holds of the sockets with these
/// cookies (the ones actually destroyed), most first.
pub fn descriptors_left(held: &[(u64, Vec<u32>)], destroyed: &[u64]) -> Vec<(u32, u32)> {
    let mut per_pid: std::collections::BTreeMap<u32, u32> = Default::default();
    for (cookie, pids) in held {
        if destroyed.contains(cookie) {
            for p in pids {
                *per_pid.entry(*p).or_default() += 1;
            }
        }
    }
    let mut v: Vec<(u32, u32)> = per_pid.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// After a destroy: `pid 4242 (nginx) still holds their 30 descriptors: only
/// close() or exit frees them`. None when no process held them.
pub fn descriptors_note(snap: &Snapshot, descriptors: &[(u32, u32)]) -> Option<String> {
    let who: Vec<String> = descriptors
        .iter()
        .take(3)
        .map(|(p, n)| match snap.process(*p) {
            Some(proc_) => format!("pid {p} ({}) {n}", proc_.name),
            None => format!("pid {p} {n}"),
        })
        .collect();
    match descriptors {
        [] => None,
        [(p, n)] => Some(format!(
            "pid {p}{} still holds their {n} descriptor{}: only close() or exit frees {}",
            snap.process(*p)
                .map_or(String::new(), |proc_| format!(" ({})", proc_.name)),
            if *n == 1 { "" } else { "s" },
            if *n == 1 { "it" } else { "them" },
        )),
        more => Some(format!(
            "their descriptors stay open in {}{}: only close() or exit frees them",
            who.join(", "),
            if more.len() > 3 {
                format!(" and {} more", more.len() - 3)
            } else {
                String::new()
            }
        )),
    }
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
