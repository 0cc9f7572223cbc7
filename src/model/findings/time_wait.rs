//! `time_wait_pressure`: TIME_WAIT sockets using up ephemeral ports towards
//! one endpoint, or the machine's TIME_WAIT table.
//!
//! TIME_WAIT is kept by the side that closed first (the active closer) for
//! about 60 s (`TCP_TIMEWAIT_LEN`; restarted if the peer resends its FIN). On a
//! client, each one keeps its ephemeral port busy towards that remote address
//! and port.

use super::text::{list, percent, plural};
use super::{Finding, Input, Kind, Severity, ranked};
use crate::model::holders;
use crate::model::socket::{Proto, Socket, TcpState};
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// Server-side TIME_WAIT on one port worth an info line.
const SERVER_SIDE_INFO: u64 = 1000;

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let listening = &input.listening;
    let range = input.system.local_port_range();
    let in_range = |port: u16| range.is_some_and(|(lo, hi)| (lo..=hi).contains(&port));

    // Client side: every TCP socket towards an endpoint from an ephemeral port.
    let mut towards: HashMap<SocketAddr, Vec<&Socket>> = HashMap::new();
    let mut server_side: HashMap<u16, u64> = HashMap::new();
    for s in &input.sockets {
        if s.proto != Proto::Tcp || s.remote_is_unspecified() {
            continue;
        }
        let port = s.local.port();
        if s.state == TcpState::TimeWait && listening.contains(&port) {
            *server_side.entry(port).or_default() += 1;
        } else if !listening.contains(&port) && in_range(port) {
            let remote = SocketAddr::new(s.remote.ip().to_canonical(), s.remote.port());
            towards.entry(remote).or_default().push(s);
        }
    }
    if let Some((lo, hi)) = range {
        let size = u64::from(hi - lo) + 1;
        for (endpoint, sockets) in towards {
            if let Some(f) = ephemeral(input, endpoint, &sockets, size) {
                out.push(f);
            }
        }
    }
    for (port, count) in server_side {
        if count >= SERVER_SIDE_INFO {
            out.push(server(input, port, count));
        }
    }
    if !input.filtered
        && let Some(f) = buckets(input)
    {
        out.push(f);
    }
}

/// TIME_WAIT lasts this long (`TCP_TIMEWAIT_LEN`): the time left on its
/// timer tells its age.
const TIME_WAIT_MS: u64 = 60_000;
/// A TIME_WAIT port can be taken over this long after its last segment
/// under tcp_tw_reuse (the kernel's default tcp_tw_reuse_delay).
const REUSE_DELAY_MS: u64 = 1_000;

/// How fast the ports towards one endpoint are used, from the kernel's own
/// figures: TIME_WAIT ages (from the time left on their timers) and
/// `TcpExt.TWRecycled` (TIME_WAIT ports taken over by a new connect).
#[derive(Debug, Default)]
struct Pace {
    /// TIME_WAIT sockets too young to be taken over yet.
    young: u64,
    /// TIME_WAIT sockets whose age is known.
    aged: u64,
    /// Their median age in milliseconds.
    median_age_ms: Option<u64>,
    /// TIME_WAIT takeovers per second, machine-wide.
    recycled_per_s: Option<f64>,
    /// Nearly every port is taken and they are being reused as fast as the
    /// kernel allows: the connection rate is capped by the range.
    capped: bool,
}

impl Pace {
    fn of(input: &Input, sockets: &[&Socket], size: u64, reuse: bool) -> Pace {
        let mut ages: Vec<u64> = sockets
            .iter()
            .filter(|s| s.state == TcpState::TimeWait)
            .filter_map(|s| s.timer.and_then(|t| t.expires_ms))
            .map(|left| TIME_WAIT_MS.saturating_sub(left))
            .collect();
        ages.sort_unstable();
        let young = ages.iter().filter(|&&a| a < REUSE_DELAY_MS).count() as u64;
        let recycled_per_s = input
            .counter_increase("TcpExt.TWRecycled")
            .map(|(n, span)| n as f64 / span.as_secs_f64().max(1e-3));
        let median_age_ms = ages.get(ages.len() / 2).copied();
        let taken = sockets.len() as f64 >= input.limits.ports_critical * size as f64;
        // Ports recycled within a few reuse delays, or taken over at a
        // good part of what the range allows per second.
        let fast = median_age_ms.is_some_and(|m| m < 3 * REUSE_DELAY_MS)
            || recycled_per_s.is_some_and(|r| r >= 0.5 * size as f64);
        Pace {
            young,
            aged: ages.len() as u64,
            median_age_ms,
            recycled_per_s,
            capped: reuse && taken && fast,
        }
    }

