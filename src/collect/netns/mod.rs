//! The sockets of every other network namespace (containers, pods,
//! `ip netns`), attributed like the host's.
//!
//! Each namespace is dumped with its own `NETLINK_SOCK_DIAG` socket, made
//! once by a thread that entered it ([`enter`]); the `/proc/PID/net` files of
//! a process inside are the fallback (`--source proc`, or no privilege to
//! enter). Socket inodes are global, so the owner scan's join works
//! unchanged.
//!
//! The kernel keeps one TCP hash for all namespaces, so every namespace's
//! dump walks every socket of the machine. A namespace whose own counters
//! (`snmp`, and `sockstat`'s in-use and TIME_WAIT counts: its orphan,
//! alloc and mem figures are the machine's) have not moved since its last
//! dump has had no segment in or out, no socket opened or closed and no
//! TIME_WAIT expire: its last table is reused instead of walking the hash
//! again, up to [`MAX_REUSE`] old.
//!
//! A namespace is followed while a process is in it or a bind mount keeps
//! it; our handles on it (its fd, the netlink socket, the counter files)
//! are dropped at the first refresh that no longer finds it, so sockscope
//! keeps no namespace alive.

pub mod discover;
pub mod enter;

use super::container::{self, Roots};
use super::counters::Counters;
use super::netlink::{self, DumpRequest, Dumper};
use super::{SourceChoice, procnet, system};
use crate::model::{Family, NamespaceInfo, Namespaces, Proto, Socket, SystemContext};
use discover::Discovery;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

/// A namespace's unchanged table is reused at most this long. What moves
/// no counter: accept() (the collector sees the new descriptor's inode
/// missing from the reused table and dumps the namespace again, see
/// [`Follower::redump`]), a write that waits for window, a UDP connect().
pub const MAX_REUSE: Duration = Duration::from_secs(600);

/// At most this many namespaces are dumped again for their age alone in one
/// refresh (they would all come due together otherwise).
const AGED_PER_REFRESH: usize = 4;

/// A namespace's receive buffer for dumps: its table is usually small.
const NS_RECV_BUF: usize = 64 << 10;

/// What one refresh of the other namespaces is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub source: SourceChoice,
    pub tcp_info: bool,
    /// The steady clock now (for reuse ages).
    pub now: Duration,
}

/// Handles on the namespaces followed, kept between refreshes.
#[derive(Default)]
pub struct Follower {
    handles: HashMap<u64, Handle, foldhash::fast::RandomState>,
    roots: Roots,
    /// Refreshes that reused a table / dumped one (for tests and benches).
    pub reused: u64,
    /// The namespaces whose table the last refresh reused.
    reused_now: std::collections::HashSet<u64, foldhash::fast::RandomState>,
    /// Namespaces dumped for their age alone in this refresh.
    aged_now: usize,
    pub dumped: u64,
}

struct Handle {
    ns: Arc<OwnedFd>,
    dumper: Option<Dumper>,
    /// Its counter files, opened inside.
    counters: Counters,
    last: Option<Last>,
    /// Whose identity was read, and what it is.
    identity: Option<(u32, container::Identity)>,
}

struct Last {
    signature: u64,
    at: Duration,
    sockets: Vec<Socket>,
    source: &'static str,
}

impl Follower {
    pub fn new() -> Follower {
        Follower::default()
    }

    /// With the runtimes' metadata under another root (tests).
    pub fn with_roots(roots: Roots) -> Follower {
        Follower {
            roots,
            ..Follower::default()
        }
    }

