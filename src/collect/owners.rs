//! Who holds which socket: a scan of every `/proc/PID/fd`.
//!
//! This is the expensive half of `ss -p`, and where sockscope wins: one
//! `readlinkat` per descriptor relative to an open directory fd (procfs's
//! `Process::fd()` costs an `openat` and an `fstatat` more per descriptor, and
//! an allocation), spread over a few threads. Every read of a process goes
//! through a directory fd opened on `/proc/PID` first, so a process that exits
//! mid-scan makes reads fail with ESRCH instead of returning another
//! process's data if its pid were reused.

use crate::model::{Owner, ProcState, Process};
use rustix::fs::{Dir, Mode, OFlags, openat};
use rustix::io::Errno;
use std::collections::HashMap;

/// Socket inodes of the current dump. foldhash: probed once per descriptor.
pub type InodeSet = std::collections::HashSet<u64, foldhash::fast::RandomState>;
type FdMap = HashMap<u32, u64, foldhash::fast::RandomState>;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The result of one scan.
#[derive(Debug, Default)]
pub struct OwnerScan {
    /// Socket inode → (pid, fd) holding it. Includes non-inet sockets; the
    /// caller keeps the ones it has in its socket table.
    pub holders: Vec<(u64, Owner)>,
    /// Every process that holds at least one socket.
    pub processes: HashMap<u32, Process>,
    /// Processes whose fd table could not be read.
    pub unreadable_processes: usize,
    /// The processes whose fd table was taken as the tracker last read it
    /// (unchanged count and sockets) instead of read.
    pub reused_tables: Vec<u32>,
    /// The descriptor count of each holder whose whole table was read, for
    /// [`super::known::KnownOwners`] to tell a table that changed since.
    pub fd_counts: HashMap<u32, usize>,
    /// `/proc` is mounted `hidepid=` and hides other users' processes from
    /// this scan (see [`super::proc_info::pids_hidden_from_me`]).
    pub hidden_pids: bool,
}

/// Scans all processes with up to `threads` threads.
pub fn scan(threads: usize) -> std::io::Result<OwnerScan> {
    scan_with(threads, &HashMap::new(), None, None).map(|(scan, _, _)| scan)
}

/// The sockets that exist, for the tracker to trust its cached fds: those
/// of this dump, and after a partial dump (some states only) those of the
/// last full one too.
#[derive(Clone, Copy)]
struct Live<'a> {
    dump: &'a InodeSet,
    last_full: Option<&'a InodeSet>,
}

impl Live<'_> {
    fn contains(&self, inode: u64) -> bool {
        self.dump.contains(&inode) || self.last_full.is_some_and(|l| l.contains(&inode))
    }
}

/// What the tracker remembers of a process between scans.
#[derive(Debug, Clone)]
struct Tracked {
    /// Start time from `/proc/PID/stat`: a reused pid has another one.
    start: u64,
    /// The name in `/proc/PID/stat`: another one after `exec` or a rename,
    /// and then the process is read again.
    comm: Vec<u8>,
    /// fd → socket inode, 0 for descriptors that are not sockets.
    fds: FdMap,
    /// `fds` is the leader's whole table, read without a denied link: when
    /// the table still has as many descriptors, it may be taken as it is.
    whole: bool,
    info: Option<Process>,
    /// Its fd table could not be read (another user's process when not
    /// root, or one this root may not trace): not read again until the
    /// next listing of every table, since its permissions are the same
    /// for every descriptor and rarely change.
    unreadable: bool,
}

impl Tracked {
    fn unreadable(start: u64, comm: Vec<u8>) -> Tracked {
        Tracked {
            start,
            comm,
            fds: FdMap::default(),
            whole: false,
            info: None,
            unreadable: true,
        }
    }
}

/// Incremental owner lookups for the live monitor. A scan reads the fd
/// tables of the processes that held a socket at the last scan and of the
/// processes new since; the others' only when a socket of the dump is held
/// by none of those (a process that held none opened one), and every
/// [`FULL_RESCAN`]. In each table it reads the link of a descriptor only
/// when it is new, was not a socket, or pointed at a socket that no longer
/// exists. The full rescan also catches the rare fd number reused while its
/// old socket lives on in another process, and a descriptor passed to a
/// process that held no socket while its sender keeps its own. A process
/// whose table may not be read is tried at those listings only, and
/// counted as unreadable at every scan.
#[derive(Debug, Default)]
pub struct OwnerTracker {
    procs: HashMap<u32, Tracked>,
    last_full: Option<std::time::Instant>,
    /// The inodes of the last full dump, for partial ones.
    last_full_dump: InodeSet,
    /// Sockets of the dump that no process held at the last listing of
    /// every table (a process we may not read, a socket in transit): they
    /// do not send the next scans back to every table.
    unowned: InodeSet,
    /// Scans that read every table.
    listings: u64,
}

