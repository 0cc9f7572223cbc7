//! sockscope: every TCP and UDP socket on a Linux machine, who owns it, and
//! what state it is stuck in.
//!
//! Data flows one way: [`collect`] turns the kernel into a [`model::Snapshot`],
//! [`model`] groups, filters and explains it, and [`output`] / the UI render it.

pub mod act;
pub mod app;
pub mod cli;
pub mod collect;
pub mod engine;
pub mod model;
pub mod output;
pub mod record;
pub mod replay;
pub mod sanitize;
pub mod serve;
pub mod trace;
pub mod tui;
pub mod ui;

/// glibc's allocator, tuned for tables of 100k sockets:
///
/// - one malloc arena for the whole process: glibc gives each thread that
///   allocates at once its own, and at 130k sockets the engine, the row
///   builder and the collection workers each kept tens of MiB free in
///   theirs (after five minutes of the monitor, 276 MiB peak RSS against
///   227 MiB with one arena);
/// - every block of 1 MiB and more mapped on its own and unmapped when
///   freed: glibc raises its mapping threshold to the size of the last
///   mapped block freed, so a 21 MiB socket table once freed made every
///   later table come from the heap, which does not give it back (after
///   four minutes, 246 against 180 MiB peak RSS, at the same CPU).
///
/// Called first thing in `main`, before any thread exists.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets tuning parameters of glibc's allocator
    // (M_ARENA_MAX and M_MMAP_THRESHOLD take these values, and a failure
    // leaves the default); it touches no memory of ours, and no other
    // thread is allocating yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
