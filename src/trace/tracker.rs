//! Follows every TCP socket through its transitions, by the kernel's
//! address of the socket, and adds each transition to the window's groups.

use super::format::{Event, Kind};
use super::sample::Exact;
use super::window::{Closer, PortKey, Stats, Transition, Window};
use crate::model::TcpState;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

// Kernel TCP state numbers (include/net/tcp_states.h).
const ESTABLISHED: u8 = 1;
const SYN_SENT: u8 = 2;
const SYN_RECV: u8 = 3;
const FIN_WAIT1: u8 = 4;
const FIN_WAIT2: u8 = 5;
const TIME_WAIT: u8 = 6;
const CLOSE: u8 = 7;
const CLOSE_WAIT: u8 = 8;
const LAST_ACK: u8 = 9;
const LISTEN: u8 = 10;
const CLOSING: u8 = 11;

/// How many transitions the transitions view can look back on.
pub const RECENT: usize = 5_000;

#[derive(Debug, Clone)]
struct Conn {
    /// When it opened (SYN_SENT or SYN_RECV), when that was seen.
    opened: Option<Duration>,
    state: u8,
    /// When it entered `state`.
    entered: Duration,
    local: SocketAddr,
    remote: SocketAddr,
    port: PortKey,
    pid: Option<u32>,
    closer: Option<Closer>,
    retransmits: u32,
}

#[derive(Debug, Default)]
pub struct Tracker {
    conns: HashMap<u64, Conn, foldhash::fast::RandomState>,
    /// Listening port → the process holding the listener, from the last
    /// sample: who accepted a connection the kernel made in a softirq.
    listeners: HashMap<u16, u32>,
    window: Window,
    recent: VecDeque<Transition>,
    /// Transitions remembered since the last take.
    fresh: usize,
}

impl Tracker {
    pub fn new(now: Duration) -> Tracker {
        Tracker {
            window: Window {
                from: now,
                to: now,
                ..Window::default()
            },
            ..Tracker::default()
        }
    }

    pub fn set_listeners(&mut self, listeners: HashMap<u16, u32>) {
        self.listeners = listeners;
    }

    /// The window so far, and a new one from `now`.
    pub fn take(&mut self, now: Duration) -> Window {
        let next = Window {
            from: now,
            to: now,
            ..Window::default()
        };
        self.fresh = 0;
        let mut w = std::mem::replace(&mut self.window, next);
        w.to = now.max(w.from);
        w
    }

    pub fn dropped(&mut self, n: u64) {
        self.window.dropped += n;
    }

    /// How many of [`Tracker::recent`] came since the last take.
    pub fn fresh(&self) -> usize {
        self.fresh.min(self.recent.len())
    }

    /// The last transitions, oldest first.
    pub fn recent(&self) -> &VecDeque<Transition> {
        &self.recent
    }

    /// Connections in a state other than ESTABLISHED and LISTEN whose entry
    /// into it was seen: when, by (local, remote).
    pub fn seen(&self) -> Exact {
        self.conns
            .values()
            .filter(|c| c.state != ESTABLISHED && c.local.port() != 0)
            .filter_map(|c| {
                Some((
                    (c.local, c.remote),
                    (TcpState::from_kernel(c.state)?, c.entered),
                ))
            })
            .collect()
    }

    /// Forgets connections that a full sample no longer shows and that have
    /// not moved for `stale` (their CLOSE was dropped with a full ring).
    pub fn prune(
        &mut self,
        now: Duration,
        stale: Duration,
        present: impl Fn(&SocketAddr, &SocketAddr) -> bool,
    ) {
        self.conns
            .retain(|_, c| now.saturating_sub(c.entered) < stale || present(&c.local, &c.remote));
    }

