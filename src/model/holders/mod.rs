//! Who really holds each socket, derived from a snapshot in one pass:
//!
//! - **shared sockets**: after `fork()`, `SCM_RIGHTS` or in a prefork pool,
//!   several processes hold the same socket; no one of them can free it;
//! - **services**: processes that hold sockets in common (a parent and its
//!   child, nginx's master and workers) form one service;
//! - **accept queues**: a connection the kernel completed that no program has
//!   `accept()`ed has no descriptor (inode 0), but it belongs to the listener
//!   whose queue it waits in, and so to the listener's holders;
//! - **why a socket has no holder**, in words a user can act on.

use super::snapshot::Snapshot;
use super::socket::{ConnKey, Owner, Proto, Socket, TcpState};
use std::collections::{BTreeMap, HashMap};

type Fast = foldhash::fast::RandomState;

/// pid 1 passes listeners to socket-activated services and keeps them: it
/// shares a socket with each of them, but is not part of any.
const INIT: u32 = 1;

/// Processes that hold sockets in common, or one process on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The lowest pid: usually the parent (master) that the others forked from.
    pub id: u32,
    /// Every pid, sorted.
    pub pids: Vec<u32>,
    /// The name most of its processes have (a master and its workers share it).
    pub name: Option<String>,
    /// TCP ports it listens on, sorted.
    pub ports: Vec<u16>,
}

impl Service {
    pub fn is_shared(&self) -> bool {
        self.pids.len() > 1
    }
}

/// Why a socket has no holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoHolder {
    /// TIME_WAIT: the kernel keeps the connection's identity after close().
    TimeWait,
    /// A half-open connection in the listener's SYN queue (no socket yet).
    SynQueue,
    /// Closed by its program; the kernel finishes the shutdown on its own.
    Orphan,
    /// Has a descriptor, but no fd table that was read refers to it: the
    /// process's table was unreadable, a thread with a private fd table or
    /// the kernel holds it, or it changed hands during the scan.
    Unseen,
}

impl NoHolder {
    pub fn reason(self) -> &'static str {
        match self {
            NoHolder::TimeWait => {
                "TIME_WAIT: the program closed it; the kernel keeps the connection's identity for a while"
            }
            NoHolder::SynQueue => {
                "half-open: in the listener's SYN queue, waiting for the client's final ACK"
            }
            NoHolder::Orphan => {
                "closed by its program (orphaned): the kernel finishes the shutdown on its own"
            }
            NoHolder::Unseen => {
                "has a descriptor, but no fd table read refers to it: its process's table could not be read, it is held by a thread with its own fd table (cloned without CLONE_FILES) or by the kernel, it changed hands during the scan, or it is newer than the last owner scan (on very large tables owners are scanned with the full refresh)"
            }
        }
    }

    /// A few words for a table cell.
    pub fn label(self) -> &'static str {
        match self {
            NoHolder::TimeWait => "(time-wait)",
            NoHolder::SynQueue => "(syn queue)",
            NoHolder::Orphan => "(orphan)",
            NoHolder::Unseen => "(unseen)",
        }
    }
}

/// The derived view of a snapshot's holders. Built once per snapshot
/// ([`Snapshot::holders`]), in one pass over its sockets.
#[derive(Debug, Clone, Default)]
pub struct Holders {
    services: Vec<Service>,
    service_of: HashMap<u32, usize, Fast>,
    /// Connection in an accept queue → index of the listener.
    queued: HashMap<ConnKey, usize, Fast>,
    /// Listener → how many connections wait in its queue, and how many of
    /// those the client already gave up on (CLOSE_WAIT).
    queues: HashMap<ConnKey, (u32, u32), Fast>,
    /// Listening TCP port → the first holder of its first held listener.
    listening: HashMap<u16, u32, Fast>,
}

