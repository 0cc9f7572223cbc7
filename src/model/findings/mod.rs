//! The findings engine: what is stuck, who is responsible, what to do.
//!
//! Pure functions over the newest snapshot and the history before it. Each
//! kind lives in its own file; [`analyze`] runs them all and orders the result
//! most severe first. Thresholds are in [`Thresholds`], documented in the README.

mod accept;
mod clients;
mod close_wait;
mod closed_sockets;
mod evidence;
mod fin_wait;
mod listen;
mod retrans;
mod text;
mod time_wait;
pub mod transitions;

use super::Filter;
use super::history::History;
use super::holders;
use super::snapshot::Snapshot;
use super::socket::{Socket, TcpState};
use foldhash::{HashMap, HashMapExt, HashSet};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

pub use text::{format_clock, format_rate};

/// How bad a finding is. Ordered: `Critical > Warning > Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    CloseWaitLeak,
    FinWait2,
    TimeWaitPressure,
    AcceptStalled,
    ListenQueueFull,
    SynFlood,
    ClosedSocketsHeld,
    Retransmissions,
    TopClients,
    ConnectionStorm,
    ResetStorm,
    ShortLived,
    CloseWaitInflow,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::CloseWaitLeak => "close_wait_leak",
            Kind::FinWait2 => "fin_wait2",
            Kind::TimeWaitPressure => "time_wait_pressure",
            Kind::AcceptStalled => "accept_stalled",
            Kind::ListenQueueFull => "listen_queue_full",
            Kind::ClosedSocketsHeld => "closed_sockets_held",
            Kind::SynFlood => "syn_flood",
            Kind::Retransmissions => "retransmissions",
            Kind::TopClients => "top_clients",
            Kind::ConnectionStorm => "connection_storm",
            Kind::ResetStorm => "reset_storm",
            Kind::ShortLived => "short_lived",
            Kind::CloseWaitInflow => "close_wait_inflow",
        }
    }
}

/// The other end of some of a finding's connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The remote host, or `host:port` when the port matters.
    pub addr: String,
    pub count: u64,
    /// The process holding the other end, when it is on this machine.
    pub pid: Option<u32>,
    pub process: Option<String>,
    /// The state of the other end, when it is on this machine.
    pub state: Option<TcpState>,
    /// The other end waits in a listener's accept queue: no process has
    /// accepted it yet (`pid` is then the listener's holder).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
}

/// One process's part in a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holding {
    pub pid: u32,
    pub process: Option<String>,
    /// The finding's sockets this process holds (shared ones count for each).
    pub count: u64,
}

/// One thing sockscope thinks is wrong (or worth knowing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    /// The process most responsible, when there is one.
    pub pid: Option<u32>,
    /// Every process involved.
    pub pids: Vec<u32>,
    /// What each process holds of the finding's sockets, most first. A
    /// socket held by several processes (after fork, in a prefork pool)
    /// counts for each: only when all of them close it or exit is it freed.
    pub holders: Vec<Holding>,
    /// Of `count`, the sockets held by more than one process.
    pub shared: u64,
    pub process: Option<String>,
    /// The port of the service concerned: the local port for a server's
    /// sockets (a port something listens on here), the remote one for a client's.
    pub port: Option<u16>,
    /// Sockets (or events) the finding counts.
    pub count: u64,
    /// When the oldest of them was first seen in this condition.
    #[serde(serialize_with = "text::serialize_time")]
    pub first_seen: Option<SystemTime>,
    /// False when the condition may have started earlier than `first_seen`
    /// (it was already there when sockscope started watching).
    pub first_seen_exact: bool,
    /// One line for the monitor's top line and lists.
    pub summary: String,
    /// What is happening and why, in plain words.
    pub message: String,
    pub next_step: String,
    /// Filter terms that select the sockets concerned (`sockscope snapshot ...`).
    pub filter: String,
    pub ports: Vec<u16>,
    pub peers: Vec<Peer>,
    /// Sockets that entered this condition since the previous sample.
    pub new_since_last: Option<u64>,
    /// Change per minute of `count`: the slope of a least-squares line
    /// through the samples of the last `growth_window_s` seconds (at least
    /// 15); None until there are that many.
    pub growth_per_min: Option<f64>,
    /// What `growth_per_min` was fitted over, in seconds.
    pub growth_window_s: Option<f64>,
    /// Findings this one explains (its cause comes first in the list).
    pub related: Vec<Kind>,
    /// The whole fit, for the monitor's wording.
    #[serde(skip)]
    pub growth: Option<super::history::Growth>,
    /// The network namespace (container, pod) of the sockets, when it is
    /// not sockscope's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