    /// The sockets of every namespace `found` lists, each tagged with its
    /// namespace, appended to `out`; and what is known of each namespace.
    pub fn collect(&mut self, found: &Discovery, ask: Ask, out: &mut Vec<Socket>) -> Namespaces {
        // Namespaces gone since the last refresh: let go of them.
        self.handles.retain(|ino, _| found.found.contains_key(ino));
        self.reused_now.clear();
        self.aged_now = 0;
        let mut list = BTreeMap::new();
        for (&inode, f) in &found.found {
            let mut info = NamespaceInfo {
                inode,
                pids: f
                    .pids
                    .iter()
                    .copied()
                    .take(NamespaceInfo::PIDS_KEPT)
                    .collect(),
                processes: f.pids.len(),
                mount: f.mounts.first().cloned(),
                ..NamespaceInfo::default()
            };
            let before = out.len();
            match self.read_one(inode, f, ask, &mut info, out) {
                Ok(()) => {}
                // Gone since the discovery (its last process exited, its
                // mount was removed): not a namespace we failed to read.
                Err(_) if !still_there(f) => {
                    out.truncate(before);
                    self.handles.remove(&inode);
                    continue;
                }
                Err(e) => {
                    out.truncate(before);
                    info.error = Some(e);
                }
            }
            for s in &mut out[before..] {
                s.netns = inode;
            }
            info.sockets = out.len() - before;
            self.name(inode, f, &mut info);
            list.insert(inode, info);
        }
        Namespaces {
            list: Arc::new(list),
            unreadable: 0,
            unknown_processes: found.unknown_processes,
        }
    }

    /// Reads one namespace's table (or reuses it) and counters.
    fn read_one(
        &mut self,
        inode: u64,
        f: &discover::Found,
        ask: Ask,
        info: &mut NamespaceInfo,
        out: &mut Vec<Socket>,
    ) -> Result<(), String> {
        let h = match self.handles.entry(inode) {
            std::collections::hash_map::Entry::Occupied(h) => h.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match open_handle(inode, f) {
                Ok(h) => v.insert(h),
                Err(e) => {
                    // Not ours to enter: the files of a process inside may
                    // still be readable.
                    if ask.source == SourceChoice::Netlink {
                        return Err(e);
                    }
                    return read_via_pid(f, info, out).map_err(|pe| format!("{e}; {pe}"));
                }
            },
        };
        if h.counters.sysctls_due(ask.now) {
            let sysctls = read_sysctls(&h.ns);
            h.counters.set_sysctls(sysctls, ask.now);
        }
        let (system, signature) = h.counters.read();
        info.system = system;
        let age = h.last.as_ref().map(|l| ask.now.saturating_sub(l.at));
        let aged = age.is_some_and(|a| a >= MAX_REUSE) && self.aged_now < AGED_PER_REFRESH;
        if let (Some(last), Some(age)) = (&h.last, age)
            && last.signature == signature
            && !aged
        {
            // Timers count down meanwhile (a TIME_WAIT's time left).
            let gone = age.as_millis() as u64;
            out.extend(last.sockets.iter().map(|s| {
                let mut s = s.clone();
                if let Some(t) = &mut s.timer {
                    t.expires_ms = t.expires_ms.map(|ms| ms.saturating_sub(gone));
                }
                s
            }));
            info.source = Some(last.source.into());
            self.reused += 1;
            self.reused_now.insert(inode);
            return Ok(());
        }
        if aged && h.last.as_ref().is_some_and(|l| l.signature == signature) {
            self.aged_now += 1;
        }
        let before = out.len();
        let source = h.dump(ask, f, out)?;
        self.dumped += 1;
        info.source = Some(source.into());
        h.last = Some(Last {
            signature,
            at: ask.now,
            sockets: out[before..].to_vec(),
            source,
        });
        Ok(())
    }

    /// One socket of a followed namespace, asked of the kernel from inside
    /// it (the focused connection's fresh `tcp_info`).
    pub fn query(&mut self, socket: &Socket) -> Option<Socket> {
        let h = self.handles.get_mut(&socket.netns)?;
        if h.dumper.is_none() {
            h.dumper = Dumper::open_in(Arc::clone(&h.ns), NS_RECV_BUF).ok();
        }
        let mut found = h.dumper.as_mut()?.query(socket).ok().flatten()?;
        found.netns = socket.netns;
        Some(found)
    }

    /// Whether the last refresh reused this namespace's table.
    pub fn was_reused(&self, inode: u64) -> bool {
        self.reused_now.contains(&inode)
    }

