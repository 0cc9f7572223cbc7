//! The filter language shared by the CLI and the TUI.
//!
//! Space-separated terms, all of which must match. `!term` negates a term.
//!
//! | term | matches |
//! |---|---|
//! | `port:N`, bare `N` | local or remote port |
//! | `lport:N`, `rport:N` | local / remote port |
//! | `pid:N`, `pid:N,M,...` | any holder's pid is one of these (a connection in an accept queue is held by its listener's holders) |
//! | `proc:NAME` | any owner's process name contains NAME (any case) |
//! | `user:NAME` | the socket's or an owner's user (name or uid) |
//! | `state:S` | TCP state: `CLOSE_WAIT`, `close-wait`, `cw`, `est`, `tw`, `fw2`, `listen`, ... |
//! | `pid:none` | sockets no process holds (TIME_WAIT, orphans, or unseen) |
//! | `addr:IP`, `addr:CIDR` | local or remote address |
//! | `laddr:IP`, `raddr:IP` | one end only (also CIDR) |
//! | `proto:tcp\|udp` | protocol |
//! | `family:4\|6` | address family |
//! | `netns:NAME` | network namespace: `host`, a container's or pod's name, an `ip netns` name, the inode |
//! | `container:NAME` | a container's name or id (4+ leading characters) |
//! | `pod:NAME` | a Kubernetes pod: `name` or `namespace/name` |
//! | bare word | a state, or a process name containing it |

use super::holders;
use super::snapshot::Snapshot;
use super::socket::{Family, Proto, Socket, TcpState};
use ipnet::IpNet;
use std::net::IpAddr;

/// A bad term, named, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter term `{term}`: {reason}")]
pub struct FilterError {
    pub term: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Port(u16),
    LocalPort(u16),
    RemotePort(u16),
    /// Any of these pids.
    Pid(Vec<u32>),
    /// `pid:none`: no process holds the socket (or none could be seen).
    NoOwner,
    Process(String),
    User(String),
    State(TcpState),
    Addr(IpNet),
    LocalAddr(IpNet),
    RemoteAddr(IpNet),
    Proto(Proto),
    Family(Family),
    /// `netns:`, lower case.
    Netns(String),
    /// `container:`, lower case.
    Container(String),
    /// `pod:`, lower case.
    Pod(String),
    /// A bare word: a state it names, or a process name containing it.
    Word(String, Option<TcpState>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negated: bool,
    test: Test,
}

/// A parsed filter. The empty filter matches everything.
///
/// ```
/// use sockscope::model::{Filter, fixture};
///
/// let snap = fixture::small(); // a redis with two CLOSE_WAIT sockets on port 6800
/// let leak = Filter::parse("6800 cw").unwrap();
/// let hits = snap.sockets.iter().filter(|s| leak.matches(s, &snap)).count();
/// assert_eq!(hits, 2);
///
/// let err = Filter::parse("6800 state:nope").unwrap_err();
/// assert_eq!(err.term, "state:nope");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
    text: String,
}