impl Finding {
    fn new(kind: Kind, severity: Severity, count: u64) -> Finding {
        Finding {
            kind,
            severity,
            pid: None,
            pids: Vec::new(),
            holders: Vec::new(),
            shared: 0,
            process: None,
            port: None,
            count,
            first_seen: None,
            first_seen_exact: false,
            summary: String::new(),
            message: String::new(),
            next_step: String::new(),
            filter: String::new(),
            ports: Vec::new(),
            peers: Vec::new(),
            new_since_last: None,
            growth_per_min: None,
            growth_window_s: None,
            related: Vec::new(),
            growth: None,
            netns: None,
        }
    }
}

/// Where the findings engine draws its lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// CLOSE_WAIT sockets in one process for a warning / critical. A busy
    /// proxy always has a few that last milliseconds; fewer than
    /// `close_wait_warning` warn only when growing or old.
    pub close_wait_warning: u64,
    /// CLOSE_WAIT sockets that, growing, make a warning.
    pub close_wait_growing_warning: u64,
    pub close_wait_critical: u64,
    /// A CLOSE_WAIT socket older than this is a leak, whatever the count.
    pub close_wait_stuck: Duration,
    /// CLOSE_WAIT growth per minute that makes a leak of 100+ critical.
    pub close_wait_growth_critical: f64,
    /// An owned FIN_WAIT2 older than this is stuck.
    pub fin_wait2_stuck: Duration,
    /// Share of the ephemeral port range in use towards one endpoint.
    pub ports_warning: f64,
    pub ports_critical: f64,
    /// Share of tcp_max_tw_buckets for a warning.
    pub tw_buckets_warning: f64,
    /// SYN_RECV on one listener for a warning.
    pub syn_recv_warning: u64,
    /// A connection retransmitting this share of its segments is unhealthy.
    pub retrans_share: f64,
    /// ... once it has retransmitted at least this many.
    pub retrans_min: u32,
    /// Connections to one service before a client's share is considered.
    pub top_clients_min: u64,
    pub top_clients_share: f64,
    /// Counter increases are measured over at most this window.
    pub rate_window: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            close_wait_warning: 100,
            close_wait_growing_warning: 10,
            close_wait_critical: 1000,
            close_wait_stuck: Duration::from_secs(60),
            close_wait_growth_critical: 60.0,
            fin_wait2_stuck: Duration::from_secs(60),
            ports_warning: 0.5,
            ports_critical: 0.8,
            tw_buckets_warning: 0.8,
            syn_recv_warning: 100,
            retrans_share: 0.05,
            retrans_min: 10,
            top_clients_min: 20,
            top_clients_share: 0.5,
            rate_window: Duration::from_secs(60),
        }
    }
}

