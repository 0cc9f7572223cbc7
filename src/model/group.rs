//! Grouping a snapshot by state, process, local port and remote host.

use super::holders;
use super::snapshot::Snapshot;
use super::socket::{Proto, Socket, TcpState};
use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;

/// Socket counts per state, indexed by the kernel's state number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    counts: [u32; 12],
}

impl StateCounts {
    pub fn add(&mut self, state: TcpState) {
        self.counts[state as usize] += 1;
    }

    pub fn get(&self, state: TcpState) -> u32 {
        self.counts[state as usize]
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }

    /// States with a non-zero count, in kernel order.
    pub fn nonzero(&self) -> impl Iterator<Item = (TcpState, u32)> + '_ {
        TcpState::ALL
            .into_iter()
            .map(|s| (s, self.get(s)))
            .filter(|(_, n)| *n > 0)
    }
}

/// Counts per state over a set of sockets (TCP and UDP together; UDP shows as
/// ESTABLISHED when connected and CLOSE when not, as in the kernel).
pub fn by_state<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> StateCounts {
    let mut counts = StateCounts::default();
    for s in sockets {
        counts.add(s.state);
    }
    counts
}

/// The sockets one process holds. `pid` is None for the sockets no process
/// holds (TIME_WAIT, orphans) or whose owner could not be seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGroup {
    pub pid: Option<u32>,
    pub counts: StateCounts,
    /// Of these, the sockets another process holds too (after fork, in a
    /// prefork pool, passed over a unix socket).
    pub shared: u32,
    /// The process it shares most of them with, and how many.
    pub shared_with: Option<(u32, u32)>,
    /// Of these, connections still waiting in the accept queue of one of its
    /// listeners (counted for the listener's holders).
    pub queued: u32,
}

/// Sockets held by more processes than this count as shared for each, but
/// are not paired up (a listener shared by 64 workers would make 2,016 pairs).
const MAX_PAIRED: usize = 16;

/// A socket held by several processes (after fork, SO_REUSEPORT workers) counts
/// for each of them; a connection in an accept queue counts for the holders
/// of its listener.
pub fn by_process<'a>(
    snap: &Snapshot,
    sockets: impl IntoIterator<Item = &'a Socket>,
) -> Vec<ProcessGroup> {
    #[derive(Default)]
    struct Acc {
        counts: StateCounts,
        shared: u32,
        queued: u32,
    }
    let mut groups: HashMap<Option<u32>, Acc> = HashMap::new();
    let mut pairs: HashMap<(u32, u32), u32> = HashMap::new();
    let mut pids = Vec::new();
    for s in sockets {
        let owners = holders::effective(snap, s);
        if owners.is_empty() {
            groups.entry(None).or_default().counts.add(s.state);
            continue;
        }
        let queued = s.owners.is_empty();
        pids.clear();
        // A process that holds one socket in two fds counts it once.
        pids.extend(holders::pids(owners));
        for &pid in &pids {
            let g = groups.entry(Some(pid)).or_default();
            g.counts.add(s.state);
            g.queued += u32::from(queued);
            if pids.len() > 1 {
                g.shared += 1;
            }
        }
        if pids.len() > 1 && pids.len() <= MAX_PAIRED {
            for (n, &a) in pids.iter().enumerate() {
                for &b in &pids[n + 1..] {
                    *pairs.entry((a, b)).or_default() += 1;
                }
            }
        }
    }
    let mut with: HashMap<u32, (u32, u32)> = HashMap::new();
    for ((a, b), n) in pairs {
        for (me, other) in [(a, b), (b, a)] {
            let e = with.entry(me).or_insert((other, n));
            if n > e.1 || (n == e.1 && other < e.0) {
                *e = (other, n);
            }
        }
    }
    let mut out: Vec<ProcessGroup> = groups
        .into_iter()
        .map(|(pid, a)| ProcessGroup {
            pid,
            counts: a.counts,
            shared: a.shared,
            shared_with: pid.and_then(|p| with.get(&p).copied()),
            queued: a.queued,
        })
        .collect();
    out.sort_by_key(|g| (std::cmp::Reverse(g.counts.total()), g.pid));
    out
}

/// The sockets on one local port of one protocol: a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    pub proto: Proto,
    pub port: u16,
    pub counts: StateCounts,
    /// Distinct owning pids, sorted.
    pub pids: Vec<u32>,
}

pub fn by_local_port<'a>(
    snap: &Snapshot,
    sockets: impl IntoIterator<Item = &'a Socket>,
) -> Vec<PortGroup> {
    let mut groups: HashMap<(Proto, u16), PortGroup> = HashMap::new();
    for s in sockets {
        let g = groups
            .entry((s.proto, s.local.port()))
            .or_insert_with(|| PortGroup {
                proto: s.proto,
                port: s.local.port(),
                counts: StateCounts::default(),
                pids: Vec::new(),
            });
        g.counts.add(s.state);
        g.pids.extend(holders::pids(holders::effective(snap, s)));
    }
    let mut out: Vec<PortGroup> = groups
        .into_values()
        .map(|mut g| {
            g.pids.sort_unstable();
            g.pids.dedup();
            g
        })
        .collect();
    out.sort_by_key(|g| (std::cmp::Reverse(g.counts.total()), g.proto, g.port));
    out
}

/// The sockets of one network namespace: the host's, a container's, a pod's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsGroup {
    /// [`crate::model::HOST_NETNS`] for sockscope's own.
    pub netns: u64,
    pub counts: StateCounts,
    /// Distinct holding pids, sorted.
    pub pids: Vec<u32>,
}

