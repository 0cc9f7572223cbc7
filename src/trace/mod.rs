//! Every transition: the kernel's TCP tracepoints (`sock:inet_sock_set_state`,
//! `tcp:tcp_send_reset`, `tcp:tcp_receive_reset`, `tcp:tcp_retransmit_skb`)
//! read live beside the snapshots, so what lives and dies between two
//! refreshes is counted too.
//!
//! ```text
//!   tracefs (ids, layouts) ─▶ perf rings, one per CPU ─▶ feed thread
//!        every 50 ms: drain ─▶ Tracker (by socket address) ─▶ Window
//!   Engine::step ─▶ Feed::take ─▶ Analysis::trace (window, recent, exact ages)
//! ```
//!
//! Without the privilege (CAP_PERFMON or CAP_SYS_ADMIN, or a low
//! `kernel.perf_event_paranoid`) or on a kernel without the tracepoints,
//! [`Feed::start`] says why and sockscope works from snapshots alone.

pub mod format;
pub mod perf;
pub mod sample;
pub mod tracefs;
pub mod tracker;
pub mod window;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use sample::{TraceSample, Transitions};
pub use window::{Closer, PortKey, Stats, Transition, Window};

/// How often the feed thread empties the rings while transitions come.
const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// Once this many drains in a row found nothing (half a second of quiet),
/// the feed thread sleeps [`DRAIN_IDLE`] between drains: a quiet machine
/// wakes it 5 times a second instead of 20. A burst wakes it at once
/// either way, when a ring is a quarter full ([`perf::WAKE_AT`]).
const QUIET_DRAINS: u32 = 10;

const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// The sleep after a drain, when that many drains in a row (this one
/// included) found nothing.
fn next_sleep(empty_in_a_row: u32) -> Duration {
    if empty_in_a_row >= QUIET_DRAINS {
        DRAIN_IDLE
    } else {
        DRAIN_EVERY
    }
}

/// Whether transitions are followed, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    On,
    Off(String),
}

impl Status {
    pub fn is_on(&self) -> bool {
        matches!(self, Status::On)
    }
}

/// What one sample gets from the transitions since the previous one.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    pub window: Window,
    /// The transitions of this window, oldest first (at most
    /// [`tracker::RECENT`]).
    pub recent: Vec<Transition>,
    /// Connections whose entry into their current (non-ESTABLISHED) state
    /// was seen.
    pub seen: sample::Exact,
    /// Connections followed now.
    pub live: usize,
}

struct Shared {
    tracker: Mutex<tracker::Tracker>,
    stop: AtomicBool,
    /// CPU time of the feed thread, nanoseconds.
    cpu_ns: AtomicU64,
    lost: AtomicU64,
}

/// The live event source: a thread that drains the rings into a tracker.
pub struct Feed {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Written to stop the thread at once, wherever it waits.
    wake: Arc<std::os::fd::OwnedFd>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

fn explain((step, e): (&str, std::io::Error)) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "perf_event_open was refused ({e}): it needs root, CAP_PERFMON or CAP_SYS_ADMIN, \
             or kernel.perf_event_paranoid at -1 (it is {paranoid})"
        ),
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENOSYS) => {
            format!("this kernel cannot open the TCP tracepoints for perf ({e})")
        }
        _ => format!("perf_event_open failed at {step}: {e}"),
    }
}

/// Descriptors a feed may take at most per CPU (one per tracepoint).
fn found_max() -> usize {
    format::TRACEPOINTS.len()
}

/// Descriptors always left for collecting and serving.
const FD_RESERVE: u64 = 64;

/// The feed takes `need` descriptors (one per tracepoint and CPU): refused,
/// with the figures, when that would leave fewer than [`FD_RESERVE`] under
/// the soft limit, so that it never starves the socket dump or a server.
fn descriptors_to_spare(need: usize) -> Result<(), String> {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as u64;
    let free = soft.saturating_sub(open);
    if free < need as u64 + FD_RESERVE {
        return Err(format!(
            "following the transitions takes {need} file descriptors (one per tracepoint and CPU) \
             and only {free} of RLIMIT_NOFILE's {soft} are free; raise it (ulimit -n)"
        ));
    }
    Ok(())
}