/// What every analysis reads.
pub(crate) struct Input<'a> {
    pub snap: &'a Snapshot,
    /// The network namespace analysed: every socket of `sockets` is in it.
    pub netns: u64,
    /// That namespace's counters and sysctls (each namespace has its own
    /// port range, TIME_WAIT limit, somaxconn...).
    pub system: &'a super::snapshot::SystemContext,
    /// Every socket of that namespace, the filter aside: listeners, peers
    /// and ports are looked up here, never across namespaces.
    pub all: Vec<&'a Socket>,
    pub history: &'a History,
    /// The sockets the user asked about (all of them without a filter).
    pub sockets: Vec<&'a Socket>,
    /// A filter is in force: leave out findings that only counters support,
    /// since they cannot be tied to the sockets asked about.
    pub filtered: bool,
    pub limits: Thresholds,
    /// Addresses this machine's sockets are bound to: a remote end on one of
    /// them is a local process. Built on first use: only peer lookups need it.
    pub local_ips: std::cell::OnceCell<HashSet<IpAddr>>,
    /// TCP ports something listens on here...
    pub listening: HashSet<u16>,
    /// ...and the listeners (of `all`: whatever the filter).
    pub listeners: Vec<&'a Socket>,
    /// The snapshot's sockets by local port, built on first use.
    pub by_local_port: std::cell::OnceCell<PortIndex>,
    /// The closing TCP sockets of `all` ([`closing`]) and their index by
    /// local port, built on first use: the other end of a half-closed
    /// connection is among them (on the 130k benchmark load, a sixth of
    /// the table to index at each refresh instead of all of it).
    pub closing: std::cell::OnceCell<(Vec<&'a Socket>, PortIndex)>,
    /// The TCP sockets of `sockets` by state (indexed by the state's kernel
    /// number), sorted out in one pass: a finding about one state reads
    /// only its sockets, not every socket of the machine.
    pub tcp_by_state: Vec<Vec<&'a Socket>>,
}

/// Positions of a snapshot's sockets grouped by local port (a counting
/// sort), each port's sorted by remote port: finding the other end of a
/// local connection is a binary search, and reads no socket but the ones
/// that match (at 130k sockets, reading a server port's 50k sockets for
/// each lookup cost more than the rest of the findings).
pub(crate) struct PortIndex {
    /// Where the sockets of each local port are in `idx`.
    start: Starts,
    idx: Vec<u32>,
    /// The remote port of each socket of `idx`, in the same order.
    remote: Vec<u16>,
    /// A hash of the local and remote addresses of each socket of `idx`:
    /// the sockets of a port pair on other addresses (a load generator's
    /// clients on 127.0.0.2, .3, ...) are told apart without reading them.
    /// Reading a candidate socket is a cache miss into a table of 20 MiB;
    /// at 130k sockets those misses were the most costly part of findings.
    addrs: Vec<u32>,
}

impl PortIndex {
    /// Over `all`: the positions are positions in it.
    fn new(all: &[&Socket]) -> PortIndex {
        PortIndex::build(all, all.len() <= SMALL_INDEX)
    }

    /// [`PortIndex::new`], sorted by comparison when `small`.
    fn build(all: &[&Socket], small: bool) -> PortIndex {
        let ports: Vec<(u16, u16, u32)> = all
            .iter()
            .map(|s| {
                (
                    s.local.port(),
                    s.remote.port(),
                    addr_hash(s.local.ip(), s.remote.ip()),
                )
            })
            .collect();
        if small {
            // A small table: a comparison sort, and each port's entries
            // found by binary search. A table of 65,537 starts would cost
            // more to clear than the sort (at 1k sockets, a fresh 256 KiB
            // zeroed at every refresh was most of the findings' time).
            let mut order: Vec<u32> = (0..ports.len() as u32).collect();
            order.sort_by_key(|&i| (ports[i as usize].0, ports[i as usize].1));
            let of = |i: &u32| ports[*i as usize];
            return PortIndex {
                start: Starts::Sorted(order.iter().map(|i| of(i).0).collect()),
                remote: order.iter().map(|i| of(i).1).collect(),
                addrs: order.iter().map(|i| of(i).2).collect(),
                idx: order,
            };
        }
        // Two counting sorts, by remote port then (stable) by local port:
        // each socket is read once, and no comparison sort runs.
        let by_remote = counting_sort(ports.len(), |i| ports[i].1);
        let start = prefix_counts(ports.iter().map(|p| p.0));
        let mut next = start.clone();
        let mut idx = vec![0u32; ports.len()];
        let mut remote = vec![0u16; ports.len()];
        let mut addrs = vec![0u32; ports.len()];
        for i in by_remote {
            let (l, r, a) = ports[i as usize];
            let slot = &mut next[usize::from(l)];
            idx[*slot as usize] = i;
            remote[*slot as usize] = r;
            addrs[*slot as usize] = a;
            *slot += 1;
        }
        PortIndex {
            start: Starts::Dense(start),
            idx,
            remote,
            addrs,
        }
    }

