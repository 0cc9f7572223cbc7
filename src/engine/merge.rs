//! A trouble-state refresh merged into the last full dump.

use crate::model::{Proto, Snapshot, TcpState};
use std::collections::HashSet;

/// The sockets of `part` (every TCP state but ESTABLISHED, fresh) and, from
/// `full`, the ESTABLISHED connections and the UDP sockets, except those
/// `part` shows in another state now (a connection that went to CLOSE_WAIT
/// since the full dump is there once, as it is now). Processes, users,
/// counters and the attribution note come from `part`, with the processes of
/// the kept sockets added from `full`.
pub fn trouble_into(full: &Snapshot, part: Snapshot) -> Snapshot {
    let Snapshot {
        taken_at,
        monotonic,
        source,
        mut sockets,
        mut processes,
        mut users,
        attribution,
        system,
        source_note,
        derived: _,
    } = part;
    // By 4-tuple, which one TCP socket has at a time: a connection closed
    // since the full dump lost its inode (an orphan) but not its addresses.
    let moved: HashSet<_, foldhash::fast::RandomState> =
        sockets.iter().map(|s| (s.local, s.remote)).collect();
    let kept = full.sockets.iter().filter(|s| match s.proto {
        Proto::Udp => true,
        Proto::Tcp => s.state == TcpState::Established && !moved.contains(&(s.local, s.remote)),
    });
    sockets.reserve(full.sockets.len());
    sockets.extend(kept.cloned());
    // The full dump's processes and users, with the fresh ones over them:
    // a few maps' worth of work, not a lookup per socket. A process left
    // from the full dump that holds nothing now shows nowhere (rows come
    // from the sockets' holders).
    let mut all_processes = full.processes.clone();
    all_processes.extend(processes.drain());
    processes = all_processes;
    let mut all_users = full.users.clone();
    all_users.extend(users.drain());
    users = all_users;
    Snapshot {
        taken_at,
        monotonic,
        source,
        sockets,
        processes,
        users,
        attribution,
        system,
        source_note,
        derived: Default::default(),
    }
}
