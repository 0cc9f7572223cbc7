//! `fin_wait2`: this side closed (or shut down writing) and waits for the
//! peer's FIN. Orphaned sockets time out; owned ones wait as long as the
//! program keeps them.

use super::text::{describe_peer, list, plural, who};
use super::{Finding, Input, Kind, Severity, oldest};
use crate::model::socket::{Socket, TcpState};
use std::collections::BTreeSet;

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let mut orphans = Vec::new();
    let mut owned_sockets = Vec::new();
    for s in input.tcp(TcpState::FinWait2) {
        // No inode: no file refers to the socket any more, the program closed it.
        if s.inode == 0 {
            orphans.push(*s);
        } else {
            owned_sockets.push(*s);
        }
    }
    // One finding per service: a forked parent and child holding the same
    // half-closed sockets are one program.
    let owned = input.by_service(owned_sockets.into_iter());
    if !orphans.is_empty() {
        out.push(orphaned(input, &orphans));
    }
    for (service, sockets) in owned {
        let pid = input.holding(&sockets).0.first().map(|h| h.pid).or(service);
        out.push(held(input, pid.filter(|_| service.is_some()), &sockets));
    }
}

fn orphaned(input: &Input, sockets: &[&Socket]) -> Finding {
    let count = sockets.len() as u64;
    let fin_timeout = input.sysctl("net.ipv4.tcp_fin_timeout");
    let mut f = Finding::new(Kind::FinWait2, Severity::Info, count);
    let ports = input.service_ports(sockets);
    let timeout = match fin_timeout {
        Some(t) => format!("net.ipv4.tcp_fin_timeout = {t} s"),
        None => "net.ipv4.tcp_fin_timeout".into(),
    };
    // The socket's own TCP_LINGER2, if set, replaces the sysctl.
    let timeout_detail = format!("{timeout} (or the socket's TCP_LINGER2)");
    f.summary = format!(
        "{} in FIN_WAIT2 with no owner (closed here, waiting for the peer); dropped after {timeout}",
        plural(count, "socket")
    );
    let peers = input.peers(sockets, 5);
    let peer_list: Vec<String> = peers.iter().map(describe_peer).collect();
    f.message = format!(
        "A program on this machine closed these connections; the peers acknowledged its FIN but \
         have not sent their own. No process holds them any more, and the kernel drops each \
         after {timeout_detail}. Peers: {}.",
        list(&peer_list, 3),
    );
    // A holder that accepted them before one whose listener queues them.
    let leaking = |p: &&super::Peer| p.state == Some(TcpState::CloseWait) && p.pid.is_some();
    let leaking_peer = peers
        .iter()
        .filter(|p| !p.queued)
        .find(leaking)
        .or_else(|| peers.iter().find(leaking));
    f.next_step = match leaking_peer {
        Some(p) => {
            let holders: Vec<u32> = peers
                .iter()
                .filter(|q| q.state == Some(TcpState::CloseWait) && !q.queued)
                .filter_map(|q| q.pid)
                .collect();
            let blocked = input
                .holders_blocked(&holders, None)
                .map_or(String::new(), |b| {
                    format!(" {b}: it closes nothing until it runs again.")
                });
            let queued: u64 = peers.iter().filter(|q| q.queued).map(|q| q.count).sum();
            let queued = if queued > 0 {
                format!(
                    " {queued} of them were never accepted: they wait in an accept queue (see \
                     accept_stalled)."
                )
            } else {
                String::new()
            };
            format!(
                "The other ends are on this machine: {} holds them in CLOSE_WAIT and does not \
                 close them (see its close_wait_leak finding). Fixing that fixes these.{blocked}{queued}",
                who(p.pid, p.process.as_deref())
            )
        }
        None => "Usually harmless: they expire by themselves. If they keep piling up, look at \
                 the peers: they do not close their side of the connection."
            .into(),
    };
    f.filter = "state:fin-wait-2 pid:none".into();
    f.port = ports.first().copied();
    f.ports = ports;
    f.peers = peers;
    if let Some((t, exact)) = oldest(input, sockets) {
        f.first_seen = Some(t);
        f.first_seen_exact = exact;
    }
    f
}

fn held(input: &Input, pid: Option<u32>, sockets: &[&Socket]) -> Finding {
    let count = sockets.len() as u64;
    let name = pid.and_then(|p| input.process_name(p));
    let first = oldest(input, sockets);
    let age = first.and_then(|(t, _)| input.snap.taken_at.duration_since(t).ok());
    let stuck = age.is_some_and(|a| a >= input.limits.fin_wait2_stuck);
    let severity = if stuck || count >= 100 {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut f = Finding::new(Kind::FinWait2, severity, count);
    let holder = who(pid, name.as_deref());
    let ports = input.service_ports(sockets);
    let peers = input.peers(sockets, 5);
    let peer_text: Vec<String> = peers.iter().map(describe_peer).collect();
    f.summary = format!(
        "{holder} half-closed {} on port {} and waits for the peer to close",
        plural(count, "connection"),
        list(&ports, 3)
    );
    let stuck_peer = peers
        .iter()
        .find(|p| p.state == Some(TcpState::CloseWait) && p.pid.is_some());
    let peer_hint = match stuck_peer {
        Some(p) => format!(
            " The peer {} (pid {}) has received our FIN but not closed its socket: it is the one \
             to look at.",
            p.process.as_deref().unwrap_or("process"),
            p.pid.unwrap_or_default()
        ),
        None => String::new(),
    };
    f.message = format!(
        "{holder} holds {} in FIN_WAIT2 on port {}: it shut down its sending side (shutdown() \
         with SHUT_WR) and the peer acknowledged, but the peer has not closed its side. Peers: {}. \
         Because the socket is still open here, net.ipv4.tcp_fin_timeout does not apply: it \
         waits until the peer closes or the program closes the socket.{peer_hint}",
        plural(count, "socket"),
        list(&ports, 3),
        list(&peer_text, 3),
    );
    f.next_step = format!(
        "Check the peer: why does it not close after reading to the end? If {} should not wait \
         for ever, give it a read timeout and close() the socket when it fires.",
        name.as_deref().unwrap_or("the program")
    );
    f.filter = match pid {
        Some(p) => format!("pid:{p} state:fin-wait-2"),
        None => "pid:none state:fin-wait-2".into(),
    };
    f.pids = sockets
        .iter()
        .flat_map(|s| s.owners.iter().map(|o| o.pid))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    f.pid = pid;
    f.process = name;
    f.port = ports.first().copied();
    f.ports = ports;
    f.peers = peers;
    if let Some((t, exact)) = first {
        f.first_seen = Some(t);
        f.first_seen_exact = exact;
    }
    f
}
