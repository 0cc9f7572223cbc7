//! Socket table from the kernel's `NETLINK_SOCK_DIAG` (inet_diag), the way `ss` reads it.

use crate::model::{Family, Proto, Socket, TcpInfo, TcpState, Timer, TimerKind};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SOCK_DESTROY, SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP},
    inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags, nlas::Nla},
};
use netlink_sys::{Socket as NlSocket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};
use std::io;
use std::net::SocketAddr;

/// What to ask the kernel for in one dump.
#[derive(Debug, Clone, Copy)]
pub struct DumpRequest {
    pub proto: Proto,
    pub family: Family,
    /// Ask for `tcp_info` too. It costs kernel time on large tables, so callers
    /// that do not show it can leave it out.
    pub tcp_info: bool,
}

/// What the kernel needs to find one socket again: protocol, family, the
/// 4-tuple and the cookie from the dump that showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketRef {
    pub proto: Proto,
    pub family: Family,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub cookie: u64,
}

impl From<&Socket> for SocketRef {
    fn from(s: &Socket) -> SocketRef {
        SocketRef {
            proto: s.proto,
            family: s.family,
            local: s.local,
            remote: s.remote,
            cookie: s.cookie,
        }
    }
}

impl SocketRef {
    fn id(&self) -> SocketId {
        let mut id = match self.family {
            Family::V4 => SocketId::new_v4(),
            Family::V6 => SocketId::new_v6(),
        };
        id.source_address = self.local.ip();
        id.source_port = self.local.port();
        id.destination_address = self.remote.ip();
        id.destination_port = self.remote.port();
        id.cookie = self.cookie.to_ne_bytes();
        id
    }

    fn family_number(&self) -> u8 {
        match self.family {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }

    fn protocol_number(&self) -> u8 {
        match self.proto {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
        }
    }
}

/// Errors from the netlink source.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a NETLINK_SOCK_DIAG socket: {0}")]
    Open(io::Error),
    #[error("sock_diag dump of {what} failed: {source}")]
    Dump { what: String, source: io::Error },
    #[error("sock_diag dump of {what}: cannot decode the kernel's reply: {detail}")]
    Decode { what: String, detail: String },
}

/// A netlink socket kept open across dumps.
pub struct Dumper {
    socket: NlSocket,
    buf: Vec<u8>,
    seq: u32,
}

// A dump reply fills the user's buffer up to this size per recv; 1 MiB keeps
// the number of recv calls on 100k+ sockets small.
const RECV_BUF: usize = 1 << 20;

