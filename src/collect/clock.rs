//! The clocks a live sample is stamped with.

use std::time::Duration;

/// `CLOCK_BOOTTIME`: steady (no NTP steps, no `date -s`) and, unlike
/// `CLOCK_MONOTONIC`, it counts time suspended, so an age measured on it
/// across a suspend is the real one.
pub fn boottime() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time this process has used so far, all threads, user and system.
/// Cannot fail (unlike reading `/proc/self/stat`, which can hit the fd limit).
pub fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// `CLOCK_MONOTONIC`: what perf stamps tracepoint records with.
pub fn monotonic() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
