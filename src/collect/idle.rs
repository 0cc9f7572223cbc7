//! The host's socket table, reused while the kernel's counters stand still.
//!
//! Every dump walks the kernel's whole TCP hash (262,144 buckets on a
//! machine with a few GiB), about 3 ms whether it holds a thousand sockets
//! or a hundred thousand: on a quiet machine, the largest cost of a
//! refresh. When the host's `snmp` and `snmp6` (every segment and datagram
//! in or out, every connection opened) and its socket counts in use and in
//! TIME_WAIT have not moved since the last dump, no socket changed state,
//! none came or went, and no byte was queued or taken by a segment: that
//! table, its timers and `tcp_info` ages moved on, stands for a new dump,
//! up to [`HOST_REUSE`] old.
//!
//! What moves no counter:
//! - `accept()` takes a connection off a listener's queue: the owner scan
//!   then finds a descriptor whose socket is in no table, and the table is
//!   dumped again at once ([`IdleTable::stale`]);
//! - an application reading what was queued without the window update
//!   that sends a segment, or writing into a closed window: Recv-Q and
//!   Send-Q stand still in the reused table, for [`HOST_REUSE`] at most;
//!
//! - a `connect()` of a bound UDP socket, which changes its remote end.
//!
//! A table is reused only when an owner scan followed its dump, so that a
//! later scan can see such a descriptor. A process whose descriptors cannot
//! be read (not root) is not watched this way: a connection it accepts
//! shows up to [`HOST_REUSE`] late (its sockets have no visible owner
//! either way). Only the live monitor's incremental collections reuse,
//! and only tables of at most [`REUSE_LIMIT`] sockets are kept: above it
//! the counters move every second anyway.

use super::counters::Counters;
use crate::model::{Owner, Socket, SourceKind, SystemContext};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// A reused table is at most this old.
pub const HOST_REUSE: Duration = Duration::from_secs(5);

/// Tables of more sockets than this are not kept for reuse.
pub const REUSE_LIMIT: usize = super::TCP_INFO_LIMIT;

/// The host's counters, and its last table while it may be reused.
pub struct IdleTable {
    counters: Counters,
    last: Option<Last>,
    /// Tables of more sockets are not kept ([`REUSE_LIMIT`]).
    limit: usize,
    /// The sockets outside every table at the dump before the last one.
    outside_before: Inodes,
    /// Whether each socket held outside the table is a TCP or UDP one (one
    /// attribute read each, the first time): a process's unix and netlink
    /// sockets are in no table of ours, and new ones say nothing of it.
    inet: HashMap<u64, bool, foldhash::fast::RandomState>,
    /// Tables found stale by the owner scan and dumped again (tests).
    pub stale_found: u64,
}

struct Last {
    signature: u64,
    /// The steady clock at the dump.
    at: Duration,
    /// As dumped, without owners.
    sockets: Vec<Socket>,
    source: SourceKind,
    tcp_info: bool,
    /// Sockets held by a process of this namespace at the dump that were in
    /// no table (not bound yet, or closed): not a sign of staleness later.
    outside: Inodes,
    /// An owner scan followed the dump: only then can a later scan tell a
    /// reused table is stale ([`IdleTable::watched`]).
    watched: bool,
}

type Inodes = HashSet<u64, foldhash::fast::RandomState>;

/// A table taken from the last dump.
pub struct Reused {
    pub sockets: Vec<Socket>,
    pub source: SourceKind,
    /// The steady clock at that dump.
    pub at: Duration,
}

impl Default for IdleTable {
    fn default() -> Self {
        IdleTable::from_dir("/proc/net", REUSE_LIMIT)
    }
}

impl IdleTable {
    /// With the counter files under `dir` (see [`Counters::open`]), and
    /// tables of up to `limit` sockets kept.
    pub fn from_dir(dir: &str, limit: usize) -> IdleTable {
        IdleTable {
            counters: Counters::open(dir),
            last: None,
            limit,
            outside_before: Inodes::default(),
            inet: HashMap::default(),
            stale_found: 0,
        }
    }

    /// The host's counters, sockstat and sysctls now (sysctls read again
    /// every [`super::counters::SYSCTL_EVERY`]), and their signature.
    pub fn system(&mut self, now: Duration) -> (SystemContext, u64) {
        if self.counters.sysctls_due(now) {
            self.counters
                .set_sysctls(super::system::read_sysctls(), now);
        }
        let (system, signature) = self.counters.read();
        (SystemContext::clone(&system), signature)
    }