    fn describe(&self, size: u64) -> String {
        let mut text = String::new();
        if let Some(m) = self.median_age_ms {
            text.push_str(&format!(
                " The median TIME_WAIT here is {:.1} s old ({} of {} younger than 1 s, from the \
                 time left on their timers).",
                m as f64 / 1000.0,
                self.young,
                self.aged
            ));
        }
        if let Some(r) = self.recycled_per_s.filter(|r| *r > 0.0) {
            text.push_str(&format!(
                " The kernel took over TIME_WAIT ports at {} (TcpExt.TWRecycled, for the \
                 whole network namespace).",
                super::text::format_rate(r)
            ));
        }
        if self.capped {
            text.push_str(&format!(
                " The ports are being reused as fast as the kernel allows: the connection rate \
                 is capped at about {size}/s, and connects beyond it fail now."
            ));
        }
        text
    }
}

/// Whether the kernel may reuse a TIME_WAIT socket's port for a new
/// outgoing connection to this endpoint (`tcp_tw_reuse`: 1 always, 2 for
/// loopback only; it also needs TCP timestamps).
fn reuse_applies(input: &Input, endpoint: SocketAddr) -> bool {
    let timestamps = input.sysctl("net.ipv4.tcp_timestamps").unwrap_or(1) != 0;
    timestamps
        && match input.sysctl("net.ipv4.tcp_tw_reuse") {
            Some(1) => true,
            Some(2) => endpoint.ip().is_loopback(),
            _ => false,
        }
}

fn ephemeral(
    input: &Input,
    endpoint: SocketAddr,
    sockets: &[&Socket],
    size: u64,
) -> Option<Finding> {
    let limits = &input.limits;
    let tw = sockets
        .iter()
        .filter(|s| s.state == TcpState::TimeWait)
        .count() as u64;
    if tw == 0 {
        return None;
    }
    let in_use = sockets.len() as u64;
    let reuse = reuse_applies(input, endpoint);
    let pace = Pace::of(input, sockets, size, reuse);
    // With reuse on, a TIME_WAIT port is handed out again once it is about
    // a second old; younger ones and live connections still block.
    let blocking = if reuse {
        in_use - tw + pace.young
    } else {
        in_use
    };
    let share = in_use as f64 / size as f64;
    let blocking_share = blocking as f64 / size as f64;
    let severity = if blocking_share >= limits.ports_critical || pace.capped {
        Severity::Critical
    } else if blocking_share >= limits.ports_warning {
        Severity::Warning
    } else if share >= 0.1 {
        Severity::Info
    } else {
        return None;
    };
    let owners: Vec<u32> = ranked(
        sockets
            .iter()
            .filter(|s| s.state != TcpState::TimeWait)
            .filter_map(|s| holders::effective(input.snap, s).first().map(|o| o.pid)),
    )
    .into_iter()
    .map(|(p, _)| p)
    .collect();
    let mut f = Finding::new(Kind::TimeWaitPressure, severity, tw);
    let target = crate::model::socket::format_addr(&endpoint);
    f.summary = format!(
        "{tw} TIME_WAIT towards {target}: {} of {size} ephemeral ports in use ({})",
        in_use,
        percent(share)
    );
    if pace.capped {
        f.summary.push_str(&format!(
            "; reused as fast as tcp_tw_reuse allows: new connects capped at about {size}/s, the rest fail"
        ));
    }
    let clients = if owners.is_empty() {
        "No process has an open connection to it right now, so the one that made these is not \
         known (TIME_WAIT sockets belong to no process)."
            .to_string()
    } else {
        let named: Vec<String> = owners
            .iter()
            .map(|&p| super::text::who(Some(p), input.process_name(p).as_deref()))
            .collect();
        format!(
            "TIME_WAIT sockets belong to no process; the processes with open connections to it \
             now are {}.",
            list(&named, 3)
        )
    };
    let reuse_text = if reuse {
        format!(
            " net.ipv4.tcp_tw_reuse lets new connections to it take over a TIME_WAIT port \
             only about 1 s after its last segment (tcp_tw_reuse_delay on 6.13+), and only \
             when both ends use TCP timestamps: so the range allows about {size} new \
             connections a second towards {target}; beyond that connect() fails with \
             EADDRNOTAVAIL (\"Cannot assign requested address\").{}",
            pace.describe(size)
        )
    } else {
        format!(
            " With net.ipv4.tcp_tw_reuse off for this destination, a port in TIME_WAIT cannot \
             be used again for it until its TIME_WAIT is over: the range allows about {} new \
             connections a second towards {target}; when all are busy, connect() fails with \
             EADDRNOTAVAIL (\"Cannot assign requested address\").{}",
            (size / 60).max(1),
            pace.describe(size)
        )
    };
    let (lo, hi) = input.system.local_port_range().unwrap_or((0, 0));
    f.message = format!(
        "This machine closed {} to {target} first (it is the active closer, as a client), so \
         each one stays in TIME_WAIT for about 60 s, keeping its local port. {in_use} of the \
         {size} ports in net.ipv4.ip_local_port_range ({lo}-{hi}) are now taken towards \
         {target} ({}); the limit is per source address, and ports in \
         net.ipv4.ip_local_reserved_ports or taken by bind() before connect() leave fewer.\
         {reuse_text} {clients}",
        plural(tw, "connection"),
        percent(share),
    );
    f.next_step = "Reuse connections instead of opening one per request (HTTP keep-alive, a \
         connection pool). To buy room: widen net.ipv4.ip_local_port_range, spread connections \
         over more source addresses, or set net.ipv4.tcp_tw_reuse = 1 on this client (it \
         affects only outgoing connect(); needs TCP timestamps on both ends). Do not shorten \
         TIME_WAIT with SO_LINGER 0: it discards unsent data, the peer gets ECONNRESET, and old \
         segments can reach a new connection on the same 4-tuple."
        .into();
    f.filter = format!(
        "state:time-wait raddr:{} rport:{}",
        endpoint.ip(),
        endpoint.port()
    );
    f.port = Some(endpoint.port());
    f.pid = owners.first().copied();
    f.process = f.pid.and_then(|p| input.process_name(p));
    f.pids = owners
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    f.peers = vec![super::Peer {
        addr: target,
        count: tw,
        pid: None,
        process: None,
        state: None,
        queued: false,
    }];
    Some(f)
}

