//! A tracepoint's record layout, read from its `format` file, and the
//! decoding of the four tracepoints sockscope follows.
//!
//! Layouts differ between kernels (`tcp_send_reset` carried ports and
//! addresses as separate fields before 6.x and carries two `sockaddr`s now),
//! so every field is looked up by name and offset, never assumed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where each field of one tracepoint's raw record is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    fields: HashMap<String, (usize, usize)>,
}

impl Layout {
    /// Parses the text of `events/<group>/<name>/format`.
    pub fn parse(text: &str) -> Layout {
        let mut fields = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let mut decl = None;
            let mut offset = None;
            let mut size = None;
            for part in rest.split(';') {
                let part = part.trim();
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.trim().parse::<usize>().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.trim().parse::<usize>().ok();
                } else if decl.is_none() && !part.is_empty() {
                    decl = Some(part);
                }
            }
            let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) else {
                continue;
            };
            // "const void * skaddr", "__u8 saddr[4]": the name is the last word.
            let name = decl
                .rsplit([' ', '*'])
                .next()
                .unwrap_or("")
                .split('[')
                .next()
                .unwrap_or("");
            if !name.is_empty() {
                fields.insert(name.to_string(), (offset, size));
            }
        }
        Layout { fields }
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    fn bytes<'a>(&self, raw: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let &(offset, size) = self.fields.get(name)?;
        raw.get(offset..offset.checked_add(size)?)
    }

    /// An unsigned field of 1, 2, 4 or 8 bytes, in the machine's byte order.
    pub fn uint(&self, raw: &[u8], name: &str) -> Option<u64> {
        let b = self.bytes(raw, name)?;
        Some(match b.len() {
            1 => u64::from(b[0]),
            2 => u64::from(u16::from_ne_bytes(b.try_into().ok()?)),
            4 => u64::from(u32::from_ne_bytes(b.try_into().ok()?)),
            8 => u64::from_ne_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    /// The address of an IPv4 or IPv6 socket from the separate `family`,
    /// `sport`/`dport`, `saddr`/`daddr` and `saddr_v6`/`daddr_v6` fields.
    fn split_addr(&self, raw: &[u8], port: &str, v4: &str, v6: &str) -> Option<SocketAddr> {
        let port = self.uint(raw, port)? as u16;
        let b4: Option<[u8; 4]> = self.bytes(raw, v4).and_then(|b| b.try_into().ok());
        let b6: Option<[u8; 16]> = self.bytes(raw, v6).and_then(|b| b.try_into().ok());
        let v6 = b6.map(Ipv6Addr::from);
        // Kernels before `family` was added fill the v6 field of an IPv4
        // socket with the mapped address.
        let is_v6 = match self.uint(raw, "family") {
            Some(f) => f == libc::AF_INET6 as u64,
            None => v6.is_some_and(|ip| ip.to_ipv4_mapped().is_none()),
        };
        let ip = if is_v6 {
            IpAddr::V6(v6?)
        } else {
            IpAddr::V4(Ipv4Addr::from(b4?))
        };
        Some(SocketAddr::new(ip, port))
    }

    /// A `struct sockaddr_in` or `sockaddr_in6` stored in a byte-array field
    /// (`tcp_send_reset` since Linux 6.x). Ports are in network order there.
    fn sockaddr(&self, raw: &[u8], name: &str) -> Option<SocketAddr> {
        let b = self.bytes(raw, name)?;
        let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
        let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
        let ip = match i32::from(family) {
            libc::AF_INET => {
                let a: [u8; 4] = b.get(4..8)?.try_into().ok()?;
                IpAddr::V4(Ipv4Addr::from(a))
            }
            libc::AF_INET6 => {
                let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
                IpAddr::V6(Ipv6Addr::from(a))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }

    /// Local and remote address, whichever way this layout carries them.
    pub fn addrs(&self, raw: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
        if self.has("sport") {
            Some((
                self.split_addr(raw, "sport", "saddr", "saddr_v6")?,
                self.split_addr(raw, "dport", "daddr", "daddr_v6")?,
            ))
        } else {
            Some((self.sockaddr(raw, "saddr")?, self.sockaddr(raw, "daddr")?))
        }
    }
}

/// The four tracepoints, in the order [`Layouts::kind`] knows them.
pub const TRACEPOINTS: [&str; 4] = [
    "sock/inet_sock_set_state",
    "tcp/tcp_send_reset",
    "tcp/tcp_receive_reset",
    "tcp/tcp_retransmit_skb",
];

/// What one record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A TCP socket changed state (kernel numbering, as in `TcpState`).
    State { old: u8, new: u8 },
    /// This host sent a reset, from a socket in `state` (0: no socket, the
    /// segment reached a port nobody listens on).
    ResetSent,
    /// A reset arrived and closed the socket.
    ResetReceived,
    /// A segment was retransmitted.
    Retransmit,
}

/// One decoded tracepoint record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// `CLOCK_BOOTTIME` at the event, as `Snapshot::monotonic`.
    pub time: std::time::Duration,
    pub kind: Kind,
    /// The kernel's address of the socket: the identity of a connection
    /// across its transitions (0 when there is none).
    pub sk: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The process running when it happened: meaningful for transitions a
    /// system call makes (`connect`, `close`), not for those a packet makes.
    pub pid: u32,
}

/// The layouts of the tracepoints that could be opened, by tracepoint id.
#[derive(Debug, Clone, Default)]
pub struct Layouts {
    by_id: HashMap<u16, (usize, Layout)>,
}

impl Layouts {
    /// Registers tracepoint `index` (into [`TRACEPOINTS`]) under its id.
    pub fn insert(&mut self, index: usize, id: u16, layout: Layout) {
        self.by_id.insert(id, (index, layout));
    }

    /// Decodes one raw record (what `PERF_SAMPLE_RAW` carries).
    pub fn decode(&self, raw: &[u8], time: std::time::Duration, pid: u32) -> Option<Event> {
        let id = u16::from_ne_bytes(raw.get(0..2)?.try_into().ok()?);
        let (index, layout) = self.by_id.get(&id)?;
        let sk = layout.uint(raw, "skaddr").unwrap_or(0);
        let kind = match index {
            0 => {
                if layout.uint(raw, "protocol")? != libc::IPPROTO_TCP as u64 {
                    return None;
                }
                Kind::State {
                    old: layout.uint(raw, "oldstate")? as u8,
                    new: layout.uint(raw, "newstate")? as u8,
                }
            }
            1 => Kind::ResetSent,
            2 => Kind::ResetReceived,
            3 => Kind::Retransmit,
            _ => return None,
        };
        let (local, remote) = layout.addrs(raw)?;
        Some(Event {
            time,
            kind,
            sk,
            local,
            remote,
            pid,
        })
    }
}

#[cfg(test)]
mod tests;