    fn range(&self, port: u16) -> std::ops::Range<usize> {
        match &self.start {
            Starts::Dense(start) => {
                let p = usize::from(port);
                start[p] as usize..start[p + 1] as usize
            }
            Starts::Sorted(local) => {
                let from = local.partition_point(|&p| p < port);
                from..from + local[from..].partition_point(|&p| p == port)
            }
        }
    }

    fn at(&self, port: u16) -> &[u32] {
        &self.idx[self.range(port)]
    }

    /// The sockets from `local` to `remote` may be among these positions
    /// (all of them are, and a few others whose addresses hash alike).
    fn candidates(&self, local: SocketAddr, remote: SocketAddr) -> impl Iterator<Item = u32> {
        let r = self.range(local.port());
        let ports = &self.remote[r.clone()];
        let from = ports.partition_point(|&p| p < remote.port());
        let to = from + ports[from..].partition_point(|&p| p == remote.port());
        let want = addr_hash(local.ip(), remote.ip());
        let span = r.start + from..r.start + to;
        self.idx[span.clone()]
            .iter()
            .zip(&self.addrs[span])
            .filter(move |&(_, &a)| a == want)
            .map(|(&i, _)| i)
    }
}

/// Up to this many sockets, a [`PortIndex`] is sorted by comparison and
/// searched (a dense table of starts is 256 KiB whatever the sockets).
const SMALL_INDEX: usize = 4096;

/// Where each local port's entries of a [`PortIndex`] are.
enum Starts {
    /// `idx[start[p]..start[p + 1]]` are the sockets on local port `p`.
    Dense(Vec<u32>),
    /// The local port of each entry of `idx`, in order: a port's entries
    /// are found by binary search.
    Sorted(Vec<u16>),
}

/// A hash of two addresses, the same for an IPv4 address and its
/// IPv4-mapped IPv6 form.
fn addr_hash(local: IpAddr, remote: IpAddr) -> u32 {
    use std::hash::BuildHasher;
    let h = foldhash::fast::FixedState::with_seed(0x5eed);
    h.hash_one((local.to_canonical(), remote.to_canonical())) as u32
}

/// Where each port's entries start, for a counting sort: `[p]..[p + 1]`.
fn prefix_counts(ports: impl Iterator<Item = u16>) -> Vec<u32> {
    let mut start = vec![0u32; 65537];
    for p in ports {
        start[usize::from(p) + 1] += 1;
    }
    for p in 1..start.len() {
        start[p] += start[p - 1];
    }
    start
}

/// The positions `0..n` in the order of their port, stable.
fn counting_sort(n: usize, port: impl Fn(usize) -> u16) -> Vec<u32> {
    let mut next = prefix_counts((0..n).map(&port));
    let mut out = vec![0u32; n];
    for i in 0..n {
        let slot = &mut next[usize::from(port(i))];
        out[*slot as usize] = i as u32;
        *slot += 1;
    }
    out
}

impl<'a> Input<'a> {
    pub fn process_name(&self, pid: u32) -> Option<String> {
        self.snap.process(pid).map(|p| p.name.clone())
    }