pub const FULL_RESCAN: std::time::Duration = std::time::Duration::from_secs(30);

impl OwnerTracker {
    /// `live` holds the inodes of the sockets in the current dump.
    pub fn scan(&mut self, threads: usize, live: &InodeSet) -> std::io::Result<OwnerScan> {
        self.scan_scope(threads, live, true)
    }

    /// [`OwnerTracker::scan`] after a dump of the whole table (`full_dump`)
    /// or of some states only. Every fd table is listed either way, so the
    /// owners of every socket are found; after a partial dump, a cached fd
    /// whose socket was in the last full dump is trusted too, rather than
    /// read again because its socket was outside this dump's states.
    pub fn scan_scope(
        &mut self,
        threads: usize,
        live: &InodeSet,
        full_dump: bool,
    ) -> std::io::Result<OwnerScan> {
        let full = self.last_full.is_none_or(|t| t.elapsed() >= FULL_RESCAN);
        if full {
            self.procs.clear();
            self.last_full = Some(std::time::Instant::now());
        }
        let last_full_dump = std::mem::take(&mut self.last_full_dump);
        let known = Live {
            dump: live,
            last_full: (!full_dump).then_some(&last_full_dump),
        };
        let mut done = None;
        if !full {
            // The holders and the new processes.
            let prev = &self.procs;
            let wanted = |pid: u32| prev.get(&pid).is_none_or(|t| t.info.is_some());
            let (scan, mut procs, pids) = scan_with(threads, prev, Some(known), Some(&wanted))?;
            let held = held(&scan);
            if live
                .iter()
                .all(|i| held.contains(i) || self.unowned.contains(i))
            {
                // The others are as they were: kept while they exist.
                let mut prev = std::mem::take(&mut self.procs);
                let mut scan = scan;
                for pid in pids {
                    if let Some(t) = prev.remove(&pid).filter(|t| t.info.is_none()) {
                        scan.unreadable_processes += usize::from(t.unreadable);
                        procs.insert(pid, t);
                    }
                }
                self.procs = procs;
                done = Some(scan);
            } else {
                // Someone else holds a socket now: every table, with what
                // was just read as the cache.
                self.procs.extend(procs);
            }
        }
        let scan = match done {
            Some(scan) => scan,
            None => {
                let (scan, procs, _) = scan_with(threads, &self.procs, Some(known), None)?;
                self.procs = procs;
                self.listings += 1;
                let held = held(&scan);
                let unowned = live.iter().filter(|i| !held.contains(i)).copied();
                // A partial dump's leave those of the last full one be.
                if full_dump {
                    self.unowned = unowned.collect();
                } else {
                    self.unowned.extend(unowned);
                }
                scan
            }
        };
        self.last_full_dump = if full_dump {
            live.clone()
        } else {
            last_full_dump
        };
        Ok(scan)
    }
}

/// The sockets a scan found holders for.
fn held(scan: &OwnerScan) -> InodeSet {
    scan.holders.iter().map(|(i, _)| *i).collect()
}

