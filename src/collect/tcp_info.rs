//! `INET_DIAG_INFO` (the kernel's `struct tcp_info`) read from its raw bytes.
//!
//! The struct only ever grew at its end, and the kernel sends as much of it
//! as it knows: 104 bytes on 3.x kernels, 200–224 on 4.x, 232 from 5.4, more
//! on newer ones. A field is read when the bytes reach its end; a field past
//! the end is None, and bytes past the last field we know are ignored. The
//! offsets are those of `struct tcp_info` in `linux/tcp.h`.

use crate::model::TcpInfo;

/// The fields sockscope uses, each None when the kernel's struct is too
/// short to carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawTcpInfo {
    /// Bytes the kernel sent.
    pub len: usize,
    pub retransmits: Option<u8>,
    pub probes: Option<u8>,
    pub backoff: Option<u8>,
    pub rto_us: Option<u32>,
    pub snd_mss: Option<u32>,
    pub unacked: Option<u32>,
    pub lost: Option<u32>,
    pub last_data_sent_ms: Option<u32>,
    pub last_data_recv_ms: Option<u32>,
    pub last_ack_recv_ms: Option<u32>,
    pub rtt_us: Option<u32>,
    pub rttvar_us: Option<u32>,
    pub snd_cwnd: Option<u32>,
    pub total_retrans: Option<u32>,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    pub segs_out: Option<u32>,
    pub segs_in: Option<u32>,
    pub notsent_bytes: Option<u32>,
    pub min_rtt_us: Option<u32>,
    pub delivery_rate: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_retrans: Option<u64>,
}

// Byte offsets in `struct tcp_info`.
const RETRANSMITS: usize = 2;
const PROBES: usize = 3;
const BACKOFF: usize = 4;
const RTO: usize = 8;
const SND_MSS: usize = 16;
const UNACKED: usize = 24;
const LOST: usize = 32;
const LAST_DATA_SENT: usize = 44;
const LAST_DATA_RECV: usize = 52;
const LAST_ACK_RECV: usize = 56;
const RTT: usize = 68;
const RTTVAR: usize = 72;
const SND_CWND: usize = 80;
const TOTAL_RETRANS: usize = 100;
const BYTES_ACKED: usize = 120;
const BYTES_RECEIVED: usize = 128;
const SEGS_OUT: usize = 136;
const SEGS_IN: usize = 140;
const NOTSENT_BYTES: usize = 144;
const MIN_RTT: usize = 148;
const DELIVERY_RATE: usize = 160;
const BYTES_SENT: usize = 200;
const BYTES_RETRANS: usize = 208;

/// The shortest struct any kernel with inet_diag sends: up to
/// `tcpi_total_retrans`. Shorter is not a `tcp_info`.
pub const MIN_LEN: usize = TOTAL_RETRANS + 4;

fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the attribute's payload. None when it is shorter than [`MIN_LEN`].
pub fn parse(b: &[u8]) -> Option<RawTcpInfo> {
    if b.len() < MIN_LEN {
        return None;
    }
    Some(RawTcpInfo {
        len: b.len(),
        retransmits: u8_at(b, RETRANSMITS),
        probes: u8_at(b, PROBES),
        backoff: u8_at(b, BACKOFF),
        rto_us: u32_at(b, RTO),
        snd_mss: u32_at(b, SND_MSS),
        unacked: u32_at(b, UNACKED),
        lost: u32_at(b, LOST),
        last_data_sent_ms: u32_at(b, LAST_DATA_SENT),
        last_data_recv_ms: u32_at(b, LAST_DATA_RECV),
        last_ack_recv_ms: u32_at(b, LAST_ACK_RECV),
        rtt_us: u32_at(b, RTT),
        rttvar_us: u32_at(b, RTTVAR),
        snd_cwnd: u32_at(b, SND_CWND),
        total_retrans: u32_at(b, TOTAL_RETRANS),
        bytes_acked: u64_at(b, BYTES_ACKED),
        bytes_received: u64_at(b, BYTES_RECEIVED),
        segs_out: u32_at(b, SEGS_OUT),
        segs_in: u32_at(b, SEGS_IN),
        notsent_bytes: u32_at(b, NOTSENT_BYTES),
        min_rtt_us: u32_at(b, MIN_RTT),
        delivery_rate: u64_at(b, DELIVERY_RATE),
        bytes_sent: u64_at(b, BYTES_SENT),
        bytes_retrans: u64_at(b, BYTES_RETRANS),
    })
}