    /// The TCP sockets asked about in `state`.
    pub fn tcp(&self, state: TcpState) -> &[&'a Socket] {
        &self.tcp_by_state[state as usize]
    }

    /// These sockets grouped by the service of their holders (None: no
    /// holder), so that a forked server or a prefork pool is one finding.
    pub fn by_service<'s>(
        &self,
        sockets: impl Iterator<Item = &'s Socket>,
    ) -> HashMap<Option<u32>, Vec<&'s Socket>> {
        let mut out: HashMap<Option<u32>, Vec<&Socket>> = HashMap::new();
        for s in sockets {
            out.entry(holders::service_id(self.snap, s))
                .or_default()
                .push(s);
        }
        out
    }

    /// Who holds these sockets (a queued connection: its listener's
    /// holders), most first, and how many are held by more than one process.
    pub fn holding(&self, sockets: &[&Socket]) -> (Vec<Holding>, u64) {
        let mut per_pid: HashMap<u32, u64> = HashMap::new();
        let mut shared = 0;
        for s in sockets {
            let mut n = 0;
            for pid in holders::pids(holders::effective(self.snap, s)) {
                *per_pid.entry(pid).or_default() += 1;
                n += 1;
            }
            if n > 1 {
                shared += 1;
            }
        }
        let mut v: Vec<Holding> = per_pid
            .into_iter()
            .map(|(pid, count)| Holding {
                pid,
                process: self.process_name(pid),
                count,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
        (v, shared)
    }

    /// The name of a service: what most of its processes are called.
    pub fn service_name(&self, pid: u32) -> Option<String> {
        self.snap
            .holders()
            .service_of(pid)
            .and_then(|s| s.name.clone())
            .or_else(|| self.process_name(pid))
    }

    /// How much a kernel counter rose over the rate window, and over how long.
    pub fn counter_increase(&self, name: &str) -> Option<(u64, Duration)> {
        // The history keeps the host's counters only.
        if self.netns != super::socket::HOST_NETNS {
            return None;
        }
        self.history
            .counters
            .increase_over(name, self.limits.rate_window)
    }

    /// The service a connection belongs to: its local port if this machine
    /// listens there (a server's connection), else its remote port.
    pub fn service_port(&self, s: &Socket) -> u16 {
        if self.listening.contains(&s.local.port()) || s.remote.port() == 0 {
            s.local.port()
        } else {
            s.remote.port()
        }
    }

    /// Service ports of these sockets, most used first.
    pub fn service_ports(&self, sockets: &[&Socket]) -> Vec<u16> {
        ranked(sockets.iter().map(|s| self.service_port(s)))
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    pub fn sysctl(&self, name: &str) -> Option<u64> {
        self.system.sysctl_u64(name)
    }

    pub fn is_local(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback()
            || self
                .local_ips
                .get_or_init(|| {
                    self.all
                        .iter()
                        .map(|s| s.local.ip().to_canonical())
                        .filter(|ip| !ip.is_unspecified())
                        .collect()
                })
                .contains(&ip)
    }

    /// The socket at the other end of each of these connections, when that
    /// end is on this machine: `[i]` is `of[i]`'s (looked up in a port
    /// index, no map built).
    ///
    /// A half-closed connection's other end (see [`half_closed`]) is one of
    /// the [`closing`] sockets: looked up in their own index, or in the
    /// whole table's when another finding has built that one already.
    pub fn local_peers(&self, of: &[&Socket]) -> Vec<Option<&'a Socket>> {
        of.iter()
            .map(|s| {
                if !self.is_local(s.remote.ip()) {
                    return None;
                }
                let half = half_closed(s);
                let (table, index): (&[&'a Socket], &PortIndex) =
                    match (half, self.by_local_port.get()) {
                        (true, None) => {
                            let (table, index) = self.closing.get_or_init(|| {
                                let table = self.closing_sockets();
                                let index = PortIndex::new(&table);
                                (table, index)
                            });
                            (table, index)
                        }
                        (_, Some(index)) => (&self.all, index),
                        (false, None) => (
                            &self.all,
                            self.by_local_port.get_or_init(|| PortIndex::new(&self.all)),
                        ),
                    };
                let (local, remote) = (canonical(s.remote), canonical(s.local));
                index
                    .candidates(local, remote)
                    .map(|i| table[i as usize])
                    .find(|o| {
                        canonical(o.local) == local
                            && canonical(o.remote) == remote
                            && (!half || closing(o))
                    })
            })
            .collect()
    }

    /// The [`closing`] sockets of `all`: from the sockets sorted by state
    /// when they are all of them (no filter), without reading the rest of
    /// the table.
    fn closing_sockets(&self) -> Vec<&'a Socket> {
        if self.filtered {
            return self.all.iter().copied().filter(|o| closing(o)).collect();
        }
        CLOSING
            .iter()
            .flat_map(|&state| self.tcp(state).iter().copied())
            .collect()
    }

    /// Remote hosts of `sockets`, most connections first, with the local
    /// process at the other end when there is one. A host whose other ends
    /// are held by several processes (or wait in an accept queue) is one
    /// entry per holder: each connection counts once, for its real holder.
    pub fn peers(&self, sockets: &[&Socket], limit: usize) -> Vec<Peer> {
        let local = self.local_peers(sockets);
        type Key = (IpAddr, Option<u32>, bool);
        let mut by_holder: HashMap<Key, (u64, Option<TcpState>)> = HashMap::new();
        for (s, other) in sockets.iter().zip(local) {
            let (pid, queued) = match other {
                Some(o) if !o.owners.is_empty() => (Some(o.owners[0].pid), false),
                Some(o) => (
                    holders::effective(self.snap, o).first().map(|h| h.pid),
                    self.snap.holders().listener_of(self.snap, o).is_some(),
                ),
                None => (None, false),
            };
            let e = by_holder
                .entry((s.remote.ip().to_canonical(), pid, queued))
                .or_default();
            e.0 += 1;
            if e.1.is_none() {
                e.1 = other.map(|o| o.state);
            }
        }
        let mut peers: Vec<Peer> = by_holder
            .into_iter()
            .map(|((ip, pid, queued), (count, state))| Peer {
                addr: ip.to_string(),
                count,
                pid,
                process: pid.and_then(|p| self.process_name(p)),
                state,
                queued,
            })
            .collect();
        peers.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.addr.cmp(&b.addr))
                .then(a.pid.cmp(&b.pid))
        });
        peers.truncate(limit);
        peers
    }
}