/// Scans the processes `only` wants (all without it): the scan, what the
/// tracker keeps of them, and every pid `/proc` listed.
fn scan_with(
    threads: usize,
    prev: &HashMap<u32, Tracked>,
    live: Option<Live<'_>>,
    only: Option<&(dyn Fn(u32) -> bool + Sync)>,
) -> std::io::Result<(OwnerScan, HashMap<u32, Tracked>, Vec<u32>)> {
    let proc_dir = openat(
        rustix::fs::CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let all = list_pids(&proc_dir)?;
    let pids: Vec<u32> = match only {
        Some(wanted) => all.iter().copied().filter(|&p| wanted(p)).collect(),
        None => all.clone(),
    };
    let next = AtomicUsize::new(0);
    let result = Mutex::new((OwnerScan::default(), HashMap::new()));
    let failure = Mutex::new(None);
    let threads = threads.clamp(1, 8).min(pids.len().max(1));
    let work = || {
        let mut local = OwnerScan::default();
        let mut tracked = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&pid) = pids.get(i) else { break };
            let trust = only.is_some();
            match scan_process(&proc_dir, pid, prev.get(&pid), live, trust, &mut local) {
                Ok(Some(t)) => tracked.push((pid, t)),
                Ok(None) => {}
                Err(e) => {
                    // Stop every thread: the scan is incomplete whatever they find.
                    next.store(pids.len(), Ordering::Relaxed);
                    let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
                    f.get_or_insert(e);
                    return;
                }
            }
        }
        let mut all = result.lock().unwrap_or_else(|e| e.into_inner());
        all.0.holders.append(&mut local.holders);
        all.0.processes.extend(local.processes);
        all.0.unreadable_processes += local.unreadable_processes;
        all.0.reused_tables.append(&mut local.reused_tables);
        all.0.fd_counts.extend(local.fd_counts);
        all.1.extend(tracked);
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let (mut scan, tracked) = result.into_inner().unwrap_or_else(|e| e.into_inner());
    scan.hidden_pids = super::proc_info::pids_hidden_from_me();
    Ok((scan, tracked, all))
}

/// Out of descriptors or memory: the scan itself failed. Taking it for a
/// process that exited would silently drop that process's owners.
fn scan_failed(e: Errno) -> bool {
    matches!(e, Errno::MFILE | Errno::NFILE | Errno::NOMEM)
}

fn failure(pid: u32, what: &str, e: Errno) -> std::io::Error {
    let e = std::io::Error::from(e);
    std::io::Error::new(e.kind(), format!("/proc/{pid}/{what}: {e}"))
}

fn list_pids(proc_dir: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut dir = Dir::read_from(proc_dir)?;
    let mut pids = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        if let Some(pid) = std::str::from_utf8(entry.file_name().to_bytes())
            .ok()
            .and_then(|n| n.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Reads one process. `trust_counts`: a table whose descriptor count and
/// sockets are as the tracker last saw them is taken from the tracker
/// without reading it (see [`unchanged`]).
fn scan_process(
    proc_dir: &OwnedFd,
    pid: u32,
    prev: Option<&Tracked>,
    live: Option<Live<'_>>,
    trust_counts: bool,
    out: &mut OwnerScan,
) -> std::io::Result<Option<Tracked>> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let pid_dir = match openat(proc_dir, pid.to_string(), dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if scan_failed(e) => return Err(failure(pid, "", e)),
        Err(_) => return Ok(None), // exited before we got to it
    };
    // Only the incremental path needs the start time (to notice a reused
    // pid) and the name (to notice an exec or a rename); the state read
    // with them is fresh every scan (a cached name is fine, a cached state
    // is not).
    let Stat {
        start: start_time,
        comm,
        kernel_thread,
        state,
    } = match live {
        Some(_) => match stat_of(&pid_dir).map_err(|e| failure(pid, "stat", e))? {
            Some(t) => t,
            None => return Ok(None),
        },
        None => Stat::default(),
    };
    let prev = prev.filter(|p| p.start == start_time);
    let fd_dir = match openat(&pid_dir, "fd", dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ACCESS) | Err(Errno::PERM) => {
            out.unreadable_processes += 1;
            return Ok(Some(Tracked::unreadable(start_time, comm)));
        }
        Err(e) if scan_failed(e) => return Err(failure(pid, "fd", e)),
        Err(_) => return Ok(None), // vanished (ENOENT, ESRCH)
    };
    let start = out.holders.len();
    let (fds, denied, whole) = match prev.filter(|p| trust_counts && unchanged(p, &fd_dir, live)) {
        Some(p) => {
            out.reused_tables.push(pid);
            out.holders.extend(
                p.fds
                    .iter()
                    .filter(|&(_, &ino)| ino != 0)
                    .map(|(&fd, &ino)| (ino, Owner { pid, fd })),
            );
            (p.fds.clone(), false, true)
        }
        None => {
            let mut table = FdTable {
                pid,
                prev,
                live,
                fds: FdMap::with_capacity_and_hasher(
                    prev.map_or(16, |p| p.fds.len()),
                    Default::default(),
                ),
                denied: false,
            };
            let entries = table
                .read(&fd_dir, out)
                .map_err(|e| failure(pid, "fd", e))?;
            if entries == 0 && !kernel_thread {
                // A leader that exited while its threads run has an empty
                // table; the threads' tables still hold the process's
                // descriptors.
                read_thread_tables(&pid_dir, &mut table, out)
                    .map_err(|e| failure(pid, "task", e))?;
            }
            let whole = entries > 0 && !table.denied && table.fds.len() == entries;
            (table.fds, table.denied, whole)
        }
    };
    if denied && out.holders.len() == start {
        out.unreadable_processes += 1;
        return Ok(Some(Tracked::unreadable(start_time, comm)));
    }
    if out.holders.len() == start {
        return Ok(Some(Tracked {
            start: start_time,
            comm,
            fds,
            whole,
            info: None,
            unreadable: false,
        }));
    }
    // Read again after an exec or a rename: stat's name is not the one we have.
    let info = match prev.filter(|p| p.comm == comm).and_then(|p| p.info.clone()) {
        Some(info) => Some(info),
        None => read_process(&pid_dir, pid)?,
    };
    let mut proc_state = state;
    if proc_state.is_none() {
        proc_state = stat_of(&pid_dir)
            .map_err(|e| failure(pid, "stat", e))?
            .and_then(|st| st.state);
    }
    match info {
        Some(mut p) => {
            if whole {
                out.fd_counts.insert(pid, fds.len());
            }
            p.state = proc_state;
            out.processes.insert(pid, p.clone());
            Ok(Some(Tracked {
                start: start_time,
                comm,
                fds,
                whole,
                info: Some(p),
                unreadable: false,
            }))
        }
        // Gone before we could name it: its descriptors are closed by now, and
        // an owner we cannot name is not one we should report.
        None => {
            out.holders.truncate(start);
            Ok(None)
        }
    }
}

