//! What one frame of a recording holds, as serialized with postcard.
//!
//! Times inside a socket (timer deadlines, `tcp_info`'s "last sent/received"
//! ages) are stored as instants relative to the frame, then pinned to the
//! instant already stored when they moved by less than [`TIME_SLACK_MS`]: an
//! idle socket then reads the same in every frame and costs nothing in a delta.

use crate::model::{
    Attribution, ConnKey, Family, Owner, Process, Proto, Socket, SourceKind, TcpInfo, TcpState,
    Timer, TimerKind,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// How far a stored instant may be from the measured one before the socket
/// counts as changed. Collection itself jitters by a few hundred ms on large
/// tables, so anything finer would record noise.
pub const TIME_SLACK_MS: i64 = 1500;

/// The first block of every recording run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sockscope_version: String,
    pub host: String,
    pub kernel: String,
    /// Filter terms the recorder applied, empty for everything.
    pub filter: String,
    pub interval_ms: u64,
}

/// A key frame: everything, so a reader can start here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Full<S = WireSocket> {
    pub source: u8,
    pub attribution: WireAttribution,
    /// `WireSocket` when read; borrowed when written, to spare a copy of the table.
    pub sockets: Vec<S>,
    pub processes: Vec<WireProcess>,
    pub users: Vec<(u32, String)>,
    pub counters: Vec<(String, u64)>,
    pub sockstat: Vec<(String, u64)>,
    pub sysctls: Vec<(String, String)>,
}

/// What changed since the previous frame.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Delta {
    pub source: u8,
    pub attribution: WireAttribution,
    /// Sockets that appeared or changed, whole.
    pub upserted: Vec<WireSocket>,
    pub removed: Vec<WireKey>,
    pub processes: Vec<WireProcess>,
    pub processes_removed: Vec<u32>,
    pub users: Vec<(u32, String)>,
    /// Counters whose value changed; a counter never disappears within a session.
    pub counters: Vec<(String, u64)>,
    pub sockstat: Vec<(String, u64)>,
    pub sysctls: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WireAttribution {
    pub unreadable_processes: u32,
    pub unattributed_sockets: u32,
    pub as_root: bool,
}

impl From<&Attribution> for WireAttribution {
    fn from(a: &Attribution) -> Self {
        WireAttribution {
            unreadable_processes: a.unreadable_processes as u32,
            unattributed_sockets: a.unattributed_sockets as u32,
            as_root: a.as_root,
        }
    }
}

impl From<WireAttribution> for Attribution {
    fn from(a: WireAttribution) -> Self {
        Attribution {
            unreadable_processes: a.unreadable_processes as usize,
            unattributed_sockets: a.unattributed_sockets as usize,
            as_root: a.as_root,
            // Not recorded: the note is about the live scan.
            hidden_pids: false,
        }
    }
}

pub fn source_code(s: SourceKind) -> u8 {
    match s {
        SourceKind::Netlink => 0,
        SourceKind::Proc => 1,
        SourceKind::Fixture => 2,
    }
}

pub fn source_kind(code: u8) -> SourceKind {
    match code {
        0 => SourceKind::Netlink,
        1 => SourceKind::Proc,
        _ => SourceKind::Fixture,
    }
}

/// A connection's identity, as [`ConnKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WireKey {
    pub udp: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub inode: u64,
    /// Not in the key's own bytes, which are as they were before namespaces:
    /// it travels in the frame's [`super::netns::NamespaceTail`].
    #[serde(skip)]
    pub netns: u64,
}

impl From<ConnKey> for WireKey {
    fn from(k: ConnKey) -> Self {
        WireKey {
            udp: k.proto == Proto::Udp,
            local: k.local,
            remote: k.remote,
            inode: k.inode,
            netns: k.netns,
        }
    }
}

