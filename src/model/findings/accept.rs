//! `accept_stalled`: a listener whose program does not call `accept()`.
//!
//! A connection whose handshake is complete waits in its listener's accept
//! queue with no descriptor (inode 0) until the program accepts it. One that
//! is still there a sample later was not accepted for a whole interval; one
//! in CLOSE_WAIT was given up by its client while it waited. Either is
//! evidence from the first samples, long before the queue overflows its
//! backlog (`listen_queue_full`).

use super::text::{plural, who_all};
use super::{Finding, Input, Kind, Severity};
use crate::model::socket::{Proto, Socket, TcpState, format_addr};

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let holders = input.snap.holders();
    // The listeners asked about, and those whose queued connections are
    // (a filter on CLOSE_WAIT still sees the queue its clients gave up on).
    let mut listeners: Vec<&Socket> = Vec::new();
    for s in &input.sockets {
        let l = if s.proto == Proto::Tcp && s.state == TcpState::Listen {
            Some(*s)
        } else {
            holders.listener_of(input.snap, s)
        };
        if let Some(l) = l
            && !listeners.iter().any(|k| std::ptr::eq(*k, l))
        {
            listeners.push(l);
        }
    }
    for l in listeners {
        let (queued, gave_up) = holders.queue_of(l);
        if queued == 0 {
            continue;
        }
        let index = input
            .by_local_port
            .get_or_init(|| super::PortIndex::new(&input.all));
        let waiting: Vec<&Socket> = index
            .at(l.local.port())
            .iter()
            .map(|&i| input.all[i as usize])
            .filter(|s| {
                s.inode == 0
                    && holders
                        .listener_of(input.snap, s)
                        .is_some_and(|q| q.key() == l.key())
            })
            .collect();
        // Still queued since an earlier sample: not accepted for an interval.
        let stale = waiting
            .iter()
            .filter(|s| {
                input
                    .history
                    .first_seen(&s.key())
                    .is_some_and(|(t, _)| t < input.snap.taken_at)
            })
            .count() as u64;
        if gave_up == 0 && stale == 0 {
            continue; // a queue that is being drained
        }
        out.push(finding(input, l, &waiting, u64::from(gave_up), stale));
    }
}

fn finding(input: &Input, l: &Socket, waiting: &[&Socket], gave_up: u64, stale: u64) -> Finding {
    let port = l.local.port();
    // The kernel's own count (Recv-Q) when sock_diag gives it.
    let queued = (waiting.len() as u64).max(u64::from(l.recv_q));
    let full = input.snap.source != crate::model::SourceKind::Proc && l.recv_q > l.send_q;
    let (holders, _) = input.holding(&[l]);
    let roles = input.accept_roles(l);
    let pid = roles.responsible(&holders);
    let name = pid.and_then(|p| input.service_name(p));
    let holder = who_all(name.as_deref(), &holders);
    let evidence = input.accept_evidence(l, name.as_deref());
    let severity = if gave_up > 0 || full || roles.nobody_accepts() {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut f = Finding::new(Kind::AcceptStalled, severity, queued);
    let not = if let Some(e) = &evidence {
        e.clone()
    } else if holders.len() > 1 {
        format!("none of {holder} is calling accept()")
    } else {
        format!("{holder} is not calling accept()")
    };
    let given_up = if gave_up > 0 {
        format!(", {gave_up} already given up by their clients")
    } else {
        String::new()
    };
    f.summary = format!(
        "port {port}: {not}: {} waiting{given_up}",
        plural(queued, "connection")
    );
    let since = if stale > 0 {
        format!(" {stale} of them were already waiting a sample ago.")
    } else {
        String::new()
    };
    let cw = if gave_up > 0 {
        format!(
            " {gave_up} are in CLOSE_WAIT: their clients closed while waiting, and they \
             will count as the service's CLOSE_WAIT until it accepts and closes them."
        )
    } else {
        String::new()
    };
    let backlog = if full {
        format!(
            " The queue is over its backlog ({}): new connections are dropped.{}",
            l.send_q,
            super::evidence::syn_retry_clause(input)
        )
    } else if input.snap.source != crate::model::SourceKind::Proc {
        format!(
            " Once it passes its backlog ({}) new connections are dropped.",
            l.send_q
        )
    } else {
        String::new()
    };
    let lead = match &evidence {
        Some(e) => format!("{}. ", super::text::capitalize(e)),
        None => String::new(),
    };
    f.message = format!(
        "{lead}The kernel completed the handshakes of {} on {} and queued them for accept(), but \
         the program holding the listener ({holder}) has not taken them: they have no \
         descriptor yet, so no process holds them but the listener.{since}{cw}{backlog} \
         Clients see connect() succeed and then no answer.",
        plural(queued, "connection"),
        format_addr(&l.local),
    );
    let pids: Vec<u32> = holders.iter().map(|h| h.pid).collect();
    f.next_step = if !roles.blocked.is_empty() {
        super::evidence::unblock_step(&roles.blocked)
    } else {
        format!(
            "Find out why {} does not accept: its accept loop is blocked or busy elsewhere (a \
         lock, a slow call, a full worker pool), or the process is stopped (`grep State \
         /proc/{}/status`). A stack dump of the listening process shows where it waits.",
            name.as_deref().unwrap_or("the program"),
            pids.first().map_or("PID".to_string(), |p| p.to_string()),
        )
    };
    f.filter = format!("lport:{port}");
    f.port = Some(port);
    f.ports = vec![port];
    f.pid = pid;
    f.pids = pids;
    f.process = name;
    f.holders = holders;
    f
}

/// An accept queue nobody drains explains the CLOSE_WAIT its clients leave
/// behind: the cause is linked to that finding and ranked no lower.
pub(super) fn rank_causes(findings: &mut Vec<Finding>) {
    // A full queue nobody drains is this finding's to tell (it says so).
    let stalled: Vec<Option<u16>> = findings
        .iter()
        .filter(|f| f.kind == Kind::AcceptStalled)
        .map(|f| f.port)
        .collect();
    findings.retain(|f| {
        !(f.kind == Kind::ListenQueueFull && f.port.is_some() && stalled.contains(&f.port))
    });
    let causes: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].kind == Kind::AcceptStalled)
        .collect();
    for c in causes {
        let pids = findings[c].pids.clone();
        let linked = findings
            .iter()
            .filter(|f| f.kind == Kind::CloseWaitLeak && f.pids.iter().any(|p| pids.contains(p)))
            .map(|f| (f.kind, f.severity))
            .collect::<Vec<_>>();
        let f = &mut findings[c];
        for (kind, severity) in linked {
            f.severity = f.severity.max(severity);
            if !f.related.contains(&kind) {
                f.related.push(kind);
            }
        }
    }
}
