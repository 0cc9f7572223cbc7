//! Finding the tracepoints: their ids and record layouts live in tracefs,
//! mounted at /sys/kernel/tracing (or under debugfs on older systems).
//! When it is not mounted, sockscope mounts it on a private directory just
//! long enough to read what it needs, and unmounts it again.

use super::format::{Layout, TRACEPOINTS};
use std::io;
use std::path::{Path, PathBuf};

/// One tracepoint's id and layout.
#[derive(Debug, Clone)]
pub struct Found {
    pub index: usize,
    pub id: u64,
    pub layout: Layout,
}

/// Where tracefs is mounted, from `/proc/self/mounts`, with the usual
/// places first.
fn mounted() -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/sys/kernel/tracing"),
        PathBuf::from("/sys/kernel/debug/tracing"),
    ];
    if let Ok(text) = std::fs::read_to_string("/proc/self/mounts") {
        for line in text.lines() {
            let mut f = line.split(' ');
            let (_, Some(dir), Some(fstype)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if fstype == "tracefs" {
                dirs.push(PathBuf::from(dir.replace("\\040", " ")));
            }
        }
    }
    dirs
}

fn read_in(dir: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut first_err = None;
    for (index, name) in TRACEPOINTS.iter().enumerate() {
        let event = dir.join("events").join(name);
        let read = std::fs::read_to_string(event.join("id")).and_then(|id| {
            let id = id.trim().parse::<u64>().map_err(io::Error::other)?;
            let format = std::fs::read_to_string(event.join("format"))?;
            Ok(Found {
                index,
                id,
                layout: Layout::parse(&format),
            })
        });
        match read {
            Ok(f) => found.push(f),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (found.is_empty(), first_err) {
        (true, Some(e)) => Err(e),
        _ => Ok(found),
    }
}

/// The tracepoints this kernel has. The state-change one is required; the
/// others are taken where present.
pub fn find() -> Result<Vec<Found>, String> {
    let mut last = None;
    for dir in mounted() {
        if !dir.join("events").is_dir() {
            continue;
        }
        match read_in(&dir) {
            Ok(found) => return require(found),
            Err(e) => last = Some(format!("{}: {e}", dir.display())),
        }
    }
    match mount_private() {
        Ok(found) => require(found),
        Err(e) => Err(match last {
            Some(l) => format!("tracefs is not readable ({l})"),
            None => format!("tracefs is not mounted and could not be mounted ({e})"),
        }),
    }
}

fn require(found: Vec<Found>) -> Result<Vec<Found>, String> {
    if found.iter().any(|f| f.index == 0) {
        Ok(found)
    } else {
        Err("this kernel has no sock:inet_sock_set_state tracepoint (Linux 4.16+)".to_string())
    }
}

/// Mounts tracefs on a new private directory, reads, and unmounts it.
fn mount_private() -> io::Result<Vec<Found>> {
    let dir = std::env::temp_dir().join(format!("sockscope-tracefs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mounted = rustix::mount::mount(
        "nodev",
        &dir,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None::<&std::ffi::CStr>,
    )
    .map_err(io::Error::from);
    let read = mounted.and_then(|()| {
        let r = read_in(&dir);
        let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
        r
    });
    let _ = std::fs::remove_dir(&dir);
    read
}