impl Filter {
    /// Parses terms separated by white space.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let terms = text
            .split_whitespace()
            .map(parse_term)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter {
            terms,
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        })
    }

    /// Parses CLI arguments, each of which may hold several terms.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Filter, FilterError> {
        let joined: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
        Filter::parse(&joined.join(" "))
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The filter as typed, white space normalised.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The pids the filter asks for (`pid:N` terms that are not negated): a
    /// table shows these first among a socket's holders.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.terms
            .iter()
            .filter(|t| !t.negated)
            .filter_map(|t| match &t.test {
                Test::Pid(p) => Some(p.iter().copied()),
                _ => None,
            })
            .flatten()
    }

    /// True when a non-negated term asks for this state by name: a destroy
    /// then includes listeners only when LISTEN is asked for.
    pub fn names_state(&self, state: TcpState) -> bool {
        self.terms
            .iter()
            .filter(|t| !t.negated)
            .any(|t| matches!(&t.test, Test::State(s) | Test::Word(_, Some(s)) if *s == state))
    }

    /// The filter without its terms that name every address (`addr:0.0.0.0/0`,
    /// `laddr:::/0`): what is left is what really narrows the selection,
    /// for the actions' check that a filter does not select everything.
    pub fn without_catch_all_addresses(&self) -> Filter {
        let terms: Vec<Term> = self
            .terms
            .iter()
            .filter(|t| {
                t.negated
                    || !matches!(
                        &t.test,
                        Test::Addr(net) | Test::LocalAddr(net) | Test::RemoteAddr(net)
                            if net.prefix_len() == 0
                    )
            })
            .cloned()
            .collect();
        Filter {
            terms,
            text: self.text.clone(),
        }
    }

    /// The one namespace other than the host's that the filter's `netns:`,
    /// `container:` and `pod:` terms narrow it to, when they do: the
    /// counters and sysctls views then show that namespace's own.
    pub fn namespace(&self, snapshot: &Snapshot) -> Option<u64> {
        let mut left: Option<Vec<u64>> = None;
        for t in self.terms.iter().filter(|t| !t.negated) {
            if !matches!(t.test, Test::Netns(_) | Test::Container(_) | Test::Pod(_)) {
                continue;
            }
            let hits: Vec<u64> = snapshot
                .namespaces
                .list
                .keys()
                .copied()
                .filter(|&ns| t.test.matches_netns(ns, snapshot))
                .collect();
            left = Some(match left {
                None => hits,
                Some(prev) => prev.into_iter().filter(|i| hits.contains(i)).collect(),
            });
        }
        match left.as_deref() {
            Some([one]) => Some(*one),
            _ => None,
        }
    }

    pub fn matches(&self, socket: &Socket, snapshot: &Snapshot) -> bool {
        self.terms
            .iter()
            .all(|t| t.test.matches(socket, snapshot) != t.negated)
    }
}

fn parse_term(raw: &str) -> Result<Term, FilterError> {
    let err = |reason: &str| FilterError {
        term: raw.to_string(),
        reason: reason.to_string(),
    };
    let (negated, body) = match raw.strip_prefix('!') {
        Some(rest) if !rest.is_empty() => (true, rest),
        Some(_) => return Err(err("`!` must be followed by a term")),
        None => (false, raw),
    };
    // Digits only: `u16::from_str` also takes `+5`.
    let port = |v: &str| {
        v.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| v.parse::<u16>().ok())
            .flatten()
            .ok_or_else(|| err("a port is a number from 0 to 65535"))
    };
    let test = match body.split_once(':') {
        // An IPv6 address has colons of its own: only known keys split.
        Some((key, value)) if is_key(key) => {
            if value.is_empty() {
                return Err(err("the value after `:` is missing"));
            }
            match key.to_ascii_lowercase().as_str() {
                "port" => Test::Port(port(value)?),
                "lport" | "sport" => Test::LocalPort(port(value)?),
                "rport" | "dport" => Test::RemotePort(port(value)?),
                "pid" if value.eq_ignore_ascii_case("none") => Test::NoOwner,
                "pid" => Test::Pid(
                    value
                        .split(',')
                        .map(|p| {
                            // Digits only (no `+5`), and never pid 0.
                            p.bytes()
                                .all(|b| b.is_ascii_digit())
                                .then(|| p.parse::<u32>().ok())
                                .flatten()
                                .filter(|&pid| pid > 0)
                        })
                        .collect::<Option<Vec<u32>>>()
                        .ok_or_else(|| {
                            err("a pid is a positive number (several: 12,34), or `none`")
                        })?,
                ),
                "proc" | "process" => Test::Process(value.to_lowercase()),
                "user" => Test::User(value.to_string()),
                "state" => Test::State(TcpState::parse(value).ok_or_else(|| {
                    err("unknown state; try established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, close, close-wait, last-ack, listen, closing (or est, cw, tw, fw2)")
                })?),
                "addr" | "host" => Test::Addr(parse_net(value).ok_or_else(|| {
                    err("expected an IP address or a CIDR such as 10.0.0.0/8")
                })?),
                "laddr" => Test::LocalAddr(parse_net(value).ok_or_else(|| {
                    err("expected an IP address or a CIDR such as 10.0.0.0/8")
                })?),
                "raddr" => Test::RemoteAddr(parse_net(value).ok_or_else(|| {
                    err("expected an IP address or a CIDR such as 10.0.0.0/8")
                })?),
                "proto" => Test::Proto(match value.to_ascii_lowercase().as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => return Err(err("proto is tcp or udp")),
                }),
                "family" => Test::Family(match value.trim_start_matches(['v', 'V']) {
                    "4" => Family::V4,
                    "6" => Family::V6,
                    _ => return Err(err("family is 4 or 6")),
                }),
                "netns" | "ns" => Test::Netns(value.to_ascii_lowercase()),
                "container" => Test::Container(value.to_ascii_lowercase()),
                "pod" => Test::Pod(value.to_ascii_lowercase()),
                _ => unreachable!("is_key lists exactly these"),
            }
        }
        Some((key, _)) if parse_net(body).is_none() => {
            return Err(err(&format!(
                "unknown key `{key}`; keys are port, lport, rport, pid, proc, user, state, addr, laddr, raddr, proto, family, netns, container, pod"
            )));
        }
        Some(_) => Test::Addr(parse_net(body).expect("checked above")),
        None if body.bytes().all(|b| b.is_ascii_digit()) => Test::Port(port(body)?),
        None => match parse_net(body) {
            Some(net) => Test::Addr(net),
            None => Test::Word(body.to_lowercase(), TcpState::parse(body)),
        },
    };
    Ok(Term { negated, test })
}

