//! Turns the kernel into an immutable [`Snapshot`]. Nothing above this module
//! reads `/proc` or netlink.

pub mod clock;
pub mod container;
pub mod counters;
pub mod host;
pub mod idle;
pub mod known;
pub mod mounts;
pub mod netlink;
pub mod netns;
pub mod owners;
pub mod proc_info;
pub mod procnet;
pub mod system;
pub mod tcp_info;
pub mod users;

use crate::model::{Attribution, Family, Proto, Snapshot, SourceKind, TcpState};
use std::collections::HashMap;
use std::time::SystemTime;

/// Above this many sockets, periodic collectors (the monitor, `serve`) leave
/// `tcp_info` out of the dump: asking for it on every socket costs more than
/// they can spend per refresh.
pub const TCP_INFO_LIMIT: usize = 20_000;

/// Which socket table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SourceChoice {
    /// netlink sock_diag, falling back to /proc/net when it is not available.
    #[default]
    Auto,
    /// netlink sock_diag only.
    Netlink,
    /// /proc/net/{tcp,tcp6,udp,udp6} only.
    Proc,
}

/// Which part of the socket table one collection reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// TCP states to dump, as a [`netlink::state_mask`].
    pub tcp_states: u32,
    /// UDP sockets too.
    pub udp: bool,
}

impl Scope {
    /// Every TCP and UDP socket.
    pub const ALL: Scope = Scope {
        tcp_states: netlink::ALL_STATES,
        udp: true,
    };

    /// The TCP states that signal trouble: all but ESTABLISHED and LISTEN,
    /// usually a small fraction of a large table. No UDP.
    pub fn trouble() -> Scope {
        let states: Vec<TcpState> = TcpState::ALL
            .iter()
            .copied()
            .filter(|s| !matches!(s, TcpState::Established | TcpState::Listen))
            .collect();
        Scope {
            tcp_states: netlink::state_mask(&states),
            udp: false,
        }
    }

    pub fn is_all(&self) -> bool {
        *self == Scope::ALL
    }

    /// Whether a socket of the table falls in this scope.
    pub fn contains(&self, s: &crate::model::Socket) -> bool {
        match s.proto {
            Proto::Udp => self.udp,
            Proto::Tcp => self.tcp_states & (1 << (s.state as u32)) != 0,
        }
    }
}

/// Anything that produces snapshots: the live system, a recording, a fixture.
pub trait Collector {
    fn collect(&mut self) -> Result<Snapshot, CollectError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Netlink(#[from] netlink::NetlinkError),
    #[error(transparent)]
    ProcNet(#[from] procnet::ProcNetError),
    #[error("cannot list processes in /proc: {0}")]
    Owners(std::io::Error),
}

/// Options for the live collector.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub source: SourceChoice,
    /// Ask the kernel for `tcp_info` on every TCP socket.
    pub tcp_info: bool,
    /// Map sockets to processes by scanning `/proc/PID/fd`.
    pub owners: bool,
    /// Remember fd tables between collections and read only what changed
    /// (the live monitor). One-shot commands scan everything, in parallel
    /// with the socket dump.
    pub incremental: bool,
    /// Read the other network namespaces' tables too (containers, pods,
    /// `ip netns`).
    pub namespaces: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            source: SourceChoice::Auto,
            tcp_info: true,
            owners: true,
            incremental: false,
            namespaces: true,
        }
    }
}

/// Collects from this machine.
pub struct SystemCollector {
    options: Options,
    dumper: Option<netlink::Dumper>,
    users: users::UserNames,
    threads: usize,
    tracker: owners::OwnerTracker,
    closed: owners::ClosedSockets,
    /// Closed-socket counts of the last full collection: a partial one
    /// cannot tell a socket outside its states from one in no table.
    closed_counts: HashMap<u32, u32>,
    /// Owners of the last full incremental collection, for partial ones.
    known: Option<known::KnownOwners>,
    /// Sockets of the last collection of all states and of the last of
    /// some: the next one's table is allocated once at about that size
    /// rather than doubled up to it (a 130k-socket table doubling from 65k
    /// holds 31 MiB at once, and copies 10).
    last_sizes: [usize; 2],
    /// The other network namespaces, followed between collections.
    follower: netns::Follower,
    /// The kernel answers the legacy TCP dump (both families in one walk).
    tcp_both_families: bool,
    /// The host's counters, and its last table for reuse while they stand
    /// still (incremental collections only).
    idle: idle::IdleTable,
    /// What the last look for namespaces keeps for the next.
    seen: netns::discover::Seen,
}

