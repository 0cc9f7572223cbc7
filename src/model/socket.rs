//! The socket as sockscope sees it: one row of the kernel's socket table plus its owners.

use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Address family, 4 or 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn number(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

impl Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

/// TCP states with the kernel's numbering (`include/net/tcp_states.h`).
/// UDP reuses ESTABLISHED (connected) and CLOSE (unconnected), as the kernel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
}

impl TcpState {
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

    /// From the kernel's number. `TCP_NEW_SYN_RECV` (12) is how the kernel keeps
    /// request sockets internally; it reports them as SYN_RECV, and so do we.
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        Some(match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => return None,
        })
    }

    /// States that usually mean something is wrong when they pile up:
    /// drawn highlighted in the table and the monitor.
    pub fn is_trouble(self) -> bool {
        matches!(
            self,
            TcpState::CloseWait
                | TcpState::SynRecv
                | TcpState::FinWait2
                | TcpState::LastAck
                | TcpState::Closing
        )
    }

    /// The kernel's name, upper case with underscores: `CLOSE_WAIT`.
    pub fn kernel_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// The short column label used where space is tight.
    pub fn short_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// Parses what a user may type: kernel names (`CLOSE_WAIT`), ss names
    /// (`close-wait`, `estab`, `syn-recv`, `unconn`) and short forms (`cw`, `est`,
    /// `tw`, `fw1`, `fw2`, `sr`, `ss`, `la`). Case does not matter.
    pub fn parse(text: &str) -> Option<TcpState> {
        let t = text.to_ascii_lowercase().replace('-', "_");
        Some(match t.as_str() {
            "established" | "estab" | "est" => TcpState::Established,
            "syn_sent" | "synsent" | "ss" => TcpState::SynSent,
            "syn_recv" | "synrecv" | "syn_received" | "sr" => TcpState::SynRecv,
            "fin_wait1" | "fin_wait_1" | "finwait1" | "fw1" => TcpState::FinWait1,
            "fin_wait2" | "fin_wait_2" | "finwait2" | "fw2" => TcpState::FinWait2,
            "time_wait" | "timewait" | "tw" => TcpState::TimeWait,
            "close" | "closed" | "unconn" => TcpState::Close,
            "close_wait" | "closewait" | "cw" => TcpState::CloseWait,
            "last_ack" | "lastack" | "la" => TcpState::LastAck,
            "listen" | "listening" => TcpState::Listen,
            "closing" => TcpState::Closing,
            _ => return None,
        })
    }
}

impl Serialize for TcpState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.kernel_name())
    }
}

impl std::fmt::Display for TcpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kernel_name())
    }
}

/// Which kernel timer is armed on the socket, and when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timer {
    pub kind: TimerKind,
    /// Milliseconds until it fires, when the kernel says.
    pub expires_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    Retransmit,
    Keepalive,
    TimeWait,
    ZeroWindowProbe,
}

/// The part of the kernel's `struct tcp_info` that sockscope uses.
/// Times are as the kernel gives them: rtt in microseconds, `last_*` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TcpInfo {
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub min_rtt_us: u32,
    pub rto_us: u32,
    /// Retransmissions of the current unacknowledged segment.
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
    pub last_data_sent_ms: u32,
    pub last_data_recv_ms: u32,
    pub last_ack_recv_ms: u32,
}

/// A process's hold on a socket: the socket is its file descriptor `fd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Owner {
    pub pid: u32,
    pub fd: u32,
}

/// A socket's holders: one, inline, for almost every socket (no allocation
/// per socket in each copy of a 130k-socket table); more spill to the heap.
pub type Owners = smallvec::SmallVec<[Owner; 1]>;

/// One TCP or UDP socket.
#[derive(Debug, PartialEq)]
pub struct Socket {
    pub proto: Proto,
    pub family: Family,
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// 0 for sockets no file refers to any more (TIME_WAIT, orphans, request socks).
    pub inode: u64,
    pub uid: u32,
    pub recv_q: u32,
    pub send_q: u32,
    pub timer: Option<Timer>,
    /// The kernel's retransmit counter from the diag header (`idiag_retrans`).
    pub retransmits: u8,
    /// The kernel's socket cookie, 0 when read from `/proc/net`.
    pub cookie: u64,
    pub tcp_info: Option<Box<TcpInfo>>,
    /// Every (pid, fd) that holds this socket, sorted. Empty when unknown.
    pub owners: Owners,
    /// The network namespace whose table the socket is in, by its inode;
    /// [`HOST_NETNS`] for the namespace sockscope runs in.
    pub netns: u64,
}

