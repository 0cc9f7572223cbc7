//! Socket table from the kernel's `NETLINK_SOCK_DIAG` (inet_diag), the way `ss` reads it.

use crate::model::{Family, Proto, Socket, TcpState, Timer, TimerKind};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SOCK_DESTROY, SOCK_DIAG_BY_FAMILY, SockDiagMessage,
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
///
/// One request at a time, read to its end: a reply is taken only when it
/// carries this request's sequence number and is addressed to this socket's
/// port id. A request that did not reach its end (a failed read, a decode
/// error that stopped the walk) leaves the socket with a dump still in
/// flight, and the kernel answers the next dump on it with EBUSY: the next
/// request opens a fresh socket instead.
pub struct Dumper {
    socket: NlSocket,
    port: u32,
    buf: Vec<u8>,
    seq: u32,
    /// A request was sent whose reply was not read to its end.
    in_flight: bool,
    /// How many answers the last dump had: the next one's set of cookies is
    /// made that large at once instead of growing through rehashes.
    expect: usize,
    /// The network namespace the socket was made in, when not the
    /// caller's: a fresh socket must be made there too.
    netns: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

// A dump reply fills the user's buffer up to this size per recv; 1 MiB keeps
// the number of recv calls on 100k+ sockets small.
const RECV_BUF: usize = 1 << 20;

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// The legacy inet_diag request for TCP (`TCPDIAG_GETSOCK`): the kernel
/// answers it for both address families in one walk of its hash.
const TCPDIAG_GETSOCK: u16 = 18;

fn open_socket() -> Result<(NlSocket, u32), NetlinkError> {
    let mut socket = NlSocket::new(NETLINK_SOCK_DIAG).map_err(NetlinkError::Open)?;
    // Best effort: a larger kernel-side buffer means fewer stalls on big dumps.
    let _ = socket.set_rx_buf_sz(4 * RECV_BUF);
    let addr = socket.bind_auto().map_err(NetlinkError::Open)?;
    socket
        .connect(&NlAddr::new(0, 0))
        .map_err(NetlinkError::Open)?;
    Ok((socket, addr.port_number()))
}

/// [`open_socket`] in another network namespace, from a thread that
/// entered it.
fn open_socket_in(netns: &std::os::fd::OwnedFd) -> Result<(NlSocket, u32), NetlinkError> {
    use std::os::fd::AsFd;
    super::netns::enter::run_in(netns.as_fd(), open_socket)
        .map_err(NetlinkError::Open)
        .and_then(|r| r)
}

/// What one walk over a batch of replies found.
#[derive(Debug)]
enum Walk {
    /// The request's end is not in this batch: read more.
    More,
    /// The request ended, with this outcome.
    End(Result<(), NetlinkError>),
    /// The batch cannot be walked: the request's end is lost in it.
    Broken(NetlinkError),
}

/// The replies of one request, as they come in batches from `recv`.
struct Reply<'a> {
    what: &'a str,
    seq: u32,
    port: u32,
    /// A query for one socket gets one answer and no DONE.
    single: bool,
    /// Cookies seen in this dump: inet_diag resumes a dump by bucket index
    /// between reads, so a socket that moved can come twice.
    seen: std::collections::HashSet<u64, foldhash::fast::RandomState>,
    /// The first answer that could not be decoded; the dump is still read
    /// to its end so that the socket is free for the next request.
    undecoded: Option<NetlinkError>,
}

