//! `closed_sockets_held`: descriptors that outlive their connection.
//!
//! A TCP socket that was destroyed, or closed by the kernel after a reset or
//! a timeout, leaves every socket table, but its descriptor stays open until
//! the program calls `close()`: `lsof` shows it (`protocol: TCP`), `ss` does
//! not. A growing number of them is the same bug as a CLOSE_WAIT leak, one
//! step later, and it ends the same way: out of descriptors (EMFILE).

use super::text::{plural, who_all};
use super::{Finding, Holding, Input, Kind, Severity};
use std::collections::BTreeMap;

/// Fewer than this, not growing, is not worth a warning.
const WARNING: u64 = 100;

pub(super) fn analyze(input: &Input, out: &mut Vec<Finding>) {
    // Counts are per process; the filter (when any) selects through the
    // processes its sockets belong to.
    let wanted: Option<std::collections::HashSet<u32>> = input.filtered.then(|| {
        input
            .sockets
            .iter()
            .flat_map(|s| {
                crate::model::holders::pids(crate::model::holders::effective(input.snap, s))
            })
            .collect()
    });
    let mut by_service: BTreeMap<u32, Vec<Holding>> = BTreeMap::new();
    for p in input.snap.processes.values() {
        if p.closed_sockets == 0
            || p.netns != input.netns
            || wanted.as_ref().is_some_and(|w| !w.contains(&p.pid))
        {
            continue;
        }
        let id = input
            .snap
            .holders()
            .service_of(p.pid)
            .map_or(p.pid, |s| s.id);
        by_service.entry(id).or_default().push(Holding {
            pid: p.pid,
            process: Some(p.name.clone()),
            count: u64::from(p.closed_sockets),
        });
    }
    for (id, mut holders) in by_service {
        holders.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
        out.push(finding(input, id, holders));
    }
}

fn finding(input: &Input, service: u32, holders: Vec<Holding>) -> Finding {
    let count: u64 = holders.iter().map(|h| h.count).sum();
    let fit = input.history.service_closed_sockets_growth(Some(service));
    let growth = fit.map(|g| g.per_min);
    let growing = fit.is_some_and(|g| g.growing());
    let severity = if count >= WARNING || (growing && count >= 10) {
        Severity::Warning
    } else {
        Severity::Info
    };
    let name = input.service_name(service);
    let holder = who_all(name.as_deref(), &holders);
    let mut f = Finding::new(Kind::ClosedSocketsHeld, severity, count);
    let trend = match growth {
        Some(g) if g > 0.0 => format!(", growing by {g:.0}/min"),
        _ => String::new(),
    };
    f.summary = format!(
        "{holder} holds {} of TCP sockets that are already closed{trend}",
        plural(count, "descriptor")
    );
    f.message = "These descriptors refer to TCP sockets that are in no socket table any more: \
         destroyed (ss -K, sockscope's x), reset by the peer, timed out by the kernel, or \
         created and never connected. ss and netstat do not show them; lsof lists them as \
         `sock ... protocol: TCP`. The connection is gone, but the descriptor and the \
         socket's memory stay until the program calls close(). A growing number is a \
         descriptor leak, the same bug as a CLOSE_WAIT leak one step later: the process runs \
         out of descriptors (EMFILE) and stops accepting."
        .to_string();
    let pid = holders.first().map(|h| h.pid);
    f.next_step = format!(
        "Only close() or exit frees them. Find the code path in {} that drops a connection \
         after an error (a reset, a timeout, a failed connect) without closing it. Count them \
         with `lsof -p {} | grep -c 'protocol: TCP'`.",
        name.as_deref().unwrap_or("the program"),
        pid.map_or("PID".to_string(), |p| p.to_string()),
    );
    let pids: Vec<u32> = {
        let mut v: Vec<u32> = holders.iter().map(|h| h.pid).collect();
        v.sort_unstable();
        v
    };
    f.filter = format!(
        "pid:{}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    f.pid = pid;
    f.pids = pids;
    f.process = name;
    f.holders = holders;
    f.growth_per_min = growth;
    f.growth_window_s = fit.map(|g| g.window.as_secs_f64());
    f.growth = fit;
    f
}
