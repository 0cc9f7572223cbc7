//! `close_wait_leak`: a process holding connections its peer has closed.

use super::text::{describe_peer, holdings, list, list_pids, plural, shared_clause, who, who_all};
use super::{Finding, Input, Kind, Severity, oldest_and_new};
use crate::model::socket::{Proto, Socket, TcpState};
use std::collections::BTreeSet;

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let close_wait = input.tcp(TcpState::CloseWait).iter().copied();
    let start = out.len();
    for (service, sockets) in input.by_service(close_wait) {
        out.push(finding(input, service, &sockets));
    }
    follow_chains(input, &mut out[start..]);
}

/// A proxy's half of a chain: its CLOSE_WAIT towards clients, explained by
/// its own FIN_WAIT2 towards a local backend that holds the other ends in
/// CLOSE_WAIT.
struct Chain {
    proxy: usize,
    backend: usize,
    /// The proxy's FIN_WAIT2 connections whose other end is the backend's CLOSE_WAIT.
    upstream: u64,
}

/// When both ends of a connection are on this machine, a proxy's CLOSE_WAIT
/// can be the backend's fault: the client closed, the proxy passed the
/// half-close on (shutdown(SHUT_WR) upstream: its end there is FIN_WAIT2) and
/// waits for the backend to finish, and the backend never closes (its end is
/// CLOSE_WAIT). The backend is the root: the proxy's finding names it, takes
/// its severity, and the backend's finding, linked to it, comes first.
fn follow_chains(input: &Input, findings: &mut [Finding]) {
    let mut chains = Vec::new();
    if findings.iter().all(|f| f.pids.is_empty()) {
        return;
    }
    // The held FIN_WAIT2 sockets, found in one pass for every finding.
    let fin_wait2: Vec<&Socket> = input
        .all
        .iter()
        .copied()
        .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::FinWait2 && !s.owners.is_empty())
        .collect();
    for (i, f) in findings.iter().enumerate() {
        if f.pids.is_empty() {
            continue;
        }
        let upstream: Vec<&Socket> = fin_wait2
            .iter()
            .copied()
            .filter(|s| s.owners.iter().any(|o| f.pids.contains(&o.pid)))
            .collect();
        if upstream.is_empty() {
            continue;
        }
        let peers = input.local_peers(&upstream);
        let mut by_backend: std::collections::HashMap<usize, u64> = Default::default();
        for other in peers {
            let Some(other) = other else {
                continue;
            };
            if other.state != TcpState::CloseWait {
                continue;
            }
            let Some(owner) = crate::model::holders::effective(input.snap, other).first() else {
                continue;
            };
            if let Some(b) = findings.iter().position(|g| {
                g.pids.contains(&owner.pid) && !g.pids.iter().any(|p| f.pids.contains(p))
            }) {
                *by_backend.entry(b).or_default() += 1;
            }
        }
        if let Some((&backend, &upstream)) = by_backend
            .iter()
            .max_by_key(|(b, n)| (**n, usize::MAX - **b))
        {
            chains.push(Chain {
                proxy: i,
                backend,
                upstream,
            });
        }
    }
    for c in chains {
        let backend = &findings[c.backend];
        let (severity, b_pid, b_name) = (backend.severity, backend.pid, backend.process.clone());
        let b_who = who(b_pid, b_name.as_deref());
        let proxy = &mut findings[c.proxy];
        let p_who = who(proxy.pid, proxy.process.as_deref());
        let explained = c.upstream.min(proxy.count);
        let part = if explained >= proxy.count {
            "its".to_string()
        } else {
            format!("{explained} of its")
        };
        proxy.severity = severity;
        proxy.summary = format!(
            "{b_who} does not close its ends of {}: {p_who} waits on it with {part} {}              client connections in CLOSE_WAIT (its upstream ends in FIN_WAIT2)",
            plural(c.upstream, "upstream connection"),
            proxy.count
        );
        proxy.message = format!(
            "A chain on this machine: the clients of {p_who} closed their connections, {p_who}              passed the close on to its backend (its {} upstream are in FIN_WAIT2: it shut              down its sending side and waits for the backend's FIN), and the backend, {b_who},              holds those ends in CLOSE_WAIT and never closes them. {p_who}'s CLOSE_WAIT is the              symptom: it closes a client connection once its backend connection ends (the              backend closes, or the proxy's own timeout gives up on it). {}",
            plural(c.upstream, "connection"),
            proxy.message
        );
        proxy.next_step = format!(
            "Look at {b_who} first (see its close_wait_leak finding): it reads the request to              the end and never closes. Shorter proxy timeouts (server/tunnel timeouts) free              {p_who}'s side sooner, but the backend's leak stays."
        );
        let proxy_pid = proxy.pid;
        let proxy_count = proxy.count;
        let backend = &mut findings[c.backend];
        if !backend.related.contains(&Kind::CloseWaitLeak) {
            backend.related.push(Kind::CloseWaitLeak);
        }
        backend.message.push_str(&format!(
            " {} waits on these: {proxy_count} of its client connections are in CLOSE_WAIT              because {} of its upstream connections end here.",
            who(proxy_pid, proxy_name(input, proxy_pid).as_deref()),
            c.upstream
        ));
    }
}

fn proxy_name(input: &Input, pid: Option<u32>) -> Option<String> {
    pid.and_then(|p| input.service_name(p))
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
    // A fitted line over 15 s or more: None until the history is that long.
    let fit = input.history.service_close_wait_growth(service);
    let growth = fit.map(|g| g.per_min);
    let (first, new) = oldest_and_new(input, sockets);
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
    let pid_list: Vec<u32> = pids.iter().copied().collect();
    let blocked = input.holders_blocked(&pid_list, None);
    let blocked_lead = blocked.as_ref().map_or(String::new(), |b| format!("{b}: "));
    f.summary = format!(
        "{blocked_lead}{holder} holds {} in CLOSE_WAIT on {on_ports}{}{trend}",
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
    let blocked_text = match &blocked {
        Some(b) => format!(
            "{}: a process that cannot run closes nothing, so these wait for it to run \
             again rather than for a missing close(). ",
            super::text::capitalize(b)
        ),
        None => String::new(),
    };
    f.message = format!(
        "{blocked_text}The peers closed these connections (or shut down their sending side): their FIN \
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
    let unblock = if blocked.is_some() {
        let states: Vec<(u32, crate::model::ProcState)> = pid_list
            .iter()
            .filter_map(|&p| input.blocked_state(p).map(|s| (p, s)))
            .filter(|(_, s)| *s != crate::model::ProcState::DiskSleep)
            .collect();
        format!("{} ", super::evidence::unblock_step(&states))
    } else {
        String::new()
    };
    f.next_step = format!(
        "{unblock}Find the code path in {} that stops using a connection after the peer closed it \
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