fn is_key(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "port"
            | "lport"
            | "sport"
            | "rport"
            | "dport"
            | "pid"
            | "proc"
            | "process"
            | "user"
            | "state"
            | "addr"
            | "host"
            | "laddr"
            | "raddr"
            | "proto"
            | "family"
            | "netns"
            | "ns"
            | "container"
            | "pod"
    )
}

/// An address or CIDR; a v4-mapped v6 address is taken as the v4 one.
fn parse_net(text: &str) -> Option<IpNet> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(IpNet::from(ip.to_canonical()));
    }
    text.parse::<IpNet>().ok().map(|n| n.trunc())
}

fn net_contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip.to_canonical())
}

impl Test {
    /// The namespace terms: whether the namespace `netns` is the one asked
    /// for (they look at the namespace, not at the socket).
    fn matches_netns(&self, netns: u64, snap: &Snapshot) -> bool {
        match self {
            Test::Netns(w) => match snap.namespaces.get(netns) {
                None => netns == crate::model::HOST_NETNS && w == "host",
                Some(ns) => ns.matches(w),
            },
            Test::Container(w) => snap.namespaces.get(netns).is_some_and(|ns| {
                let eq =
                    |v: &Option<String>| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(w));
                eq(&ns.container)
                    || ns.name.eq_ignore_ascii_case(w)
                    || (w.len() >= 4
                        && ns
                            .container_id
                            .as_deref()
                            .is_some_and(|id| id.to_ascii_lowercase().starts_with(w.as_str())))
            }),
            Test::Pod(w) => snap
                .namespaces
                .get(netns)
                .and_then(|ns| ns.pod.as_deref())
                .is_some_and(|pod| {
                    pod.eq_ignore_ascii_case(w)
                        || pod
                            .split_once('/')
                            .is_some_and(|(_, name)| name.eq_ignore_ascii_case(w))
                }),
            _ => false,
        }
    }

    fn matches(&self, s: &Socket, snap: &Snapshot) -> bool {
        match self {
            Test::Port(p) => s.local.port() == *p || s.remote.port() == *p,
            Test::LocalPort(p) => s.local.port() == *p,
            Test::RemotePort(p) => s.remote.port() == *p,
            Test::Pid(pids) => holders::effective(snap, s)
                .iter()
                .any(|o| pids.contains(&o.pid)),
            Test::NoOwner => holders::effective(snap, s).is_empty(),
            Test::Process(name) => owner_name_contains(s, snap, name),
            Test::User(user) => {
                let is = |uid: u32| {
                    uid.to_string() == *user || snap.user_name(uid) == Some(user.as_str())
                };
                is(s.uid)
                    || holders::effective(snap, s)
                        .iter()
                        .any(|o| snap.process(o.pid).and_then(|p| p.uid).is_some_and(is))
            }
            Test::State(st) => s.state == *st,
            Test::Addr(net) => net_contains(net, s.local.ip()) || net_contains(net, s.remote.ip()),
            Test::LocalAddr(net) => net_contains(net, s.local.ip()),
            Test::RemoteAddr(net) => net_contains(net, s.remote.ip()),
            Test::Proto(p) => s.proto == *p,
            Test::Family(f) => s.family == *f,
            Test::Netns(_) | Test::Container(_) | Test::Pod(_) => self.matches_netns(s.netns, snap),
            Test::Word(word, state) => {
                state.is_some_and(|st| st == s.state) || owner_name_contains(s, snap, word)
            }
        }
    }
}

