//! The clocks a live sample is stamped with.
//!
//! Read through libc's `clock_gettime`, which uses the vDSO as the C
//! library knows how: rustix's own vDSO lookup crashes under valgrind
//! (`bench/instructions.sh`), and the clocks are the only vDSO calls.

use std::time::Duration;

/// One clock's time now. Every clock asked for here exists on every Linux
/// this runs on; should one fail, zero.
fn now(clock: libc::clockid_t) -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration,
    // and clock_gettime writes nothing else.
    let rc = unsafe { libc::clock_gettime(clock, &mut t) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// `CLOCK_BOOTTIME`: steady (no NTP steps, no `date -s`) and, unlike
/// `CLOCK_MONOTONIC`, it counts time suspended, so an age measured on it
/// across a suspend is the real one.
pub fn boottime() -> Duration {
    now(libc::CLOCK_BOOTTIME)
}

/// CPU time this process has used so far, all threads, user and system.
/// Cannot fail (unlike reading `/proc/self/stat`, which can hit the fd limit).
pub fn process_cpu() -> Duration {
    now(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    now(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `CLOCK_MONOTONIC`: what perf stamps tracepoint records with.
pub fn monotonic() -> Duration {
    now(libc::CLOCK_MONOTONIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clock_reads_and_moves_forward() {
        let first = [boottime(), process_cpu(), monotonic()];
        let mut spin = 0u64;
        while process_cpu() < first[1] + Duration::from_millis(2) {
            spin = std::hint::black_box(spin + 1);
        }
        let second = [boottime(), process_cpu(), monotonic()];
        for (a, b) in first.iter().zip(&second) {
            assert!(!a.is_zero() && b > a, "{a:?} then {b:?}");
        }
        assert!(thread_cpu() > Duration::ZERO);
    }
}
