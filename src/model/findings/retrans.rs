//! `retransmissions`: connections losing segments, with the machine-wide
//! RetransSegs rate for context.

use super::text::{format_rate, list, percent, plural};
use super::{Finding, Input, Kind, Severity, ranked};
use crate::model::holders;
use crate::model::socket::{Proto, Socket, TcpState};
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// How many times the same segment has been retransmitted before a
/// connection counts as stalled (the kernel's `icsk_retransmits`).
const STALLED_RETRIES: u8 = 3;

/// A connection's retransmissions, when they are unhealthy.
fn trouble(s: &Socket, min: u32, share: f64) -> Option<(u64, u64)> {
    // Handshakes are left out: their counters count resent SYNs and
    // SYN-ACKs (an unreachable host, a SYN flood), not loss on a connection.
    if s.proto != Proto::Tcp
        || matches!(
            s.state,
            TcpState::Listen | TcpState::TimeWait | TcpState::SynSent | TcpState::SynRecv
        )
    {
        return None;
    }
    match &s.tcp_info {
        Some(t) => {
            // segs_out is 0 only when the kernel's tcp_info is too short to
            // carry it (before 4.2): then there is no share to judge by.
            let lossy = t.segs_out > 0
                && t.total_retrans >= min
                && f64::from(t.total_retrans) >= share * f64::from(t.segs_out);
            let stalled = t.retransmits >= STALLED_RETRIES;
            (lossy || stalled).then_some((u64::from(t.total_retrans), u64::from(t.segs_out)))
        }
        // Without tcp_info only the current segment's retries are known.
        None => (s.retransmits >= STALLED_RETRIES).then_some((u64::from(s.retransmits), 0)),
    }
}

