//! A trouble-state refresh merged into the last full dump.
//!
//! The full dump is indexed once ([`index`]); each trouble refresh then
//! costs lookups for its own sockets only, plus one copy of the kept part.

use crate::model::{Proto, Snapshot, TcpState};
use std::collections::HashMap;
use std::net::SocketAddr;

type Map<K> = HashMap<K, usize, foldhash::fast::RandomState>;

/// What a trouble refresh needs to know of the full dump it merges into,
/// built once per full dump.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Inode → position, for the held sockets: the owners of a trouble
    /// refresh's sockets (which it does not scan) are the full dump's for
    /// the same inode (a socket keeps its inode from ESTABLISHED to
    /// CLOSE_WAIT).
    by_inode: Map<u64>,
    /// 4-tuple → position, for the ESTABLISHED connections: one that has
    /// moved to another state since is in the refresh, and is left out of
    /// the kept part. By 4-tuple, which one TCP socket has at a time: a
    /// connection closed since lost its inode (an orphan) but not its
    /// addresses. IPv4 4-tuples (and IPv4-mapped IPv6 ones, which no IPv4
    /// socket can share) packed into 96 bits: 24 bytes an entry instead of
    /// 72, 6 MiB less at 110k connections.
    by_v4: Map<u128>,
    /// The other IPv6 ones.
    by_tuple: Map<(SocketAddr, SocketAddr)>,
    /// Positions of the sockets a trouble refresh keeps from the full dump:
    /// the ESTABLISHED connections and the UDP sockets of the host's table
    /// (every refresh brings the other namespaces' tables whole).
    kept: Vec<usize>,
}

/// The index of `full` for the trouble refreshes merged into it.
pub fn index(full: &Snapshot) -> Index {
    let mut ix = Index::default();
    for (i, s) in full.sockets.iter().enumerate() {
        if s.inode != 0 && !s.owners.is_empty() {
            ix.by_inode.insert(s.inode, i);
        }
        if s.netns != crate::model::HOST_NETNS {
            continue;
        }
        match s.proto {
            Proto::Udp => ix.kept.push(i),
            Proto::Tcp if s.state == TcpState::Established => {
                ix.kept.push(i);
                match packed(s.local, s.remote) {
                    Some(k) => ix.by_v4.insert(k, i),
                    None => ix.by_tuple.insert((s.local, s.remote), i),
                };
            }
            Proto::Tcp => {}
        }
    }
    ix
}

/// The sockets of `part` (every TCP state but ESTABLISHED, fresh, and the
/// other namespaces' whole tables) and, from `full`, the host's ESTABLISHED
/// connections and UDP sockets, except those
/// `part` shows in another state now (a connection that went to CLOSE_WAIT
/// since the full dump is there once, as it is now). Processes, users,
/// counters come from `part`, with the processes of the kept sockets added
/// from `full`; the attribution is the full dump's, whose owner scan the
/// refresh reuses. `ix` is [`index`] of `full`.
pub fn trouble_into(full: &Snapshot, ix: &Index, part: Snapshot) -> Snapshot {
    let Snapshot {
        taken_at,
        monotonic,
        source,
        mut sockets,
        mut processes,
        mut users,
        attribution: _,
        system,
        source_note,
        derived: _,
        transitions,
        namespaces,
        reused_table: _,
    } = part;
    let mut moved = vec![false; full.sockets.len()];
    for s in &mut sockets {
        if s.owners.is_empty()
            && s.inode != 0
            && let Some(&i) = ix.by_inode.get(&s.inode)
        {
            s.owners = full.sockets[i].owners.clone();
        }
        if s.proto == Proto::Tcp && s.netns == crate::model::HOST_NETNS {
            let at = match packed(s.local, s.remote) {
                Some(k) => ix.by_v4.get(&k),
                None => ix.by_tuple.get(&(s.local, s.remote)),
            };
            if let Some(&i) = at {
                moved[i] = true;
            }
        }
    }
    sockets.reserve(ix.kept.len());
    sockets.extend(
        ix.kept
            .iter()
            .filter(|&&i| !moved[i])
            .map(|&i| full.sockets[i].clone()),
    );
    // The full dump's processes and users, with the fresh ones over them:
    // a few maps' worth of work, not a lookup per socket. A process left
    // from the full dump that holds nothing now shows nowhere (rows come
    // from the sockets' holders).
    let mut all_processes = full.processes.clone();
    all_processes.extend(processes.drain());
    processes = all_processes;
    let mut all_users = full.users.clone();
    all_users.extend(users.drain());
    users = all_users;
    Snapshot {
        taken_at,
        monotonic,
        source,
        sockets,
        processes,
        users,
        attribution: full.attribution,
        system,
        source_note,
        derived: Default::default(),
        transitions,
        namespaces,
        // Trouble refreshes are split tables: never reused ones.
        reused_table: None,
    }
}

/// An IPv4 4-tuple in 96 bits (addresses and ports), an IPv4-mapped IPv6 one
/// as the IPv4 one; None for other IPv6 tuples.
fn packed(local: SocketAddr, remote: SocketAddr) -> Option<u128> {
    let v4 = |a: SocketAddr| match a.ip().to_canonical() {
        std::net::IpAddr::V4(ip) => Some((u128::from(ip.to_bits()) << 16) | u128::from(a.port())),
        std::net::IpAddr::V6(_) => None,
    };
    Some((v4(local)? << 48) | v4(remote)?)
}

#[cfg(test)]
mod tests {
    use super::packed;

    #[test]
    fn packed_tuples_tell_every_address_and_port_apart() {
        let p = |l: &str, r: &str| packed(l.parse().unwrap(), r.parse().unwrap());
        let base = p("10.0.0.1:80", "10.0.0.2:5000").unwrap();
        for other in [
            p("10.0.0.1:81", "10.0.0.2:5000"),
            p("10.0.0.3:80", "10.0.0.2:5000"),
            p("10.0.0.1:80", "10.0.0.2:5001"),
            p("10.0.0.1:80", "10.0.0.4:5000"),
            p("10.0.0.2:5000", "10.0.0.1:80"),
        ] {
            assert_ne!(other.unwrap(), base);
        }
        assert_eq!(
            p("[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.2]:5000"),
            Some(base)
        );
        assert_eq!(p("[2001:db8::1]:80", "10.0.0.2:5000"), None);
    }
}
