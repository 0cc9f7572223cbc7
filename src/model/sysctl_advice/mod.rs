//! The sysctls view's content: each collected sysctl's value, what it affects
//! and advice (from `assets/sysctls.toml`), and live context computed from
//! the snapshot: counts against limits, and the timeouts the values add up to.

use super::counters::CounterHistory;
use super::snapshot::Snapshot;
use super::socket::{Proto, TcpState};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

/// What a sysctl affects and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SysctlDoc {
    pub name: String,
    pub affects: String,
    pub advice: String,
}

#[derive(serde::Deserialize)]
struct DocFile {
    sysctl: Vec<SysctlDoc>,
}

const SYSCTLS_TOML: &str = include_str!("../../../assets/sysctls.toml");

/// Every documented sysctl, in display order.
pub fn docs() -> &'static [SysctlDoc] {
    static DOCS: OnceLock<Vec<SysctlDoc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        toml::from_str::<DocFile>(SYSCTLS_TOML)
            .expect("assets/sysctls.toml is valid (tested)")
            .sysctl
    })
}

pub fn doc(name: &str) -> Option<&'static SysctlDoc> {
    docs().iter().find(|d| d.name == name)
}

/// How much a piece of context needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
    Trouble,
}

/// Live context for one sysctl: a few words for the list, a sentence for
/// the detail pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub short: String,
    pub detail: String,
    pub level: Level,
}

fn context(level: Level, short: impl Into<String>, detail: impl Into<String>) -> Option<Context> {
    Some(Context {
        short: short.into(),
        detail: detail.into(),
        level,
    })
}

/// One line of the sysctls view.
#[derive(Debug, Clone, PartialEq)]
pub struct SysctlItem {
    pub name: String,
    pub value: String,
    pub context: Option<Context>,
    pub doc: Option<&'static SysctlDoc>,
}

/// A listening socket: its port, backlog (Send-Q) and accept queue (Recv-Q).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub backlog: u32,
    pub queued: u32,
    pub process: Option<String>,
}

impl Listener {
    fn label(&self) -> String {
        match &self.process {
            Some(p) => format!(":{} {p}", self.port),
            None => format!(":{}", self.port),
        }
    }
}

/// What the snapshot says about the limits the sysctls set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// TCP sockets in TIME_WAIT.
    pub time_wait: u64,
    /// Entries of the kernel's TIME_WAIT table (`/proc/net/sockstat` `TCP.tw`),
    /// which tcp_max_tw_buckets limits: TIME_WAIT sockets and orphaned
    /// FIN_WAIT2 sockets kept there until tcp_fin_timeout. The TIME_WAIT
    /// count when sockstat is not readable.
    pub tw_table: u64,
    /// System-wide orphans (`/proc/net/sockstat`), when readable.
    pub orphans: Option<u64>,
    /// FIN_WAIT2 sockets no file refers to any more.
    pub orphan_fin_wait2: u64,
    pub syn_recv: u64,
    /// The listener with the largest backlog (unknown from `/proc/net`, which shows 0).
    pub largest_backlog: Option<Listener>,
    /// The listener whose accept queue is fullest relative to its backlog.
    pub fullest_queue: Option<Listener>,
    /// The (local address, remote endpoint) holding the most connections
    /// whose local port is in `ip_local_port_range`.
    pub busiest_destination: Option<(IpAddr, SocketAddr, u64)>,
    /// How much some counters rose over the last minute.
    pub recent: HashMap<&'static str, u64>,
}

const RECENT_COUNTERS: [&str; 4] = [
    "TcpExt.SyncookiesSent",
    "TcpExt.ListenOverflows",
    "TcpExt.TCPTimeWaitOverflow",
    "TcpExt.TCPAbortOnMemory",
];

/// Gathers the facts in one pass over the sockets.
pub fn facts(snap: &Snapshot, counters: &CounterHistory) -> Facts {
    facts_in(snap, crate::model::HOST_NETNS, &snap.system, counters)
}

