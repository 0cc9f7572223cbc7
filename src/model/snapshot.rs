//! One immutable picture of the machine's sockets at an instant.

use super::holders::Holders;
use super::socket::{Process, Socket};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

/// Where the socket table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Netlink,
    Proc,
    Fixture,
}

/// Kernel-wide counters and settings that explain socket behaviour.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SystemContext {
    /// `/proc/net/snmp` and `/proc/net/netstat`, keyed `Tcp.RetransSegs`, `TcpExt.ListenOverflows`, ...
    pub counters: BTreeMap<String, u64>,
    /// `/proc/net/sockstat` and `sockstat6`, keyed `TCP.inuse`, `TCP.tw`, `UDP6.inuse`, ...
    pub sockstat: BTreeMap<String, u64>,
    /// Connection-lifetime sysctls, keyed by their dotted name (`net.ipv4.tcp_fin_timeout`).
    /// Values are kept as text because some hold several numbers (`ip_local_port_range`).
    pub sysctls: BTreeMap<String, String>,
}

impl SystemContext {
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters.get(name).copied()
    }

    /// A sysctl whose value is one integer.
    pub fn sysctl_u64(&self, name: &str) -> Option<u64> {
        self.sysctls.get(name)?.trim().parse().ok()
    }

    /// `net.ipv4.ip_local_port_range` as (low, high).
    pub fn local_port_range(&self) -> Option<(u16, u16)> {
        let v = self.sysctls.get("net.ipv4.ip_local_port_range")?;
        let mut it = v.split_whitespace().map(|p| p.parse::<u16>());
        match (it.next(), it.next()) {
            (Some(Ok(lo)), Some(Ok(hi))) => Some((lo, hi)),
            _ => None,
        }
    }
}

/// What the owner scan could not see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attribution {
    /// Processes whose fd table could not be read (not root, no CAP_SYS_PTRACE).
    pub unreadable_processes: usize,
    /// Sockets with an inode that no fd table read refers to, whatever the
    /// cause (an unreadable table, a thread's private fd table, the kernel,
    /// a socket that changed hands during the scan): [`Attribution::note`]
    /// tells the causes apart.
    pub unattributed_sockets: usize,
    /// The scan ran as root: missing owners are not a matter of privileges.
    pub as_root: bool,
    /// `/proc` is mounted with `hidepid=` and hides processes from this
    /// scan: their sockets show without owners, and no fd table says so.
    pub hidden_pids: bool,
}

