//! This process's mount table, read again only when it changed: the kernel
//! flags a mount or an unmount on an open `/proc/self/mountinfo` with
//! `POLLPRI`, so a refresh on a quiet machine costs one `poll`, not a read
//! and a parse of the whole table.

use std::io::Read;

/// An open `/proc/self/mountinfo` (or another file of that kind, in tests).
#[derive(Debug)]
pub struct MountTable {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl Default for MountTable {
    fn default() -> MountTable {
        MountTable::at("/proc/self/mountinfo")
    }
}

impl MountTable {
    pub fn at(path: impl Into<std::path::PathBuf>) -> MountTable {
        MountTable {
            path: path.into(),
            file: None,
        }
    }

    /// The table's text when it changed since the last call (always at the
    /// first, and after a failed poll, read or open); None while it stands.
    /// An unreadable table reads as empty.
    pub fn changed(&mut self) -> Option<String> {
        let changed = self.file.as_ref().is_none_or(|f| {
            use rustix::event::{PollFd, PollFlags, Timespec};
            let mut fds = [PollFd::new(f, PollFlags::PRI)];
            let now = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // An error reads it again, as a change would.
            rustix::event::poll(&mut fds, Some(&now)).map_or(true, |_| !fds[0].revents().is_empty())
        });
        if !changed {
            return None;
        }
        // Opened anew: a change from now on flags this file.
        let mut text = String::new();
        self.file = std::fs::File::open(&self.path)
            .and_then(|mut f| f.read_to_string(&mut text).map(|_| f))
            .ok();
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_look_reads_the_table() {
        // Whether a second look reads it again depends on mounts made
        // meanwhile by anything on the machine: not asserted here (the
        // namespace tests see a mount made after a first look).
        let mut table = MountTable::default();
        let first = table.changed().expect("read at the first look");
        assert!(first.contains(" - proc "), "{first}");
    }

    #[test]
    fn a_table_that_cannot_be_opened_reads_as_empty_at_every_look() {
        let mut table = MountTable::at("/nonexistent/mountinfo");
        assert_eq!(table.changed().as_deref(), Some(""));
        assert_eq!(table.changed().as_deref(), Some(""));
    }
}