impl Holders {
    pub fn build(snap: &Snapshot) -> Holders {
        let mut uf = UnionFind::default();
        // By namespace and port: a container's listener on :80 takes no
        // connection queued for the host's :80.
        let mut listeners: HashMap<(u64, u16), Vec<usize>, Fast> = HashMap::default();
        let mut waiting = Vec::new();
        let mut held = Vec::new();
        for (i, s) in snap.sockets.iter().enumerate() {
            if s.proto == Proto::Tcp {
                if s.state == TcpState::Listen {
                    listeners
                        .entry((s.netns, s.local.port()))
                        .or_default()
                        .push(i);
                } else if in_accept_queue_state(s) {
                    waiting.push(i);
                }
            }
            if s.owners.is_empty() {
                continue;
            }
            // Most sockets have one holder: nothing to join (every process
            // is registered below, once).
            if s.owners.iter().all(|o| o.pid == s.owners[0].pid) {
                continue;
            }
            held.clear();
            held.extend(pids(&s.owners));
            if let Some(&first) = held.iter().find(|&&p| p != INIT) {
                for &p in &held {
                    if p != INIT {
                        uf.union(first, p);
                    }
                }
            }
        }

        let mut queued = HashMap::default();
        let mut queues: HashMap<ConnKey, (u32, u32), Fast> = HashMap::default();
        for i in waiting {
            let s = &snap.sockets[i];
            let Some(on) = listeners.get(&(s.netns, s.local.port())) else {
                continue;
            };
            if let Some(l) = pick_listener(snap, on, s) {
                queued.insert(s.key(), l);
                let q = queues.entry(snap.sockets[l].key()).or_default();
                q.0 += 1;
                if s.state == TcpState::CloseWait {
                    q.1 += 1;
                }
            }
        }

        // Every holder is (at least) a service of its own.
        for &pid in snap.processes.keys() {
            uf.find(pid);
        }
        // An SO_REUSEPORT group: several listeners on one address and port,
        // each opened by its own worker. Workers of one program (the same
        // name) are one service, as if they had forked from one another.
        let mut groups: HashMap<(std::net::SocketAddr, &str), u32, Fast> = HashMap::default();
        for on in listeners.values() {
            if on.len() < 2 {
                continue;
            }
            for &l in on {
                let s = &snap.sockets[l];
                for pid in pids(&s.owners) {
                    let Some(name) = snap.process(pid).map(|p| p.name.as_str()) else {
                        continue;
                    };
                    if pid == INIT {
                        continue;
                    }
                    match groups.entry((s.local, name)) {
                        std::collections::hash_map::Entry::Occupied(first) => {
                            uf.union(*first.get(), pid)
                        }
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(pid);
                        }
                    }
                }
            }
        }
        // Services: the sets of the union-find, with their listening ports.
        let mut members: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for pid in uf.pids() {
            members.entry(uf.find(pid)).or_default().push(pid);
        }
        let mut services = Vec::with_capacity(members.len());
        let mut service_of = HashMap::default();
        for (_, mut pids) in members {
            pids.sort_unstable();
            for &p in &pids {
                service_of.insert(p, services.len());
            }
            services.push(Service {
                id: pids[0],
                name: common_name(snap, &pids),
                pids,
                ports: Vec::new(),
            });
        }
        for on in listeners.values() {
            for &l in on {
                let s = &snap.sockets[l];
                for o in &s.owners {
                    if let Some(&k) = service_of.get(&o.pid) {
                        services[k].ports.push(s.local.port());
                    }
                }
            }
        }
        for svc in &mut services {
            svc.ports.sort_unstable();
            svc.ports.dedup();
        }
        // By port: the host's listener where there is one.
        let mut by_port: Vec<(&(u64, u16), &Vec<usize>)> = listeners.iter().collect();
        by_port.sort_by_key(|((netns, port), _)| (*port, *netns != crate::model::HOST_NETNS));
        let mut listening: HashMap<u16, u32, Fast> = HashMap::default();
        for (&(_, port), on) in by_port {
            if let Some(o) = on.iter().find_map(|&i| snap.sockets[i].owners.first()) {
                listening.entry(port).or_insert(o.pid);
            }
        }
        Holders {
            services,
            service_of,
            queued,
            queues,
            listening,
        }
    }

    /// The process holding the listener on TCP `port` (its first holder),
    /// when something here listens there and is held.
    pub fn listener_holder(&self, port: u16) -> Option<u32> {
        self.listening.get(&port).copied()
    }

    /// Every listening port with its holder ([`Holders::listener_holder`]).
    pub fn listening(&self) -> impl Iterator<Item = (u16, u32)> + '_ {
        self.listening.iter().map(|(&p, &pid)| (p, pid))
    }

    /// The service a process belongs to (itself alone when it shares nothing).
    pub fn service_of(&self, pid: u32) -> Option<&Service> {
        self.services.get(*self.service_of.get(&pid)?)
    }

    /// The listener whose accept queue this connection waits in.
    pub fn listener_of<'a>(&self, snap: &'a Snapshot, s: &Socket) -> Option<&'a Socket> {
        if !in_accept_queue_state(s) || self.queued.is_empty() {
            return None;
        }
        snap.sockets.get(*self.queued.get(&s.key())?)
    }

    /// How many connections wait in the accept queue of `listener`, and how
    /// many of them their clients gave up on (CLOSE_WAIT).
    pub fn queue_of(&self, listener: &Socket) -> (u32, u32) {
        self.queues
            .get(&listener.key())
            .copied()
            .unwrap_or_default()
    }
}