impl Attribution {
    /// The one-line note shown when owners are missing, or None when every
    /// owner is known. It states the true counts and the cause that fits.
    pub fn note(&self) -> Option<String> {
        let sockets = match self.unattributed_sockets {
            0 => None,
            1 => Some("1 socket has".to_string()),
            n => Some(format!("{n} sockets have")),
        };
        let processes = match self.unreadable_processes {
            0 => None,
            1 => Some("1 process".to_string()),
            n => Some(format!("{n} processes")),
        };
        let unreadable_why = if self.as_root {
            "a security module or another namespace's ptrace policy refuses even root"
        } else {
            "only root or their owner can read them: run as root to see their owners"
        };
        // hidepid= hides processes from the scan: their sockets have no
        // owner, and no unreadable table says why.
        let hidden = if self.hidden_pids {
            "; /proc is mounted with hidepid=, which hides other users' processes \
             (run as root, or in the group its gid= option names, to see their owners)"
        } else {
            ""
        };
        // As root, sockets no table refers to are mostly not a matter of access.
        let one = self.unattributed_sockets == 1;
        let elsewhere = format!(
            "{} held by a thread with its own fd table (cloned without CLONE_FILES), by the \
             kernel, or changed hands during the scan",
            if one { "it is" } else { "they are" }
        );
        let note = match (sockets, processes) {
            (None, None) if !self.hidden_pids => return None,
            (None, None) => "some processes are hidden from this scan".to_string(),
            (None, Some(p)) => format!(
                "the fd tables of {p} could not be read ({unreadable_why}); every socket in view was attributed"
            ),
            (Some(s), Some(p)) if !self.as_root => format!(
                "{s} no known owner: the fd tables of {p} could not be read ({unreadable_why})"
            ),
            (Some(s), Some(p)) => format!(
                "{s} no known owner: the fd tables of {p} could not be read ({unreadable_why}), or {elsewhere}"
            ),
            (Some(s), None) if self.hidden_pids => format!("{s} no known owner"),
            (Some(s), None) => format!("{s} no known owner: {elsewhere}"),
        };
        Some(format!("{note}{hidden}"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The wall clock at the dump: for display and recordings only.
    pub taken_at: SystemTime,
    /// A steady clock at the dump (`CLOCK_BOOTTIME` for live samples; for
    /// fixtures and recordings, `taken_at` since the epoch). Every age, rate
    /// and growth is measured on it, so a wall-clock step (NTP, a resume
    /// from suspend seen as a jump) changes no figure.
    pub monotonic: Duration,
    pub source: SourceKind,
    /// Why the socket table came from another source than asked for
    /// (netlink failed under `auto`), and what that leaves out.
    pub source_note: Option<String>,
    pub sockets: Vec<Socket>,
    pub processes: HashMap<u32, Process>,
    /// User names of the uids that appear on sockets and processes.
    pub users: HashMap<u32, String>,
    pub attribution: Attribution,
    pub system: SystemContext,
    /// Shared holders, services and accept queues, derived on first use.
    pub derived: Derived,
    /// The transitions of the interval this sample ends (live, when they
    /// are followed; in a replay, when the recording has them).
    pub transitions: Option<std::sync::Arc<crate::trace::Window>>,
    /// The other network namespaces whose sockets are in `sockets`.
    pub namespaces: super::netns::Namespaces,
    /// When this machine's own table was not dumped for this sample but
    /// reused, the steady clock (as `monotonic`) at the dump it comes from:
    /// the kernel's counters had not moved since (see
    /// [`crate::collect::idle`]).
    pub reused_table: Option<Duration>,
}

/// What is derived from a snapshot's sockets, computed once on first use.
/// A clone starts empty (it may be changed before use); equality ignores it.
#[derive(Default)]
pub struct Derived(std::sync::OnceLock<Holders>);

impl Clone for Derived {
    fn clone(&self) -> Self {
        Derived::default()
    }
}

impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

impl Snapshot {
    /// Who really holds each socket: shared holders, services, accept queues.
    /// Built on first use from the sockets as they are then.
    pub fn holders(&self) -> &Holders {
        self.derived.0.get_or_init(|| Holders::build(self))
    }

    pub fn empty(source: SourceKind) -> Snapshot {
        Snapshot {
            taken_at: SystemTime::UNIX_EPOCH,
            monotonic: Duration::ZERO,
            source,
            source_note: None,
            sockets: Vec::new(),
            processes: HashMap::new(),
            users: HashMap::new(),
            attribution: Attribution::default(),
            system: SystemContext::default(),
            derived: Derived::default(),
            transitions: None,
            namespaces: Default::default(),
            reused_table: None,
        }
    }

    /// Sets both clocks to `at` (fixtures, recordings: their steady clock is
    /// the wall clock).
    pub fn set_taken_at(&mut self, at: SystemTime) {
        self.taken_at = at;
        self.monotonic = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
    }

    /// Moves both clocks by `by`, as time passing between two samples does.
    pub fn advance(&mut self, by: Duration) {
        self.taken_at += by;
        self.monotonic += by;
    }

    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.get(&uid).map(String::as_str)
    }

    /// The name of a socket's holder (the listener's, for a connection in
    /// its accept queue), if known.
    pub fn owner_name(&self, socket: &Socket) -> Option<&str> {
        let owner = super::holders::effective(self, socket).first()?;
        self.processes.get(&owner.pid).map(|p| p.name.as_str())
    }
}
