//! Findings only the transitions can make: what happens between two
//! samples. They judge the last minute's window (see `trace::sample`).
//!
//! - `connection_storm`: connections to one port opened at 100/s or more
//!   that live under a second (median): a client reconnecting per request,
//!   a retry loop, a pool that does not pool.
//! - `reset_storm`: one local port sending 20 resets a second or more.
//! - `short_lived`: a service whose connections die within a second of
//!   opening (90th percentile), mostly by reset or before they were
//!   established.
//! - `close_wait_inflow`: connections entering CLOSE_WAIT faster than they
//!   leave it: the leak's rate, exact even when the count is capped or the
//!   process restarts.

use super::text::{plural, who};
use super::{Finding, Kind, Severity};
use crate::model::{Filter, Owner, Proto, Snapshot, Socket, TcpState};
use crate::trace::{PortKey, Stats, Window};
use std::time::Duration;

pub const STORM_PER_SEC: f64 = 100.0;
pub const RESETS_PER_SEC: f64 = 20.0;
pub const RESETS_CRITICAL_PER_SEC: f64 = 500.0;
pub const SHORT_LIVED_MIN: u64 = 20;
pub const SHORT: Duration = Duration::from_secs(1);
/// Net CLOSE_WAIT entries over the window before the inflow is a leak.
pub const INFLOW_MIN: u64 = 10;

/// A socket standing for a group of transitions, so the filter language
/// selects them as it selects sockets (`port:`, `pid:`, `state:`...).
pub fn stand_in(key: PortKey, pid: Option<u32>, state: TcpState) -> Socket {
    let any: std::net::SocketAddr = "0.0.0.0:0".parse().expect("address");
    let at = |port| std::net::SocketAddr::new(any.ip(), port);
    let (local, remote) = if key.local {
        (at(key.port), any)
    } else {
        (any, at(key.port))
    };
    Socket {
        proto: Proto::Tcp,
        family: crate::model::Family::V4,
        state,
        local,
        remote,
        inode: 0,
        uid: 0,
        recv_q: 0,
        send_q: 0,
        timer: None,
        retransmits: 0,
        cookie: 0,
        tcp_info: None,
        owners: pid.map(|pid| Owner { pid, fd: 0 }).into_iter().collect(),
        netns: crate::model::HOST_NETNS,
    }
}