/// True when a process's fd table is as the tracker last read it, as far as
/// two cheap checks tell: it has as many descriptors (the size `stat` gives
/// an fd directory on Linux 6.2 and later; older kernels say 0, and then the
/// table is read) and every socket it held still exists. A descriptor that
/// was closed and its number reused for a new socket fails the second
/// check; a file swapped for a socket at the same count leaves that socket
/// held by no table read, which sends the tracker to list every table
/// without this shortcut.
fn unchanged(prev: &Tracked, fd_dir: &OwnedFd, live: Option<Live<'_>>) -> bool {
    let Some(live) = live else { return false };
    if !prev.whole {
        return false;
    }
    rustix::fs::fstat(fd_dir).ok().and_then(|st| fd_count(&st)) == Some(prev.fds.len())
        && prev.fds.values().all(|&ino| ino == 0 || live.contains(ino))
}

/// The descriptor count `stat` gives an fd directory (Linux 6.2 and later;
/// None on older kernels, which say 0).
pub(super) fn fd_count(stat: &rustix::fs::Stat) -> Option<usize> {
    usize::try_from(stat.st_size).ok().filter(|&n| n > 0)
}

/// One process's descriptors as they are read.
struct FdTable<'a> {
    pid: u32,
    prev: Option<&'a Tracked>,
    live: Option<Live<'a>>,
    /// fd → socket inode (0: not a socket), kept for the tracker.
    fds: FdMap,
    /// A link could not be read for lack of permission.
    denied: bool,
}

