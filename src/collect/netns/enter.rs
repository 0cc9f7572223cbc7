//! Running a little code inside another network namespace.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling thread only,
//! so the work runs on a short-lived thread of its own: the caller's threads
//! never leave sockscope's namespace. What the thread makes there (a netlink
//! socket, an open `/proc/thread-self/net/...` file) stays in that
//! namespace after the thread is gone.

use std::io;
use std::os::fd::BorrowedFd;

/// Runs `work` on a thread that entered the network namespace `netns` (an
/// open `/proc/PID/ns/net` or a bind mount of one). Fails when the thread
/// cannot enter it: EPERM without CAP_SYS_ADMIN, EINVAL when `netns` is not
/// a network namespace.
pub fn run_in<T: Send>(netns: BorrowedFd<'_>, work: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            rustix::thread::move_into_link_name_space(
                netns,
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(io::Error::from)?;
            Ok(work())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a thread in another namespace panicked")))
    })
}

/// Reads a file of `/proc/thread-self/net/` or `/proc/sys/net/` as the
/// namespace `netns` sees it.
pub fn read_in(netns: BorrowedFd<'_>, paths: &[&str]) -> io::Result<Vec<Option<String>>> {
    run_in(netns, || {
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).ok())
            .collect()
    })
}