/// Established or CLOSE_WAIT, with no descriptor: not accepted yet.
fn in_accept_queue_state(s: &Socket) -> bool {
    s.inode == 0
        && s.proto == Proto::Tcp
        && matches!(s.state, TcpState::Established | TcpState::CloseWait)
}

/// The listener a queued connection belongs to: the one bound to its address,
/// else a wildcard one of its family; among SO_REUSEPORT twins, one with a
/// non-empty queue.
fn pick_listener(snap: &Snapshot, on: &[usize], s: &Socket) -> Option<usize> {
    let ip = s.local.ip().to_canonical();
    let fits = |l: &Socket| {
        let lip = l.local.ip().to_canonical();
        lip == ip || (lip.is_unspecified() && (l.family == s.family || l.local.is_ipv6()))
    };
    let score = |l: &Socket| {
        let exact = l.local.ip().to_canonical() == ip;
        (exact, l.recv_q > 0, !l.owners.is_empty())
    };
    on.iter()
        .copied()
        .filter(|&l| fits(&snap.sockets[l]))
        .max_by_key(|&l| score(&snap.sockets[l]))
}

fn common_name(snap: &Snapshot, pids: &[u32]) -> Option<String> {
    let mut counts: HashMap<&str, (usize, u32)> = HashMap::new();
    for &p in pids {
        if let Some(proc_) = snap.process(p) {
            let e = counts.entry(proc_.name.as_str()).or_insert((0, p));
            e.0 += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map(|(n, _)| n.to_string())
}

#[derive(Default)]
struct UnionFind {
    parent: HashMap<u32, u32, Fast>,
}

impl UnionFind {
    fn find(&mut self, p: u32) -> u32 {
        let mut root = *self.parent.entry(p).or_insert(p);
        while let Some(&up) = self.parent.get(&root) {
            if up == root {
                break;
            }
            root = up;
        }
        // Path compression: everything on the way now points at the root.
        let mut cur = p;
        while cur != root {
            let next = self.parent[&cur];
            self.parent.insert(cur, root);
            cur = next;
        }
        root
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The lower pid stays the root: stable across samples.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(hi, lo);
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.parent.keys().copied().collect()
    }
}

/// The holders of a socket as a user should see them: its own, or, for a
/// connection waiting in an accept queue, the listener's.
pub fn effective<'a>(snap: &'a Snapshot, s: &'a Socket) -> &'a [Owner] {
    if !s.owners.is_empty() {
        return &s.owners;
    }
    match snap.holders().listener_of(snap, s) {
        Some(l) => &l.owners,
        None => &[],
    }
}

/// Distinct pids of a holder list (owners are sorted by pid).
pub fn pids(owners: &[Owner]) -> impl Iterator<Item = u32> + '_ {
    let mut last = None;
    owners.iter().filter_map(move |o| {
        let new = last != Some(o.pid);
        last = Some(o.pid);
        new.then_some(o.pid)
    })
}

/// Why a socket has no holder; None when it has one (its own or its
/// listener's).
pub fn why_none(snap: &Snapshot, s: &Socket) -> Option<NoHolder> {
    if !effective(snap, s).is_empty() {
        return None;
    }
    Some(match (s.inode, s.state) {
        (0, TcpState::TimeWait) => NoHolder::TimeWait,
        (0, TcpState::SynRecv) => NoHolder::SynQueue,
        (0, _) => NoHolder::Orphan,
        _ => NoHolder::Unseen,
    })
}

/// The service (its id) of a socket's first holder other than pid 1 (which
/// keeps the sockets it passes to socket-activated services, and is part of
/// none of them); None without one.
pub fn service_id(snap: &Snapshot, s: &Socket) -> Option<u32> {
    let owners = effective(snap, s);
    let pid = owners
        .iter()
        .find(|o| o.pid != INIT)
        .or(owners.first())?
        .pid;
    // A holder the snapshot has no process for (a recording, a fixture) is
    // a service of its own, not "no holder".
    Some(snap.holders().service_of(pid).map_or(pid, |svc| svc.id))
}

#[cfg(test)]
mod tests;