impl FdTable<'_> {
    /// Reads the table of one `fd` directory into `out.holders`: the number
    /// of descriptors it lists.
    fn read(&mut self, fd_dir: &OwnedFd, out: &mut OwnerScan) -> Result<usize, Errno> {
        // Dir::read_from reads through a private copy of the descriptor, which
        // leaves `fd_dir` free to resolve links against while iterating.
        let mut dir = match Dir::read_from(fd_dir) {
            Ok(dir) => dir,
            Err(e) if scan_failed(e) => return Err(e),
            Err(_) => return Ok(0),
        };
        let mut entries = 0;
        let mut link = [0u8; 64];
        while let Some(entry) = dir.read() {
            let Ok(entry) = entry else {
                break; // the process exited while we were reading its fd table
            };
            let name = entry.file_name();
            let Some(fd) = std::str::from_utf8(name.to_bytes())
                .ok()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue; // "." and ".."
            };
            entries += 1;
            // A socket this fd held last time that still exists: still this fd's.
            let known = self
                .prev
                .and_then(|p| p.fds.get(&fd))
                .copied()
                .filter(|&ino| ino != 0 && self.live.is_some_and(|l| l.contains(ino)));
            let inode = match known {
                Some(ino) => ino,
                None => match rustix::fs::readlinkat_raw(fd_dir, name, &mut link[..]) {
                    Ok(len) => socket_inode(&link[..len]).unwrap_or(0),
                    Err(Errno::ACCESS) | Err(Errno::PERM) => {
                        // The check is the same for every descriptor of
                        // the process (may we trace it): the rest would
                        // be denied too.
                        self.denied = true;
                        break;
                    }
                    Err(_) => continue, // fd closed meanwhile
                },
            };
            if inode != 0 {
                out.holders.push((inode, Owner { pid: self.pid, fd }));
            }
            if self.live.is_some() {
                self.fds.insert(fd, inode);
            }
        }
        Ok(entries)
    }
}

/// The fd tables of the process's threads, for a leader whose own table is
/// empty: the first thread with a non-empty one (threads share one table
/// unless they unshared it).
fn read_thread_tables(
    pid_dir: &OwnedFd,
    table: &mut FdTable<'_>,
    out: &mut OwnerScan,
) -> Result<(), Errno> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let task_dir = match openat(pid_dir, "task", dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if scan_failed(e) => return Err(e),
        Err(_) => return Ok(()),
    };
    let mut tids = Vec::new();
    {
        let mut dir = match Dir::read_from(&task_dir) {
            Ok(dir) => dir,
            Err(e) if scan_failed(e) => return Err(e),
            Err(_) => return Ok(()),
        };
        while let Some(Ok(entry)) = dir.read() {
            if let Some(tid) = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|n| n.parse::<u32>().ok())
                && tid != table.pid
            {
                tids.push(tid);
            }
        }
    }
    for tid in tids {
        let fd_dir = match openat(&task_dir, format!("{tid}/fd"), dir_flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ACCESS) | Err(Errno::PERM) => {
                table.denied = true;
                continue;
            }
            Err(e) if scan_failed(e) => return Err(e),
            Err(_) => continue, // that thread exited
        };
        if table.read(&fd_dir, out)? > 0 {
            break;
        }
    }
    Ok(())
}

/// Socket descriptors whose socket is in no socket table: which of them are
/// TCP (a connection destroyed or reset while its descriptor stays open), as
/// `lsof` tells them, from the socket's `system.sockprotoname` attribute.
/// Remembered per inode (a socket's protocol never changes), so the unix
/// sockets every machine has cost one look each, not one per refresh.
#[derive(Debug, Default)]
pub struct ClosedSockets {
    /// inode → (is TCP, the collection it was first seen outside the table in).
    seen: HashMap<u64, (bool, u64), foldhash::fast::RandomState>,
    generation: u64,
}

impl ClosedSockets {
    /// Counts, per pid, the TCP descriptors among `outside` (held sockets not
    /// in the socket table) that were already outside it at an earlier
    /// collection: a socket opened between the dump and the fd scan is in
    /// the next dump, not closed. Processes for which `read(pid)` is false
    /// are left out: they are in a network namespace whose table was not
    /// read, and their sockets are there.
    pub fn count(
        &mut self,
        outside: &[(u64, Owner)],
        read: impl Fn(u32) -> bool,
    ) -> HashMap<u32, u32> {
        self.generation += 1;
        let generation = self.generation;
        let mut same_netns: HashMap<u32, bool> = HashMap::new();
        let mut counts = HashMap::new();
        let mut still = InodeSet::default();
        for &(inode, owner) in outside {
            still.insert(inode);
            let (tcp, first) = *self.seen.entry(inode).or_insert_with(|| {
                let tcp = protocol(owner).is_some_and(|p| p.starts_with(b"TCP"));
                (tcp, generation)
            });
            if !tcp || first == generation {
                continue;
            }
            let same = *same_netns
                .entry(owner.pid)
                .or_insert_with(|| read(owner.pid));
            if same {
                *counts.entry(owner.pid).or_default() += 1;
            }
        }
        self.seen.retain(|inode, _| still.contains(inode));
        counts
    }
}