/// A troubled connection: the socket, its retransmissions and segments sent.
type Troubled<'a> = (&'a Socket, u64, u64);

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let limits = &input.limits;
    let mut by_host: HashMap<IpAddr, Vec<Troubled>> = HashMap::new();
    for s in &input.sockets {
        if let Some((retrans, segs)) = trouble(s, limits.retrans_min, limits.retrans_share) {
            by_host
                .entry(s.remote.ip().to_canonical())
                .or_default()
                .push((s, retrans, segs));
        }
    }
    let all_retrans = input.counter_increase("Tcp.RetransSegs");
    let sent = input.counter_increase("Tcp.OutSegs");
    // SYN and SYN-ACK retries count in RetransSegs too: they are connects
    // nobody answered (a full accept queue, an unreachable server), not
    // loss on a connection. They are told apart, and told elsewhere.
    let syn = input.counter_increase("TcpExt.TCPSynRetrans");
    let retrans = all_retrans.map(|(n, span)| (n.saturating_sub(syn.map_or(0, |s| s.0)), span));
    let rate = retrans.map(|(n, span)| n as f64 / span.as_secs_f64().max(1e-3));
    // OutSegs leaves retransmissions out: the segments actually sent are
    // OutSegs + RetransSegs.
    let machine_share = match (retrans, all_retrans, sent) {
        (Some((r, _)), Some((all, _)), Some((s, _))) if s + all > 0 => {
            Some(r as f64 / (s + all) as f64)
        }
        _ => None,
    };
    syn_retries(input, syn, out);
    // Some retransmission is normal on any busy host: "rising" means 1% of
    // the segments sent in the window or more.
    let rising = machine_share.is_some_and(|share| share >= 0.01);
    if by_host.is_empty() {
        // Machine-wide loss with no connection to pin it on (tcp_info off or
        // the connections already gone): only without a filter.
        if !input.filtered
            && let (Some(r), Some(share)) = (rate, machine_share)
            && share >= 0.02
            && r >= 10.0
        {
            out.push(machine_only(r, share));
        }
        return;
    }
    let connections: usize = by_host.values().map(Vec::len).sum();
    let mut hosts: Vec<(IpAddr, Vec<Troubled>)> = by_host.into_iter().collect();
    hosts.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let severity = match machine_share {
        Some(share) if rising && share >= 0.1 => Severity::Critical,
        _ if rising => Severity::Warning,
        _ => Severity::Info,
    };
    let all: Vec<&Socket> = hosts
        .iter()
        .flat_map(|(_, v)| v.iter().map(|e| e.0))
        .collect();
    let owners = ranked(
        all.iter()
            .filter_map(|s| holders::effective(input.snap, s).first().map(|o| o.pid)),
    );
    let pid = owners.first().map(|(p, _)| *p);
    let name = pid.and_then(|p| input.process_name(p));
    let mut f = Finding::new(Kind::Retransmissions, severity, connections as u64);
    let host_names: Vec<String> = hosts.iter().map(|(ip, _)| ip.to_string()).collect();
    f.summary = format!(
        "{} to {} retransmitting heavily{}",
        plural(connections as u64, "connection"),
        list(&host_names, 2),
        match rate {
            Some(r) if rising => format!("; {} retransmitted (SYNs aside)", format_rate(r)),
            _ => String::new(),
        }
    );
    let (worst_host, worst) = &hosts[0];
    let (r, s): (u64, u64) = worst
        .iter()
        .fold((0, 0), |acc, e| (acc.0 + e.1, acc.1 + e.2));
    let worst_text = if s > 0 {
        format!(
            "The connections to {worst_host} retransmitted {r} of {s} segments sent ({}).",
            percent(r as f64 / s as f64)
        )
    } else {
        format!("The connections to {worst_host} keep retransmitting the same segment.")
    };
    let machine = match (rate, machine_share) {
        (Some(r), Some(share)) if rising => format!(
            " Machine-wide, Tcp.RetransSegs less TcpExt.TCPSynRetrans is rising at {} ({} of \
             the segments sent, OutSegs + RetransSegs).",
            format_rate(r),
            percent(share)
        ),
        _ => " Machine-wide, Tcp.RetransSegs is not rising now: the loss may be over.".into(),
    };
    f.message = format!(
        "{} to {} have retransmitted a large share of their segments. {worst_text}{machine} \
         Retransmissions mean segments or their ACKs were lost or arrived too late: a \
         congested or faulty path, a bad link or NIC, or a peer too overloaded to keep up. \
         The per-connection share counts the connection's whole life, so an old burst keeps \
         a long-lived connection listed.",
        plural(connections as u64, "connection"),
        list(&host_names, 3),
    );
    f.next_step = format!(
        "Check the path to {worst_host}: `mtr {worst_host}` for loss per hop, `ip -s link` for \
         interface errors here, and the peer's load. If only one host is affected, the \
         problem is at that host or on its path."
    );
    f.filter = format!("raddr:{worst_host}");
    f.pid = pid;
    f.process = name;
    f.pids = owners
        .iter()
        .map(|(p, _)| *p)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    f.port = input.service_ports(&all).first().copied();
    f.peers = hosts
        .iter()
        .take(5)
        .map(|(ip, v)| super::Peer {
            addr: ip.to_string(),
            count: v.len() as u64,
            pid: None,
            process: None,
            state: None,
            queued: false,
        })
        .collect();
    out.push(f);
}

fn machine_only(rate: f64, share: f64) -> Finding {
    let mut f = Finding::new(
        Kind::Retransmissions,
        Severity::Warning,
        rate.round() as u64,
    );
    f.summary = format!(
        "TCP retransmitting {} ({} of segments sent, SYN retries aside)",
        format_rate(rate),
        percent(share)
    );
    f.message = format!(
        "Machine-wide, {} of the TCP segments sent (OutSegs + RetransSegs) are \
         retransmissions of data ({}; SYN and SYN-ACK retries, TcpExt.TCPSynRetrans, are left \
         out: they are unanswered connects, not loss), but no current \
         connection shows the loss in its tcp_info (it may be spread thin, or tcp_info is off \
         above 20k sockets).",
        percent(share),
        format_rate(rate)
    );
    f.next_step = "Look at the connections view sorted by retransmissions, and at interface \
         errors (`ip -s link`)."
        .into();
    f
}

