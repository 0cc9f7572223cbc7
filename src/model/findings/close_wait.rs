//! `close_wait_leak`: a process holding connections its peer has closed.

use super::text::{describe_peer, holdings, list, list_pids, plural, shared_clause, who_all};
use super::{Finding, Input, Kind, Severity, oldest};
use crate::model::socket::{Proto, Socket, TcpState};
use std::collections::BTreeSet;

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let close_wait = input
        .sockets
        .iter()
        .copied()
        .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::CloseWait);
    for (service, sockets) in input.by_service(close_wait) {
        out.push(finding(input, service, &sockets));
    }
}

/// One finding per service: a forked server whose parent and child hold the
/// same sockets, or a prefork pool whose workers each leak, is one problem.
fn finding(input: &Input, service: Option<u32>, sockets: &[&Socket]) -> Finding {
    let limits = &input.limits;
    let count = sockets.len() as u64;
    let (holders, shared) = input.holding(sockets);
    let pid = holders.first().map(|h| h.pid);
    let name = service.and_then(|id| input.service_name(id));
    let ports = input.service_ports(sockets);
    let pids: BTreeSet<u32> = holders.iter().map(|h| h.pid).collect();
    let queued: Vec<&Socket> = sockets
        .iter()
        .copied()
        .filter(|s| s.owners.is_empty() && service.is_some())
        .collect();
    let new = sockets
        .iter()
        .filter(|s| input.history.is_new(&s.key()))
        .count() as u64;
    // A fitted line over 15 s or more: None until the history is that long.
    let fit = input.history.service_close_wait_growth(service);
    let growth = fit.map(|g| g.per_min);
    let first = oldest(input, sockets);
    let age = first.and_then(|(t, _)| input.snap.taken_at.duration_since(t).ok());

    let growing = fit.is_some_and(|g| g.growing());
    let stuck = age.is_some_and(|a| a >= limits.close_wait_stuck);
    let severity = if count >= limits.close_wait_critical
        || (count >= 100
            && growing
            && growth.is_some_and(|g| g >= limits.close_wait_growth_critical))
    {
        Severity::Critical
    } else if count >= limits.close_wait_warning
        || stuck
        || (growing && count >= limits.close_wait_growing_warning)
    {
        Severity::Warning
    } else {
        Severity::Info
    };

    let mut f = Finding::new(Kind::CloseWaitLeak, severity, count);
    let holder = who_all(name.as_deref(), &holders);
    let on_ports = format!(
        "{} {}",
        if ports.len() == 1 { "port" } else { "ports" },
        list(&ports, 3)
    );
    // The figure with its uncertainty and what it was fitted over.
    let trend = fit.map_or_else(String::new, |g| format!(", {}", g.describe()));
    f.summary = format!(
        "{holder} holds {} in CLOSE_WAIT on {on_ports}{}{trend}",
        plural(count, "socket"),
        shared_clause(count, shared, &holders),
    );
    let peers = input.peers(sockets, 5);
    let peer_text: Vec<String> = peers.iter().map(describe_peer).collect();
    let new_text = if new > 0 {
        format!(" {new} of them appeared since the previous sample.")
    } else {
        String::new()
    };
    let unknown = if pid.is_some() {
        String::new()
    } else if input.snap.attribution.as_root {
        " No fd table that sockscope read refers to them: their process keeps its \
         descriptors out of reach (another PID namespace, a security module) or they \
         changed hands during the scan."
            .to_string()
    } else {
        " sockscope could not see which process holds them (run as root to read every \
         process's file descriptors)."
            .to_string()
    };
    let sharing = if holders.len() > 1 {
        let how = if shared > 0 {
            format!(
                " {shared} of them are shared: each of those is freed only when every \
                 process holding it closes it or exits (after fork() the parent and the \
                 child both hold it; a child must close the descriptors it does not use)."
            )
        } else {
            " Each process holds its own (a pool of workers that leak alike).".to_string()
        };
        format!(" Holders: {}.{how}", holdings(&holders, 4))
    } else {
        String::new()
    };
    let queue = match queued
        .first()
        .and_then(|s| input.snap.holders().listener_of(input.snap, s))
    {
        Some(l) => format!(
            " {} of them were never accepted: they wait in the accept queue of {}, their \
             clients gone (see the accept_stalled finding).",
            queued.len(),
            crate::model::socket::format_addr(&l.local)
        ),
        None => String::new(),
    };
    f.message = format!(
        "The peers closed these connections (or shut down their sending side): their FIN \
         arrived and the kernel acknowledged it, but {} has not called close() on the sockets. \
         The usual cause is a missing close() on an error or timeout path, or a connection pool \
         that never discards connections the other side has closed; a worker stuck elsewhere \
         leaves them too. The kernel keeps each socket and its file descriptor until the \
         process closes it or exits. A few that stay for minutes can also be idle pooled \
         connections the server side timed out and the pool has not noticed yet; a growing \
         number is a leak. Peers: {}.{new_text}{sharing}{queue}{unknown}",
        name.as_deref().unwrap_or("the process"),
        list(&peer_text, 3),
    );
    let fd_pid = pid.map_or("PID".to_string(), |p| p.to_string());
    let restart = if holders.len() > 1 {
        format!(
            "Every holder must close them or exit: restarting the whole service ({}) frees \
             them now; signalling one of them frees only what it alone holds.",
            list(&pids.iter().collect::<Vec<_>>(), 4)
        )
    } else {
        "Restarting the process frees the sockets now.".to_string()
    };
    f.next_step = format!(
        "Find the code path in {} that stops using a connection after the peer closed it \
         (a read returning 0 / EOF) without closing it. {restart} Keepalive or a write may move a socket out of CLOSE_WAIT once the \
         peer's end is gone, but its descriptor and memory stay until close(): a falling \
         CLOSE_WAIT count does not mean the leak stopped. Watch the process's descriptors \
         (ls /proc/{fd_pid}/fd | wc -l).",
        name.as_deref().unwrap_or("the owning program"),
    );
    f.filter = match pid {
        Some(_) => format!("pid:{} state:close-wait", list_pids(&pids)),
        None => "pid:none state:close-wait".into(),
    };
    f.pid = pid;
    f.pids = pids.into_iter().collect();
    f.holders = holders;
    f.shared = shared;
    f.process = name;
    f.port = ports.first().copied();
    f.ports = ports;
    f.peers = peers;
    f.new_since_last = (input.history.samples().len() >= 2).then_some(new);
    f.growth_per_min = growth;
    f.growth_window_s = fit.map(|g| g.window.as_secs_f64());
    f.growth = fit;
    if let Some((t, exact)) = first {
        f.first_seen = Some(t);
        f.first_seen_exact = exact;
    }
    f
}