impl Reply<'_> {
    fn walk(&mut self, bytes: &[u8], on_socket: &mut dyn FnMut(&InetResponse, &[u8])) -> Walk {
        let mut offset = 0;
        while offset + NLMSG_HDR_LEN <= bytes.len() {
            let rest = &bytes[offset..];
            let field = |at: usize| u32::from_ne_bytes(rest[at..at + 4].try_into().expect("4"));
            let len = field(0) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            let (seq, port) = (field(8), field(12));
            if len < NLMSG_HDR_LEN || len > rest.len() {
                return Walk::Broken(NetlinkError::Decode {
                    what: self.what.to_string(),
                    detail: format!(
                        "a netlink message of {len} bytes in a batch of {}",
                        rest.len()
                    ),
                });
            }
            // Netlink messages are 4-byte aligned.
            offset += (len + 3) & !3;
            if seq != self.seq || port != self.port {
                continue; // left over from an earlier request
            }
            let code = || {
                if len >= NLMSG_HDR_LEN + 4 {
                    i32::from_ne_bytes(rest[16..20].try_into().expect("4"))
                } else {
                    0
                }
            };
            match kind {
                NLMSG_DONE => {
                    // A dump that failed partway ends with DONE carrying the error.
                    let end = match (code(), self.undecoded.take()) {
                        (c, _) if c < 0 => Err(NetlinkError::Dump {
                            what: self.what.to_string(),
                            source: io::Error::from_raw_os_error(-c),
                        }),
                        (_, Some(e)) => Err(e),
                        (_, None) => Ok(()),
                    };
                    return Walk::End(end);
                }
                NLMSG_ERROR => {
                    let source = match code() {
                        0 => io::Error::other("unexpected ACK"),
                        c => io::Error::from_raw_os_error(-c),
                    };
                    return Walk::End(Err(NetlinkError::Dump {
                        what: self.what.to_string(),
                        source,
                    }));
                }
                SOCK_DIAG_BY_FAMILY => {}
                TCPDIAG_GETSOCK => {}
                _ => continue,
            }
            // A legacy TCP dump's answers have the same body under the old
            // type: read alike.
            match parse_inet(&rest[NLMSG_HDR_LEN..len]) {
                Ok(resp) => {
                    let cookie = u64::from_ne_bytes(resp.header.socket_id.cookie);
                    if cookie == 0 || self.seen.insert(cookie) {
                        on_socket(&resp, &rest[..len]);
                    }
                }
                Err(e) => {
                    self.undecoded.get_or_insert(NetlinkError::Decode {
                        what: self.what.to_string(),
                        detail: e.to_string(),
                    });
                }
            }
            if self.single {
                return Walk::End(self.undecoded.take().map_or(Ok(()), Err));
            }
        }
        Walk::More
    }
}

/// The kernel's bit for each TCP state, as inet_diag's state mask wants it.
pub fn state_mask(states: &[TcpState]) -> u32 {
    states.iter().fold(0, |m, s| m | 1 << (*s as u32))
}

/// Every state.
pub const ALL_STATES: u32 = u32::MAX;

impl Dumper {
    pub fn open() -> Result<Dumper, NetlinkError> {
        let (socket, port) = open_socket()?;
        Ok(Dumper {
            socket,
            port,
            buf: vec![0; RECV_BUF],
            seq: 0,
            in_flight: false,
            expect: 0,
            netns: None,
        })
    }

    /// A dumper of another network namespace's table: its socket is made
    /// by a thread that entered `netns` (a netlink socket stays in the
    /// namespace it was made in), and so is any fresh one. `buf` bytes of
    /// receive buffer: a container's table is small, and there may be
    /// hundreds of them.
    pub fn open_in(
        netns: std::sync::Arc<std::os::fd::OwnedFd>,
        buf: usize,
    ) -> Result<Dumper, NetlinkError> {
        let (socket, port) = open_socket_in(&netns)?;
        Ok(Dumper {
            socket,
            port,
            buf: vec![0; buf.max(1 << 14)],
            seq: 0,
            in_flight: false,
            expect: 0,
            netns: Some(netns),
        })
    }

    /// Opens a fresh socket when the last request was not read to its end.
    fn ready(&mut self) -> Result<(), NetlinkError> {
        if self.in_flight {
            let (socket, port) = match &self.netns {
                Some(ns) => open_socket_in(ns)?,
                None => open_socket()?,
            };
            self.socket = socket;
            self.port = port;
            self.in_flight = false;
        }
        Ok(())
    }

    /// Dumps every socket of one protocol and family into `out`.
    ///
    /// A `tcp_info` of any length is read (see [`super::tcp_info`]); a
    /// reply that cannot be decoded fails the dump, which is read to its end
    /// first so that the socket stays usable.
    pub fn dump(&mut self, req: DumpRequest, out: &mut Vec<Socket>) -> Result<(), NetlinkError> {
        self.dump_states(req, ALL_STATES, out)
    }