/// A connection one side of which has sent its FIN and the other not yet:
/// CLOSE_WAIT (the peer's FIN came) or FIN_WAIT2 (ours was acknowledged).
/// Its other end, when on this machine, is [`closing`]: the other end of a
/// CLOSE_WAIT sent its FIN (FIN_WAIT1, FIN_WAIT2), the other end of a
/// FIN_WAIT2 got ours (CLOSE_WAIT, LAST_ACK, or CLOSING in a simultaneous
/// close); never ESTABLISHED, and never TIME_WAIT, which takes both FINs.
/// An ESTABLISHED entry for it in a trouble refresh is the last full
/// dump's, from before the close: the other end has gone since (it would
/// be in the refresh otherwise). A dump is not taken at one instant, so a
/// full dump may also catch the other end a moment before its state
/// changed: that end is then left unmatched for one sample.
fn half_closed(s: &Socket) -> bool {
    s.proto == super::socket::Proto::Tcp
        && matches!(s.state, TcpState::CloseWait | TcpState::FinWait2)
}

/// The states the other end of a half-closed connection can be in.
const CLOSING: [TcpState; 5] = [
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::CloseWait,
    TcpState::Closing,
    TcpState::LastAck,
];

/// A TCP socket in one of the [`CLOSING`] states.
fn closing(s: &Socket) -> bool {
    s.proto == super::socket::Proto::Tcp && CLOSING.contains(&s.state)
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Every finding for the sockets `filter` selects, most severe first.
pub fn analyze(snap: &Snapshot, history: &History, filter: &Filter) -> Vec<Finding> {
    analyze_with(snap, history, filter, Thresholds::default())
}

fn analyze_with(
    snap: &Snapshot,
    history: &History,
    filter: &Filter,
    limits: Thresholds,
) -> Vec<Finding> {
    // Each network namespace on its own: its own ports, listeners,
    // counters and sysctls. The host's first. One pass over the table
    // sorts out each namespace's sockets, the ones the filter selects by
    // state, and its listeners (at 130k sockets, each pass is a read of
    // 20 MiB).
    let unfiltered = filter.is_empty();
    let mut parts: std::collections::BTreeMap<u64, Part> = Default::default();
    let mut host = Part::default();
    if snap.namespaces.is_empty() {
        // All of them are the host's: no growing by doubling.
        host.all.reserve(snap.sockets.len());
        if unfiltered {
            host.sockets.reserve(snap.sockets.len());
        }
    }
    for s in &snap.sockets {
        let part = if snap.namespaces.is_empty() || s.netns == super::socket::HOST_NETNS {
            &mut host
        } else {
            parts.entry(s.netns).or_default()
        };
        part.add(s, unfiltered || filter.matches(s, snap));
    }
    parts.insert(super::socket::HOST_NETNS, host);
    let mut out = Vec::new();
    for (netns, part) in parts {
        if part.sockets.is_empty() && netns != super::socket::HOST_NETNS {
            continue;
        }
        let system = match snap.namespaces.get(netns) {
            Some(ns) => &ns.system,
            None if netns == super::socket::HOST_NETNS => &snap.system,
            None => continue,
        };
        let Part {
            all,
            sockets,
            mut tcp_by_state,
            listeners,
        } = part;
        tcp_by_state.resize(TcpState::Closing as usize + 1, Vec::new());
        let input = Input {
            tcp_by_state,
            listening: listeners.iter().map(|s| s.local.port()).collect(),
            listeners,
            by_local_port: std::cell::OnceCell::new(),
            closing: std::cell::OnceCell::new(),
            snap,
            netns,
            system,
            all,
            history,
            sockets,
            filtered: !filter.is_empty(),
            limits,
            local_ips: std::cell::OnceCell::new(),
        };
        let from = out.len();
        close_wait::analyze(&input, &mut out);
        accept::analyze(&input, &mut out);
        closed_sockets::analyze(&input, &mut out);
        fin_wait::analyze(&input, &mut out);
        time_wait::analyze(&input, &mut out);
        listen::analyze(&input, &mut out);
        retrans::analyze(&input, &mut out);
        clients::analyze(&input, &mut out);
        if let Some(ns) = snap.namespaces.get(netns) {
            for f in &mut out[from..] {
                in_namespace(f, ns);
            }
        }
    }
    accept::rank_causes(&mut out);
    sort(&mut out);
    out
}

/// One namespace's sockets, sorted out for [`analyze_with`].
#[derive(Default)]
struct Part<'a> {
    all: Vec<&'a Socket>,
    /// Those the filter selects.
    sockets: Vec<&'a Socket>,
    /// The TCP ones of `sockets` by state.
    tcp_by_state: Vec<Vec<&'a Socket>>,
    /// The TCP listeners of `all`.
    listeners: Vec<&'a Socket>,
}