impl Feed {
    /// Opens the tracepoints and starts following them, or says why not.
    pub fn start() -> Result<Feed, String> {
        if let Ok(v) = std::env::var("SOCKSCOPE_NO_TRACE")
            && !v.is_empty()
        {
            return Err("transitions are off (SOCKSCOPE_NO_TRACE is set)".into());
        }
        descriptors_to_spare(perf::cpus().len() * found_max())?;
        let found = tracefs::find().map_err(|e| {
            if rustix::process::geteuid().is_root() {
                e
            } else {
                format!("{e}: following transitions needs root (or CAP_PERFMON and CAP_SYS_ADMIN)")
            }
        })?;
        let mut rings = perf::Rings::open(&found).map_err(explain)?;
        let now = crate::collect::clock::boottime();
        let shared = Arc::new(Shared {
            tracker: Mutex::new(tracker::Tracker::new(now)),
            stop: AtomicBool::new(false),
            cpu_ns: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        });
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map(Arc::new)
        .map_err(|e| format!("cannot make the transitions thread's eventfd: {e}"))?;
        let s = Arc::clone(&shared);
        let woken = Arc::clone(&wake);
        let thread = std::thread::Builder::new()
            .name("sockscope-trace".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(4096);
                let mut lost_before = 0;
                let mut empty_in_a_row: u32 = 0;
                while !s.stop.load(Ordering::Relaxed) {
                    rings.drain(|e| batch.push(e));
                    empty_in_a_row = if batch.is_empty() {
                        empty_in_a_row.saturating_add(1)
                    } else {
                        0
                    };
                    let sleep = next_sleep(empty_in_a_row);
                    let lost = rings.lost();
                    if let Ok(mut t) = s.tracker.lock() {
                        // Per CPU the records are in order; across CPUs they
                        // are not: order the batch by time.
                        batch.sort_by_key(|e| e.time);
                        for e in batch.drain(..) {
                            t.event(e);
                        }
                        t.dropped(lost - lost_before);
                    }
                    lost_before = lost;
                    s.lost.store(lost, Ordering::Relaxed);
                    s.cpu_ns.store(
                        crate::collect::clock::thread_cpu().as_nanos() as u64,
                        Ordering::Relaxed,
                    );
                    // Woken early by a filling ring, or by the feed's drop.
                    rings.wait(std::os::fd::AsFd::as_fd(&*woken), sleep);
                }
            })
            .map_err(|e| format!("cannot start the transitions thread: {e}"))?;
        Ok(Feed {
            shared,
            thread: Some(thread),
            wake,
        })
    }

    /// The transitions since the last take.
    pub fn take(&self) -> Taken {
        let now = crate::collect::clock::boottime();
        let Ok(mut t) = self.shared.tracker.lock() else {
            return Taken::default();
        };
        let fresh = t.fresh();
        let window = t.take(now);
        let recent = t
            .recent()
            .iter()
            .skip(t.recent().len() - fresh)
            .cloned()
            .collect();
        Taken {
            window,
            recent,
            seen: t.seen(),
            live: t.len(),
        }
    }

    /// Who holds each listening port, from the last sample: the process a
    /// connection accepted in a softirq is counted under.
    pub fn set_listeners(&self, listeners: HashMap<u16, u32>) {
        if let Ok(mut t) = self.shared.tracker.lock() {
            t.set_listeners(listeners);
        }
    }

    /// Forgets connections a full sample no longer shows (their CLOSE was
    /// lost) once they have not moved for a minute.
    pub fn prune(&self, present: impl Fn(&SocketAddr, &SocketAddr) -> bool) {
        let now = crate::collect::clock::boottime();
        if let Ok(mut t) = self.shared.tracker.lock() {
            t.prune(now, Duration::from_secs(60), present);
        }
    }

    /// CPU time the feed thread used.
    pub fn cpu(&self) -> Duration {
        Duration::from_nanos(self.shared.cpu_ns.load(Ordering::Relaxed))
    }

    /// Records the kernel dropped since the start.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_feed_that_would_starve_the_descriptor_limit_is_refused_with_the_figures() {
        let why = super::descriptors_to_spare(usize::MAX / 4).unwrap_err();
        assert!(
            why.contains("RLIMIT_NOFILE") && why.contains("ulimit -n"),
            "{why}"
        );
        assert_eq!(super::descriptors_to_spare(1), Ok(()));
    }

    #[test]
    fn the_feed_sleeps_longer_after_half_a_second_of_empty_rings_only() {
        use super::{DRAIN_EVERY, DRAIN_IDLE, QUIET_DRAINS, next_sleep};
        assert_eq!(next_sleep(0), DRAIN_EVERY, "a drain that found transitions");
        assert_eq!(next_sleep(QUIET_DRAINS - 1), DRAIN_EVERY);
        assert_eq!(next_sleep(QUIET_DRAINS), DRAIN_IDLE);
        assert_eq!(next_sleep(u32::MAX), DRAIN_IDLE);
    }
}