/// One group per namespace with sockets, most sockets first.
pub fn by_netns<'a>(
    snap: &Snapshot,
    sockets: impl IntoIterator<Item = &'a Socket>,
) -> Vec<NetnsGroup> {
    let mut groups: HashMap<u64, NetnsGroup> = HashMap::new();
    for s in sockets {
        let g = groups.entry(s.netns).or_insert_with(|| NetnsGroup {
            netns: s.netns,
            counts: StateCounts::default(),
            pids: Vec::new(),
        });
        g.counts.add(s.state);
        g.pids.extend(holders::pids(holders::effective(snap, s)));
    }
    let mut out: Vec<NetnsGroup> = groups
        .into_values()
        .map(|mut g| {
            g.pids.sort_unstable();
            g.pids.dedup();
            g
        })
        .collect();
    out.sort_by_key(|g| (std::cmp::Reverse(g.counts.total()), g.netns));
    out
}

/// The connections to or from one remote host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteGroup {
    pub host: IpAddr,
    pub counts: StateCounts,
    /// Distinct local ports these connections use on this machine, sorted.
    pub local_ports: Vec<u16>,
}

/// Listeners and unconnected UDP sockets have no remote host and are left out.
/// v4-mapped v6 addresses count as their v4 host.
pub fn by_remote_host<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> Vec<RemoteGroup> {
    let mut groups: HashMap<IpAddr, RemoteGroup> = HashMap::new();
    for s in sockets {
        if s.remote_is_unspecified() {
            continue;
        }
        let host = s.remote.ip().to_canonical();
        let g = groups.entry(host).or_insert_with(|| RemoteGroup {
            host,
            counts: StateCounts::default(),
            local_ports: Vec::new(),
        });
        g.counts.add(s.state);
        g.local_ports.push(s.local.port());
    }
    let mut out: Vec<RemoteGroup> = groups
        .into_values()
        .map(|mut g| {
            g.local_ports.sort_unstable();
            g.local_ports.dedup();
            g
        })
        .collect();
    out.sort_by_key(|g| (std::cmp::Reverse(g.counts.total()), g.host));
    out
}

/// One line such as `5 sockets: 1 ESTABLISHED, 2 CLOSE_WAIT, 2 LISTEN`.
pub fn summary_line(snapshot: &Snapshot, sockets: &[&Socket]) -> String {
    let counts = by_state(sockets.iter().copied());
    let tcp = sockets.iter().filter(|s| s.proto == Proto::Tcp).count();
    let parts: Vec<String> = counts
        .nonzero()
        .map(|(s, n)| format!("{n} {}", s.kernel_name()))
        .collect();
    let mut line = format!(
        "{} sockets ({} tcp, {} udp)",
        sockets.len(),
        tcp,
        sockets.len() - tcp
    );
    if !parts.is_empty() {
        line.push_str(": ");
        line.push_str(&parts.join(", "));
    }
    if sockets.len() != snapshot.sockets.len() {
        line.push_str(&format!(
            " [{} shown of {}]",
            sockets.len(),
            snapshot.sockets.len()
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    #[test]
    fn states_are_counted() {
        let snap = fixture::small();
        let c = by_state(&snap.sockets);
        assert_eq!(c.get(TcpState::CloseWait), 2);
        assert_eq!(c.get(TcpState::Listen), 2);
        assert_eq!(c.get(TcpState::TimeWait), 1);
        assert_eq!(c.total(), 8);
    }

    #[test]
    fn processes_are_ranked_by_sockets_and_unowned_get_their_own_row() {
        let snap = fixture::small();
        let groups = by_process(&snap, &snap.sockets);
        assert_eq!(groups[0].pid, Some(1000));
        assert_eq!(groups[0].counts.get(TcpState::CloseWait), 2);
        assert_eq!(groups[0].counts.total(), 3);
        let unowned = groups.iter().find(|g| g.pid.is_none()).unwrap();
        assert_eq!(unowned.counts.get(TcpState::TimeWait), 1);
    }

    #[test]
    fn a_shared_socket_counts_once_for_each_holder() {
        let mut snap = fixture::small();
        snap.sockets[0]
            .owners
            .push(crate::model::Owner { pid: 1001, fd: 6 });
        snap.sockets[0]
            .owners
            .push(crate::model::Owner { pid: 1001, fd: 9 });
        let groups = by_process(&snap, &snap.sockets);
        let child = groups.iter().find(|g| g.pid == Some(1001)).unwrap();
        assert_eq!(child.counts.total(), 1);
    }

    #[test]
    fn ports_group_services_with_their_owners() {
        let snap = fixture::small();
        let groups = by_local_port(&snap, &snap.sockets);
        // 80 and 6800 both have three sockets; ties go to the lower port.
        assert_eq!((groups[0].port, groups[0].counts.total()), (80, 3));
        assert_eq!((groups[1].port, groups[1].counts.total()), (6800, 3));
        assert_eq!(groups[1].pids, vec![1000]);
        assert!(groups.iter().any(|g| g.proto == Proto::Udp && g.port == 53));
    }

    #[test]
    fn remote_hosts_skip_listeners_and_fold_mapped_v4() {
        let snap = fixture::small();
        let groups = by_remote_host(&snap.sockets);
        let lo = groups
            .iter()
            .find(|g| g.host == "127.0.0.1".parse::<IpAddr>().unwrap())
            .unwrap();
        assert_eq!(lo.counts.total(), 3);
        assert!(!groups.iter().any(|g| g.host.is_unspecified()));
    }

    #[test]
    fn summary_names_each_state_once() {
        let snap = fixture::small();
        let all: Vec<&Socket> = snap.sockets.iter().collect();
        let line = summary_line(&snap, &all);
        assert!(line.starts_with("8 sockets (7 tcp, 1 udp): "), "{line}");
        assert!(line.contains("2 CLOSE_WAIT"));
        assert!(!line.contains("shown"));
    }
}