/// [`facts`] of one network namespace's sockets and counters.
fn facts_in(
    snap: &Snapshot,
    netns: u64,
    system: &crate::model::SystemContext,
    counters: &CounterHistory,
) -> Facts {
    let mut f = Facts {
        orphans: system.sockstat.get("TCP.orphan").copied(),
        ..Facts::default()
    };
    let range = system.local_port_range();
    // foldhash: one insert per connection, on every draw of the view.
    let mut destinations: HashMap<(IpAddr, SocketAddr), u64, foldhash::fast::RandomState> =
        HashMap::default();
    let mut time_wait = 0;
    for s in snap
        .sockets
        .iter()
        .filter(|s| s.proto == Proto::Tcp && s.netns == netns)
    {
        match s.state {
            TcpState::TimeWait => time_wait += 1,
            TcpState::SynRecv => f.syn_recv += 1,
            TcpState::FinWait2 if s.inode == 0 => f.orphan_fin_wait2 += 1,
            TcpState::Listen if s.send_q > 0 => {
                let l = Listener {
                    port: s.local.port(),
                    backlog: s.send_q,
                    queued: s.recv_q,
                    process: snap
                        .owner_name(s)
                        .map(|n| crate::sanitize::clean(n).into_owned()),
                };
                let bigger = |old: &Listener| {
                    (l.backlog, std::cmp::Reverse(l.port))
                        > (old.backlog, std::cmp::Reverse(old.port))
                };
                if f.largest_backlog.as_ref().is_none_or(bigger) {
                    f.largest_backlog = Some(l.clone());
                }
                let fuller = |old: &Listener| {
                    // queued/backlog compared without division.
                    u64::from(l.queued) * u64::from(old.backlog)
                        > u64::from(old.queued) * u64::from(l.backlog)
                };
                if l.queued > 0 && f.fullest_queue.as_ref().is_none_or(fuller) {
                    f.fullest_queue = Some(l);
                }
            }
            _ => {}
        }
        if let Some((lo, hi)) = range
            && s.state != TcpState::Listen
            && !s.remote_is_unspecified()
            && (lo..=hi).contains(&s.local.port())
        {
            let remote = SocketAddr::new(s.remote.ip().to_canonical(), s.remote.port());
            *destinations
                .entry((s.local.ip().to_canonical(), remote))
                .or_default() += 1;
        }
    }
    f.time_wait = time_wait;
    f.tw_table = snap
        .system
        .sockstat
        .get("TCP.tw")
        .copied()
        .unwrap_or(time_wait);
    f.busiest_destination = destinations
        .into_iter()
        .max_by_key(|&((local, remote), n)| (n, std::cmp::Reverse((local, remote))))
        .map(|((local, remote), n)| (local, remote, n));
    for name in RECENT_COUNTERS {
        if let Some((inc, _)) = counters.increase_over(name, Duration::from_secs(60)) {
            f.recent.insert(name, inc);
        }
    }
    f
}

/// Every collected sysctl in display order (documented ones first), with
/// its live context.
pub fn assess(snap: &Snapshot, counters: &CounterHistory) -> Vec<SysctlItem> {
    assess_in(snap, crate::model::HOST_NETNS, counters)
}

/// [`assess`] for one network namespace: its own sysctls, judged against
/// its own sockets and `counters` (the namespace's).
pub fn assess_in(snap: &Snapshot, netns: u64, counters: &CounterHistory) -> Vec<SysctlItem> {
    let system = match snap.namespaces.get(netns) {
        Some(ns) => &ns.system,
        None => &snap.system,
    };
    let facts = facts_in(snap, netns, system, counters);
    let sysctls = &system.sysctls;
    let documented = docs().iter().filter_map(|d| sysctls.get_key_value(&d.name));
    let others = sysctls.iter().filter(|(name, _)| doc(name).is_none());
    documented
        .chain(others)
        .map(|(name, value)| SysctlItem {
            name: name.clone(),
            value: value.clone(),
            context: context_in(name, system, &facts),
            doc: doc(name),
        })
        .collect()
}