impl Dumper {
    pub fn open() -> Result<Dumper, NetlinkError> {
        let mut socket = NlSocket::new(NETLINK_SOCK_DIAG).map_err(NetlinkError::Open)?;
        // Best effort: a larger kernel-side buffer means fewer stalls on big dumps.
        let _ = socket.set_rx_buf_sz(4 * RECV_BUF);
        socket.bind_auto().map_err(NetlinkError::Open)?;
        socket
            .connect(&NlAddr::new(0, 0))
            .map_err(NetlinkError::Open)?;
        Ok(Dumper {
            socket,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    /// Dumps every socket of one protocol and family into `out`.
    ///
    /// If the kernel's `tcp_info` cannot be decoded (an old kernel with a shorter
    /// struct), the dump is repeated without it rather than losing sockets.
    pub fn dump(&mut self, req: DumpRequest, out: &mut Vec<Socket>) -> Result<(), NetlinkError> {
        let start = out.len();
        match self.request(req, None, out) {
            Err(NetlinkError::Decode { .. }) if req.tcp_info => {
                out.truncate(start);
                self.request(
                    DumpRequest {
                        tcp_info: false,
                        ..req
                    },
                    None,
                    out,
                )
            }
            other => other,
        }
    }

    /// Asks the kernel about one socket, by its addresses and cookie, with its
    /// `tcp_info`: cheap where a full dump with `tcp_info` is not. None when
    /// the socket is gone.
    pub fn query(&mut self, socket: &Socket) -> Result<Option<Socket>, NetlinkError> {
        self.query_ref(&SocketRef::from(socket))
    }

    /// [`Dumper::query`] by the kernel's identity of the socket.
    pub fn query_ref(&mut self, socket: &SocketRef) -> Result<Option<Socket>, NetlinkError> {
        let req = DumpRequest {
            proto: socket.proto,
            family: socket.family,
            tcp_info: true,
        };
        let mut out = Vec::new();
        match self.request(req, Some(socket.id()), &mut out) {
            Ok(()) => Ok(out.pop()),
            Err(NetlinkError::Dump { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the kernel to destroy one socket (`SOCK_DESTROY`, as `ss -K`):
    /// Ok when it acknowledged, or the error it answered with (ENOENT: no
    /// such socket; ESTALE: another socket has these addresses now;
    /// EPERM: needs CAP_NET_ADMIN; EOPNOTSUPP: a kernel without
    /// CONFIG_INET_DIAG_DESTROY). An acknowledgement is not proof: the
    /// caller looks again.
    pub fn destroy(&mut self, socket: &SocketRef) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family: socket.family_number(),
                protocol: socket.protocol_number(),
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: socket.id(),
            })
            .into(),
        );
        packet.finalize();
        // The crate knows only SOCK_DIAG_BY_FAMILY; SOCK_DESTROY takes the
        // same request body.
        packet.header.message_type = SOCK_DESTROY;
        let mut request = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut request);
        self.socket.send(&request, 0)?;
        loop {
            let size = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut offset = 0;
            while offset < size {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[offset..size])
                    .map_err(|e| io::Error::other(e.to_string()))?;
                let len = msg.header.length as usize;
                // Anything left over from an earlier request is skipped.
                if msg.header.sequence_number == seq
                    && let NetlinkPayload::Error(err) = msg.payload
                {
                    return match err.code {
                        None => Ok(()),
                        Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                    };
                }
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
            }
        }
    }

    /// A dump (`exact` None) or a query for one socket.
    fn request(
        &mut self,
        req: DumpRequest,
        exact: Option<SocketId>,
        out: &mut Vec<Socket>,
    ) -> Result<(), NetlinkError> {
        let what = format!("{}{}", req.proto.name(), req.family.number());
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = if exact.is_some() {
            NLM_F_REQUEST
        } else {
            NLM_F_REQUEST | NLM_F_DUMP
        };
        let single = exact.is_some();
        header.sequence_number = self.seq;
        let extensions = if req.tcp_info && req.proto == Proto::Tcp {
            ExtensionFlags::INFO
        } else {
            ExtensionFlags::empty()
        };
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family: match req.family {
                    Family::V4 => AF_INET,
                    Family::V6 => AF_INET6,
                },
                protocol: match req.proto {
                    Proto::Tcp => IPPROTO_TCP,
                    Proto::Udp => IPPROTO_UDP,
                },
                extensions,
                states: StateFlags::all(),
                socket_id: exact.unwrap_or_else(|| match req.family {
                    Family::V4 => SocketId::new_v4(),
                    Family::V6 => SocketId::new_v6(),
                }),
            })
            .into(),
        );
        packet.finalize();
        let mut request = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut request);
        self.socket
            .send(&request, 0)
            .map_err(|source| NetlinkError::Dump {
                what: what.clone(),
                source,
            })?;

        loop {
            let size = loop {
                match self.socket.recv(&mut &mut self.buf[..], 0) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(NetlinkError::Dump {
                            what: what.clone(),
                            source,
                        });
                    }
                }
            };
            let mut offset = 0;
            while offset < size {
                let bytes = &self.buf[offset..size];
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(bytes).map_err(|e| {
                    NetlinkError::Decode {
                        what: what.clone(),
                        detail: e.to_string(),
                    }
                })?;
                let len = msg.header.length as usize;
                // NLM_F_DUMP_INTR means the table changed during the dump; what we
                // got is still a valid (slightly smeared) view, as with `ss`.
                match msg.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(resp)) => {
                        if let Some(sock) = convert(&resp, req.proto, raw_expires(bytes)) {
                            out.push(sock);
                        }
                        // A query for one socket gets one answer and no DONE.
                        if single {
                            return Ok(());
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(err) => {
                        let source = err
                            .code
                            .map(|c| io::Error::from_raw_os_error(-c.get()))
                            .unwrap_or_else(|| io::Error::other("unexpected ACK"));
                        return Err(NetlinkError::Dump { what, source });
                    }
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                // Netlink messages are 4-byte aligned.
                offset += (len + 3) & !3;
            }
        }
    }
}

