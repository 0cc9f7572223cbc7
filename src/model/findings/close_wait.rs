//! `close_wait_leak`: a process holding connections its peer has closed.

use super::text::{describe_peer, list, plural, who};
use super::{Finding, Input, Kind, Severity, oldest};
use crate::model::socket::{Proto, Socket, TcpState};
use std::collections::{BTreeSet, HashMap};

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let mut by_pid: HashMap<Option<u32>, Vec<&Socket>> = HashMap::new();
    for s in &input.sockets {
        if s.proto == Proto::Tcp && s.state == TcpState::CloseWait {
            by_pid
                .entry(s.first_owner().map(|o| o.pid))
                .or_default()
                .push(s);
        }
    }
    for (pid, sockets) in by_pid {
        out.push(finding(input, pid, &sockets));
    }
}

fn finding(input: &Input, pid: Option<u32>, sockets: &[&Socket]) -> Finding {
    let limits = &input.limits;
    let count = sockets.len() as u64;
    let name = pid.and_then(|p| input.process_name(p));
    let ports = input.service_ports(sockets);
    let pids: BTreeSet<u32> = sockets
        .iter()
        .flat_map(|s| s.owners.iter().map(|o| o.pid))
        .collect();
    let new = sockets
        .iter()
        .filter(|s| input.history.is_new(&s.key()))
        .count() as u64;
    // A fitted line over 15 s or more: None until the history is that long.
    let fit = input.history.close_wait_growth(pid);
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
    let holder = who(pid, name.as_deref());
    let on_ports = format!(
        "{} {}",
        if ports.len() == 1 { "port" } else { "ports" },
        list(&ports, 3)
    );
    // The figure with its uncertainty and what it was fitted over.
    let trend = fit.map_or_else(String::new, |g| format!(", {}", g.describe()));
    f.summary = format!(
        "{holder} holds {} in CLOSE_WAIT on {on_ports}{trend}",
        plural(count, "socket")
    );
    let peers = input.peers(sockets, 5);
    let peer_text: Vec<String> = peers.iter().map(describe_peer).collect();
    let new_text = if new > 0 {
        format!(" {new} of them appeared since the previous sample.")
    } else {
        String::new()
    };
    let unknown = if pid.is_none() {
        " sockscope could not see which process holds them (run as root to read every process's file descriptors)."
    } else {
        ""
    };
    f.message = format!(
        "The peers closed these connections (or shut down their sending side): their FIN \
         arrived and the kernel acknowledged it, but {} has not called close() on the sockets. \
         The usual cause is a missing close() on an error or timeout path, or a connection pool \
         that never discards connections the other side has closed; a worker stuck elsewhere \
         leaves them too. The kernel keeps each socket and its file descriptor until the \
         process closes it or exits. A few that stay for minutes can also be idle pooled \
         connections the server side timed out and the pool has not noticed yet; a growing \
         number is a leak. Peers: {}.{new_text}{unknown}",
        name.as_deref().unwrap_or("the process"),
        list(&peer_text, 3),
    );
    let fd_pid = pid.map_or("PID".to_string(), |p| p.to_string());
    f.next_step = format!(
        "Find the code path in {} that stops using a connection after the peer closed it \
         (a read returning 0 / EOF) without closing it. Restarting the process frees the \
         sockets now. Keepalive or a write may move a socket out of CLOSE_WAIT once the \
         peer's end is gone, but its descriptor and memory stay until close(): a falling \
         CLOSE_WAIT count does not mean the leak stopped. Watch the process's descriptors \
         (ls /proc/{fd_pid}/fd | wc -l).",
        name.as_deref().unwrap_or("the owning program"),
    );
    f.filter = match pid {
        Some(p) => format!("pid:{p} state:close-wait"),
        None => "pid:none state:close-wait".into(),
    };
    f.pid = pid;
    f.pids = pids.into_iter().collect();
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
