//! `retransmissions`: connections losing segments, with the machine-wide
//! RetransSegs rate for context.

use super::text::{format_rate, list, percent, plural};
use super::{Finding, Input, Kind, Severity, ranked};
use crate::model::holders;
use crate::model::socket::{Proto, Socket, TcpState};
use std::collections::{BTreeSet, HashMap};
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
    let retrans = input.counter_increase("Tcp.RetransSegs");
    let sent = input.counter_increase("Tcp.OutSegs");
    let rate = retrans.map(|(n, span)| n as f64 / span.as_secs_f64().max(1e-3));
    let machine_share = match (retrans, sent) {
        (Some((r, _)), Some((s, _))) if s > 0 => Some(r as f64 / s as f64),
        _ => None,
    };
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
            Some(r) if rising => format!("; RetransSegs {}", format_rate(r)),
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
            " Machine-wide, Tcp.RetransSegs is rising at {} ({} of segments sent).",
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
        "Tcp.RetransSegs rising at {} ({} of segments sent)",
        format_rate(rate),
        percent(share)
    );
    f.message = format!(
        "Machine-wide, {} of the TCP segments sent are retransmissions ({}), but no current \
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
