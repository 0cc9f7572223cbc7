//! The owners found by the last full collection, to answer a collection of
//! some states only without listing every fd table again.
//!
//! A trouble-states collection holds few sockets with an inode (TIME_WAIT
//! and orphans have none); almost all of them were in the last full dump,
//! a CLOSE_WAIT having been ESTABLISHED there. Remembered owners are
//! checked with one `readlink` of `/proc/PID/fd/FD` each: all of them while
//! the dump holds at most [`CHECK_ALL_UPTO`] held sockets, else an eighth of
//! them per answer in turn (a leak of 10k CLOSE_WAIT costs 10k readlinks,
//! 60 ms at 130k sockets, which a refresh every second cannot afford), so
//! each is checked at least every [`CHECK_EVERY`] answers. Every owning
//! process's fd directory is `stat`ed on every answer: gone, it sends the
//! caller to scan; with as many descriptors as the full collection read
//! (Linux 6.2+ gives the count), its owners are not read one by one, since
//! a descriptor closed and reused would have taken its socket out of the
//! dump or changed the count. A socket that is new since, or an owner whose
//! descriptor no longer points at it, sends the caller back to the full fd
//! scan.

use super::owners::OwnerScan;
use crate::model::{Owner, Process, Socket};
use std::collections::HashMap;

/// Inode → where its owners start in [`KnownOwners::holders`] (its length
/// for a socket no one held).
type Starts = HashMap<u64, u32, foldhash::fast::RandomState>;

/// Up to this many held sockets in a partial dump, every owner is checked
/// on every answer.
pub const CHECK_ALL_UPTO: usize = 2048;
/// Above it, the owners of one socket in this many are checked per answer,
/// in turn (by inode).
pub const CHECK_EVERY: u64 = 8;

pub struct KnownOwners {
    /// Answers given, for the turn of the checks.
    round: u64,
    /// [`CHECK_ALL_UPTO`], lower in tests.
    check_all_upto: usize,
    /// Inodes of the last full dump, held or not, and where their owners
    /// are in `holders`: one lookup, not a binary search of 100k entries.
    inodes: Starts,
    /// (inode, owner) of every held socket in it, sorted.
    holders: Vec<(u64, Owner)>,
    processes: HashMap<u32, Process>,
    /// Each holder's descriptor count at the full collection (when its
    /// whole table was read).
    fd_counts: HashMap<u32, usize>,
    unreadable_processes: usize,
    hidden_pids: bool,
}

impl KnownOwners {
    /// What a full collection found: its sockets with their owners attached.
    pub fn remember(
        sockets: &[Socket],
        processes: &HashMap<u32, Process>,
        fd_counts: HashMap<u32, usize>,
        unreadable_processes: usize,
        hidden_pids: bool,
    ) -> KnownOwners {
        let mut holders: Vec<(u64, Owner)> = sockets
            .iter()
            .flat_map(|s| s.owners.iter().map(move |o| (s.inode, *o)))
            .collect();
        holders.sort_unstable();
        let none = u32::try_from(holders.len()).unwrap_or(u32::MAX);
        let mut inodes: Starts = sockets
            .iter()
            .filter(|s| s.inode != 0)
            .map(|s| (s.inode, none))
            .collect();
        for (at, &(inode, _)) in holders.iter().enumerate().rev() {
            if let Some(start) = inodes.get_mut(&inode) {
                *start = at as u32;
            }
        }
        KnownOwners {
            round: 0,
            check_all_upto: CHECK_ALL_UPTO,
            inodes,
            holders,
            processes: processes.clone(),
            fd_counts,
            unreadable_processes,
            hidden_pids,
        }
    }

