//! Who holds which socket: a scan of every `/proc/PID/fd`.
//!
//! This is the expensive half of `ss -p`, and where sockscope wins: one
//! `readlinkat` per descriptor relative to an open directory fd (procfs's
//! `Process::fd()` costs an `openat` and an `fstatat` more per descriptor, and
//! an allocation), spread over a few threads. Every read of a process goes
//! through a directory fd opened on `/proc/PID` first, so a process that exits
//! mid-scan makes reads fail with ESRCH instead of returning another
//! process's data if its pid were reused.

use crate::model::{Owner, Process};
use rustix::fs::{Dir, Mode, OFlags, openat};
use rustix::io::Errno;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The result of one scan.
#[derive(Debug, Default)]
pub struct OwnerScan {
    /// Socket inode → (pid, fd) holding it. Includes non-inet sockets; the
    /// caller keeps the ones it has in its socket table.
    pub holders: Vec<(u64, Owner)>,
    /// Every process that holds at least one socket.
    pub processes: HashMap<u32, Process>,
    /// Processes whose fd table could not be read.
    pub unreadable_processes: usize,
}

/// Scans all processes with up to `threads` threads.
pub fn scan(threads: usize) -> std::io::Result<OwnerScan> {
    let proc_dir = openat(
        rustix::fs::CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let pids = list_pids(&proc_dir)?;
    let next = AtomicUsize::new(0);
    let result = Mutex::new(OwnerScan::default());
    let failure = Mutex::new(None);
    let threads = threads.clamp(1, 8).min(pids.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = OwnerScan::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&pid) = pids.get(i) else { break };
                    if let Err(e) = scan_process(&proc_dir, pid, &mut local) {
                        // Stop every thread: the scan is incomplete whatever they find.
                        next.store(pids.len(), Ordering::Relaxed);
                        let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
                        f.get_or_insert(e);
                        return;
                    }
                }
                let mut all = result.lock().unwrap_or_else(|e| e.into_inner());
                all.holders.append(&mut local.holders);
                all.processes.extend(local.processes);
                all.unreadable_processes += local.unreadable_processes;
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(result.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// Out of descriptors or memory: the scan itself failed. Taking it for a
/// process that exited would silently drop that process's owners.
fn scan_failed(e: Errno) -> bool {
    matches!(e, Errno::MFILE | Errno::NFILE | Errno::NOMEM)
}

fn failure(pid: u32, what: &str, e: Errno) -> std::io::Error {
    let e = std::io::Error::from(e);
    std::io::Error::new(e.kind(), format!("/proc/{pid}/{what}: {e}"))
}

fn list_pids(proc_dir: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut dir = Dir::read_from(proc_dir)?;
    let mut pids = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        if let Some(pid) = std::str::from_utf8(entry.file_name().to_bytes())
            .ok()
            .and_then(|n| n.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

fn scan_process(proc_dir: &OwnedFd, pid: u32, out: &mut OwnerScan) -> std::io::Result<()> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let pid_dir = match openat(proc_dir, pid.to_string(), dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if scan_failed(e) => return Err(failure(pid, "", e)),
        Err(_) => return Ok(()), // exited before we got to it
    };
    let fd_dir = match openat(&pid_dir, "fd", dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ACCESS) | Err(Errno::PERM) => {
            out.unreadable_processes += 1;
            return Ok(());
        }
        Err(e) if scan_failed(e) => return Err(failure(pid, "fd", e)),
        Err(_) => return Ok(()), // vanished (ENOENT, ESRCH)
    };
    // Dir::read_from reads through a private copy of the descriptor, which
    // leaves `fd_dir` free to resolve links against while iterating.
    let mut dir = match Dir::read_from(&fd_dir) {
        Ok(dir) => dir,
        Err(e) if scan_failed(e) => return Err(failure(pid, "fd", e)),
        Err(_) => return Ok(()),
    };
    let start = out.holders.len();
    let mut denied = false;
    let mut link = [0u8; 64];
    while let Some(entry) = dir.read() {
        let Ok(entry) = entry else {
            break; // the process exited while we were reading its fd table
        };
        let name = entry.file_name();
        let Some(fd) = std::str::from_utf8(name.to_bytes())
            .ok()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue; // "." and ".."
        };
        match rustix::fs::readlinkat_raw(&fd_dir, name, &mut link[..]) {
            Ok(len) => {
                if let Some(inode) = socket_inode(&link[..len]) {
                    out.holders.push((inode, Owner { pid, fd }));
                }
            }
            Err(Errno::ACCESS) | Err(Errno::PERM) => denied = true,
            Err(_) => {} // fd closed meanwhile
        }
    }
    if denied && out.holders.len() == start {
        out.unreadable_processes += 1;
        return Ok(());
    }
    if out.holders.len() == start {
        return Ok(());
    }
    match read_process(&pid_dir, pid)? {
        Some(p) => {
            out.processes.insert(pid, p);
        }
        // Gone before we could name it: its descriptors are closed by now, and
        // an owner we cannot name is not one we should report.
        None => out.holders.truncate(start),
    }
    Ok(())
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Name, command line and uid, read relative to the pid's directory fd.
///
/// `comm` and `cmdline` are read as bytes: procfs's `cmdline()` fails on a
/// command line that is not UTF-8, and those are exactly the ones to show.
fn read_process(pid_dir: &OwnedFd, pid: u32) -> std::io::Result<Option<Process>> {
    let comm = match read_at(pid_dir, "comm") {
        Ok(Some(comm)) => comm,
        Ok(None) => return Ok(None),
        Err(e) => return Err(failure(pid, "comm", e)),
    };
    // The kernel ends comm with one newline; a name may hold more of its own.
    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
    let cmdline = match read_at(pid_dir, "cmdline") {
        Ok(cmdline) => cmdline.unwrap_or_default(),
        Err(e) => return Err(failure(pid, "cmdline", e)),
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let uid = rustix::fs::fstat(pid_dir).ok().map(|st| st.st_uid);
    Ok(Some(Process {
        pid,
        name: String::from_utf8_lossy(comm).into_owned(),
        cmdline: args.join(" "),
        uid,
        user: None,
    }))
}

/// The file's bytes; None when the process is gone. Errors only when the
/// scan itself cannot go on (see [`scan_failed`]).
fn read_at(dir: &OwnedFd, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    use std::io::Read;
    let fd = match openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if scan_failed(e) => return Err(e),
        Err(_) => return Ok(None),
    };
    let mut file = std::fs::File::from(fd);
    let mut buf = Vec::with_capacity(256);
    Ok(file.read_to_end(&mut buf).ok().map(|_| buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links_parse_and_others_do_not() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
    }

    #[test]
    fn scan_finds_this_processs_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = {
            use std::os::fd::AsRawFd;
            let link =
                std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
            socket_inode(link.to_string_lossy().as_bytes()).unwrap()
        };
        let scan = scan(2).unwrap();
        let me = std::process::id();
        assert!(
            scan.holders.iter().any(|(i, o)| *i == inode && o.pid == me),
            "own listener attributed to own pid"
        );
        assert!(scan.processes.contains_key(&me));
    }
}