/// SYN retries rising: connects nobody answers. Told with the listener
/// they point at when one here is full (`listen_queue_full`,
/// `accept_stalled`, `syn_flood` carry it), else with the connects still
/// unanswered (SYN_SENT sockets retrying), else as a note.
fn syn_retries(input: &Input, syn: Option<(u64, std::time::Duration)>, out: &mut Vec<Finding>) {
    let Some((n, span)) = syn.filter(|(n, _)| *n > 0) else {
        return;
    };
    let rate = n as f64 / span.as_secs_f64().max(1e-3);
    // Listeners here whose accept queue is full (or overflowed lately): a
    // connect to one of them is that listener's finding to tell.
    let overflowing = input
        .counter_increase("TcpExt.ListenOverflows")
        .is_some_and(|(n, _)| n > 0);
    let full_ports: std::collections::HashSet<u16> = input
        .all
        .iter()
        .copied()
        .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen)
        .filter(|s| s.recv_q > s.send_q || (overflowing && s.recv_q > 0))
        .map(|s| s.local.port())
        .collect();
    let local_full = !full_ports.is_empty() || overflowing;
    let trying: Vec<&Socket> = input
        .sockets
        .iter()
        .copied()
        .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::SynSent)
        .filter(|s| s.retransmits > 0 || s.tcp_info.as_ref().is_some_and(|t| t.retransmits > 0))
        .filter(|s| !(input.is_local(s.remote.ip()) && full_ports.contains(&s.remote.port())))
        .collect();
    if trying.is_empty() && (local_full || input.filtered) {
        return; // the listener's finding tells it
    }
    let by_target = ranked(
        trying
            .iter()
            .map(|s| std::net::SocketAddr::new(s.remote.ip().to_canonical(), s.remote.port())),
    );
    let mut f = Finding::new(
        Kind::Retransmissions,
        if trying.is_empty() {
            Severity::Info
        } else {
            Severity::Warning
        },
        n,
    );
    let targets: Vec<String> = by_target
        .iter()
        .map(|(a, c)| format!("{} ({c})", crate::model::socket::format_addr(a)))
        .collect();
    f.summary = if trying.is_empty() {
        format!(
            "SYN retries at {} (TcpExt.TCPSynRetrans): connects not answered at once",
            format_rate(rate)
        )
    } else {
        format!(
            "{} unanswered, SYN retried: {}",
            plural(trying.len() as u64, "connect"),
            list(&targets, 2)
        )
    };
    f.message = format!(
        "TcpExt.TCPSynRetrans rose by {n} in the last {} s ({}): SYNs (and SYN-ACKs) sent \
         again because no answer came, after 1 s, then 2, 4, 8 s... (net.ipv4.tcp_syn_retries). \
         That is a server that does not answer: unreachable, filtered by a firewall that drops \
         instead of rejecting, or dropping SYNs at a full accept queue. It is not packet loss \
         on established connections.{}",
        span.as_secs().max(1),
        format_rate(rate),
        if trying.is_empty() {
            String::new()
        } else {
            format!(" Still trying now: {}.", list(&targets, 3))
        }
    );
    f.next_step = match by_target.first() {
        Some((a, _)) => format!(
            "Check that {} listens and is reachable: `nc -vz {} {}`; on its machine, `ss -ltn` \
             for a full accept queue (Recv-Q over Send-Q) and `nstat TcpExtListenOverflows`.",
            crate::model::socket::format_addr(a),
            a.ip(),
            a.port()
        ),
        None => "Look for the servers that do not answer: connections in SYN_SENT (`sockscope \
                 state:syn-sent`) on clients, full accept queues (`state:listen`) on servers."
            .into(),
    };
    f.filter = "state:syn-sent".into();
    f.port = by_target.first().map(|(a, _)| a.port());
    f.peers = by_target
        .iter()
        .take(5)
        .map(|(a, c)| super::Peer {
            addr: crate::model::socket::format_addr(a),
            count: *c,
            pid: None,
            process: None,
            state: Some(TcpState::SynSent),
            queued: false,
        })
        .collect();
    let owners: BTreeSet<u32> = trying
        .iter()
        .filter_map(|s| holders::effective(input.snap, s).first().map(|o| o.pid))
        .collect();
    f.pid = owners.iter().next().copied();
    f.process = f.pid.and_then(|p| input.process_name(p));
    f.pids = owners.into_iter().collect();
    out.push(f);
}