/// The process a port's connections belong to: the listener's holder for a
/// local port; for a remote one, the holder of most sockets to it now.
fn holder(snap: &Snapshot, key: PortKey) -> Option<u32> {
    if key.local {
        return snap.holders().listener_holder(key.port);
    }
    let mut counts: std::collections::HashMap<u32, u64> = Default::default();
    for s in &snap.sockets {
        if s.proto == Proto::Tcp && s.remote.port() == key.port {
            for o in &s.owners {
                *counts.entry(o.pid).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(p, n)| (n, std::cmp::Reverse(p)))
        .map(|(p, _)| p)
}

fn ms(d: Duration) -> String {
    crate::model::format::duration_short(d)
}

fn rate(n: u64, span: Duration) -> f64 {
    let s = span.as_secs_f64().max(1.0);
    n as f64 / s
}

fn place(key: PortKey) -> String {
    if key.local {
        format!("local port {}", key.port)
    } else {
        format!("remote port {}", key.port)
    }
}

fn base(kind: Kind, severity: Severity, count: u64, snap: &Snapshot, key: PortKey) -> Finding {
    let mut f = Finding::new(kind, severity, count);
    f.port = Some(key.port);
    f.ports = vec![key.port];
    f.pid = holder(snap, key);
    f.pids = f.pid.into_iter().collect();
    f.process = f.pid.and_then(|p| snap.process(p).map(|p| p.name.clone()));
    f.first_seen_exact = true;
    f.filter = if key.local {
        format!("lport:{}", key.port)
    } else {
        format!("rport:{}", key.port)
    };
    f
}

/// Appends the transitions' findings over `window` (the sockets the filter
/// selects only, when there is one) and orders the list again.
pub fn analyze(snap: &Snapshot, window: &Window, filter: &Filter, out: &mut Vec<Finding>) {
    let span = window.span();
    if span.is_zero() {
        return;
    }
    let mut keys: Vec<(&PortKey, &Stats)> = window.by_port.iter().collect();
    keys.sort_by_key(|(k, _)| **k);
    for (&key, s) in keys {
        // The holder only matters to a filter (`pid:`, `proc:`): looked up
        // once per port, and only then.
        let pid = if filter.is_empty() {
            None
        } else {
            holder(snap, key)
        };
        let wanted = |state| filter.is_empty() || filter.matches(&stand_in(key, pid, state), snap);
        storm(snap, key, s, span, wanted(TcpState::Established), out);
        resets(snap, key, s, span, window, wanted(TcpState::Close), out);
        short_lived(snap, key, s, span, wanted(TcpState::Close), out);
        inflow(snap, key, s, span, wanted(TcpState::CloseWait), out);
    }
    super::sort(out);
}

fn storm(
    snap: &Snapshot,
    key: PortKey,
    s: &Stats,
    span: Duration,
    wanted: bool,
    out: &mut Vec<Finding>,
) {
    let per_sec = rate(s.opened, span);
    let Some(median) = s.lifetime_percentile(50.0) else {
        return;
    };
    if !wanted || per_sec < STORM_PER_SEC || median >= SHORT {
        return;
    }
    let mut f = base(
        Kind::ConnectionStorm,
        Severity::Warning,
        s.opened,
        snap,
        key,
    );
    let name = who(f.pid, f.process.as_deref());
    let p99 = s.lifetime_percentile(99.0).unwrap_or(median);
    f.summary = if key.local {
        format!(
            "{:.0} connections/s to {name} on port {} live {} (median): a connection storm",
            per_sec,
            key.port,
            ms(median)
        )
    } else {
        format!(
            "{name} opens {:.0} connections/s to port {} that live {} (median): a connection storm",
            per_sec,
            key.port,
            ms(median)
        )
    };
    f.message = format!(
        "In the last {} {} connections were opened on {} and {} closed; half lived less than \
         {}, 99% less than {p99}. Each new connection costs a handshake, a TIME_WAIT entry \
         on the side that closes first, and an ephemeral port: a client that opens one per \
         request, retries in a tight loop or runs a pool that does not pool. Between two \
         refreshes these connections are invisible to ss and netstat.",
        ms(span),
        s.opened,
        place(key),
        s.closed,
        ms(median),
        p99 = ms(p99),
    );
    f.next_step = format!(
        "Find the client (the transitions view, key T, filtered by {}) and make it reuse \
         connections (HTTP keep-alive, a connection pool), or back off its retries.",
        f.filter
    );
    out.push(f);
}

fn resets(
    snap: &Snapshot,
    key: PortKey,
    s: &Stats,
    span: Duration,
    window: &Window,
    wanted: bool,
    out: &mut Vec<Finding>,
) {
    let per_sec = rate(s.resets_sent, span);
    if !wanted || !key.local || per_sec < RESETS_PER_SEC {
        return;
    }
    let severity = if per_sec >= RESETS_CRITICAL_PER_SEC {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut f = base(Kind::ResetStorm, severity, s.resets_sent, snap, key);
    let no_socket = window.resets_no_socket.get(&key.port).copied().unwrap_or(0);
    let name = who(f.pid, f.process.as_deref());
    if f.pid.is_none() && no_socket > 0 {
        f.summary = format!(
            "port {} answers {:.0} connection attempts/s with a reset: nothing listens there",
            key.port, per_sec
        );
        f.message = format!(
            "In the last {} this host sent {} from port {}, {no_socket} of them for \
             segments no socket took: clients still connect to a service that is gone (its \
             listener closed or crashed), and each gets `connection refused`.",
            ms(span),
            plural(s.resets_sent, "reset"),
            key.port
        );
        f.next_step = format!(
            "Start the service on port {} again, or point its clients elsewhere; \
             `sockscope diagnose lport:{}` shows whether a listener comes back.",
            key.port, key.port
        );
    } else {
        f.summary = format!("{name} on port {} sends {:.0} resets/s", key.port, per_sec);
        f.message = format!(
            "In the last {} this host sent {} from port {} ({no_socket} for segments no \
             socket took, {} ending connections it held). Resets are sent for a full or \
             closed listener, an abortive close (SO_LINGER 0), data arriving after close(), \
             or a timeout; the clients see `connection reset by peer`.",
            ms(span),
            plural(s.resets_sent, "reset"),
            key.port,
            s.closed_reset
        );
        f.next_step = "Look at the transitions view (key T) for what the reset connections \
             were doing, and at the service's log for aborted requests or a restart."
            .to_string();
    }
    out.push(f);
}

fn short_lived(
    snap: &Snapshot,
    key: PortKey,
    s: &Stats,
    span: Duration,
    wanted: bool,
    out: &mut Vec<Finding>,
) {
    if !wanted || !key.local || (s.lifetimes_us.len() as u64) < SHORT_LIVED_MIN {
        return;
    }
    let Some(p90) = s.lifetime_percentile(90.0) else {
        return;
    };
    if p90 >= SHORT {
        return;
    }
    let bad = s.closed_reset + s.failed;
    if bad * 2 < s.closed {
        return;
    }
    let mut f = base(Kind::ShortLived, Severity::Warning, s.closed, snap, key);
    let name = who(f.pid, f.process.as_deref());
    f.summary = format!(
        "connections to {name} on port {} die within {} of opening ({} of {} reset or never established)",
        key.port,
        ms(p90),
        bad,
        s.closed
    );
    f.message = format!(
        "In the last {} {} connections to port {} ended, 90% of them within {} of opening; \
         {} were reset and {} never got established. A service that accepts and then drops \
         its clients at once is failing: it crashes per request, refuses them after accept \
         (a limit, TLS or authentication failure), or its accept queue overflows.",
        ms(span),
        s.closed,
        key.port,
        ms(p90),
        s.closed_reset,
        s.failed
    );
    f.next_step = format!(
        "Read the service's log for what it does with new connections; `sockscope diagnose \
         lport:{}` says whether the accept queue overflows.",
        key.port
    );
    out.push(f);
}

fn inflow(
    snap: &Snapshot,
    key: PortKey,
    s: &Stats,
    span: Duration,
    wanted: bool,
    out: &mut Vec<Finding>,
) {
    let entered = s.entered(TcpState::CloseWait);
    let left = s.left(TcpState::CloseWait);
    if !wanted || entered < left + INFLOW_MIN {
        return;
    }
    let net = entered - left;
    let mut f = base(Kind::CloseWaitInflow, Severity::Warning, net, snap, key);
    // The holder of the CLOSE_WAIT sockets is responsible, not the listener
    // (they are the same process unless the connections were handed on).
    let holders: Vec<u32> = snap
        .sockets
        .iter()
        .filter(|x| x.proto == Proto::Tcp && x.state == TcpState::CloseWait)
        .filter(|x| {
            if key.local {
                x.local.port() == key.port
            } else {
                x.remote.port() == key.port
            }
        })
        .flat_map(|x| x.owners.iter().map(|o| o.pid))
        .collect();
    if let Some(&p) = holders.first() {
        f.pid = Some(p);
        f.process = snap.process(p).map(|p| p.name.clone());
    }
    let name = who(f.pid, f.process.as_deref());
    let per_min = net as f64 * 60.0 / span.as_secs_f64().max(1.0);
    f.growth_per_min = Some(per_min);
    f.growth_window_s = Some(span.as_secs_f64());
    f.summary = format!(
        "CLOSE_WAIT on port {}: {:.1}/s enter, {:.1}/s leave: {name} leaks {per_min:.0}/min",
        key.port,
        rate(entered, span),
        rate(left, span),
    );
    f.message = format!(
        "In the last {} {} connections on {} entered CLOSE_WAIT (the peer closed) and {} \
         left it (the program called close()). The difference is the leak's rate, counted \
         from the kernel's transitions: exact even when the socket count is capped, \
         churns, or the process restarts.",
        ms(span),
        entered,
        place(key),
        left
    );
    f.next_step = format!(
        "Find where {name} handles a peer's close (read() returning 0, EOF) and make sure \
         every path calls close(); `sockscope snapshot state:close-wait {}` lists them.",
        f.filter
    );
    out.push(f);
}
