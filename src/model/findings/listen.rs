//! `listen_queue_full` and `syn_flood`: trouble at a listener.
//!
//! For a LISTEN socket the kernel reports the accept queue as Recv-Q (the
//! connections whose handshake is complete and that wait for `accept()`) and
//! the backlog as Send-Q. The queue is full when Recv-Q exceeds the backlog
//! (`sk_acceptq_is_full`: the queue holds backlog + 1); then new handshakes
//! are dropped and counted in `TcpExt.ListenOverflows` and `ListenDrops`.
//! `/proc/net/tcp` reports 0 as a listener's Send-Q: the backlog is known
//! only from sock_diag.

use super::text::{format_rate, list, percent, plural, who, who_all};
use super::{Finding, Input, Kind, Severity, ranked};
use crate::model::holders;
use crate::model::socket::{Proto, Socket, TcpState};
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    let overflows = input.counter_increase("TcpExt.ListenOverflows");
    let rising = overflows.is_some_and(|(n, _)| n > 0);
    let mut full = 0;
    let backlog_known = input.snap.source != crate::model::SourceKind::Proc;
    let mut syn_recv: HashMap<u16, Vec<&Socket>> = HashMap::new();
    for s in &input.sockets {
        if s.proto != Proto::Tcp {
            continue;
        }
        match s.state {
            TcpState::Listen if backlog_known && s.recv_q > s.send_q => {
                full += 1;
                out.push(queue_full(input, s, overflows));
            }
            TcpState::SynRecv => syn_recv.entry(s.local.port()).or_default().push(s),
            _ => {}
        }
    }
    if full == 0
        && rising
        && !input.filtered
        && let Some((n, span)) = overflows
    {
        out.push(overflowed_earlier(input, n, span));
    }
    for (port, sockets) in syn_recv {
        if let Some(f) = syn_flood(input, port, &sockets) {
            out.push(f);
        }
    }
}

fn listeners_on(input: &Input, port: u16) -> Vec<u32> {
    input
        .all
        .iter()
        .copied()
        .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen && s.local.port() == port)
        .flat_map(|s| s.owners.iter().map(|o| o.pid))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect()
}