fn percent(n: u64, of: u64) -> u64 {
    (n * 100).checked_div(of).unwrap_or(0)
}

fn level_at(pct: u64, warn: u64, trouble: u64) -> Level {
    if pct >= trouble {
        Level::Trouble
    } else if pct >= warn {
        Level::Warn
    } else {
        Level::Info
    }
}

/// The live context of one sysctl, or None when there is nothing to add.
pub fn context_for(name: &str, snap: &Snapshot, f: &Facts) -> Option<Context> {
    context_in(name, &snap.system, f)
}

fn context_in(name: &str, sys: &crate::model::SystemContext, f: &Facts) -> Option<Context> {
    let value = sys.sysctl_u64(name);
    let recent = |counter: &str| f.recent.get(counter).copied().unwrap_or(0);
    match name {
        "net.core.somaxconn" => {
            let cap = value?;
            // The kernel counts a queue full when it holds more than the
            // backlog (sk_acceptq_is_full: ack_backlog > max_ack_backlog).
            if let Some(l) = f.fullest_queue.as_ref().filter(|l| l.queued > l.backlog) {
                return context(
                    Level::Trouble,
                    format!("accept queue full: {}", l.label()),
                    format!(
                        "The accept queue of {} is full ({} waiting, backlog {}): new connections are dropped until its program calls accept().",
                        l.label(),
                        l.queued,
                        l.backlog
                    ),
                );
            }
            let l = f.largest_backlog.as_ref()?;
            let at_cap = if l.backlog >= cap as u32 {
                " It is at this cap: the program may have asked for more."
            } else {
                ""
            };
            context(
                Level::Info,
                format!("largest backlog {} ({})", l.backlog, l.label()),
                format!(
                    "The largest listen backlog is {} on {} (accept queue now {}).{at_cap}",
                    l.backlog,
                    l.label(),
                    l.queued
                ),
            )
        }
        "net.ipv4.tcp_max_syn_backlog" => {
            let n = f.syn_recv;
            if sys
                .sysctl_u64("net.ipv4.tcp_syncookies")
                .is_some_and(|c| c != 0)
            {
                context(
                    Level::Info,
                    "no effect: syncookies on",
                    format!("tcp_syncookies is on, so this value is not used. SYN_RECV now: {n}."),
                )
            } else {
                context(
                    Level::Info,
                    format!("SYN_RECV {n}"),
                    format!("Half-open connections (SYN_RECV) now: {n}."),
                )
            }
        }
        "net.ipv4.tcp_syncookies" => {
            let sent = recent("TcpExt.SyncookiesSent");
            let (mut level, what) = match value? {
                0 => (Level::Warn, "off"),
                1 => (Level::Info, "on when a SYN queue overflows"),
                2 => (Level::Warn, "always (meant for testing)"),
                _ => (Level::Warn, "unknown value"),
            };
            let short = if sent > 0 {
                level = level.max(Level::Warn);
                format!("cookies sent +{sent} in last min")
            } else {
                what.to_string()
            };
            context(
                level,
                short,
                format!(
                    "Syncookies: {what}. SYN_RECV now: {}; SYN cookies sent in the last minute: {sent}.",
                    f.syn_recv
                ),
            )
        }
        "net.ipv4.tcp_abort_on_overflow" => {
            let overflows = recent("TcpExt.ListenOverflows");
            let (level, what) = match value? {
                0 => (Level::Info, "full queue: client retries"),
                _ => (Level::Warn, "full queue: client reset"),
            };
            if overflows > 0 {
                context(
                    Level::Warn.max(level),
                    format!("ListenOverflows +{overflows} in last min"),
                    format!(
                        "{what}. ListenOverflows rose by {overflows} in the last minute: some listener's accept queue is full."
                    ),
                )
            } else {
                context(level, what, format!("{what}."))
            }
        }
        "net.ipv4.tcp_synack_retries" => {
            let t = doubling_timeout(value?, 0);
            context(
                Level::Info,
                format!("drop after ~{}", format_secs(t)),
                format!(
                    "A half-open connection whose client never completes the handshake is dropped after about {} (fewer retries while the SYN queue is over half full).",
                    format_secs(t)
                ),
            )
        }
        "net.ipv4.tcp_syn_retries" => {
            let linear = sys
                .sysctl_u64("net.ipv4.tcp_syn_linear_timeouts")
                .unwrap_or(0);
            let t = doubling_timeout(value? + linear, linear);
            context(
                Level::Info,
                format!("connect() fails after ~{}", format_secs(t)),
                format!(
                    "connect() to a host that never answers fails after about {} ({} SYN retransmissions, {linear} of them at a fixed 1 s).",
                    format_secs(t),
                    value? + linear
                ),
            )
        }
        "net.ipv4.ip_local_port_range" => {
            let (lo, hi) = sys.local_port_range()?;
            let size = u64::from(hi.saturating_sub(lo)) + 1;
            match f.busiest_destination {
                Some((_, remote, n)) => {
                    let pct = percent(n, size);
                    context(
                        level_at(pct, 50, 90),
                        format!("{size} ports; {n} to {remote}"),
                        format!(
                            "{size} local ports. The busiest destination, {remote}, has {n} connections from this range ({pct}% of it) counting TIME_WAIT."
                        ),
                    )
                }
                None => context(
                    Level::Info,
                    format!("{size} ports"),
                    format!("{size} local ports; no connection uses one now."),
                ),
            }
        }
        "net.ipv4.tcp_tw_reuse" => {
            let what = match value? {
                0 => "off",
                1 => "all outgoing connections",
                2 => "loopback only",
                _ => "unknown value",
            };
            let no_timestamps = sys.sysctl_u64("net.ipv4.tcp_timestamps") == Some(0);
            if value? != 0 && no_timestamps {
                context(
                    Level::Warn,
                    "no effect: timestamps off",
                    format!(
                        "Reuse: {what}, but tcp_timestamps is 0, so no TIME_WAIT socket can be reused."
                    ),
                )
            } else {
                context(
                    Level::Info,
                    format!("{what}; TIME_WAIT {}", f.time_wait),
                    format!("Reuse: {what}. TIME_WAIT now: {}.", f.time_wait),
                )
            }
        }
        "net.ipv4.tcp_max_tw_buckets" => {
            let max = value?;
            let n = f.tw_table;
            let pct = percent(n, max);
            let overflow = recent("TcpExt.TCPTimeWaitOverflow");
            if overflow > 0 {
                return context(
                    Level::Trouble,
                    format!("overflowed +{overflow} in last min"),
                    format!(
                        "The TIME_WAIT table holds {n} of {max}; {overflow} connections skipped TIME_WAIT in the last minute because the limit was reached."
                    ),
                );
            }
            context(
                level_at(pct, 50, 90),
                format!("TIME_WAIT table {n} ({pct}%)"),
                format!(
                    "The TIME_WAIT table holds {n} of {max} ({pct}%): TIME_WAIT sockets ({} now) and orphaned FIN_WAIT2 sockets waiting out tcp_fin_timeout.",
                    f.time_wait
                ),
            )
        }
        "net.ipv4.tcp_fin_timeout" => context(
            Level::Info,
            format!("orphaned FIN_WAIT2 {}", f.orphan_fin_wait2),
            format!(
                "FIN_WAIT2 sockets no program holds now: {} (they go after {} s); FIN_WAIT2 sockets a program holds are not affected.",
                f.orphan_fin_wait2, value?
            ),
        ),
        "net.ipv4.tcp_max_orphans" => {
            let max = value?;
            let n = f.orphans?;
            let pct = percent(n, max);
            let aborted = recent("TcpExt.TCPAbortOnMemory");
            let level = if aborted > 0 {
                Level::Trouble
            } else {
                level_at(pct, 25, 50)
            };
            context(
                level,
                format!("orphans {n} ({pct}%)"),
                format!(
                    "Orphaned sockets now {n} of {max} ({pct}%); past a quarter of the limit, stalled orphans can already be reset. TCPAbortOnMemory in the last minute: {aborted}."
                ),
            )
        }
        "net.ipv4.tcp_orphan_retries" => match value? {
            0 => context(Level::Info, "0 means 8", "0 is treated as 8 retries."),
            _ => None,
        },
        "net.ipv4.tcp_retries2" => {
            let t = retries2_timeout(value?);
            let level = if t < 100.0 { Level::Warn } else { Level::Info };
            context(
                level,
                format!("gives up after ~{}", format_secs(t)),
                format!(
                    "A connection whose data stays unacknowledged is dropped after at least about {} (RFC 1122 asks for at least 100 s).",
                    format_secs(t)
                ),
            )
        }
        "net.ipv4.tcp_keepalive_time"
        | "net.ipv4.tcp_keepalive_intvl"
        | "net.ipv4.tcp_keepalive_probes" => {
            let time = sys.sysctl_u64("net.ipv4.tcp_keepalive_time")?;
            let intvl = sys.sysctl_u64("net.ipv4.tcp_keepalive_intvl")?;
            let probes = sys.sysctl_u64("net.ipv4.tcp_keepalive_probes")?;
            let total = (time + intvl * probes) as f64;
            context(
                Level::Info,
                format!("dead peer found after ~{}", format_secs(total)),
                format!(
                    "With SO_KEEPALIVE and these values, an idle connection to a vanished peer is dropped after about {} ({time} s + {intvl} s x {probes}).",
                    format_secs(total)
                ),
            )
        }
        "net.ipv4.tcp_timestamps" => match value? {
            0 => context(
                Level::Warn,
                "off",
                "Timestamps are off: tcp_tw_reuse cannot reuse TIME_WAIT sockets, and connections made with SYN cookies lose options such as window scaling.",
            ),
            1 => context(Level::Info, "on", "Timestamps are on."),
            2 => context(
                Level::Info,
                "on, no random offset",
                "Timestamps are on, without random offsets.",
            ),
            _ => None,
        },
        _ => None,
    }
}