impl SystemCollector {
    pub fn new(options: Options) -> SystemCollector {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        SystemCollector {
            options,
            dumper: None,
            users: users::UserNames::default(),
            threads,
            tracker: owners::OwnerTracker::default(),
            closed: owners::ClosedSockets::default(),
            closed_counts: HashMap::new(),
            known: None,
            last_sizes: [0; 2],
            follower: netns::Follower::new(),
            tcp_both_families: true,
            idle: idle::IdleTable::default(),
            seen: Default::default(),
        }
    }

    /// The current state and `tcp_info` of one socket, asked of the kernel
    /// directly. None when it is gone or netlink is not available.
    pub fn query_one(&mut self, socket: &crate::model::Socket) -> Option<crate::model::Socket> {
        if self.options.source == SourceChoice::Proc || socket.cookie == 0 {
            return None;
        }
        if socket.netns != crate::model::HOST_NETNS {
            return self.follower.query(socket);
        }
        if self.dumper.is_none() {
            self.dumper = netlink::Dumper::open().ok();
        }
        self.dumper.as_mut()?.query(socket).ok().flatten()
    }

    /// Reads the host's counters from `dir` (files named as in
    /// `/proc/net`) instead, and keeps tables of any size for reuse: tests
    /// give counters that never move, so that the table is reused whenever
    /// it may be ([`idle`]), on a machine of any size.
    pub fn counters_from(&mut self, dir: &str) {
        self.idle = idle::IdleTable::from_dir(dir, usize::MAX);
    }

    /// How many times a reused host table was found stale by the owner
    /// scan and dumped again, since the collector was made.
    pub fn stale_tables(&self) -> u64 {
        self.idle.stale_found
    }

    /// Turns `tcp_info` on or off for the next collections.
    pub fn set_tcp_info(&mut self, on: bool) {
        self.options.tcp_info = on;
    }

    /// Turns the owner scan on or off for the next collections (a
    /// trouble-state refresh takes its owners from the last full one).
    pub fn set_owners(&mut self, on: bool) {
        self.options.owners = on;
    }

    /// Appends the other namespaces' sockets (whole tables, whatever the
    /// scope: they are small, and each refresh brings them complete) and
    /// says what runs in each.
    fn other_namespaces(
        &mut self,
        sockets: &mut Vec<crate::model::Socket>,
        monotonic: std::time::Duration,
    ) -> (crate::model::Namespaces, netns::discover::Discovery) {
        // Each process's namespace is wanted either way (a process in a
        // table not read holds sockets that are not closed ones).
        let found = netns::discover::discover_with(&mut self.seen);
        if !self.options.namespaces {
            return (Default::default(), found);
        }
        let ask = netns::Ask {
            source: self.options.source,
            tcp_info: self.options.tcp_info,
            now: monotonic,
        };
        let spaces = self.follower.collect(&found, ask, sockets);
        (spaces, found)
    }

    /// How many namespaces were dumped and how many reused their last
    /// table, since the collector was made.
    pub fn namespace_reads(&self) -> (u64, u64) {
        (self.follower.dumped, self.follower.reused)
    }

    /// The sockets of `scope`, where they came from, and why netlink was
    /// not used when `auto` fell back to `/proc/net`.
    fn dump_sockets(
        &mut self,
        scope: Scope,
    ) -> Result<(Vec<crate::model::Socket>, SourceKind, Option<String>), CollectError> {
        let last = self.last_sizes[usize::from(scope.is_all())];
        let mut sockets = Vec::with_capacity(last + last / 16);
        let mut note = None;
        if self.options.source != SourceChoice::Proc {
            match self.netlink_dump(scope, &mut sockets) {
                Ok(()) => return Ok((sockets, SourceKind::Netlink, None)),
                Err(e) if self.options.source == SourceChoice::Netlink => return Err(e.into()),
                Err(e) => {
                    sockets.clear();
                    note = Some(fallback_note(&e));
                }
            }
        }
        procnet::read_all(&mut sockets)?;
        if !scope.is_all() {
            sockets.retain(|s| scope.contains(s));
        }
        Ok((sockets, SourceKind::Proc, note))
    }