    /// Live connections followed.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    fn groups<'a>(
        w: &'a mut Window,
        port: PortKey,
        pid: Option<u32>,
        remote: &SocketAddr,
    ) -> impl Iterator<Item = &'a mut Stats> {
        let Window {
            total,
            by_port,
            by_process,
            by_remote,
            ..
        } = w;
        let by_pid = pid.map(|p| by_process.entry(p).or_default());
        [
            Some(total),
            Some(by_port.entry(port).or_default()),
            by_pid,
            Some(by_remote.entry(remote.ip()).or_default()),
        ]
        .into_iter()
        .flatten()
    }

    pub fn event(&mut self, e: Event) {
        self.window.events += 1;
        self.window.to = self.window.to.max(e.time);
        match e.kind {
            Kind::State { old, new } => self.transition(e, old, new),
            Kind::ResetSent => {
                if let Some(c) = self.conns.get_mut(&e.sk).filter(|_| e.sk != 0) {
                    c.closer.get_or_insert(Closer::Reset);
                    let (port, pid, remote) = (c.port, c.pid, c.remote);
                    for s in Self::groups(&mut self.window, port, pid, &remote) {
                        s.resets_sent += 1;
                    }
                } else {
                    // No socket (a port nobody listens on, a listener just
                    // closed) or one opened before sockscope watched: the
                    // local port is the service that answered with a reset.
                    let port = PortKey {
                        port: e.local.port(),
                        local: true,
                    };
                    let pid = self.listeners.get(&port.port).copied();
                    for s in Self::groups(&mut self.window, port, pid, &e.remote) {
                        s.resets_sent += 1;
                    }
                    if e.sk == 0 {
                        *self.window.resets_no_socket.entry(port.port).or_default() += 1;
                    }
                }
            }
            Kind::ResetReceived => {
                let (port, pid) = match self.conns.get_mut(&e.sk) {
                    Some(c) => {
                        c.closer.get_or_insert(Closer::Reset);
                        (c.port, c.pid)
                    }
                    None => (self.port_of(&e.local, &e.remote), None),
                };
                for s in Self::groups(&mut self.window, port, pid, &e.remote) {
                    s.resets_received += 1;
                }
            }
            Kind::Retransmit => {
                let (port, pid) = match self.conns.get_mut(&e.sk) {
                    Some(c) => {
                        c.retransmits += 1;
                        (c.port, c.pid)
                    }
                    None => (self.port_of(&e.local, &e.remote), None),
                };
                for s in Self::groups(&mut self.window, port, pid, &e.remote) {
                    s.retransmits += 1;
                }
            }
        }
    }

    /// The port a connection first seen mid-life is counted under: the local
    /// one when something listens on it here, else the remote one.
    fn port_of(&self, local: &SocketAddr, remote: &SocketAddr) -> PortKey {
        if self.listeners.contains_key(&local.port()) {
            PortKey {
                port: local.port(),
                local: true,
            }
        } else {
            PortKey {
                port: remote.port(),
                local: false,
            }
        }
    }

    fn transition(&mut self, e: Event, old: u8, new: u8) {
        if new == LISTEN || (old == LISTEN && new == CLOSE) {
            // A listener opened or closed: not a connection.
            self.remember(&e, old, new, None, None, None);
            return;
        }
        let t = e.time;
        let mut c = match self.conns.remove(&e.sk) {
            Some(c) => c,
            None => {
                // How it starts: accepted on a listener, opened by connect(),
                // or opened before sockscope watched (no opening, no age).
                let (opened, port, pid) = if old == LISTEN && new == SYN_RECV {
                    let port = PortKey {
                        port: e.local.port(),
                        local: true,
                    };
                    (Some(t), port, self.listeners.get(&port.port).copied())
                } else if old == CLOSE && new == SYN_SENT {
                    let port = PortKey {
                        port: e.remote.port(),
                        local: false,
                    };
                    (Some(t), port, Some(e.pid).filter(|&p| p != 0))
                } else {
                    let port = self.port_of(&e.local, &e.remote);
                    let pid = port
                        .local
                        .then(|| self.listeners.get(&port.port).copied())
                        .flatten();
                    (None, port, pid)
                };
                if opened.is_some() {
                    for s in Self::groups(&mut self.window, port, pid, &e.remote) {
                        s.opened += 1;
                    }
                }
                Conn {
                    opened,
                    state: old,
                    // Its entry into `old` was not seen: no time in it to count.
                    entered: Duration::MAX,
                    local: e.local,
                    remote: e.remote,
                    port,
                    pid,
                    closer: None,
                    retransmits: 0,
                }
            }
        };
        // The source port of a connect() is chosen after SYN_SENT.
        if e.local.port() != 0 {
            c.local = e.local;
        }
        c.remote = e.remote;
        let after =
            (c.entered != Duration::MAX && old != CLOSE).then(|| t.saturating_sub(c.entered));
        let closer = match (old, new) {
            (ESTABLISHED, FIN_WAIT1) => Some(Closer::Local),
            (ESTABLISHED, CLOSE_WAIT) => Some(Closer::Peer),
            (ESTABLISHED, CLOSE) => Some(Closer::Reset),
            (SYN_SENT | SYN_RECV, CLOSE) => Some(Closer::Failed),
            (CLOSE_WAIT | LAST_ACK, CLOSE) => Some(Closer::Peer),
            (FIN_WAIT1 | FIN_WAIT2 | CLOSING | TIME_WAIT, CLOSE) => Some(Closer::Local),
            _ => None,
        };
        if let Some(cl) = closer
            && (c.closer.is_none() || cl == Closer::Failed)
        {
            c.closer = Some(cl);
        }
        let (port, pid, remote) = (c.port, c.pid, c.remote);
        for s in Self::groups(&mut self.window, port, pid, &remote) {
            if old != CLOSE {
                s.left[usize::from(old.min(12))] += 1;
            }
            if new != CLOSE {
                s.entered[usize::from(new.min(12))] += 1;
            }
            if let Some(d) = after {
                s.in_state(old, d);
            }
            if new == CLOSE {
                s.closed += 1;
                if let Some(cl) = c.closer {
                    s.closed_by(cl);
                }
                if let Some(o) = c.opened {
                    s.lifetime(t.saturating_sub(o));
                }
            }
        }
        self.remember(&e, old, new, after, Some(port), pid);
        if new != CLOSE {
            c.state = new;
            c.entered = t;
            self.conns.insert(e.sk, c);
        }
    }

    fn remember(
        &mut self,
        e: &Event,
        old: u8,
        new: u8,
        after: Option<Duration>,
        port: Option<PortKey>,
        pid: Option<u32>,
    ) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.fresh += 1;
        self.recent.push_back(Transition {
            at: e.time,
            local: e.local,
            remote: e.remote,
            old,
            new,
            after,
            pid,
            port,
        });
    }
}

#[cfg(test)]
mod tests;