/// `idiag_expires` of the `inet_diag_msg` in this netlink message: the
/// parsed header drops it for TIME_WAIT (timer 3), where it is the time left
/// of TIME_WAIT, or of an orphaned FIN_WAIT2 kept as a timewait socket.
/// The message starts with the 16-byte `nlmsghdr`; `idiag_expires` follows
/// family, state, timer, retrans (4 bytes) and `inet_diag_sockid` (48).
fn raw_expires(message: &[u8]) -> Option<u32> {
    const AT: usize = 16 + 4 + 48;
    let b = message.get(AT..AT + 4)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn convert(resp: &InetResponse, proto: Proto, raw_expires: Option<u32>) -> Option<Socket> {
    let h = &resp.header;
    let state = TcpState::from_kernel(h.state)?;
    let id = &h.socket_id;
    let family = if h.family == AF_INET6 {
        Family::V6
    } else {
        Family::V4
    };
    let (timer, retransmits) = match &h.timer {
        None => (None, 0),
        Some(t) => {
            use netlink_packet_sock_diag::inet::Timer as T;
            let ms = |d: &std::time::Duration| d.as_millis() as u64;
            let (kind, expires, retrans) = match t {
                T::Retransmit(d, r) => (TimerKind::Retransmit, Some(ms(d)), *r),
                T::KeepAlive(d) => (TimerKind::Keepalive, Some(ms(d)), 0),
                T::TimeWait => (TimerKind::TimeWait, raw_expires.map(|ms| ms as u64), 0),
                T::Probe(d) => (TimerKind::ZeroWindowProbe, Some(ms(d)), 0),
            };
            (
                Some(Timer {
                    kind,
                    expires_ms: expires,
                }),
                retrans,
            )
        }
    };
    let tcp_info = resp.nlas.iter().find_map(|nla| match nla {
        Nla::TcpInfo(i) => Some(TcpInfo {
            rtt_us: i.rtt,
            rttvar_us: i.rttvar,
            min_rtt_us: i.min_rtt,
            rto_us: i.rto,
            retransmits: i.retransmits,
            probes: i.probes,
            backoff: i.backoff,
            total_retrans: i.total_retrans,
            lost: i.lost,
            unacked: i.unacked,
            snd_cwnd: i.snd_cwnd,
            snd_mss: i.snd_mss,
            bytes_acked: i.bytes_acked,
            bytes_received: i.bytes_received,
            bytes_sent: i.bytes_sent,
            bytes_retrans: i.bytes_retrans,
            segs_out: i.segs_out,
            segs_in: i.segs_in,
            notsent_bytes: i.notsent_bytes,
            delivery_rate: i.delivery_rate,
            last_data_sent_ms: i.last_data_sent,
            last_data_recv_ms: i.last_data_recv,
            last_ack_recv_ms: i.last_ack_recv,
        }),
        _ => None,
    });
    Some(Socket {
        proto,
        family,
        state,
        local: SocketAddr::new(id.source_address, id.source_port),
        remote: SocketAddr::new(id.destination_address, id.destination_port),
        inode: u64::from(h.inode),
        uid: h.uid,
        recv_q: h.recv_queue,
        send_q: h.send_queue,
        timer,
        retransmits,
        cookie: u64::from_ne_bytes(id.cookie),
        tcp_info,
        owners: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn dump_finds_a_listener_this_test_opened() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut dumper = Dumper::open().unwrap();
        let mut out = Vec::new();
        dumper
            .dump(
                DumpRequest {
                    proto: Proto::Tcp,
                    family: Family::V4,
                    tcp_info: true,
                },
                &mut out,
            )
            .unwrap();
        let ours = out
            .iter()
            .find(|s| s.local.port() == port && s.state == TcpState::Listen)
            .expect("listener in dump");
        assert_ne!(ours.inode, 0);
        assert_ne!(ours.cookie, 0);
        assert!(ours.tcp_info.is_some());
    }

    #[test]
    fn query_finds_one_connection_by_cookie_and_reports_a_closed_one_gone() {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let local = client.local_addr().unwrap();
        let remote = client.peer_addr().unwrap();
        let mut dumper = Dumper::open().unwrap();
        let mut out = Vec::new();
        let req = DumpRequest {
            proto: Proto::Tcp,
            family: Family::V4,
            tcp_info: false,
        };
        dumper.dump(req, &mut out).unwrap();
        // A local port may be shared by connections to other destinations.
        let ours = out
            .iter()
            .find(|s| s.local == local && s.remote == remote)
            .expect("client socket")
            .clone();
        assert!(ours.tcp_info.is_none());
        let found = dumper.query(&ours).unwrap().expect("still there");
        assert_eq!((found.local, found.remote), (local, remote));
        assert!(found.tcp_info.unwrap().bytes_acked > 0 || found.tcp_info.unwrap().bytes_sent > 0);
        drop(server);
        drop(client);
        drop(listener);
        // The client closed first: its socket is now TIME_WAIT with another cookie.
        let after = dumper.query(&ours).unwrap();
        assert!(
            after
                .as_ref()
                .is_none_or(|s| s.state != TcpState::Established),
            "{after:?}"
        );
    }
}