/// Written out for the owners: `SmallVec`'s own `clone` goes through an
/// iterator, and a trouble refresh at 130k sockets copies the 100k kept
/// ones; the owners are `Copy`, so one copy of the slice does.
impl Clone for Socket {
    fn clone(&self) -> Socket {
        // Every other field is `Copy`: one that is not stops the build here.
        Socket {
            tcp_info: self.tcp_info.clone(),
            owners: Owners::from_slice(&self.owners),
            ..*self
        }
    }
}

/// The namespace sockscope runs in ("host"): sockets and processes carry
/// the inode of any other network namespace.
pub const HOST_NETNS: u64 = 0;

impl Socket {
    /// The identity of a connection across refreshes. The inode tells apart
    /// SO_REUSEPORT listeners and unconnected UDP sockets on the same address;
    /// it is 0 for TIME_WAIT, whose 4-tuple is unique on its own.
    pub fn key(&self) -> ConnKey {
        ConnKey {
            proto: self.proto,
            netns: self.netns,
            local: self.local,
            remote: self.remote,
            inode: self.inode,
        }
    }

    /// True when the remote end is a wildcard (listener or unconnected UDP).
    pub fn remote_is_unspecified(&self) -> bool {
        self.remote.port() == 0 && self.remote.ip().is_unspecified()
    }
}

/// What identifies a connection across refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    pub proto: Proto,
    /// Two namespaces may each have a connection with the same 4-tuple.
    pub netns: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub inode: u64,
}

/// A process that owns at least one socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// `comm`: at most 15 bytes, as the kernel keeps it; may hold any byte.
    pub name: String,
    /// The command line, arguments joined by spaces; empty for kernel threads and zombies.
    pub cmdline: String,
    pub uid: Option<u32>,
    pub user: Option<String>,
    /// TCP sockets it still holds a descriptor of that are in no socket
    /// table any more: destroyed, reset and closed by the kernel, or never
    /// connected. `lsof` lists them (`protocol: TCP`), `ss` does not. Only
    /// `close()` or exit frees them.
    pub closed_sockets: u32,
    /// The scheduler state from `/proc/PID/stat` at the scan; None when
    /// unknown (a recording, or the stat file could not be read).
    pub state: Option<ProcState>,
    /// Its network namespace ([`HOST_NETNS`] for sockscope's own).
    pub netns: u64,
}

/// A process's scheduler state, the letter in `/proc/PID/stat` (field 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcState {
    /// `R`: running or runnable.
    Running,
    /// `S`: interruptible sleep (waiting in poll, accept, read...): normal.
    Sleeping,
    /// `D`: uninterruptible sleep, usually waiting on disk or network file I/O.
    DiskSleep,
    /// `T`: stopped by a signal (SIGSTOP, SIGTSTP) or a frozen cgroup v1.
    Stopped,
    /// `t`: stopped by a debugger (ptrace).
    Traced,
    /// `Z`: exited, not yet reaped by its parent.
    Zombie,
    /// `X`, `x`: dying.
    Dead,
    /// `I`: an idle kernel thread.
    Idle,
    /// `W`, `K`, `P` and anything newer: kept, not interpreted.
    Other,
}

impl ProcState {
    /// From the letter in `/proc/PID/stat` or the `State:` line of `status`.
    pub fn from_letter(c: u8) -> ProcState {
        match c {
            b'R' => ProcState::Running,
            b'S' => ProcState::Sleeping,
            b'D' => ProcState::DiskSleep,
            b'T' => ProcState::Stopped,
            b't' => ProcState::Traced,
            b'Z' => ProcState::Zombie,
            b'X' | b'x' => ProcState::Dead,
            b'I' => ProcState::Idle,
            _ => ProcState::Other,
        }
    }