impl From<WireKey> for ConnKey {
    fn from(k: WireKey) -> Self {
        ConnKey {
            proto: if k.udp { Proto::Udp } else { Proto::Tcp },
            local: k.local,
            remote: k.remote,
            inode: k.inode,
            netns: k.netns,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSocket {
    pub key: WireKey,
    pub state: u8,
    pub uid: u32,
    pub recv_q: u32,
    pub send_q: u32,
    /// Kind (see [`timer_code`]) and deadline in ms after the recording's epoch.
    pub timer: Option<(u8, Option<i64>)>,
    pub retransmits: u8,
    pub cookie: u64,
    pub tcp_info: Option<WireTcpInfo>,
    pub owners: Vec<(u32, u32)>,
}

/// `tcp_info` with its three ages turned into instants (ms after the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTcpInfo {
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub min_rtt_us: u32,
    pub rto_us: u32,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub total_retrans: u32,
    pub lost: u32,
    pub unacked: u32,
    pub snd_cwnd: u32,
    pub snd_mss: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub notsent_bytes: u32,
    pub delivery_rate: u64,
    pub data_sent_at: i64,
    pub data_recv_at: i64,
    pub ack_recv_at: i64,
}

fn timer_code(k: TimerKind) -> u8 {
    match k {
        TimerKind::Retransmit => 0,
        TimerKind::Keepalive => 1,
        TimerKind::TimeWait => 2,
        TimerKind::ZeroWindowProbe => 3,
    }
}

fn timer_kind(code: u8) -> TimerKind {
    match code {
        0 => TimerKind::Retransmit,
        1 => TimerKind::Keepalive,
        2 => TimerKind::TimeWait,
        _ => TimerKind::ZeroWindowProbe,
    }
}

/// Converts a socket seen at `now` (ms after the recording's epoch).
pub fn to_wire(s: &Socket, now: i64) -> WireSocket {
    WireSocket {
        key: s.key().into(),
        state: s.state as u8,
        uid: s.uid,
        recv_q: s.recv_q,
        send_q: s.send_q,
        timer: s.timer.map(|t| {
            (
                timer_code(t.kind),
                t.expires_ms.map(|ms| now.saturating_add(ms as i64)),
            )
        }),
        retransmits: s.retransmits,
        cookie: s.cookie,
        tcp_info: s.tcp_info.as_deref().map(|t| WireTcpInfo {
            rtt_us: t.rtt_us,
            rttvar_us: t.rttvar_us,
            min_rtt_us: t.min_rtt_us,
            rto_us: t.rto_us,
            retransmits: t.retransmits,
            probes: t.probes,
            backoff: t.backoff,
            total_retrans: t.total_retrans,
            lost: t.lost,
            unacked: t.unacked,
            snd_cwnd: t.snd_cwnd,
            snd_mss: t.snd_mss,
            bytes_acked: t.bytes_acked,
            bytes_received: t.bytes_received,
            bytes_sent: t.bytes_sent,
            bytes_retrans: t.bytes_retrans,
            segs_out: t.segs_out,
            segs_in: t.segs_in,
            notsent_bytes: t.notsent_bytes,
            delivery_rate: t.delivery_rate,
            data_sent_at: now - t.last_data_sent_ms as i64,
            data_recv_at: now - t.last_data_recv_ms as i64,
            ack_recv_at: now - t.last_ack_recv_ms as i64,
        }),
        owners: s.owners.iter().map(|o| (o.pid, o.fd)).collect(),
    }
}

/// Rebuilds the socket as seen at `now` (ms after the recording's epoch).
pub fn from_wire(w: &WireSocket, now: i64) -> Socket {
    let key = ConnKey::from(w.key);
    let age = |at: i64| now.saturating_sub(at).clamp(0, u32::MAX as i64) as u32;
    Socket {
        proto: key.proto,
        family: if key.local.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        },
        // Recorded from a TcpState: the fallback is never taken on our own files.
        state: TcpState::from_kernel(w.state).unwrap_or(TcpState::Close),
        local: key.local,
        remote: key.remote,
        inode: key.inode,
        uid: w.uid,
        recv_q: w.recv_q,
        send_q: w.send_q,
        timer: w.timer.map(|(kind, at)| Timer {
            kind: timer_kind(kind),
            expires_ms: at.map(|at| at.saturating_sub(now).max(0) as u64),
        }),
        retransmits: w.retransmits,
        cookie: w.cookie,
        tcp_info: w.tcp_info.map(|t| {
            Box::new(TcpInfo {
                rtt_us: t.rtt_us,
                rttvar_us: t.rttvar_us,
                min_rtt_us: t.min_rtt_us,
                rto_us: t.rto_us,
                retransmits: t.retransmits,
                probes: t.probes,
                backoff: t.backoff,
                total_retrans: t.total_retrans,
                lost: t.lost,
                unacked: t.unacked,
                snd_cwnd: t.snd_cwnd,
                snd_mss: t.snd_mss,
                bytes_acked: t.bytes_acked,
                bytes_received: t.bytes_received,
                bytes_sent: t.bytes_sent,
                bytes_retrans: t.bytes_retrans,
                segs_out: t.segs_out,
                segs_in: t.segs_in,
                notsent_bytes: t.notsent_bytes,
                delivery_rate: t.delivery_rate,
                last_data_sent_ms: age(t.data_sent_at),
                last_data_recv_ms: age(t.data_recv_at),
                last_ack_recv_ms: age(t.ack_recv_at),
            })
        }),
        owners: w
            .owners
            .iter()
            .map(|&(pid, fd)| Owner { pid, fd })
            .collect(),
        netns: key.netns,
    }
}

/// True when `new` differs from `old` only by instants within the slack:
/// the reader's copy is still good. Allocates nothing.
pub fn only_times_moved(new: &WireSocket, old: &WireSocket) -> bool {
    // Destructured so that a new field cannot be forgotten here.
    let WireSocket {
        key,
        state,
        uid,
        recv_q,
        send_q,
        timer,
        retransmits,
        cookie,
        tcp_info,
        owners,
    } = new;
    let (mut timer, mut info) = (*timer, *tcp_info);
    settle(&mut timer, &mut info, old);
    timer == old.timer
        && info == old.tcp_info
        && *key == old.key
        && *state == old.state
        && *uid == old.uid
        && *recv_q == old.recv_q
        && *send_q == old.send_q
        && *retransmits == old.retransmits
        && *cookie == old.cookie
        && *owners == old.owners
}

type TimerField = Option<(u8, Option<i64>)>;

/// Pins the instants to those of `old` when they are within [`TIME_SLACK_MS`].
fn settle(timer: &mut TimerField, info: &mut Option<WireTcpInfo>, old: &WireSocket) {
    let near = |a: i64, b: i64| (a - b).abs() <= TIME_SLACK_MS;
    if let (Some((nk, Some(na))), Some((ok, Some(oa)))) = (timer, old.timer)
        && *nk == ok
        && near(*na, oa)
    {
        *na = oa;
    }
    if let (Some(n), Some(o)) = (info, &old.tcp_info) {
        for (a, b) in [
            (&mut n.data_sent_at, o.data_sent_at),
            (&mut n.data_recv_at, o.data_recv_at),
            (&mut n.ack_recv_at, o.ack_recv_at),
        ] {
            if near(*a, b) {
                *a = b;
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireProcess {
    pub pid: u32,
    pub name: String,
    pub cmdline: String,
    pub uid: Option<u32>,
    pub user: Option<String>,
    /// Not in the process's own bytes: it travels in the frame's
    /// [`super::netns::NamespaceTail`].
    #[serde(skip)]
    pub netns: u64,
}

impl From<&Process> for WireProcess {
    fn from(p: &Process) -> Self {
        WireProcess {
            pid: p.pid,
            name: p.name.clone(),
            cmdline: p.cmdline.clone(),
            uid: p.uid,
            user: p.user.clone(),
            netns: p.netns,
        }
    }
}

impl From<WireProcess> for Process {
    fn from(p: WireProcess) -> Self {
        Process {
            pid: p.pid,
            name: p.name,
            cmdline: p.cmdline,
            uid: p.uid,
            user: p.user,
            // Not recorded (a later tail could carry them: see the format
            // in `record/mod.rs`).
            closed_sockets: 0,
            state: None,
            netns: p.netns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    #[test]
    fn sockets_survive_the_round_trip_through_the_wire_form() {
        let snap = fixture::small();
        for s in &snap.sockets {
            let mut s = s.clone();
            s.timer = Some(Timer {
                kind: TimerKind::TimeWait,
                expires_ms: Some(41_000),
            });
            if let Some(t) = &mut s.tcp_info {
                t.last_ack_recv_ms = 12_345;
                t.bytes_acked = 99;
            }
            assert_eq!(from_wire(&to_wire(&s, 5_000_000), 5_000_000), s);
        }
    }

    #[test]
    fn an_idle_socket_reads_the_same_a_second_later() {
        let mut s = fixture::small().sockets[0].clone();
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            expires_ms: Some(60_000),
        });
        let first = to_wire(&s, 1_000_000);
        // One second later the timer has one second less to run.
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            expires_ms: Some(59_100),
        });
        let later = to_wire(&s, 1_001_000);
        assert_ne!(later, first);
        assert!(only_times_moved(&later, &first));
        // A timer re-armed far away is a change.
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            expires_ms: Some(30_000),
        });
        let rearmed = to_wire(&s, 1_001_000);
        assert!(!only_times_moved(&rearmed, &first));
        // So is any other change, with the clock standing still.
        let mut queued = first.clone();
        queued.recv_q += 1;
        assert!(!only_times_moved(&queued, &first));
    }
}
