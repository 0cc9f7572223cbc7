//! Finding every network namespace of the machine: the distinct
//! `/proc/*/ns/net` by inode, and the bind-mounted ones (`ip netns add`,
//! Docker's `/var/run/docker/netns/*`) that no process may be in.

use crate::model::HOST_NETNS;
use std::collections::{BTreeMap, HashMap};

/// What one look at `/proc` and the mount table found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// The inode of sockscope's own namespace ("host").
    pub host: Option<u64>,
    /// Every other namespace by inode.
    pub found: BTreeMap<u64, Found>,
    /// Each process's namespace ([`HOST_NETNS`] for sockscope's own).
    pub pid_netns: HashMap<u32, u64, foldhash::fast::RandomState>,
    /// Processes whose namespace could not be read (not root: the link is
    /// only readable by whoever may ptrace the process).
    pub unknown_processes: usize,
}

/// One namespace other than the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Processes in it, lowest first.
    pub pids: Vec<u32>,
    /// Where it is bind-mounted.
    pub mounts: Vec<String>,
}

/// The inode in a namespace link's text, `net:[4026531840]`.
pub fn parse_link(text: &str) -> Option<u64> {
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

fn link_inode(path: &str) -> Option<u64> {
    let link = std::fs::read_link(path).ok()?;
    parse_link(link.to_str()?)
}

/// What one look keeps for the next ([`discover_with`]).
#[derive(Default)]
pub struct Seen {
    /// The namespaces bind-mounted somewhere: the mount table is read again
    /// only when the kernel flags a change on the open
    /// `/proc/self/mountinfo` (a mount or unmount makes `poll` report
    /// `POLLPRI`), not at every refresh.
    mounts: crate::collect::mounts::MountTable,
    nsfs: Vec<(u64, String)>,
    /// The pids of the last look: for a kernel thread, its namespace (it
    /// never changes namespace, and its pid is not another process's while
    /// it is listed at every look: most of the pids of a quiet machine);
    /// None for a process, whose link is read at every look (`setns` may
    /// move it), without asking again whether it is a kernel thread.
    kinds: HashMap<u32, Option<u64>, foldhash::fast::RandomState>,
}

/// True when `pid` is a kernel thread (its `stat` flags say so).
fn is_kthread(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The fields after the name, which may hold anything but ends at the
    // last ')': state is the first of them, flags the seventh.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok())
        .is_some_and(|flags| flags & crate::collect::owners::PF_KTHREAD != 0)
}

impl Seen {
    /// The `nsfs` mounts now (see [`nsfs_mounts`]).
    pub fn nsfs(&mut self) -> &[(u64, String)] {
        if let Some(text) = self.mounts.changed() {
            self.nsfs = nsfs_mounts(&text);
        }
        &self.nsfs
    }
}

/// Looks at every process and at the mount table.
pub fn discover() -> Discovery {
    discover_with(&mut Seen::default())
}

/// [`discover`], with the mount table read only when it changed.
pub fn discover_with(seen: &mut Seen) -> Discovery {
    let mut d = Discovery {
        host: link_inode("/proc/self/ns/net"),
        ..Discovery::default()
    };
    let mut kinds = HashMap::with_capacity_and_hasher(seen.kinds.len(), Default::default());
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let ino = match seen.kinds.get(&pid) {
                Some(&Some(kernel)) => {
                    kinds.insert(pid, Some(kernel));
                    Some(kernel)
                }
                known => {
                    let ino = link_inode(&format!("/proc/{pid}/ns/net"));
                    if let Some(ino) = ino {
                        let kernel = known.is_none() && is_kthread(pid);
                        kinds.insert(pid, kernel.then_some(ino));
                    }
                    ino
                }
            };
            match ino {
                Some(ino) if Some(ino) == d.host => {
                    d.pid_netns.insert(pid, HOST_NETNS);
                }
                Some(ino) => {
                    d.pid_netns.insert(pid, ino);
                    d.found.entry(ino).or_default().pids.push(pid);
                }
                // Gone meanwhile, or not ours to read.
                None => {
                    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                        d.unknown_processes += 1;
                    }
                }
            }
        }
    }
    seen.kinds = kinds;
    for (ino, at) in seen.nsfs() {
        if Some(*ino) == d.host {
            continue;
        }
        let f = d.found.entry(*ino).or_default();
        if !f.mounts.contains(at) {
            f.mounts.push(at.clone());
        }
    }
    for f in d.found.values_mut() {
        f.pids.sort_unstable();
    }
    d
}

/// The network namespaces bind-mounted somewhere, from `/proc/self/mountinfo`:
/// (inode, mount point) of each `nsfs` mount whose root is `net:[N]`.
pub fn nsfs_mounts(mountinfo: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("nsfs") {
            continue;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        if let Some(ino) = parse_link(root) {
            out.push((ino, unescape(point)));
        }
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\040` and so on.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_threads_are_told_from_processes() {
        assert!(!is_kthread(std::process::id()));
        // kthreadd, where this pid namespace shows the kernel's threads.
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
            assert!(is_kthread(2));
        }
    }

    /// A look that takes the kernel threads' namespaces from the last one
    /// finds them where a first look does.
    #[test]
    fn kernel_threads_remembered_are_where_they_were() {
        let mut seen = Seen::default();
        discover_with(&mut seen);
        let again = discover_with(&mut seen);
        let fresh = discover();
        let kernel = seen.kinds.iter().filter_map(|(pid, k)| k.map(|_| pid));
        for pid in kernel {
            if let Some(ns) = fresh.pid_netns.get(pid) {
                assert_eq!(again.pid_netns.get(pid), Some(ns), "kernel thread {pid}");
            }
        }
    }

    #[test]
    fn namespace_links_give_their_inode() {
        assert_eq!(parse_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_link("mnt:[4026531840]"), None);
        assert_eq!(parse_link("net:[x]"), None);
    }

    #[test]
    fn bind_mounted_network_namespaces_are_found_in_mountinfo() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
611 25 0:4 net:[4026532345] /run/netns/blue rw shared:5 - nsfs nsfs rw
612 25 0:4 net:[4026532346] /var/run/docker/netns/1a2b\\040c rw - nsfs nsfs rw
613 25 0:4 mnt:[4026532347] /run/mnt rw - nsfs nsfs rw
";
        assert_eq!(
            nsfs_mounts(text),
            vec![
                (4026532345, "/run/netns/blue".to_string()),
                (4026532346, "/var/run/docker/netns/1a2b c".to_string()),
            ]
        );
    }
}