impl<'a> Part<'a> {
    fn add(&mut self, s: &'a Socket, selected: bool) {
        self.all.push(s);
        let tcp = s.proto == super::socket::Proto::Tcp;
        if tcp && s.state == TcpState::Listen {
            self.listeners.push(s);
        }
        if !selected {
            return;
        }
        self.sockets.push(s);
        if tcp {
            let i = s.state as usize;
            if self.tcp_by_state.len() <= i {
                self.tcp_by_state
                    .resize(TcpState::Closing as usize + 1, Vec::new());
            }
            self.tcp_by_state[i].push(s);
        }
    }
}

/// Says where a finding of another namespace is: `[web]` before its
/// summary, `In container web (pod shop/web-1):` before its message, and
/// `netns:NAME` in its filter so that the command it suggests selects
/// the same sockets.
fn in_namespace(f: &mut Finding, ns: &super::netns::NamespaceInfo) {
    let place = match (&ns.container, &ns.pod) {
        (Some(c), Some(p)) => format!("container {c} (pod {p})"),
        (Some(c), None) => format!("container {c}"),
        (None, Some(p)) => format!("pod {p}"),
        (None, None) => format!("network namespace {}", ns.name),
    };
    // First, where a narrow screen cuts the line.
    f.summary = format!("[{}] {}", ns.name, f.summary);
    f.message = format!("In {place}: {}", f.message);
    // A name with spaces or odd bytes is no filter term: the inode is.
    let term = if ns
        .name
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'')
    {
        ns.name.clone()
    } else {
        ns.inode.to_string()
    };
    f.filter = if f.filter.is_empty() {
        format!("netns:{term}")
    } else {
        format!("{} netns:{term}", f.filter)
    };
    f.netns = Some(ns.name.clone());
}

