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

/// Hands the heap's free pages back to the kernel (`malloc_trim`). glibc
/// keeps what a freed 21 MiB table held for the next one, and over minutes
/// at 130k sockets the free gaps between tables of slightly different sizes
/// add up in resident memory. Called after a full dump of a large table, at
/// most every 50 s: the pages it frees fault in again once, not at every
/// sample as with a fixed mmap threshold (see [`tune_malloc`]).
pub fn trim_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own lock and only returns
    // free pages (madvise/sbrk) that no allocation refers to; any thread
    // may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One malloc arena for the whole process. glibc gives each thread that
/// allocates at once its own arena, and at 130k sockets the engine, the row
/// builder and the collection workers each kept tens of MiB free in theirs:
/// after five minutes of the monitor, 276 MiB peak RSS against 227 MiB with
/// one arena.
///
/// Blocks of 1 MiB and more mapped on their own (`M_MMAP_THRESHOLD`) cut
/// peak RSS further (180 against 246 MiB after four minutes), but each
/// 21 MiB table then faults its pages in again: trouble refreshes every
/// 2.1 s instead of 1.7 s within the same CPU budget, and switches to the
/// 130k-row connections view up to 136 ms. Left at glibc's default.
///
/// Called first thing in `main`, before any thread exists.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of glibc's allocator
    // (M_ARENA_MAX takes any positive value, and a failure leaves the
    // default); it touches no memory of ours, and no other thread is
    // allocating yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