    /// The owners of `sockets` (a partial dump) from what is remembered,
    /// checked against their fds now (all of them, or one socket's in
    /// [`CHECK_EVERY`] in turn on large dumps). None when a socket is new
    /// since the full collection, an owning process is gone or a checked
    /// owner let go of it: the caller scans. An owner added since (a fork,
    /// a descriptor passed) shows at the next full collection.
    pub fn answer(&mut self, sockets: &[Socket]) -> Option<OwnerScan> {
        let mut scan = OwnerScan {
            unreadable_processes: self.unreadable_processes,
            hidden_pids: self.hidden_pids,
            ..OwnerScan::default()
        };
        let held = sockets.iter().filter(|s| s.inode != 0).count();
        let turn = self.round % CHECK_EVERY;
        self.round += 1;
        let check = |inode: u64| held <= self.check_all_upto || inode % CHECK_EVERY == turn;
        // pid → its table has as many descriptors as at the full collection.
        let mut steady: HashMap<u32, bool> = HashMap::new();
        // Every held socket known, looked up first in a loop of its own: its
        // lookups do not depend on each other, so their cache misses overlap.
        let held_sockets = || sockets.iter().filter(|s| s.inode != 0);
        let starts: Option<Vec<u32>> = held_sockets()
            .map(|s| self.inodes.get(&s.inode).copied())
            .collect();
        for (s, from) in held_sockets().zip(starts?) {
            let from = (from as usize).min(self.holders.len());
            for &(_, owner) in self.holders[from..]
                .iter()
                .take_while(|(i, _)| *i == s.inode)
            {
                let steady = match steady.get(&owner.pid) {
                    Some(&known) => known,
                    None => {
                        // A process gone since: its sockets are held by
                        // someone else now (they would have no inode
                        // otherwise).
                        let now = fd_dir_stat(owner.pid).ok()?;
                        let same = self.fd_counts.get(&owner.pid).copied()
                            == super::owners::fd_count(&now);
                        *steady.entry(owner.pid).or_insert(same)
                    }
                };
                if !steady && check(s.inode) && !still_holds(owner, s.inode) {
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

/// `stat` of `/proc/PID/fd`: fails once the process is gone.
fn fd_dir_stat(pid: u32) -> Result<rustix::fs::Stat, rustix::io::Errno> {
    rustix::fs::stat(format!("/proc/{pid}/fd").as_str())
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
                s.owners = smallvec::smallvec![Owner {
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
        let mut known = KnownOwners::remember(&sockets, &HashMap::new(), HashMap::new(), 0, false);
        let scan = known.answer(&sockets[..1]).expect("known and still held");
        assert_eq!(scan.holders, vec![(sockets[0].inode, sockets[0].owners[0])]);

        // An fd that now holds another socket is not taken on trust.
        let mut moved = sockets.clone();
        moved[0].owners[0].fd = b.as_raw_fd() as u32;
        let mut known = KnownOwners::remember(&moved, &HashMap::new(), HashMap::new(), 0, false);
        assert!(known.answer(&moved[..1]).is_none());

        // A socket the full collection did not see sends the caller to scan.
        let c = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut known = KnownOwners::remember(&sockets, &HashMap::new(), HashMap::new(), 0, false);
        assert!(known.answer(&dumped(&[&c])).is_none());
    }

    #[test]
    fn on_large_dumps_each_owner_is_checked_within_check_every_answers() {
        let listeners: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let refs: Vec<&TcpListener> = listeners.iter().collect();
        let sockets = dumped(&refs);
        // The first listener's owner is remembered on the second's fd, as
        // if the fd had been closed and reused: a check finds it out.
        let mut moved = sockets.clone();
        moved[0].owners[0].fd = listeners[1].as_raw_fd() as u32;
        let mut known = KnownOwners::remember(&moved, &HashMap::new(), HashMap::new(), 0, false);
        known.check_all_upto = 0;
        let answers: Vec<bool> = (0..CHECK_EVERY)
            .map(|_| known.answer(&moved).is_some())
            .collect();
        // Checked in its turn, and only then.
        assert_eq!(
            answers.iter().filter(|a| !**a).count(),
            1,
            "answers over one turn: {answers:?}"
        );
        let turn = answers.iter().position(|a| !a).unwrap() as u64;
        assert_eq!(turn, moved[0].inode % CHECK_EVERY);

        // A table whose descriptor count is not the one the full collection
        // read is checked the same way.
        let counts = HashMap::from([(std::process::id(), 1_000_000)]);
        let mut known = KnownOwners::remember(&moved, &HashMap::new(), counts, 0, false);
        known.check_all_upto = 0;
        let caught = (0..CHECK_EVERY)
            .filter(|_| known.answer(&moved).is_none())
            .count();
        assert_eq!(caught, 1);
    }

    #[test]
    fn an_owner_that_is_gone_is_not_taken_on_trust() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sockets = dumped(&[&l]);
        // A pid that cannot be alive (above pid_max's ceiling).
        sockets[0].owners[0].pid = 1 << 23;
        let mut known = KnownOwners::remember(&sockets, &HashMap::new(), HashMap::new(), 0, false);
        known.check_all_upto = 0;
        for _ in 0..CHECK_EVERY {
            assert!(known.answer(&sockets).is_none());
        }
    }
}
