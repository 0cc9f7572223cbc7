//! Turns the kernel into an immutable [`Snapshot`]. Nothing above this module
//! reads `/proc` or netlink.

pub mod netlink;
pub mod owners;
pub mod procnet;
pub mod system;

use crate::model::{Attribution, Family, Proto, Snapshot, SourceKind};
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            source: SourceChoice::Auto,
            tcp_info: true,
            owners: true,
            incremental: false,
        }
    }
}

/// Collects from this machine.
pub struct SystemCollector {
    options: Options,
    dumper: Option<netlink::Dumper>,
    users: UserNames,
    threads: usize,
    tracker: owners::OwnerTracker,
    closed: owners::ClosedSockets,
}

impl SystemCollector {
    pub fn new(options: Options) -> SystemCollector {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        SystemCollector {
            options,
            dumper: None,
            users: UserNames::default(),
            threads,
            tracker: owners::OwnerTracker::default(),
            closed: owners::ClosedSockets::default(),
        }
    }

    /// The current state and `tcp_info` of one socket, asked of the kernel
    /// directly. None when it is gone or netlink is not available.
    pub fn query_one(&mut self, socket: &crate::model::Socket) -> Option<crate::model::Socket> {
        if self.options.source == SourceChoice::Proc || socket.cookie == 0 {
            return None;
        }
        if self.dumper.is_none() {
            self.dumper = netlink::Dumper::open().ok();
        }
        self.dumper.as_mut()?.query(socket).ok().flatten()
    }

    /// Turns `tcp_info` on or off for the next collections.
    pub fn set_tcp_info(&mut self, on: bool) {
        self.options.tcp_info = on;
    }

    fn dump_sockets(&mut self) -> Result<(Vec<crate::model::Socket>, SourceKind), CollectError> {
        let mut sockets = Vec::new();
        if self.options.source != SourceChoice::Proc {
            match self.netlink_dump(&mut sockets) {
                Ok(()) => return Ok((sockets, SourceKind::Netlink)),
                Err(e) if self.options.source == SourceChoice::Netlink => return Err(e.into()),
                Err(_) => sockets.clear(),
            }
        }
        procnet::read_all(&mut sockets)?;
        Ok((sockets, SourceKind::Proc))
    }

    fn netlink_dump(
        &mut self,
        out: &mut Vec<crate::model::Socket>,
    ) -> Result<(), netlink::NetlinkError> {
        if self.dumper.is_none() {
            self.dumper = Some(netlink::Dumper::open()?);
        }
        let dumper = self.dumper.as_mut().expect("opened above");
        for proto in [Proto::Tcp, Proto::Udp] {
            for family in [Family::V4, Family::V6] {
                let req = netlink::DumpRequest {
                    proto,
                    family,
                    tcp_info: self.options.tcp_info,
                };
                if let Err(e) = dumper.dump(req, out) {
                    // A broken socket is not worth keeping for the next round.
                    self.dumper = None;
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

impl Collector for SystemCollector {
    fn collect(&mut self) -> Result<Snapshot, CollectError> {
        let taken_at = SystemTime::now();
        let want_owners = self.options.owners;
        let threads = self.threads;
        let (mut sockets, source, scan, system) = if self.options.incremental {
            // The tracker needs this round's inodes to trust its cache.
            let system = system::read();
            let (sockets, source) = self.dump_sockets()?;
            let live: owners::InodeSet = sockets
                .iter()
                .map(|s| s.inode)
                .filter(|&i| i != 0)
                .collect();
            let scan = if want_owners {
                self.tracker
                    .scan(threads, &live)
                    .map_err(CollectError::Owners)?
            } else {
                owners::OwnerScan::default()
            };
            (sockets, source, scan, system)
        } else {
            // The socket dump is mostly kernel time in this thread; the fd scan
            // runs beside it on the other cores.
            let (dumped, scanned, system) = std::thread::scope(|s| {
                let scan = s.spawn(move || want_owners.then(|| owners::scan(threads)));
                let system = s.spawn(system::read);
                let dumped = self.dump_sockets();
                // A panicking scan is a failed scan, not "no owners".
                let scanned = scan.join().unwrap_or_else(|_| {
                    Some(Err(std::io::Error::other("the owner scan thread panicked")))
                });
                let system = system.join().unwrap_or_default();
                (dumped, scanned, system)
            });
            let (sockets, source) = dumped?;
            let scan = match scanned {
                Some(r) => r.map_err(CollectError::Owners)?,
                None => owners::OwnerScan::default(),
            };
            (sockets, source, scan, system)
        };

        let index: HashMap<u64, usize, foldhash::fast::RandomState> = sockets
            .iter()
            .enumerate()
            .filter(|(_, s)| s.inode != 0)
            .map(|(i, s)| (s.inode, i))
            .collect();
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
        let mut holding = std::collections::HashSet::new();
        for (i, owner) in attach {
            sockets[i].owners.push(owner);
            holding.insert(owner.pid);
        }
        for (pid, n) in self.closed.count(&outside) {
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
        let attribution = Attribution {
            unreadable_processes: scan.unreadable_processes,
            // Counted whatever the cause: the note tells the causes apart.
            unattributed_sockets: unattributed,
            as_root: rustix::process::geteuid().is_root(),
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
            source,
            sockets,
            processes,
            users,
            attribution,
            system,
            derived: Default::default(),
        })
    }
}

/// uid → user name, from sysinfo's reading of the user database; re-read when
/// an unknown uid shows up (a user added since the last look).
#[derive(Default)]
struct UserNames {
    names: HashMap<u32, String>,
    misses: std::collections::HashSet<u32>,
}

impl UserNames {
    fn name(&mut self, uid: u32) -> Option<String> {
        if let Some(n) = self.names.get(&uid) {
            return Some(n.clone());
        }
        if self.misses.contains(&uid) {
            return None;
        }
        // An unreadable user database leaves names out, never fails the snapshot.
        if let Ok(users) = sysinfo::Users::new_with_refreshed_list() {
            self.names = users
                .iter()
                .map(|u| (**u.id(), u.name().to_string()))
                .collect();
        }
        let found = self.names.get(&uid).cloned();
        if found.is_none() {
            self.misses.insert(uid);
        }
        found
    }
}
