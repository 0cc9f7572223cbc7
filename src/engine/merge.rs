//! A trouble-state refresh merged into the last full dump.

use crate::model::{Proto, Snapshot, TcpState};
use std::collections::{HashMap, HashSet};

/// Inode → index in a snapshot's sockets, for its held sockets.
pub type InodeIndex = HashMap<u64, usize, foldhash::fast::RandomState>;

/// The index of `snap`'s held sockets by inode.
pub fn index(snap: &Snapshot) -> InodeIndex {
    snap.sockets
        .iter()
        .enumerate()
        .filter(|(_, s)| s.inode != 0 && !s.owners.is_empty())
        .map(|(i, s)| (s.inode, i))
        .collect()
}

/// The sockets of `part` (every TCP state but ESTABLISHED, fresh) and, from
/// `full`, the ESTABLISHED connections and the UDP sockets, except those
/// `part` shows in another state now (a connection that went to CLOSE_WAIT
/// since the full dump is there once, as it is now). Processes, users,
/// counters and the attribution note come from `part`, with the processes of
/// the kept sockets added from `full`.
/// `by_inode` indexes `full`'s held sockets by inode ([`index`]): the owners
/// of `part`'s sockets, which a trouble refresh does not scan, are the ones
/// the full dump found for the same inode (a socket keeps its inode from
/// ESTABLISHED to CLOSE_WAIT), and so are the attribution and the processes.
pub fn trouble_into(full: &Snapshot, by_inode: &InodeIndex, part: Snapshot) -> Snapshot {
    let Snapshot {
        taken_at,
        monotonic,
        source,
        mut sockets,
        mut processes,
        mut users,
        attribution: _,
        system,
        source_note,
        derived: _,
        transitions,
    } = part;
    for s in &mut sockets {
        if s.owners.is_empty()
            && s.inode != 0
            && let Some(&i) = by_inode.get(&s.inode)
        {
            s.owners = full.sockets[i].owners.clone();
        }
    }
    let attribution = full.attribution;
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
        transitions,
    }
}