    /// Dumps a namespace whose reused table turned out stale (a process in
    /// it holds a socket the table lacks: an accept() since) into `out`,
    /// each socket tagged; the number of sockets, or None when it could not
    /// be read now.
    pub fn redump(
        &mut self,
        inode: u64,
        found: &Discovery,
        ask: Ask,
        out: &mut Vec<Socket>,
    ) -> Option<usize> {
        let f = found.found.get(&inode)?;
        let h = self.handles.get_mut(&inode)?;
        let before = out.len();
        let source = match h.dump(ask, f, out) {
            Ok(source) => source,
            Err(_) => {
                out.truncate(before);
                return None;
            }
        };
        self.dumped += 1;
        self.reused_now.remove(&inode);
        for s in &mut out[before..] {
            s.netns = inode;
        }
        if let Some(last) = &mut h.last {
            last.sockets = out[before..].to_vec();
            last.at = ask.now;
            last.source = source;
        }
        Some(out.len() - before)
    }

    /// Names the namespace after what runs in it.
    fn name(&mut self, inode: u64, f: &discover::Found, info: &mut NamespaceInfo) {
        let first = f.pids.first().copied();
        let ident = match (self.handles.get_mut(&inode), first) {
            (Some(h), Some(pid)) => {
                if h.identity.as_ref().is_none_or(|(p, _)| *p != pid) {
                    h.identity = Some((pid, container::identify_pid(pid, &self.roots)));
                }
                h.identity.as_ref().map(|(_, i)| i.clone())
            }
            (None, Some(pid)) => Some(container::identify_pid(pid, &self.roots)),
            _ => None,
        }
        .unwrap_or_default();
        info.name = display_name(inode, &ident, info.mount.as_deref());
        info.runtime = ident.runtime.map(|r| r.name().to_string());
        info.container_id = ident.container_id.clone();
        info.container = ident.container.clone();
        info.pod = ident
            .pod
            .as_ref()
            .map(|p| format!("{}/{}", p.namespace, p.name));
        info.hostname = ident.hostname.clone();
    }
}

/// Whether anything that kept the namespace is still there.
fn still_there(f: &discover::Found) -> bool {
    f.pids
        .iter()
        .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        || f.mounts.iter().any(|m| std::path::Path::new(m).exists())
}

/// What a namespace is called: the pod (`namespace/name`: a pod's
/// containers share its network namespace), the container's name, the
/// `/run/netns` name, `runtime:shortid`, the container's hostname, or
/// `netns:INODE`.
pub fn display_name(inode: u64, ident: &container::Identity, mount: Option<&str>) -> String {
    if let Some(p) = &ident.pod {
        return format!("{}/{}", p.namespace, p.name);
    }
    if let Some(c) = &ident.container {
        return c.clone();
    }
    if let Some(m) = mount
        .and_then(|m| m.rsplit('/').next())
        .filter(|m| !m.is_empty())
    {
        return m.to_string();
    }
    if let (Some(r), Some(id)) = (ident.runtime, &ident.container_id) {
        return format!("{}:{}", r.name(), id.chars().take(12).collect::<String>());
    }
    if ident.runtime.is_some()
        && let Some(h) = &ident.hostname
    {
        return h.clone();
    }
    format!("netns:{inode}")
}

/// Opens the network namespace with this inode, wherever a process in it or
/// a bind mount of it is found now (the actions' way in: SOCK_DESTROY must
/// come from a netlink socket made inside).
pub fn open_namespace(inode: u64) -> Result<Arc<OwnedFd>, String> {
    let found = discover::discover();
    let f = found
        .found
        .get(&inode)
        .ok_or_else(|| format!("network namespace {inode} is gone"))?;
    open_fd(inode, f)
}

/// The namespace's fd, from a process in it or a bind mount, checked to be
/// the one with this inode (a pid may have been reused since).
fn open_fd(inode: u64, f: &discover::Found) -> Result<Arc<OwnedFd>, String> {
    let paths = f
        .pids
        .iter()
        .map(|p| format!("/proc/{p}/ns/net"))
        .take(4)
        .chain(f.mounts.iter().cloned());
    let mut last_err = "no process or mount of it is left".to_string();
    for path in paths {
        match File::open(&path) {
            Ok(file) if file.metadata().map(|m| m.ino()).ok() == Some(inode) => {
                return Ok(Arc::new(file.into()));
            }
            Ok(_) => last_err = format!("{path} is another namespace now"),
            Err(e) => last_err = format!("cannot open {path}: {e}"),
        }
    }
    Err(last_err)
}