    /// The last table, its timers counted down to `now`, when it may stand
    /// for a dump now: the counters read now have `signature`, as they had
    /// at that dump, it is less than [`HOST_REUSE`] old, and it was asked
    /// with `tcp_info` as now.
    pub fn reuse(&self, signature: u64, now: Duration, tcp_info: bool) -> Option<Reused> {
        let last = self.last.as_ref()?;
        let age = now.checked_sub(last.at)?;
        if !last.watched
            || last.signature != signature
            || age >= HOST_REUSE
            || last.tcp_info != tcp_info
        {
            return None;
        }
        let gone = age.as_millis() as u64;
        let sockets = last
            .sockets
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if let Some(t) = &mut s.timer {
                    t.expires_ms = t.expires_ms.map(|ms| ms.saturating_sub(gone));
                }
                // And the time since the last data or ACK goes on.
                if let Some(info) = &mut s.tcp_info {
                    let later = |ms: u32| ms.saturating_add(gone as u32);
                    info.last_data_sent_ms = later(info.last_data_sent_ms);
                    info.last_data_recv_ms = later(info.last_data_recv_ms);
                    info.last_ack_recv_ms = later(info.last_ack_recv_ms);
                }
                s
            })
            .collect();
        Some(Reused {
            sockets,
            source: last.source,
            at: last.at,
        })
    }

    /// A table was dumped at `now` after the counters read `signature`:
    /// kept for reuse when it is small enough, else the last one is let go.
    /// It is not reused before [`IdleTable::watched`] says an owner scan
    /// followed it.
    pub fn dumped(
        &mut self,
        signature: u64,
        now: Duration,
        sockets: &[Socket],
        source: SourceKind,
        tcp_info: bool,
    ) {
        self.last = (sockets.len() <= self.limit).then(|| Last {
            signature,
            at: now,
            sockets: sockets.to_vec(),
            source,
            tcp_info,
            outside: Inodes::default(),
            watched: false,
        });
    }

    /// Whether an owner scan followed the table just dumped (`scanned`),
    /// and the sockets it found held by processes of this namespace outside
    /// the table (see [`Last::outside`]). The table may be reused only when
    /// there was a scan and every one of its TCP and UDP sockets outside
    /// was outside the table before too: a new one may be a connection
    /// accepted between the dump and the scan, whose socket the table has
    /// without its inode.
    pub fn watched(&mut self, scanned: bool, outside: impl IntoIterator<Item = (u64, Owner)>) {
        if self.last.is_none() {
            // No table kept (too large): nothing to watch, and no attribute
            // read per socket held outside it. The next table kept waits
            // for one more scan to confirm its outside sockets.
            self.inet.clear();
            self.outside_before.clear();
            return;
        }
        let held: Vec<(u64, Owner)> = outside.into_iter().collect();
        let still: Inodes = held.iter().map(|(i, _)| *i).collect();
        self.inet.retain(|i, _| still.contains(i));
        let outside: Inodes = held
            .into_iter()
            .filter(|&(i, o)| self.is_inet(i, o))
            .map(|(i, _)| i)
            .collect();
        let known = outside.iter().all(|i| self.outside_before.contains(i));
        if let Some(last) = &mut self.last {
            last.watched = scanned && known;
            last.outside = outside.clone();
        }
        self.outside_before = outside;
    }

    /// Whether a reused table is stale: `owner`, a process of this
    /// namespace, holds `inode`, a TCP or UDP socket that the table lacks
    /// and that was not outside every table at the dump either (an
    /// `accept()` since, which moves no counter).
    pub fn stale(&mut self, inode: u64, owner: Owner) -> bool {
        self.last
            .as_ref()
            .is_some_and(|l| !l.outside.contains(&inode))
            && self.is_inet(inode, owner)
    }

    /// Whether `owner`'s socket `inode` is a TCP or UDP one (see
    /// [`IdleTable::inet`]); one that cannot be read counts as one.
    fn is_inet(&mut self, inode: u64, owner: Owner) -> bool {
        *self.inet.entry(inode).or_insert_with(|| {
            super::owners::protocol(owner)
                .is_none_or(|p| p.starts_with(b"TCP") || p.starts_with(b"UDP"))
        })
    }

    /// Lets the last table go: the next collection dumps.
    pub fn forget(&mut self) {
        self.last = None;
    }
}