fn server(input: &Input, port: u16, count: u64) -> Finding {
    let owners: BTreeSet<u32> = input
        .all
        .iter()
        .copied()
        .filter(|s| s.state == TcpState::Listen && s.local.port() == port)
        .flat_map(|s| s.owners.iter().map(|o| o.pid))
        .collect();
    let pid = owners.iter().next().copied();
    let name = pid.and_then(|p| input.process_name(p));
    let mut f = Finding::new(Kind::TimeWaitPressure, Severity::Info, count);
    f.summary = format!("{count} TIME_WAIT on port {port}: this server closes connections first");
    f.message = format!(
        "{count} connections to port {port} ({}) are in TIME_WAIT on this machine: the server \
         closed them first (it is the active closer), e.g. HTTP without keep-alive or closing \
         idle clients. Each lasts about 60 s. On the server side they do not use up ports, but they \
         count against net.ipv4.tcp_max_tw_buckets.",
        super::text::who(pid, name.as_deref())
    );
    f.next_step = "Usually harmless. If the rate is high, prefer keep-alive so that fewer \
         connections are closed, or let clients close first."
        .into();
    f.filter = format!("state:time-wait lport:{port}");
    f.port = Some(port);
    f.pid = pid;
    f.process = name;
    f.pids = owners.into_iter().collect();
    f
}

/// The machine's TIME_WAIT table against `tcp_max_tw_buckets`.
fn buckets(input: &Input) -> Option<Finding> {
    let max = input.sysctl("net.ipv4.tcp_max_tw_buckets")?;
    // sockstat's count includes orphaned FIN_WAIT2 sockets, which the kernel
    // keeps in the same table; the socket list is the fallback.
    let tw = input
        .system
        .sockstat
        .get("TCP.tw")
        .copied()
        .unwrap_or_else(|| {
            input
                .all
                .iter()
                .filter(|s| s.state == TcpState::TimeWait)
                .count() as u64
        });
    let overflow = input
        .counter_increase("TcpExt.TCPTimeWaitOverflow")
        .is_some_and(|(n, _)| n > 0);
    let share = if max == 0 {
        1.0
    } else {
        tw as f64 / max as f64
    };
    // Overflowing is the kernel's own defence and rarely hurts: a warning.
    let severity = if overflow || share >= input.limits.tw_buckets_warning {
        Severity::Warning
    } else {
        return None;
    };
    let mut f = Finding::new(Kind::TimeWaitPressure, severity, tw);
    f.summary = format!(
        "{tw} TIME_WAIT sockets, {} of net.ipv4.tcp_max_tw_buckets = {max}",
        percent(share)
    );
    let overflowing = if overflow {
        " The table overflowed recently (TcpExt.TCPTimeWaitOverflow is rising): the kernel is \
         closing connections without TIME_WAIT (and orphaned FIN_WAIT2 sockets at once); only \
         the counter records it."
    } else {
        ""
    };
    f.message = format!(
        "The machine holds {tw} sockets in TIME_WAIT; at net.ipv4.tcp_max_tw_buckets = {max} the \
         kernel stops keeping them and closes connections without TIME_WAIT's protection \
         against stray old segments.{overflowing}"
    );
    f.next_step = "Find who opens and closes so many connections (group by remote host or \
         port) and make it reuse connections. Raising tcp_max_tw_buckets costs a little memory \
         per socket and is safe."
        .into();
    f.filter = "state:time-wait".into();
    Some(f)
}
