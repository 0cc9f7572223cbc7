//! Destroying sockets with netlink `SOCK_DESTROY`, as `ss -K` does: the
//! kernel aborts the connection (a RST to the peer where the state needs
//! one) and the owner's next call on it fails with ECONNABORTED.
//!
//! Each socket is named by its 4-tuple and the cookie from the dump that
//! showed it, so a newer socket that took the same addresses is left alone.
//! The kernel's acknowledgement is not taken as proof: the socket table is
//! read again, and a socket that is still there is reported as such (an
//! explicitly bound UDP socket, for one, stays bound after its abort).

use crate::collect::netlink::{DumpRequest, Dumper, SocketRef};
use crate::model::{Family, Proto, Socket, TcpState, socket::format_addr};
use std::collections::HashMap;
use std::fmt;

/// One socket to destroy: what the kernel needs, and its state for the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    pub socket: SocketRef,
    pub state: TcpState,
    /// The network namespace whose table has it: SOCK_DESTROY is sent from
    /// a netlink socket made there.
    pub netns: u64,
}

impl From<&Socket> for Tuple {
    fn from(s: &Socket) -> Tuple {
        Tuple {
            socket: SocketRef::from(s),
            state: s.state,
            netns: s.netns,
        }
    }
}

impl fmt::Display for Tuple {
    /// `tcp 127.0.0.1:6800 127.0.0.1:51000 CLOSE_WAIT`: only addresses and
    /// kernel names, nothing another process chose.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.socket.proto.name(),
            format_addr(&self.socket.local),
            format_addr(&self.socket.remote),
            self.state
        )
    }
}

/// What happened to one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel acknowledged and the socket is no longer there.
    Destroyed,
    /// It was gone before we asked (closed, or replaced by a newer socket
    /// with the same addresses).
    AlreadyGone,
    /// The kernel was built without CONFIG_INET_DIAG_DESTROY.
    NotSupported,
    /// Needs CAP_NET_ADMIN.
    NotPermitted,
    /// The kernel acknowledged, yet the socket is still there, in this state
    /// (an orphan the kernel does not abort, an unconnected UDP socket that
    /// stays bound).
    StillPresent(TcpState),
    /// The sample came from /proc/net, which has no cookies.
    NoCookie,
    Failed(String),
}

impl Outcome {
    /// Whether the socket is gone, as asked.
    pub fn handled(&self) -> bool {
        matches!(self, Outcome::Destroyed | Outcome::AlreadyGone)
    }

    /// One label per kind, for summaries.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Destroyed => "destroyed",
            Outcome::AlreadyGone => "already gone",
            Outcome::NotSupported => {
                "not supported by this kernel (needs CONFIG_INET_DIAG_DESTROY)"
            }
            Outcome::NotPermitted => "not permitted (needs CAP_NET_ADMIN)",
            Outcome::StillPresent(_) => "still present after the kernel's ack",
            Outcome::NoCookie => "no socket cookie (the table came from /proc/net)",
            Outcome::Failed(_) => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::StillPresent(state) => {
                write!(f, "still present ({state}) after the kernel's ack")
            }
            Outcome::Failed(e) => write!(f, "failed: {e}"),
            other => f.write_str(other.label()),
        }
    }
}

/// Classifies the kernel's answer to SOCK_DESTROY (before the second look).
pub fn classify(result: &std::io::Result<()>) -> Option<Outcome> {
    let err = match result {
        Ok(()) => return None,
        Err(e) => e,
    };
    Some(match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESTALE) => Outcome::AlreadyGone,
        Some(libc::EOPNOTSUPP) => Outcome::NotSupported,
        Some(libc::EPERM) | Some(libc::EACCES) => Outcome::NotPermitted,
        _ => Outcome::Failed(err.to_string()),
    })
}

/// Destroys each socket in turn on one netlink socket of its own, then
/// looks again: one dump per protocol and family involved, where a socket
/// is found by its cookie (unique since boot). A dump rather than an exact
/// query per socket, because the kernel's exact lookup of UDP sockets swaps
/// the two ends ("for historical reasons") and so misses sockets that are
/// still there, and SO_REUSEPORT groups answer for each other.
pub fn destroy_all(tuples: &[Tuple]) -> Vec<(Tuple, Outcome)> {
    // One netlink socket per namespace, made in it; results in the order asked.
    let mut spaces: Vec<u64> = tuples.iter().map(|t| t.netns).collect();
    spaces.sort_unstable();
    spaces.dedup();
    let mut done: HashMap<Tuple, Outcome> = HashMap::new();
    for netns in spaces {
        let these: Vec<Tuple> = tuples
            .iter()
            .filter(|t| t.netns == netns)
            .copied()
            .collect();
        let opened = if netns == crate::model::HOST_NETNS {
            Dumper::open().map_err(|e| e.to_string())
        } else {
            crate::collect::netns::open_namespace(netns)
                .and_then(|ns| Dumper::open_in(ns, 1 << 16).map_err(|e| e.to_string()))
        };
        done.extend(destroy_in(opened, &these));
    }
    tuples
        .iter()
        .map(|t| (*t, done.get(t).cloned().unwrap_or(Outcome::AlreadyGone)))
        .collect()
}