fn queue_full(
    input: &Input,
    listener: &Socket,
    overflows: Option<(u64, std::time::Duration)>,
) -> Finding {
    let port = listener.local.port();
    let (queued, backlog) = (listener.recv_q, listener.send_q);
    let (holders, _) = input.holding(&[listener]);
    let roles = input.accept_roles(listener);
    let pid = roles.responsible(&holders);
    let name = pid.and_then(|p| input.service_name(p));
    let holder = who_all(name.as_deref(), &holders);
    let evidence = input.accept_evidence(listener, name.as_deref());
    let dropping = overflows.filter(|(n, _)| *n > 0);
    let severity = if dropping.is_some() || roles.nobody_accepts() {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut f = Finding::new(Kind::ListenQueueFull, severity, u64::from(queued));
    f.summary = match &evidence {
        Some(e) => {
            format!("port {port}: {e}; accept queue full ({queued} waiting, backlog {backlog})")
        }
        None => format!(
            "port {port}: accept queue full ({queued} waiting, backlog {backlog}); {holder} is not accepting fast enough"
        ),
    };
    let drops = match dropping {
        Some((n, span)) => format!(
            " TcpExt.ListenOverflows rose by {n} in the last {} s ({}): new connections are being \
             dropped now (the counter is machine-wide).",
            span.as_secs().max(1),
            format_rate(n as f64 / span.as_secs_f64().max(1e-3))
        ),
        None => " New connections beyond the queue are dropped.".into(),
    };
    let syn_retries = super::evidence::syn_retry_clause(input);
    let lead = match &evidence {
        Some(e) => format!(
            "{}. A process that cannot run calls no accept(): the queue fills whatever \
             the backlog. ",
            super::text::capitalize(e)
        ),
        None => String::new(),
    };
    f.message = format!(
        "{lead}The listener on {} belongs to {holder}. Its accept queue is full: {queued} \
         connections wait for accept(), with a backlog of {backlog}. The kernel has completed \
         their handshakes, but the program has not called accept() on them.{drops}{syn_retries} Clients \
         whose SYN is dropped see slow or timed-out connects; clients whose final ACK is \
         dropped see connect() succeed and then their first request stall, and may later be \
         reset. The kernel refuses them outright with a reset only if \
         net.ipv4.tcp_abort_on_overflow is 1.",
        crate::model::socket::format_addr(&listener.local),
    );
    let somaxconn = input.sysctl("net.core.somaxconn");
    let cap = match somaxconn {
        Some(max) if u64::from(backlog) >= max => format!(
            " The backlog is capped by net.core.somaxconn = {max}: raise both it and the \
             backlog the program passes to listen(). somaxconn is read when listen() is \
             called, so the program must listen again (usually a restart)."
        ),
        Some(max) => format!(
            " The program asked listen() for a backlog of {backlog}; net.core.somaxconn = {max} \
             would allow up to {max}: raise the backlog the program passes to listen()."
        ),
        None => String::new(),
    };
    f.next_step = if roles.blocked.is_empty() {
        format!(
            "Find out why {} does not accept: its accept loop blocked or too busy, too few \
             workers, or a long pause (GC, a lock, a slow disk). If it accepts steadily and only \
             bursts overflow, a larger backlog helps.{cap}",
            name.as_deref().unwrap_or("the program"),
        )
    } else {
        super::evidence::unblock_step(&roles.blocked)
    };
    f.filter = format!("lport:{port}");
    f.port = Some(port);
    f.pid = pid;
    f.pids = listeners_on(input, port);
    f.process = name;
    f.ports = vec![port];
    f
}

/// ListenOverflows rose but no queue is full now: the burst passed or the
/// listener caught up.
fn overflowed_earlier(input: &Input, n: u64, span: std::time::Duration) -> Finding {
    let mut f = Finding::new(Kind::ListenQueueFull, Severity::Warning, n);
    // The fullest listener now is the best guess.
    let fullest = input
        .sockets
        .iter()
        .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen && s.send_q > 0)
        .max_by(|a, b| {
            (f64::from(a.recv_q) / f64::from(a.send_q))
                .total_cmp(&(f64::from(b.recv_q) / f64::from(b.send_q)))
        });
    f.summary = format!(
        "{n} connections dropped at full accept queues in the last {} s",
        span.as_secs().max(1)
    );
    let guess = match fullest.filter(|s| s.recv_q > 0) {
        Some(s) => {
            let pid = holders::effective(input.snap, s).first().map(|o| o.pid);
            f.port = Some(s.local.port());
            f.pid = pid;
            f.process = pid.and_then(|p| input.process_name(p));
            format!(
                " The fullest queue now is port {} ({}), {} of {}.",
                s.local.port(),
                who(pid, f.process.as_deref()),
                s.recv_q,
                s.send_q
            )
        }
        None => String::new(),
    };
    f.message = format!(
        "TcpExt.ListenOverflows rose by {n}: some listener's accept queue overflowed and new \
         connections were dropped, but no queue is full right now (a burst, or the program \
         caught up).{guess}"
    );
    f.next_step = "Watch the listeners' Recv-Q (`sockscope state:listen`, sort by queue) during \
         the next burst; the one that reaches its backlog is the one to fix."
        .into();
    f.filter = "state:listen".into();
    f
}

