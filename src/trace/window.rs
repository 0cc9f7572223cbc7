//! What the transitions between two samples add up to: per service port,
//! per process and per remote host, connections opened and closed (and who
//! closed first), lifetimes, time in each state, resets and retransmissions.

use crate::model::TcpState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The most durations one window keeps per group and kind: beyond, counts
/// go on and the percentiles come from the first ones.
pub const MAX_SAMPLES: usize = 20_000;

/// Who ended a connection first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Closer {
    /// This host called `close()` or `shutdown()` first (FIN_WAIT1).
    Local,
    /// The peer closed first (CLOSE_WAIT).
    Peer,
    /// A reset ended it (sent or received).
    Reset,
    /// It never got established (SYN_SENT or SYN_RECV to CLOSE).
    Failed,
}

/// The port a connection is counted under: the local port for connections
/// this host accepted, the remote port for those it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortKey {
    pub port: u16,
    /// True when `port` is a local listening port (a service here).
    pub local: bool,
}

/// Counts and durations of one group of connections over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub opened: u64,
    pub closed: u64,
    pub closed_local: u64,
    pub closed_peer: u64,
    pub closed_reset: u64,
    pub failed: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub retransmits: u64,
    /// Entries into each state, by kernel state number (index 0 unused).
    pub entered: [u64; 13],
    /// Exits from each state.
    pub left: [u64; 13],
    /// Lifetimes of the connections closed in the window whose opening was
    /// seen, in microseconds.
    pub lifetimes_us: Vec<u64>,
    /// Time spent in each state by the connections that left it in the
    /// window (and entered it while watched), microseconds.
    pub in_state_us: HashMap<u8, Vec<u64>>,
}

fn push_capped(v: &mut Vec<u64>, x: u64) {
    if v.len() < MAX_SAMPLES {
        v.push(x);
    }
}

impl Stats {
    pub(super) fn lifetime(&mut self, d: Duration) {
        push_capped(&mut self.lifetimes_us, d.as_micros() as u64);
    }

    pub(super) fn in_state(&mut self, state: u8, d: Duration) {
        push_capped(
            self.in_state_us.entry(state).or_default(),
            d.as_micros() as u64,
        );
    }

    pub(super) fn closed_by(&mut self, closer: Closer) {
        match closer {
            Closer::Local => self.closed_local += 1,
            Closer::Peer => self.closed_peer += 1,
            Closer::Reset => self.closed_reset += 1,
            Closer::Failed => self.failed += 1,
        }
    }

    /// Adds `other`'s counts and durations.
    pub fn add(&mut self, other: &Stats) {
        self.opened += other.opened;
        self.closed += other.closed;
        self.closed_local += other.closed_local;
        self.closed_peer += other.closed_peer;
        self.closed_reset += other.closed_reset;
        self.failed += other.failed;
        self.resets_sent += other.resets_sent;
        self.resets_received += other.resets_received;
        self.retransmits += other.retransmits;
        for i in 0..13 {
            self.entered[i] += other.entered[i];
            self.left[i] += other.left[i];
        }
        for &x in &other.lifetimes_us {
            push_capped(&mut self.lifetimes_us, x);
        }
        for (s, v) in &other.in_state_us {
            let mine = self.in_state_us.entry(*s).or_default();
            for &x in v {
                push_capped(mine, x);
            }
        }
    }

    /// Entries into `state` in the window.
    pub fn entered(&self, state: TcpState) -> u64 {
        self.entered[state as usize]
    }

    pub fn left(&self, state: TcpState) -> u64 {
        self.left[state as usize]
    }

    pub fn lifetime_percentile(&self, p: f64) -> Option<Duration> {
        percentile(&self.lifetimes_us, p)
    }

    pub fn in_state_percentile(&self, state: TcpState, p: f64) -> Option<Duration> {
        percentile(self.in_state_us.get(&(state as u8))?, p)
    }
}

/// The `p`-th percentile (0..=100) of `us`, nearest rank.
pub fn percentile(us: &[u64], p: f64) -> Option<Duration> {
    if us.is_empty() {
        return None;
    }
    let mut v = us.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    let i = rank.clamp(1, v.len()) - 1;
    Some(Duration::from_micros(v[i]))
}

/// One state change as the transitions view lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// `CLOCK_BOOTTIME`, as `Snapshot::monotonic`.
    pub at: Duration,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub old: u8,
    pub new: u8,
    /// How long the socket was in `old`, when its entry was seen.
    pub after: Option<Duration>,
    /// The process it is attributed to, when known.
    pub pid: Option<u32>,
    pub port: Option<PortKey>,
}

/// Everything the transitions of one window add up to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `CLOCK_BOOTTIME` at the start and end of the window.
    pub from: Duration,
    pub to: Duration,
    pub total: Stats,
    pub by_port: HashMap<PortKey, Stats>,
    pub by_process: HashMap<u32, Stats>,
    pub by_remote: HashMap<IpAddr, Stats>,
    /// Resets sent from a local port no socket listens on (a closed
    /// listener, a port nobody serves), by that port.
    pub resets_no_socket: HashMap<u16, u64>,
    /// Records the kernel dropped in this window (the ring was full).
    pub dropped: u64,
    /// Events read in this window.
    pub events: u64,
}

impl Window {
    pub fn span(&self) -> Duration {
        self.to.saturating_sub(self.from)
    }

    /// Per second, over the window's span.
    pub fn rate(&self, n: u64) -> f64 {
        let s = self.span().as_secs_f64();
        if s <= 0.0 { 0.0 } else { n as f64 / s }
    }

    /// A copy keeping at most `n` durations per group and kind, evenly
    /// chosen (sorted first), so percentiles stay close (recordings).
    pub fn trimmed(&self, n: usize) -> Window {
        let thin = |v: &Vec<u64>| -> Vec<u64> {
            if v.len() <= n || n == 0 {
                return v.clone();
            }
            let mut s = v.clone();
            s.sort_unstable();
            (0..n)
                .map(|i| s[i * (s.len() - 1) / (n - 1).max(1)])
                .collect()
        };
        let trim = |s: &Stats| Stats {
            lifetimes_us: thin(&s.lifetimes_us),
            in_state_us: s.in_state_us.iter().map(|(k, v)| (*k, thin(v))).collect(),
            ..s.clone()
        };
        Window {
            total: trim(&self.total),
            by_port: self.by_port.iter().map(|(k, s)| (*k, trim(s))).collect(),
            by_process: self.by_process.iter().map(|(k, s)| (*k, trim(s))).collect(),
            by_remote: self.by_remote.iter().map(|(k, s)| (*k, trim(s))).collect(),
            ..self.clone()
        }
    }

    /// Adds a later window to this one (a diagnose window, a replay's
    /// interval).
    pub fn add(&mut self, other: &Window) {
        if self.to.is_zero() && self.from.is_zero() {
            self.from = other.from;
        }
        self.to = self.to.max(other.to);
        self.total.add(&other.total);
        for (k, v) in &other.by_port {
            self.by_port.entry(*k).or_default().add(v);
        }
        for (k, v) in &other.by_process {
            self.by_process.entry(*k).or_default().add(v);
        }
        for (k, v) in &other.by_remote {
            self.by_remote.entry(*k).or_default().add(v);
        }
        for (k, v) in &other.resets_no_socket {
            *self.resets_no_socket.entry(*k).or_default() += v;
        }
        self.dropped += other.dropped;
        self.events += other.events;
    }
}