/// Opens the namespace (from a process in it, else a bind mount), checks
/// it is the one found, and makes its dumper and counter files inside.
fn open_handle(inode: u64, f: &discover::Found) -> Result<Handle, String> {
    let ns = open_fd(inode, f)?;
    let counters = enter::run_in(ns.as_fd(), || Counters::open("/proc/thread-self/net"))
        .map_err(|e| enter_error(&e))?;
    Ok(Handle {
        ns,
        dumper: None,
        counters,
        last: None,
        identity: None,
    })
}

fn enter_error(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::EPERM) {
        "entering a network namespace needs CAP_SYS_ADMIN: run as root".into()
    } else {
        format!("cannot enter it: {e}")
    }
}

impl Handle {
    /// Dumps the table, by netlink where it can.
    fn dump(
        &mut self,
        ask: Ask,
        f: &discover::Found,
        out: &mut Vec<Socket>,
    ) -> Result<&'static str, String> {
        if ask.source != SourceChoice::Proc {
            match self.netlink(ask.tcp_info, out) {
                Ok(()) => return Ok("netlink"),
                Err(e) if ask.source == SourceChoice::Netlink => return Err(e.to_string()),
                Err(_) => self.dumper = None,
            }
        }
        // /proc/thread-self/net of a thread inside, or a process's files.
        let ns = Arc::clone(&self.ns);
        let mut got = Vec::new();
        let inside = enter::run_in(ns.as_fd(), || {
            procnet::read_from("/proc/thread-self/net", &mut got).map(|_| got)
        });
        match inside {
            Ok(Ok(sockets)) => {
                out.extend(sockets);
                Ok("proc")
            }
            _ => {
                let mut info = NamespaceInfo::default();
                read_via_pid(f, &mut info, out)?;
                Ok("proc")
            }
        }
    }

    fn netlink(
        &mut self,
        tcp_info: bool,
        out: &mut Vec<Socket>,
    ) -> Result<(), netlink::NetlinkError> {
        if self.dumper.is_none() {
            self.dumper = Some(Dumper::open_in(Arc::clone(&self.ns), NS_RECV_BUF)?);
        }
        let dumper = self.dumper.as_mut().expect("opened above");
        let before = out.len();
        // TCP in one walk of the kernel's hash for both families, where
        // the kernel still answers the legacy request.
        let tcp_both = dumper.dump_tcp_both_families(tcp_info, out).is_ok();
        if !tcp_both {
            out.truncate(before);
        }
        for proto in [Proto::Tcp, Proto::Udp] {
            if proto == Proto::Tcp && tcp_both {
                continue;
            }
            for family in [Family::V4, Family::V6] {
                let req = DumpRequest {
                    proto,
                    family,
                    tcp_info,
                };
                if let Err(e) = dumper.dump(req, out) {
                    out.truncate(before);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// The tables of a process inside, from `/proc/PID/net` (no need to enter).
fn read_via_pid(
    f: &discover::Found,
    info: &mut NamespaceInfo,
    out: &mut Vec<Socket>,
) -> Result<(), String> {
    let Some(&pid) = f.pids.first() else {
        return Err("no process in it to read /proc/PID/net of".into());
    };
    procnet::read_from(&format!("/proc/{pid}/net"), out).map_err(|e| e.to_string())?;
    info.source = Some("proc".into());
    let mut sys = SystemContext::default();
    for (file, counters) in [
        ("snmp", true),
        ("netstat", true),
        ("sockstat", false),
        ("sockstat6", false),
    ] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) {
            if counters {
                system::parse_counter_pairs(&text, &mut sys.counters);
            } else {
                system::parse_sockstat(&text, &mut sys.sockstat);
            }
        }
    }
    info.system = Arc::new(sys);
    Ok(())
}

/// The namespace's own values of the sysctls sockscope reads.
fn read_sysctls(ns: &OwnedFd) -> BTreeMap<String, String> {
    enter::run_in(ns.as_fd(), system::read_sysctls).unwrap_or_default()
}
