//! The host's socket table, reused while the kernel's counters stand still.
//!
//! Every dump walks the kernel's whole TCP hash (262,144 buckets on a
//! machine with a few GiB), about 3 ms whether it holds a thousand sockets
//! or a hundred thousand: on a quiet machine, the largest cost of a
//! refresh. When the host's `snmp` (every segment and datagram in or out,
//! every connection opened) and its socket counts in use and in TIME_WAIT
//! have not moved since the last dump, no socket changed state, none came
//! or went, and no byte was queued or taken by a segment: that table, its
//! timers counted down, stands for a new dump, up to [`HOST_REUSE`] old.
//!
//! What moves no counter:
//! - `accept()` takes a connection off a listener's queue: the owner scan
//!   then finds a descriptor whose socket is in no table, and the table is
//!   dumped again at once ([`IdleTable::stale`]);
//! - an application reading what was queued without the window update
//!   that sends a segment, or writing into a closed window: Recv-Q and
//!   Send-Q stand still in the reused table, for [`HOST_REUSE`] at most.
//!
//! Only the live monitor's incremental collections reuse, and only tables
//! of at most [`REUSE_LIMIT`] sockets are kept: above it the counters move
//! every second anyway.

use super::counters::Counters;
use crate::model::{Socket, SourceKind, SystemContext};
use std::collections::HashSet;
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
    outside: HashSet<u64, foldhash::fast::RandomState>,
}

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
        if last.signature != signature || age >= HOST_REUSE || last.tcp_info != tcp_info {
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
            outside: HashSet::default(),
        });
    }

    /// The sockets held by processes of this namespace that the table just
    /// dumped lacks (see [`Last::outside`]).
    pub fn set_outside(&mut self, outside: impl IntoIterator<Item = u64>) {
        if let Some(last) = &mut self.last {
            last.outside = outside.into_iter().collect();
        }
    }

    /// Whether a reused table is stale: a process of this namespace holds
    /// `inode`, which it lacks and which was not outside every table at the
    /// dump either (an `accept()` since, which moves no counter).
    pub fn stale(&self, inode: u64) -> bool {
        self.last
            .as_ref()
            .is_some_and(|l| !l.outside.contains(&inode))
    }

    /// Lets the last table go: the next collection dumps.
    pub fn forget(&mut self) {
        self.last = None;
    }
}