impl RawTcpInfo {
    /// The model's `tcp_info`. A field the kernel did not send is 0 there
    /// (the counters it would hold did not exist on that kernel).
    pub fn to_model(&self) -> TcpInfo {
        TcpInfo {
            rtt_us: self.rtt_us.unwrap_or(0),
            rttvar_us: self.rttvar_us.unwrap_or(0),
            min_rtt_us: self.min_rtt_us.unwrap_or(0),
            rto_us: self.rto_us.unwrap_or(0),
            retransmits: self.retransmits.unwrap_or(0),
            probes: self.probes.unwrap_or(0),
            backoff: self.backoff.unwrap_or(0),
            total_retrans: self.total_retrans.unwrap_or(0),
            lost: self.lost.unwrap_or(0),
            unacked: self.unacked.unwrap_or(0),
            snd_cwnd: self.snd_cwnd.unwrap_or(0),
            snd_mss: self.snd_mss.unwrap_or(0),
            bytes_acked: self.bytes_acked.unwrap_or(0),
            bytes_received: self.bytes_received.unwrap_or(0),
            bytes_sent: self.bytes_sent.unwrap_or(0),
            bytes_retrans: self.bytes_retrans.unwrap_or(0),
            segs_out: self.segs_out.unwrap_or(0),
            segs_in: self.segs_in.unwrap_or(0),
            notsent_bytes: self.notsent_bytes.unwrap_or(0),
            delivery_rate: self.delivery_rate.unwrap_or(0),
            last_data_sent_ms: self.last_data_sent_ms.unwrap_or(0),
            last_data_recv_ms: self.last_data_recv_ms.unwrap_or(0),
            last_ack_recv_ms: self.last_ack_recv_ms.unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `INET_DIAG_INFO` payload from this kernel: a connection on
    /// loopback that sent and received a few bytes, read through the dumper.
    fn captured() -> Vec<u8> {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).unwrap();
        let mut dumper = super::super::netlink::Dumper::open().unwrap();
        let raw = dumper
            .raw_tcp_info(client.local_addr().unwrap(), client.peer_addr().unwrap())
            .unwrap()
            .expect("the client socket has tcp_info");
        drop((client, server));
        raw
    }

    #[test]
    fn a_full_attribute_from_this_kernel_fills_every_field() {
        let raw = captured();
        assert!(raw.len() >= 232, "this kernel sends {} bytes", raw.len());
        let info = parse(&raw).unwrap();
        assert_eq!(info.len, raw.len());
        assert!(info.bytes_acked.unwrap() >= 5, "{info:?}");
        assert!(info.bytes_sent.unwrap() >= 5, "{info:?}");
        assert!(info.segs_out.unwrap() > 0);
        assert!(info.rtt_us.unwrap() > 0);
        assert!(info.snd_mss.unwrap() > 0);
    }

    #[test]
    fn truncated_attributes_fill_what_their_bytes_reach_and_leave_the_rest_out() {
        let raw = captured();
        let full = parse(&raw).unwrap();
        // 3.x, 4.9, 4.19 and 5.4 kernels, then a struct from a newer kernel
        // with fields we do not know.
        let mut longer = raw.clone();
        longer.resize(raw.len().max(232) + 48, 0xAB);
        for len in [104, 160, 168, 224, 232, longer.len()] {
            let bytes = if len <= raw.len() {
                &raw[..len]
            } else {
                &longer[..]
            };
            let info = parse(bytes).unwrap_or_else(|| panic!("{len} bytes parse"));
            // Present in every version.
            assert_eq!(info.rtt_us, full.rtt_us, "{len}");
            assert_eq!(info.total_retrans, full.total_retrans, "{len}");
            assert_eq!(info.snd_mss, full.snd_mss, "{len}");
            // Fields whose end lies within the bytes are the kernel's values.
            let has = |end: usize| len >= end;
            assert_eq!(
                info.bytes_acked,
                full.bytes_acked.filter(|_| has(128)),
                "{len}"
            );
            assert_eq!(info.segs_out, full.segs_out.filter(|_| has(140)), "{len}");
            assert_eq!(info.min_rtt_us, full.min_rtt_us.filter(|_| has(152)));
            assert_eq!(
                info.delivery_rate,
                full.delivery_rate.filter(|_| has(168)),
                "{len}"
            );
            assert_eq!(
                info.bytes_sent,
                full.bytes_sent.filter(|_| has(208)),
                "{len}"
            );
            assert_eq!(info.bytes_retrans, full.bytes_retrans.filter(|_| has(216)));
        }
        let old = parse(&raw[..104]).unwrap().to_model();
        assert_eq!(old.bytes_acked, 0, "absent counters are 0 in the model");
        assert_eq!(old.rtt_us, full.rtt_us.unwrap());
    }

    #[test]
    fn fewer_bytes_than_the_oldest_struct_are_not_a_tcp_info() {
        let raw = captured();
        assert_eq!(parse(&raw[..MIN_LEN - 1]), None);
        assert_eq!(parse(&[]), None);
    }
}