/// Most severe first; a cause before the symptoms it explains; then the
/// biggest; then a stable order.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.related.is_empty().cmp(&a.related.is_empty()).reverse())
            .then(b.count.cmp(&a.count))
            .then(a.kind.cmp(&b.kind))
            .then(a.pid.cmp(&b.pid))
            .then(a.port.cmp(&b.port))
    });
}

/// The worst severity among findings, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// The oldest time any of these connections was first seen in its state,
/// and whether that time is exact. `tcp_info`'s time since the last ACK
/// received gives an earlier bound for sockets sockscope found already in
/// the state (for CLOSE_WAIT and FIN_WAIT2 the last thing the peer sent).
pub(crate) fn oldest(input: &Input, sockets: &[&Socket]) -> Option<(SystemTime, bool)> {
    oldest_and_new(input, sockets).0
}

/// [`oldest`], and how many of the sockets reached their state in the
/// newest sample ([`History::is_new`]): one history lookup per socket.
pub(crate) fn oldest_and_new(
    input: &Input,
    sockets: &[&Socket],
) -> (Option<(SystemTime, bool)>, u64) {
    let taken = input.snap.taken_at;
    let mut new = 0;
    let first = sockets
        .iter()
        .map(|s| {
            let seen = input.history.seen_in(input.snap, s);
            new += u64::from(seen.is_some_and(|e| e.is_new));
            let (seen, from_start) = seen.map_or((taken, true), |e| e.first);
            if !from_start {
                // Seen arriving in this state: exact to one interval.
                return (seen, true);
            }
            let by_ack = s.tcp_info.as_ref().and_then(|t| {
                taken.checked_sub(Duration::from_millis(u64::from(t.last_ack_recv_ms)))
            });
            (by_ack.map_or(seen, |a| a.min(seen)), false)
        })
        .min_by_key(|(t, _)| *t);
    (first, new)
}

/// Counts of items, biggest first, ties by the item.
pub(crate) fn ranked<T: Ord + Copy + std::hash::Hash>(
    items: impl Iterator<Item = T>,
) -> Vec<(T, u64)> {
    let mut counts: HashMap<T, u64> = HashMap::new();
    for i in items {
        *counts.entry(i).or_default() += 1;
    }
    let mut v: Vec<(T, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod holder_tests;
#[cfg(test)]
mod real_failures_tests;
#[cfg(test)]
mod tests;