    /// [`Dumper::dump`] of the TCP sockets in the states of `states` (a
    /// [`state_mask`]) only: the kernel skips the others, so a dump of the
    /// few sockets in trouble states costs little on a large table. UDP
    /// sockets are ESTABLISHED (connected) or CLOSE.
    pub fn dump_states(
        &mut self,
        req: DumpRequest,
        states: u32,
        out: &mut Vec<Socket>,
    ) -> Result<(), NetlinkError> {
        let proto = req.proto;
        self.request(req, states, None, &mut |resp, raw| {
            if let Some(sock) = convert(resp, proto, raw_expires(raw)) {
                out.push(sock);
            }
        })
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
        let mut found = None;
        let asked = self.request(req, ALL_STATES, Some(socket.id()), &mut |resp, raw| {
            found = convert(resp, socket.proto, raw_expires(raw));
        });
        match asked {
            Ok(()) => Ok(found),
            Err(NetlinkError::Dump { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The raw `INET_DIAG_INFO` payload of one IPv4 TCP connection, for the
    /// parser's tests.
    #[cfg(test)]
    pub(crate) fn raw_tcp_info(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<Vec<u8>>, NetlinkError> {
        let req = DumpRequest {
            proto: Proto::Tcp,
            family: Family::V4,
            tcp_info: true,
        };
        let mut raw = None;
        self.request(req, ALL_STATES, None, &mut |resp, _| {
            let id = &resp.header.socket_id;
            if SocketAddr::new(id.source_address, id.source_port) == local
                && SocketAddr::new(id.destination_address, id.destination_port) == remote
            {
                raw = resp.nlas.iter().find_map(|n| match n {
                    Nla::TcpInfo(bytes) => Some(bytes.clone()),
                    _ => None,
                });
            }
        })?;
        Ok(raw)
    }

    /// Sends a dump request and reads none of its reply: what a dumper
    /// that gave up partway leaves behind, for tests.
    #[cfg(test)]
    pub(crate) fn abandon_a_dump(&mut self, req: DumpRequest) -> Result<(), NetlinkError> {
        self.ready()?;
        self.seq = self.seq.wrapping_add(1);
        let request = request_bytes(req, ALL_STATES, None, self.seq);
        self.socket
            .send(&request, 0)
            .map_err(|source| NetlinkError::Dump {
                what: "test".into(),
                source,
            })?;
        self.in_flight = true;
        Ok(())
    }

    /// Asks the kernel to destroy one socket (`SOCK_DESTROY`, as `ss -K`):
    /// Ok when it acknowledged, or the error it answered with (ENOENT: no
    /// such socket; ESTALE: another socket has these addresses now;
    /// EPERM: needs CAP_NET_ADMIN; EOPNOTSUPP: a kernel without
    /// CONFIG_INET_DIAG_DESTROY). An acknowledgement is not proof: the
    /// caller looks again.
    pub fn destroy(&mut self, socket: &SocketRef) -> io::Result<()> {
        self.ready().map_err(io::Error::other)?;
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
        self.in_flight = true;
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
                    self.in_flight = false;
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

    /// A dump (`exact` None) or a query for one socket; `on_socket` sees
    /// each answer once.
    fn request(
        &mut self,
        req: DumpRequest,
        states: u32,
        exact: Option<SocketId>,
        on_socket: &mut dyn FnMut(&InetResponse, &[u8]),
    ) -> Result<(), NetlinkError> {
        self.ready()?;
        self.seq = self.seq.wrapping_add(1);
        let single = exact.is_some();
        let request = request_bytes(req, states, exact, self.seq);
        let what = format!("{}{}", req.proto.name(), req.family.number());
        self.exchange(&request, &what, single, on_socket)
    }

    /// Every TCP socket of both families in one walk of the kernel's hash
    /// (the legacy `TCPDIAG_GETSOCK` request, which dumps `AF_UNSPEC`): half
    /// the kernel time of one dump per family. Each namespace's dump walks
    /// the whole machine's hash, so this is what a namespace costs.
    pub fn dump_tcp_both_families(
        &mut self,
        tcp_info: bool,
        out: &mut Vec<Socket>,
    ) -> Result<(), NetlinkError> {
        self.dump_tcp_states_both_families(tcp_info, ALL_STATES, out)
    }

    /// [`Dumper::dump_tcp_both_families`] of the states in `states` (a
    /// [`state_mask`]) only.
    pub fn dump_tcp_states_both_families(
        &mut self,
        tcp_info: bool,
        states: u32,
        out: &mut Vec<Socket>,
    ) -> Result<(), NetlinkError> {
        self.ready()?;
        self.seq = self.seq.wrapping_add(1);
        let request = legacy_tcp_request(tcp_info, states, self.seq);
        // As many as the last dump had, at once: no copies as it grows.
        out.reserve(self.expect);
        self.exchange(&request, "tcp", false, &mut |resp, raw| {
            if let Some(sock) = convert(resp, Proto::Tcp, raw_expires(raw)) {
                out.push(sock);
            }
        })
    }

    /// Sends one request and reads its replies to their end.
    fn exchange(
        &mut self,
        request: &[u8],
        what: &str,
        single: bool,
        on_socket: &mut dyn FnMut(&InetResponse, &[u8]),
    ) -> Result<(), NetlinkError> {
        let what = what.to_string();
        self.socket
            .send(request, 0)
            .map_err(|source| NetlinkError::Dump {
                what: what.clone(),
                source,
            })?;
        self.in_flight = true;
        let mut reply = Reply {
            what: &what,
            seq: self.seq,
            port: self.port,
            single,
            seen: std::collections::HashSet::with_capacity_and_hasher(
                self.expect,
                Default::default(),
            ),
            undecoded: None,
        };
        loop {
            let size = loop {
                match self.socket.recv(&mut &mut self.buf[..], 0) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ENOBUFS and the like: the reply is lost, the socket
                    // stays in flight and is replaced before the next request.
                    Err(source) => {
                        return Err(NetlinkError::Dump {
                            what: what.clone(),
                            source,
                        });
                    }
                }
            };
            // NLM_F_DUMP_INTR means the table changed during the dump; what we
            // got is still a valid (slightly smeared) view, as with `ss`.
            match reply.walk(&self.buf[..size], on_socket) {
                Walk::More => {}
                Walk::End(end) => {
                    self.in_flight = false;
                    if !single {
                        self.expect = reply.seen.len();
                    }
                    return end;
                }
                // The socket stays in flight: replaced before the next request.
                Walk::Broken(e) => return Err(e),
            }
        }
    }
}

/// The bytes of one inet_diag request.
/// A `TCPDIAG_GETSOCK` dump request: the netlink header, then the old
/// `struct inet_diag_req` (family, src_len, dst_len, ext, a zero
/// `inet_diag_sockid` of 48 bytes, states, dbs).
fn legacy_tcp_request(tcp_info: bool, states: u32, seq: u32) -> Vec<u8> {
    const BODY: usize = 4 + 48 + 4 + 4;
    let len = NLMSG_HDR_LEN + BODY;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // The kernel dumps AF_UNSPEC for this request, whatever the family says.
    m.push(AF_INET);
    m.extend_from_slice(&[0, 0]);
    // 1 << (INET_DIAG_INFO - 1): tcp_info.
    m.push(if tcp_info { 1 << 1 } else { 0 });
    m.extend_from_slice(&[0u8; 48]);
    m.extend_from_slice(&states.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m
}

fn request_bytes(req: DumpRequest, states: u32, exact: Option<SocketId>, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = if exact.is_some() {
        NLM_F_REQUEST
    } else {
        NLM_F_REQUEST | NLM_F_DUMP
    };
    header.sequence_number = seq;
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
            states: StateFlags::from_bits_retain(states),
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
    request
}

/// `sizeof(struct inet_diag_msg)`: the attributes follow it.
const INET_DIAG_MSG_LEN: usize = 72;
/// `INET_DIAG_INFO`: the attribute that carries `tcp_info`.
const INET_DIAG_INFO: u16 = 2;

/// One answer's body (after the `nlmsghdr`): the crate's parse of the
/// `inet_diag_msg`, and of the one attribute read from it, `tcp_info`. The
/// other attributes the kernel always adds (shutdown, cgroup, socket
/// options...) are checked for framing but not decoded: at 130k sockets,
/// decoding each of them into the crate's attribute type cost more than
/// the rest of the reading.
fn parse_inet(body: &[u8]) -> Result<InetResponse, netlink_packet_core::DecodeError> {
    use netlink_packet_core::{NlasIterator, Parseable};
    use netlink_packet_sock_diag::inet::InetResponseHeader;
    let header = InetResponseHeader::parse(body)?;
    let mut nlas = smallvec::SmallVec::new();
    for nla in NlasIterator::new(body.get(INET_DIAG_MSG_LEN..).unwrap_or_default()) {
        let nla = nla?;
        if nla.kind() == INET_DIAG_INFO {
            nlas.push(Nla::parse(&nla)?);
        }
    }
    Ok(InetResponse { header, nlas })
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
        Nla::TcpInfo(bytes) => super::tcp_info::parse(bytes).map(|i| i.to_model()),
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
        tcp_info: tcp_info.map(Box::new),
        owners: Default::default(),
        netns: crate::model::HOST_NETNS,
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
        assert!(
            found.tcp_info.as_ref().unwrap().bytes_acked > 0
                || found.tcp_info.as_ref().unwrap().bytes_sent > 0
        );
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

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod reply_tests;