    /// The letter `ps` shows.
    pub fn letter(self) -> char {
        match self {
            ProcState::Running => 'R',
            ProcState::Sleeping => 'S',
            ProcState::DiskSleep => 'D',
            ProcState::Stopped => 'T',
            ProcState::Traced => 't',
            ProcState::Zombie => 'Z',
            ProcState::Dead => 'X',
            ProcState::Idle => 'I',
            ProcState::Other => '?',
        }
    }

    /// A process in this state cannot run its code: it accepts nothing,
    /// reads nothing and closes nothing until the state changes.
    pub fn cannot_run(self) -> bool {
        matches!(
            self,
            ProcState::Stopped
                | ProcState::Traced
                | ProcState::DiskSleep
                | ProcState::Zombie
                | ProcState::Dead
        )
    }

    /// A few words for a summary: `stopped (SIGSTOP)`.
    pub fn short(self) -> &'static str {
        match self {
            ProcState::Running => "running",
            ProcState::Sleeping => "sleeping",
            ProcState::DiskSleep => "in uninterruptible sleep (D)",
            ProcState::Stopped => "stopped (SIGSTOP)",
            ProcState::Traced => "stopped by a debugger",
            ProcState::Zombie => "a zombie",
            ProcState::Dead => "dying",
            ProcState::Idle => "idle",
            ProcState::Other => "in an unusual state",
        }
    }

    /// What the state means, for a finding's message.
    pub fn describe(self) -> &'static str {
        match self {
            ProcState::Running => "running",
            ProcState::Sleeping => "sleeping",
            ProcState::DiskSleep => {
                "in uninterruptible sleep (D: blocked in the kernel, usually on I/O)"
            }
            ProcState::Stopped => "stopped (T: SIGSTOP or SIGTSTP, or a frozen cgroup)",
            ProcState::Traced => "stopped by a debugger (t: ptrace)",
            ProcState::Zombie => "a zombie (Z: exited, not reaped by its parent)",
            ProcState::Dead => "dying (X)",
            ProcState::Idle => "idle",
            ProcState::Other => "in an unusual state",
        }
    }
}

/// Formats an address for humans the way `ss` does: `[::1]:80`, `127.0.0.1:80`, `*:80`.
pub fn format_addr(addr: &SocketAddr) -> String {
    let port = if addr.port() == 0 {
        "*".to_string()
    } else {
        addr.port().to_string()
    };
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("*:{port}"),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("[::]:{port}"),
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_parse_accepts_kernel_ss_and_short_names() {
        assert_eq!(TcpState::parse("CLOSE_WAIT"), Some(TcpState::CloseWait));
        assert_eq!(TcpState::parse("close-wait"), Some(TcpState::CloseWait));
        assert_eq!(TcpState::parse("cw"), Some(TcpState::CloseWait));
        assert_eq!(TcpState::parse("est"), Some(TcpState::Established));
        assert_eq!(TcpState::parse("estab"), Some(TcpState::Established));
        assert_eq!(TcpState::parse("tw"), Some(TcpState::TimeWait));
        assert_eq!(TcpState::parse("fw2"), Some(TcpState::FinWait2));
        assert_eq!(TcpState::parse("fin-wait-2"), Some(TcpState::FinWait2));
        assert_eq!(TcpState::parse("listen"), Some(TcpState::Listen));
        assert_eq!(TcpState::parse("syn-recv"), Some(TcpState::SynRecv));
        assert_eq!(TcpState::parse("nonsense"), None);
    }

    #[test]
    fn kernel_numbers_round_trip_and_new_syn_recv_reads_as_syn_recv() {
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_kernel(s as u8), Some(s));
        }
        assert_eq!(TcpState::from_kernel(12), Some(TcpState::SynRecv));
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(13), None);
    }

    #[test]
    fn addresses_format_like_ss() {
        assert_eq!(
            format_addr(&"127.0.0.1:80".parse().unwrap()),
            "127.0.0.1:80"
        );
        assert_eq!(format_addr(&"0.0.0.0:0".parse().unwrap()), "*:*");
        assert_eq!(format_addr(&"[::1]:443".parse().unwrap()), "[::1]:443");
        assert_eq!(format_addr(&"[::]:22".parse().unwrap()), "[::]:22");
    }
}