    /// [`SystemCollector::dump_sockets`] for an incremental collection,
    /// after the host's counters read `signature`: a full table is kept for
    /// reuse while they stand still ([`idle::IdleTable`]), unless it came
    /// from a fallback (its note would be lost).
    fn dump_host(
        &mut self,
        scope: Scope,
        signature: u64,
        now: std::time::Duration,
    ) -> Result<(Vec<crate::model::Socket>, SourceKind, Option<String>), CollectError> {
        let dumped = self.dump_sockets(scope);
        match &dumped {
            Ok((sockets, source, None)) if scope.is_all() => {
                self.idle
                    .dumped(signature, now, sockets, *source, self.options.tcp_info);
            }
            Ok(_) if scope.is_all() => self.idle.forget(),
            Ok(_) => {}
            Err(_) => self.idle.forget(),
        }
        dumped
    }

    fn netlink_dump(
        &mut self,
        scope: Scope,
        out: &mut Vec<crate::model::Socket>,
    ) -> Result<(), netlink::NetlinkError> {
        if self.dumper.is_none() {
            self.dumper = Some(netlink::Dumper::open()?);
        }
        let dumper = self.dumper.as_mut().expect("opened above");
        let protos: &[Proto] = if scope.udp {
            &[Proto::Tcp, Proto::Udp]
        } else {
            &[Proto::Tcp]
        };
        for &proto in protos {
            let states = match proto {
                Proto::Tcp => scope.tcp_states,
                Proto::Udp => netlink::ALL_STATES,
            };
            // TCP: one walk of the kernel's hash for both families (half the
            // kernel time on a large table), per family where the kernel
            // no longer answers the legacy request.
            if proto == Proto::Tcp && self.tcp_both_families {
                let before = out.len();
                match dumper.dump_tcp_states_both_families(self.options.tcp_info, states, out) {
                    Ok(()) => continue,
                    Err(_) => {
                        out.truncate(before);
                        self.tcp_both_families = false;
                    }
                }
            }
            for family in [Family::V4, Family::V6] {
                let req = netlink::DumpRequest {
                    proto,
                    family,
                    tcp_info: self.options.tcp_info,
                };
                if let Err(e) = dumper.dump_states(req, states, out) {
                    // A broken socket is not worth keeping for the next round.
                    self.dumper = None;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// One collection of the sockets in `scope` only, with their owners: the
    /// kernel dumps just those states (see [`netlink::Dumper::dump_states`]),
    /// so the few sockets in trouble states ([`Scope::trouble`]) can be
    /// refreshed often while a large ESTABLISHED/LISTEN set is read less
    /// often. [`Collector::collect`] is `collect_scope(Scope::ALL)`.
    ///
    /// Owners of a partial collection: when every socket in it with an
    /// inode was in the last full (incremental) collection, its owners are
    /// taken from there, checked with one `readlink` of each fd (in turn on
    /// large dumps, see [`known::KnownOwners`]; an owner added since, by a
    /// fork or a passed descriptor, shows at the next full collection).
    /// Otherwise the owner tracker scans (see [`owners::OwnerTracker`]), and
    /// stays correct for the rest of the table: fds cached for sockets of
    /// the last full collection stay cached (an fd reused meanwhile for a new
    /// socket is read again at the latest at the next full collection). `closed_sockets` keeps the last
    /// full collection's counts either way (a socket outside the scope is
    /// not a socket in no table).
    pub fn collect_scope(&mut self, scope: Scope) -> Result<Snapshot, CollectError> {
        let taken_at = SystemTime::now();
        let monotonic = clock::boottime();
        let want_owners = self.options.owners;
        let threads = self.threads;
        let full = scope.is_all();
        let mut used_known = false;
        // The host's table when it was reused, and the signature of the
        // counters read before this collection.
        let mut reused_at = None;
        let mut signature = 0;
        let mut host_len = 0;
        let (mut sockets, mut source, mut source_note, mut scan, system, namespaces, found) =
            if self.options.incremental {
                // The tracker needs this round's inodes to trust its cache.
                let (system, sig) = self.idle.system(monotonic);
                signature = sig;
                let (mut sockets, source, note) = match full
                    .then(|| self.idle.reuse(sig, monotonic, self.options.tcp_info))
                    .flatten()
                {
                    Some(r) => {
                        reused_at = Some(r.at);
                        (r.sockets, r.source, None)
                    }
                    None => self.dump_host(scope, sig, monotonic)?,
                };
                host_len = sockets.len();
                let (spaces, found) = self.other_namespaces(&mut sockets, monotonic);
                let remembered = (!full && want_owners)
                    .then(|| self.known.as_mut()?.answer(&sockets))
                    .flatten();
                used_known = remembered.is_some();
                let scan = if let Some(scan) = remembered {
                    scan
                } else if want_owners {
                    let live: owners::InodeSet = sockets
                        .iter()
                        .map(|s| s.inode)
                        .filter(|&i| i != 0)
                        .collect();
                    self.tracker
                        .scan_scope(threads, &live, full)
                        .map_err(CollectError::Owners)?
                } else {
                    owners::OwnerScan::default()
                };
                (sockets, source, note, scan, system, spaces, found)
            } else {
                // The socket dump is mostly kernel time in this thread; the fd scan
                // runs beside it on the other cores.
                let (dumped, scanned, system) = std::thread::scope(|s| {
                    let scan = s.spawn(move || want_owners.then(|| owners::scan(threads)));
                    let system = s.spawn(system::read);
                    let dumped = self.dump_sockets(scope).map(|(mut sockets, source, note)| {
                        let (spaces, found) = self.other_namespaces(&mut sockets, monotonic);
                        (sockets, source, note, spaces, found)
                    });
                    // A panicking scan is a failed scan, not "no owners".
                    let scanned = scan.join().unwrap_or_else(|_| {
                        Some(Err(std::io::Error::other("the owner scan thread panicked")))
                    });
                    let system = system.join().unwrap_or_default();
                    (dumped, scanned, system)
                });
                let (sockets, source, note, spaces, found) = dumped?;
                let scan = match scanned {
                    Some(r) => r.map_err(CollectError::Owners)?,
                    None => owners::OwnerScan::default(),
                };
                (sockets, source, note, scan, system, spaces, found)
            };

        // Inode → position in the table, for the owner join.
        let by_inode =
            |sockets: &[crate::model::Socket]| -> HashMap<u64, usize, foldhash::fast::RandomState> {
                sockets
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.inode != 0)
                    .map(|(i, s)| (s.inode, i))
                    .collect()
            };
        let mut index = by_inode(&sockets);
        // A reused host table that lacks a socket a process of the host
        // holds, and that was not outside every table at the dump, is
        // stale (an accept() moves no counter): dump it again.
        let host_pid = |pid: &u32| {
            found
                .pid_netns
                .get(pid)
                .is_none_or(|&ns| ns == crate::model::HOST_NETNS)
        };
        if reused_at.is_some()
            && scan.holders.iter().any(|(inode, o)| {
                !index.contains_key(inode) && host_pid(&o.pid) && self.idle.stale(*inode, *o)
            })
        {
            self.idle.stale_found += 1;
            let others = sockets.split_off(host_len);
            (sockets, source, source_note) = self.dump_host(scope, signature, monotonic)?;
            sockets.extend(others);
            reused_at = None;
            index = by_inode(&sockets);
        }
        // A reused namespace table that lacks a socket a process in that
        // namespace holds is stale (an accept() moves no counter): dump it
        // again, and index again.
        let stale: std::collections::BTreeSet<u64> = scan
            .holders
            .iter()
            .filter(|(inode, _)| !index.contains_key(inode))
            .filter_map(|(_, o)| found.pid_netns.get(&o.pid).copied())
            .filter(|&ns| self.follower.was_reused(ns))
            .collect();
        let mut namespaces = namespaces;
        if !stale.is_empty() {
            sockets.retain(|s| !stale.contains(&s.netns));
            let ask = netns::Ask {
                source: self.options.source,
                tcp_info: self.options.tcp_info,
                now: monotonic,
            };
            let list = std::sync::Arc::make_mut(&mut namespaces.list);
            for &ns in &stale {
                let n = self.follower.redump(ns, &found, ask, &mut sockets);
                if let Some(info) = list.get_mut(&ns) {
                    info.sockets = n.unwrap_or(0);
                    if n.is_none() {
                        info.error = Some("it went while being read again".into());
                    }
                }
            }
            index = by_inode(&sockets);
        }
        let mut processes = scan.processes;
        // Attached in socket order: in fd order they land all over a 100k+
        // socket table, and the cache misses cost more than this sort.
        let mut attach: Vec<(usize, crate::model::Owner)> = Vec::with_capacity(scan.holders.len());
        let mut outside = Vec::new();
        for (inode, owner) in &scan.holders {
            match index.get(inode) {
                Some(&i) => attach.push((i, *owner)),
                None => outside.push((*inode, *owner)),
            }
        }
        attach.sort_unstable();
        if full && self.options.incremental && reused_at.is_none() {
            self.idle.watched(
                want_owners,
                outside.iter().filter(|(_, o)| host_pid(&o.pid)).copied(),
            );
        }
        let mut holding = std::collections::HashSet::new();
        for (i, owner) in attach {
            sockets[i].owners.push(owner);
            holding.insert(owner.pid);
        }
        if full && want_owners {
            // A process whose namespace's table was not read may hold
            // sockets of that table: they are not closed ones.
            let read = |pid: u32| match found.pid_netns.get(&pid) {
                Some(&crate::model::HOST_NETNS) => true,
                Some(ns) => namespaces.get(*ns).is_some_and(|n| n.error.is_none()),
                None => false,
            };
            self.closed_counts = self.closed.count(&outside, read);
        }
        for (pid, p) in processes.iter_mut() {
            p.netns = found.pid_netns.get(pid).copied().unwrap_or_default();
        }
        for (&pid, &n) in &self.closed_counts {
            // Remembered owners name only the holders of this dump's sockets.
            if used_known
                && !processes.contains_key(&pid)
                && let Some(p) = self.known.as_ref().and_then(|k| k.process(pid))
            {
                processes.insert(pid, p.clone());
            }
            if let Some(p) = processes.get_mut(&pid) {
                p.closed_sockets = n;
                holding.insert(pid);
            }
        }
        processes.retain(|pid, _| holding.contains(pid));
        let mut unattributed = 0;
        for s in &mut sockets {
            if s.owners.len() > 1 {
                s.owners.sort_unstable();
            }
            if s.inode != 0 && s.owners.is_empty() {
                unattributed += 1;
            }
        }
        if full && want_owners && self.options.incremental {
            self.known = Some(known::KnownOwners::remember(
                &sockets,
                &processes,
                std::mem::take(&mut scan.fd_counts),
                scan.unreadable_processes,
                scan.hidden_pids,
            ));
        }
        self.last_sizes[usize::from(full)] = sockets.len();
        let as_root = rustix::process::geteuid().is_root();
        let attribution = Attribution {
            unreadable_processes: scan.unreadable_processes,
            // Counted whatever the cause: the note tells the causes apart.
            unattributed_sockets: unattributed,
            as_root,
            hidden_pids: scan.hidden_pids,
        };

        let mut users = HashMap::new();
        let uids = sockets
            .iter()
            .map(|s| s.uid)
            .chain(processes.values().filter_map(|p| p.uid));
        for uid in uids {
            if let std::collections::hash_map::Entry::Vacant(e) = users.entry(uid)
                && let Some(name) = self.users.name(uid)
            {
                e.insert(name);
            }
        }
        for p in processes.values_mut() {
            p.user = p.uid.and_then(|u| users.get(&u).cloned());
        }

        Ok(Snapshot {
            taken_at,
            monotonic,
            source,
            source_note,
            sockets,
            processes,
            users,
            attribution,
            system,
            derived: Default::default(),
            transitions: None,
            namespaces,
            reused_table: reused_at,
        })
    }
}

/// What `auto` says when netlink failed and `/proc/net` was read instead:
/// the reason, and what is missing because of it.
pub fn fallback_note(e: &netlink::NetlinkError) -> String {
    format!(
        "netlink sock_diag failed ({e}): read /proc/net instead; \
         no cookies (destroy refused), no timers, no tcp_info (no throughput)"
    )
}

impl Collector for SystemCollector {
    fn collect(&mut self) -> Result<Snapshot, CollectError> {
        self.collect_scope(Scope::ALL)
    }
}