/// Seconds until a handshake gives up after `retries` retransmissions: the
/// first `linear` retries and the first wait use the 1 s initial timeout,
/// later ones double it, capped at the kernel's 120 s maximum.
pub fn doubling_timeout(retries: u64, linear: u64) -> f64 {
    (0..=retries)
        .map(|i| {
            if i <= linear {
                1.0
            } else {
                2f64.powi((i - linear).min(30) as i32).min(120.0)
            }
        })
        .sum()
}

/// The kernel's model of tcp_retries2 (`tcp_model_timeout`): exponential
/// backoff from TCP_RTO_MIN (200 ms), capped at TCP_RTO_MAX (120 s).
pub fn retries2_timeout(retries: u64) -> f64 {
    const RTO_MIN: f64 = 0.2;
    const RTO_MAX: f64 = 120.0;
    // ilog2(TCP_RTO_MAX / TCP_RTO_MIN) = ilog2(600)
    const LINEAR_THRESH: u64 = 9;
    if retries <= LINEAR_THRESH {
        ((2u64 << retries) - 1) as f64 * RTO_MIN
    } else {
        ((2u64 << LINEAR_THRESH) - 1) as f64 * RTO_MIN + (retries - LINEAR_THRESH) as f64 * RTO_MAX
    }
}

/// `63 s`, `131 s`, `15.4 min`, `2h11m`.
pub fn format_secs(secs: f64) -> String {
    if secs < 600.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        let m = (secs / 60.0).round() as u64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests;
