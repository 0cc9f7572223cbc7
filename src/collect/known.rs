//! The owners found by the last full collection, to answer a collection of
//! some states only without listing every fd table again.
//!
//! A trouble-states collection holds few sockets with an inode (TIME_WAIT
//! and orphans have none); almost all of them were in the last full dump,
//! a CLOSE_WAIT having been ESTABLISHED there. Each remembered owner is
//! checked with one `readlink` of `/proc/PID/fd/FD`. A socket that is new
//! since, or an owner whose descriptor no longer points at it, sends the
//! caller back to the full fd scan.

use super::owners::{InodeSet, OwnerScan};
use crate::model::{Owner, Process, Socket};
use std::collections::HashMap;

pub struct KnownOwners {
    /// Inodes of the last full dump, held or not.
    inodes: InodeSet,
    /// (inode, owner) of every held socket in it, sorted.
    holders: Vec<(u64, Owner)>,
    processes: HashMap<u32, Process>,
    unreadable_processes: usize,
    hidden_pids: bool,
}

impl KnownOwners {
    /// What a full collection found: its sockets with their owners attached.
    pub fn remember(
        sockets: &[Socket],
        processes: &HashMap<u32, Process>,
        unreadable_processes: usize,
        hidden_pids: bool,
    ) -> KnownOwners {
        let inodes: InodeSet = sockets
            .iter()
            .map(|s| s.inode)
            .filter(|&i| i != 0)
            .collect();
        let mut holders: Vec<(u64, Owner)> = sockets
            .iter()
            .flat_map(|s| s.owners.iter().map(move |o| (s.inode, *o)))
            .collect();
        holders.sort_unstable();
        KnownOwners {
            inodes,
            holders,
            processes: processes.clone(),
            unreadable_processes,
            hidden_pids,
        }
    }

    /// The owners of `sockets` (a partial dump) from what is remembered,
    /// each checked against its fd now. None when a socket is new since the
    /// full collection or a remembered owner let go of it: the caller scans.
    /// An owner added since (a fork, a descriptor passed) shows at the next
    /// full collection.
    pub fn answer(&self, sockets: &[Socket]) -> Option<OwnerScan> {
        let mut scan = OwnerScan {
            unreadable_processes: self.unreadable_processes,
            hidden_pids: self.hidden_pids,
            ..OwnerScan::default()
        };
        for s in sockets.iter().filter(|s| s.inode != 0) {
            if !self.inodes.contains(&s.inode) {
                return None;
            }
            let from = self.holders.partition_point(|(i, _)| *i < s.inode);
            for &(_, owner) in self.holders[from..]
                .iter()
                .take_while(|(i, _)| *i == s.inode)
            {
                if !still_holds(owner, s.inode) {
                    return None;
                }
                scan.holders.push((s.inode, owner));
                if let Some(p) = self.processes.get(&owner.pid) {
                    scan.processes.entry(owner.pid).or_insert_with(|| p.clone());
                }
            }
        }
        Some(scan)
    }
}

impl KnownOwners {
    /// A process as the full collection found it.
    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }
}

/// Whether `/proc/PID/fd/FD` still points at socket `inode`.
fn still_holds(owner: Owner, inode: u64) -> bool {
    let path = format!("/proc/{}/fd/{}", owner.pid, owner.fd);
    let mut link = [0u8; 64];
    match rustix::fs::readlinkat_raw(rustix::fs::CWD, path.as_str(), &mut link[..]) {
        Ok(len) => link[..len] == *format!("socket:[{inode}]").as_bytes(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::netlink::{DumpRequest, Dumper};
    use crate::model::{Family, Proto, TcpState};
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    /// This process's listeners as the kernel lists them, each with its fd
    /// as owner.
    fn dumped(listeners: &[&TcpListener]) -> Vec<Socket> {
        let mut out = Vec::new();
        Dumper::open()
            .unwrap()
            .dump(
                DumpRequest {
                    proto: Proto::Tcp,
                    family: Family::V4,
                    tcp_info: false,
                },
                &mut out,
            )
            .unwrap();
        let me = std::process::id();
        listeners
            .iter()
            .map(|l| {
                let mut s = out
                    .iter()
                    .find(|s| s.state == TcpState::Listen && s.local == l.local_addr().unwrap())
                    .expect("our listener")
                    .clone();
                s.owners = vec![Owner {
                    pid: me,
                    fd: l.as_raw_fd() as u32,
                }];
                s
            })
            .collect()
    }

    #[test]
    fn remembered_owners_answer_while_their_fds_still_hold_the_sockets() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let sockets = dumped(&[&a, &b]);
        let known = KnownOwners::remember(&sockets, &HashMap::new(), 0, false);
        let scan = known.answer(&sockets[..1]).expect("known and still held");
        assert_eq!(scan.holders, vec![(sockets[0].inode, sockets[0].owners[0])]);

        // An fd that now holds another socket is not taken on trust.
        let mut moved = sockets.clone();
        moved[0].owners[0].fd = b.as_raw_fd() as u32;
        let known = KnownOwners::remember(&moved, &HashMap::new(), 0, false);
        assert!(known.answer(&moved[..1]).is_none());

        // A socket the full collection did not see sends the caller to scan.
        let c = TcpListener::bind("127.0.0.1:0").unwrap();
        let known = KnownOwners::remember(&sockets, &HashMap::new(), 0, false);
        assert!(known.answer(&dumped(&[&c])).is_none());
    }
}