fn syn_flood(input: &Input, port: u16, sockets: &[&Socket]) -> Option<Finding> {
    let count = sockets.len() as u64;
    // Since Linux 4.4 a listener's SYN queue is limited by its own backlog
    // (the sum over SO_REUSEPORT listeners); tcp_max_syn_backlog matters only
    // with syncookies off.
    let backlog: u64 = input
        .all
        .iter()
        .copied()
        .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen && s.local.port() == port)
        .map(|s| u64::from(s.send_q))
        .sum();
    let backlog =
        (backlog > 0 && input.snap.source != crate::model::SourceKind::Proc).then_some(backlog);
    let syncookies = input.sysctl("net.ipv4.tcp_syncookies");
    let queue_full_counter = if syncookies == Some(0) {
        "TcpExt.TCPReqQFullDrop"
    } else {
        "TcpExt.TCPReqQFullDoCookies"
    };
    let overflowing = input
        .counter_increase(queue_full_counter)
        .filter(|(n, _)| *n > 0);
    let half_full = match backlog {
        Some(b) => count >= 16 && count * 2 >= b,
        None => count >= input.limits.syn_recv_warning,
    };
    let severity = if half_full && overflowing.is_some() {
        Severity::Critical
    } else if half_full {
        Severity::Warning
    } else {
        return None;
    };
    let sources = ranked(sockets.iter().map(|s| s.remote.ip().to_canonical()));
    let owners = listeners_on(input, port);
    let pid = owners.first().copied();
    let name = pid.and_then(|p| input.process_name(p));
    let mut f = Finding::new(Kind::SynFlood, severity, count);
    f.summary = format!(
        "{count} half-open connections (SYN_RECV) on port {port} from {}",
        plural(sources.len() as u64, "host")
    );
    let top: Vec<String> = sources
        .iter()
        .take(3)
        .map(|(ip, n)| format!("{ip} ({n})"))
        .collect();
    let spread = if sources.len() as u64 * 2 >= count {
        "Many distinct sources each with few attempts is the pattern of a SYN flood, often \
         from spoofed addresses."
    } else {
        "Few sources with many attempts each points at those clients, at a path that loses \
         the final ACK (a firewall, asymmetric routing), at a full accept queue (the final ACK \
         arrived but was dropped: see ListenOverflows), or at TCP_DEFER_ACCEPT on the \
         listener."
    };
    let cookies_text = match syncookies {
        Some(0) => "net.ipv4.tcp_syncookies = 0: when the SYN queue fills, new connections are \
                    simply dropped."
            .to_string(),
        Some(1) => format!(
            "net.ipv4.tcp_syncookies = 1: when the SYN queue overflows the kernel answers with \
             SYN cookies instead of dropping{} (connections answered with a cookie do not \
             show as SYN_RECV, so the real number of attempts can be higher).",
            match overflowing {
                Some((n, _)) => format!(" (it did {n} times recently)"),
                None => String::new(),
            }
        ),
        Some(2) => {
            "net.ipv4.tcp_syncookies = 2: the kernel answers every SYN with a cookie.".into()
        }
        _ => String::new(),
    };
    let limit = match backlog {
        Some(b) => format!(
            " That is {} of the listener's backlog ({b}), which also limits its SYN queue.",
            percent(count as f64 / b as f64)
        ),
        None => String::new(),
    };
    f.message = format!(
        "{count} connections to port {port} ({}) are half-open: their SYN arrived and was \
         answered with a SYN-ACK, but the client's final ACK has not come.{limit} Top sources: \
         {}. {spread} {cookies_text}",
        who(pid, name.as_deref()),
        list(&top, 3),
    );
    f.next_step = match syncookies {
        Some(0) => "Turn on net.ipv4.tcp_syncookies = 1 so legitimate clients still get in \
                    when the queue is full; if this is an attack, filter or rate-limit the \
                    sources upstream."
            .into(),
        _ => "SYN cookies keep the service reachable; if this is an attack, filter or \
              rate-limit the sources upstream (firewall, provider). If the sources are real \
              clients, check the network path for lost packets."
            .into(),
    };
    f.filter = format!("state:syn-recv lport:{port}");
    f.port = Some(port);
    f.pid = pid;
    f.pids = owners;
    f.process = name;
    f.ports = vec![port];
    f.peers = sources
        .iter()
        .take(5)
        .map(|(ip, n)| super::Peer {
            addr: ip.to_string(),
            count: *n,
            pid: None,
            process: None,
            state: None,
            queued: false,
        })
        .collect();
    Some(f)
}