/// The protocol of the socket `owner` holds, as `lsof` names it (`TCP`,
/// `TCPv6`, `UDP`, `UNIX`, `NETLINK`...): its `system.sockprotoname`
/// attribute. None when the descriptor is gone or cannot be read.
pub fn protocol(owner: Owner) -> Option<Vec<u8>> {
    let path = format!("/proc/{}/fd/{}", owner.pid, owner.fd);
    let mut buf = [0u8; 32];
    let n = rustix::fs::getxattr(path.as_str(), "system.sockprotoname", &mut buf[..]).ok()?;
    Some(buf[..n].to_vec())
}

/// What the incremental scan reads of `/proc/PID/stat`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stat {
    /// Field 22: a reused pid has another one.
    start: u64,
    comm: Vec<u8>,
    /// PF_KTHREAD in field 9: no descriptors, in no thread either.
    kernel_thread: bool,
    /// Field 3; None when not read (the one-shot scan reads it later).
    state: Option<ProcState>,
}

/// `PF_KTHREAD` in the flags of `/proc/PID/stat`.
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// Fields counted after the `)` that ends the name (a name may hold spaces
/// and parentheses). None when the process is gone.
fn stat_of(pid_dir: &OwnedFd) -> Result<Option<Stat>, Errno> {
    let Some(stat) = read_at(pid_dir, "stat")? else {
        return Ok(None);
    };
    let parse = || {
        let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
        let fields: Vec<&str> = std::str::from_utf8(after)
            .ok()?
            .split_whitespace()
            .collect();
        let flags: u64 = fields.get(6)?.parse().ok()?;
        Some(Stat {
            start: fields.get(19)?.parse().ok()?,
            comm: super::proc_info::stat_comm(&stat)?.to_vec(),
            kernel_thread: flags & PF_KTHREAD != 0,
            state: Some(ProcState::from_letter(*fields.first()?.as_bytes().first()?)),
        })
    };
    Ok(parse())
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Name, command line and uid, read relative to the pid's directory fd.
///
/// `comm` and `cmdline` are read as bytes: procfs's `cmdline()` fails on a
/// command line that is not UTF-8, and those are exactly the ones to show.
fn read_process(pid_dir: &OwnedFd, pid: u32) -> std::io::Result<Option<Process>> {
    let comm = match read_at(pid_dir, "comm") {
        Ok(Some(comm)) => comm,
        Ok(None) => return Ok(None),
        Err(e) => return Err(failure(pid, "comm", e)),
    };
    // The kernel ends comm with one newline; a name may hold more of its own.
    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
    let cmdline = match read_at(pid_dir, "cmdline") {
        Ok(cmdline) => cmdline.unwrap_or_default(),
        Err(e) => return Err(failure(pid, "cmdline", e)),
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // The real uid from status, as the kill dialog reads it: fstat of
    // /proc/PID gives the effective one (root for a set-uid-root program
    // another user started), and files under /proc/PID belong to root when
    // the process is not dumpable.
    let uid = match read_at(pid_dir, "status") {
        Ok(status) => status.as_deref().and_then(super::proc_info::status_uid),
        Err(e) => return Err(failure(pid, "status", e)),
    }
    .or_else(|| rustix::fs::fstat(pid_dir).ok().map(|st| st.st_uid));
    Ok(Some(Process {
        pid,
        name: String::from_utf8_lossy(comm).into_owned(),
        cmdline: args.join(" "),
        uid,
        user: None,
        closed_sockets: 0,
        state: None,
        netns: crate::model::HOST_NETNS,
    }))
}

/// The file's bytes; None when the process is gone. Errors only when the
/// scan itself cannot go on (see [`scan_failed`]).
fn read_at(dir: &OwnedFd, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    use std::io::Read;
    let fd = match openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if scan_failed(e) => return Err(e),
        Err(_) => return Ok(None),
    };
    let mut file = std::fs::File::from(fd);
    let mut buf = Vec::with_capacity(256);
    Ok(file.read_to_end(&mut buf).ok().map(|_| buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links_parse_and_others_do_not() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
    }

    #[test]
    fn start_time_reads_past_a_name_with_parentheses_and_spaces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stat"),
            "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 100",
        )
        .unwrap();
        let fd = openat(
            rustix::fs::CWD,
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        assert_eq!(
            stat_of(&fd),
            Ok(Some(Stat {
                start: 98765,
                comm: b"a) b (c".to_vec(),
                kernel_thread: false,
                state: Some(ProcState::Sleeping),
            }))
        );
        std::fs::write(
            dir.path().join("stat"),
            "7 (x) y) T 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 1 1",
        )
        .unwrap();
        assert_eq!(
            stat_of(&fd).unwrap().unwrap().state,
            Some(ProcState::Stopped)
        );
        // kthreadd: PF_KTHREAD (0x200000) in the flags.
        std::fs::write(
            dir.path().join("stat"),
            "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
        )
        .unwrap();
        assert!(stat_of(&fd).unwrap().unwrap().kernel_thread);
    }

    /// A python3 child running `script`, its stdin and stdout piped.
    fn python(script: &str) -> std::process::Child {
        std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3")
    }

    #[test]
    fn tracker_reads_every_table_only_when_a_process_that_held_nothing_holds_a_socket() {
        use std::io::{BufRead, Write};
        let mut child = python(
            "import socket, sys\n\
                 sys.stdin.readline()\n\
                 s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                 print(s.getsockname()[1], flush=True)\n\
                 sys.stdin.readline()",
        );
        let pid = child.id();
        let mut tracker = OwnerTracker::default();
        let none = InodeSet::default();
        tracker.scan(2, &none).unwrap();
        assert_eq!(tracker.listings, 1, "the first scan reads every table");
        // Until a socket turns up that no holder holds, the child (no
        // socket) is not read again.
        tracker.scan(2, &none).unwrap();
        assert_eq!(tracker.listings, 1);
        assert!(tracker.procs.get(&pid).is_some_and(|t| t.info.is_none()));

        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let inode = {
            let mut out = Vec::new();
            crate::collect::netlink::Dumper::open()
                .unwrap()
                .dump(
                    crate::collect::netlink::DumpRequest {
                        proto: crate::model::Proto::Tcp,
                        family: crate::model::Family::V4,
                        tcp_info: false,
                    },
                    &mut out,
                )
                .unwrap();
            out.iter()
                .find(|s| s.local.port() == port && s.state == crate::model::TcpState::Listen)
                .expect("the child's listener")
                .inode
        };
        let live: InodeSet = [inode].into_iter().collect();
        let scan = tracker.scan(2, &live).unwrap();
        assert!(
            scan.holders
                .iter()
                .any(|(i, o)| *i == inode && o.pid == pid),
            "the child's new listener is found: {:?}",
            scan.holders
        );
        assert_eq!(tracker.listings, 2, "by reading every table once");
        // Now a holder, the child is read on every scan.
        let scan = tracker.scan(2, &live).unwrap();
        assert!(
            scan.holders
                .iter()
                .any(|(i, o)| *i == inode && o.pid == pid)
        );
        assert_eq!(tracker.listings, 2);
        drop(stdin);
        child.wait().unwrap();
    }

    #[test]
    fn tracker_takes_unchanged_tables_as_they_were_and_catches_a_file_swapped_for_a_socket() {
        use std::io::{BufRead, Write};
        // A listener and a file; on a line, the file's descriptor becomes a
        // new listener (dup2), so the table keeps its count.
        let mut child = python(
            "import socket, sys, os\n\
                 a = socket.socket(); a.bind(('127.0.0.1', 0)); a.listen()\n\
                 f = open('/dev/null')\n\
                 print(a.fileno(), f.fileno(), flush=True)\n\
                 sys.stdin.readline()\n\
                 b = socket.socket(); b.bind(('127.0.0.1', 0)); b.listen()\n\
                 os.dup2(b.fileno(), f.fileno()); b.close()\n\
                 print('swapped', flush=True)\n\
                 sys.stdin.readline()",
        );
        let pid = child.id();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let fds: Vec<u32> = line
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        let inode_at = |fd: u32| {
            let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
            socket_inode(link.to_string_lossy().as_bytes())
        };
        let a = inode_at(fds[0]).expect("a socket");
        let held = |scan: &OwnerScan, inode: u64, fd: u32| {
            scan.holders
                .iter()
                .any(|(i, o)| *i == inode && *o == Owner { pid, fd })
        };

        let mut tracker = OwnerTracker::default();
        let live: InodeSet = [a].into_iter().collect();
        let first = tracker.scan(2, &live).unwrap();
        assert!(held(&first, a, fds[0]));
        assert_eq!(tracker.listings, 1);
        let second = tracker.scan(2, &live).unwrap();
        assert!(
            held(&second, a, fds[0]),
            "a reused table still names its holder"
        );
        assert!(
            second.reused_tables.contains(&pid),
            "the child's unchanged table is not read"
        );

        writeln!(stdin).unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "swapped");
        let b = inode_at(fds[1]).expect("the file's descriptor is a socket now");
        let live: InodeSet = [a, b].into_iter().collect();
        let third = tracker.scan(2, &live).unwrap();
        assert!(
            held(&third, b, fds[1]),
            "the socket behind a descriptor that was a file is found: {:?}",
            third
                .holders
                .iter()
                .filter(|(_, o)| o.pid == pid)
                .collect::<Vec<_>>()
        );
        assert!(held(&third, a, fds[0]));
        assert_eq!(tracker.listings, 2, "by one read of every table");
        drop(stdin);
        child.wait().unwrap();
    }

    #[test]
    fn tracker_sees_sockets_opened_after_its_first_scan() {
        let me = std::process::id();
        let inode_of = |l: &std::net::TcpListener| {
            use std::os::fd::AsRawFd;
            let link = std::fs::read_link(format!("/proc/self/fd/{}", l.as_raw_fd())).unwrap();
            socket_inode(link.to_string_lossy().as_bytes()).unwrap()
        };
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut tracker = OwnerTracker::default();
        let live: InodeSet = [inode_of(&a)].into_iter().collect();
        let first = tracker.scan(2, &live).unwrap();
        assert!(
            first
                .holders
                .iter()
                .any(|(i, o)| *i == inode_of(&a) && o.pid == me)
        );
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let live: InodeSet = [inode_of(&a), inode_of(&b)].into_iter().collect();
        let second = tracker.scan(2, &live).unwrap();
        for l in [&a, &b] {
            assert!(
                second
                    .holders
                    .iter()
                    .any(|(i, o)| *i == inode_of(l) && o.pid == me)
            );
        }
        drop(b);
        // Usually takes b's fd number, whose cached inode is gone.
        let c = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd_c = {
            use std::os::fd::AsRawFd;
            c.as_raw_fd() as u32
        };
        let live: InodeSet = [inode_of(&a), inode_of(&c)].into_iter().collect();
        let third = tracker.scan(2, &live).unwrap();
        let c_owner = third
            .holders
            .iter()
            .find(|(i, _)| *i == inode_of(&c))
            .map(|(_, o)| *o);
        assert_eq!(
            c_owner,
            Some(Owner { pid: me, fd: fd_c }),
            "a reused fd number is read again"
        );
    }

    #[test]
    fn a_tcp_socket_in_no_table_counts_once_seen_twice_and_not_before() {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
        use std::os::fd::AsRawFd;
        // Created and never bound: a TCP socket no socket table lists, as a
        // destroyed connection's descriptor is.
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let inode = socket_inode(link.to_string_lossy().as_bytes()).unwrap();
        let me = std::process::id();
        let outside = [(
            inode,
            Owner {
                pid: me,
                fd: fd.as_raw_fd() as u32,
            },
        )];
        let mut closed = ClosedSockets::default();
        assert_eq!(
            closed.count(&outside, |_| true).get(&me),
            None,
            "first sight: maybe just opened"
        );
        assert_eq!(closed.count(&outside, |_| true).get(&me), Some(&1));
        // A unix socket outside the table is not a closed TCP socket.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", a.as_raw_fd())).unwrap();
        let unix = socket_inode(link.to_string_lossy().as_bytes()).unwrap();
        let both = [
            outside[0],
            (
                unix,
                Owner {
                    pid: me,
                    fd: a.as_raw_fd() as u32,
                },
            ),
        ];
        closed.count(&both, |_| true);
        assert_eq!(closed.count(&both, |_| true).get(&me), Some(&1));
    }

    #[test]
    fn scan_finds_this_processs_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = {
            use std::os::fd::AsRawFd;
            let link =
                std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
            socket_inode(link.to_string_lossy().as_bytes()).unwrap()
        };
        let scan = scan(2).unwrap();
        let me = std::process::id();
        assert!(
            scan.holders.iter().any(|(i, o)| *i == inode && o.pid == me),
            "own listener attributed to own pid"
        );
        assert!(scan.processes.contains_key(&me));
    }
}