/// [`destroy_all`] for the sockets of one namespace, on its dumper.
fn destroy_in(opened: Result<Dumper, String>, tuples: &[Tuple]) -> Vec<(Tuple, Outcome)> {
    let mut dumper = match opened {
        Ok(d) => d,
        Err(why) => {
            return tuples
                .iter()
                .map(|t| (*t, Outcome::Failed(why.clone())))
                .collect();
        }
    };
    let mut results: Vec<(Tuple, Option<Outcome>)> = tuples
        .iter()
        .map(|t| {
            let outcome = if t.socket.cookie == 0 {
                Some(Outcome::NoCookie)
            } else {
                classify(&dumper.destroy(&t.socket))
            };
            (*t, outcome)
        })
        .collect();
    // Never report success for a socket that is still there.
    let mut kinds: Vec<(Proto, Family)> = results
        .iter()
        .filter(|(_, o)| o.is_none())
        .map(|(t, _)| (t.socket.proto, t.socket.family))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut present: HashMap<u64, TcpState> = HashMap::new();
    let mut failed_look: Option<String> = None;
    for (proto, family) in kinds {
        let mut out = Vec::new();
        let req = DumpRequest {
            proto,
            family,
            tcp_info: false,
        };
        match dumper.dump(req, &mut out) {
            Ok(()) => present.extend(out.iter().map(|s| (s.cookie, s.state))),
            Err(e) => failed_look = Some(e.to_string()),
        }
    }
    for (t, outcome) in &mut results {
        if outcome.is_none() {
            *outcome = Some(match (&failed_look, present.get(&t.socket.cookie)) {
                (_, Some(state)) => Outcome::StillPresent(*state),
                (None, None) => Outcome::Destroyed,
                (Some(e), None) => Outcome::Failed(format!(
                    "the kernel acknowledged, but looking again failed: {e}"
                )),
            });
        }
    }
    results
        .into_iter()
        .map(|(t, o)| (t, o.expect("every outcome set above")))
        .collect()
}

/// Counts per outcome, in a fixed order: "destroyed 298, already gone 2".
pub fn summary(results: &[(Tuple, Outcome)]) -> String {
    let order = [
        "destroyed",
        "already gone",
        "still present after the kernel's ack",
        "not permitted (needs CAP_NET_ADMIN)",
        "not supported by this kernel (needs CONFIG_INET_DIAG_DESTROY)",
        "no socket cookie (the table came from /proc/net)",
        "failed",
    ];
    let mut parts = Vec::new();
    for label in order {
        let n = results.iter().filter(|(_, o)| o.label() == label).count();
        if n > 0 {
            parts.push(format!("{label} {n}"));
        }
    }
    if parts.is_empty() {
        return "nothing to destroy".into();
    }
    // The first failure's reason, when there is one the labels do not say.
    if let Some((_, Outcome::Failed(e))) = results
        .iter()
        .find(|(_, o)| matches!(o, Outcome::Failed(_)))
    {
        parts.push(format!("first failure: {e}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;
    use std::io;

    #[test]
    fn kernel_errors_map_to_what_the_user_can_do() {
        let e = |n| Err(io::Error::from_raw_os_error(n));
        assert_eq!(classify(&Ok(())), None);
        assert_eq!(classify(&e(libc::ENOENT)), Some(Outcome::AlreadyGone));
        assert_eq!(classify(&e(libc::ESTALE)), Some(Outcome::AlreadyGone));
        assert_eq!(classify(&e(libc::EOPNOTSUPP)), Some(Outcome::NotSupported));
        assert_eq!(classify(&e(libc::EPERM)), Some(Outcome::NotPermitted));
        assert!(matches!(
            classify(&e(libc::EINVAL)),
            Some(Outcome::Failed(_))
        ));
        assert!(Outcome::Destroyed.handled() && Outcome::AlreadyGone.handled());
        assert!(!Outcome::StillPresent(TcpState::FinWait2).handled());
        assert!(!Outcome::NotPermitted.handled());
    }

    #[test]
    fn summary_counts_each_outcome_in_a_fixed_order() {
        let snap = fixture::small();
        let t = Tuple::from(&snap.sockets[1]);
        let mut results = vec![(t, Outcome::Destroyed); 298];
        results.push((t, Outcome::AlreadyGone));
        results.insert(0, (t, Outcome::AlreadyGone));
        assert_eq!(summary(&results), "destroyed 298, already gone 2");
        results.push((t, Outcome::NotPermitted));
        results.push((t, Outcome::Failed("EINVAL".into())));
        assert_eq!(
            summary(&results),
            "destroyed 298, already gone 2, not permitted (needs CAP_NET_ADMIN) 1, failed 1, first failure: EINVAL"
        );
        assert_eq!(summary(&[]), "nothing to destroy");
    }

    #[test]
    fn tuples_show_addresses_and_state_only() {
        let snap = fixture::small();
        assert_eq!(
            Tuple::from(&snap.sockets[1]).to_string(),
            "tcp 127.0.0.1:6800 127.0.0.1:51000 CLOSE_WAIT"
        );
    }

    #[test]
    fn a_socket_without_cookie_is_not_sent_to_the_kernel() {
        let mut s = fixture::small().sockets[1].clone();
        s.cookie = 0;
        let results = destroy_all(&[Tuple::from(&s)]);
        assert_eq!(results[0].1, Outcome::NoCookie);
    }
}