fn owner_name_contains(s: &Socket, snap: &Snapshot, lower: &str) -> bool {
    holders::effective(snap, s).iter().any(|o| {
        snap.process(o.pid)
            .is_some_and(|p| p.name.to_lowercase().contains(lower))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    fn matching(filter: &str) -> Vec<u64> {
        let snap = fixture::small();
        let f = Filter::parse(filter).unwrap();
        snap.sockets
            .iter()
            .filter(|s| f.matches(s, &snap))
            .map(|s| s.inode)
            .collect()
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert_eq!(matching("").len(), fixture::small().sockets.len());
    }

    #[test]
    fn bare_number_is_a_port_at_either_end() {
        assert_eq!(matching("6800"), vec![101, 102, 103, 104]);
        assert_eq!(matching("port:6800"), matching("6800"));
    }

    #[test]
    fn lport_and_rport_look_at_one_end_only() {
        assert_eq!(matching("lport:6800"), vec![101, 102, 103]);
        assert_eq!(matching("rport:6800"), vec![104]);
    }

    #[test]
    fn state_accepts_every_spelling() {
        for s in [
            "state:cw",
            "state:close-wait",
            "state:CLOSE_WAIT",
            "cw",
            "close_wait",
        ] {
            assert_eq!(matching(s), vec![102, 103], "{s}");
        }
    }

    #[test]
    fn bare_word_matches_process_names() {
        assert_eq!(matching("redis"), vec![101, 102, 103]);
        assert_eq!(matching("proc:REDIS"), vec![101, 102, 103]);
        assert_eq!(matching("proc:nginx"), vec![201, 202]);
    }

    #[test]
    fn all_terms_must_match_and_bang_negates() {
        assert_eq!(matching("redis cw"), vec![102, 103]);
        assert_eq!(matching("redis !cw"), vec![101]);
    }

    #[test]
    fn pid_user_proto_family() {
        assert_eq!(matching("pid:4242"), vec![201, 202]);
        assert_eq!(matching("user:www-data"), vec![201, 202]);
        assert_eq!(matching("user:33"), vec![201, 202]);
        assert_eq!(matching("proto:udp"), vec![301]);
        assert_eq!(matching("family:6"), vec![202]);
    }

    #[test]
    fn addr_takes_ips_and_cidrs_and_sees_v4_inside_v6() {
        assert_eq!(matching("addr:10.0.0.9"), vec![103]);
        assert_eq!(matching("addr:10.0.0.0/8"), vec![103]);
        assert_eq!(matching("addr:2001:db8::/32"), vec![202]);
        // [::ffff:127.0.0.1] on a dual-stack socket is 127.0.0.1
        assert!(matching("addr:127.0.0.1").contains(&202));
    }

    #[test]
    fn pid_none_and_one_ended_addresses() {
        assert_eq!(matching("pid:none"), vec![0]);
        assert_eq!(matching("raddr:10.0.0.9"), vec![103]);
        assert_eq!(matching("laddr:10.0.0.9"), Vec::<u64>::new());
    }

    #[test]
    fn bad_terms_name_themselves() {
        for (text, bad) in [
            ("port:abc", "port:abc"),
            ("port:70000", "port:70000"),
            ("redis state:nope", "state:nope"),
            ("proto:sctp", "proto:sctp"),
            ("family:5", "family:5"),
            ("addr:10.0.0.300", "addr:10.0.0.300"),
            ("colour:red", "colour:red"),
            ("pid:", "pid:"),
            ("pid:0", "pid:0"),
            ("pid:+5", "pid:+5"),
            ("port:+5", "port:+5"),
            ("lport:-1", "lport:-1"),
            ("!", "!"),
        ] {
            let e = Filter::parse(text).unwrap_err();
            assert_eq!(e.term, bad, "{text}");
            assert!(e.to_string().contains(bad));
        }
    }
}
