//! `snapshot --json`: one object per socket.

use crate::model::{Owner, Snapshot, Socket, TcpInfo, Timer, holders};
use serde::Serialize;
use std::io::{self, Write};
use std::net::IpAddr;

#[derive(Serialize)]
struct OwnerView<'a> {
    pid: u32,
    fd: u32,
    process: Option<&'a str>,
}

#[derive(Serialize)]
struct QueueView<'a> {
    local_addr: IpAddr,
    local_port: u16,
    holders: Vec<OwnerView<'a>>,
}

#[derive(Serialize)]
struct ServiceView<'a> {
    /// Its lowest pid.
    id: u32,
    name: Option<&'a str>,
    pids: &'a [u32],
}

#[derive(Serialize)]
struct SocketView<'a> {
    proto: &'static str,
    family: u8,
    state: &'static str,
    local_addr: IpAddr,
    local_port: u16,
    remote_addr: IpAddr,
    remote_port: u16,
    inode: u64,
    /// The network namespace: `host`, or what runs in it.
    netns: &'a str,
    /// Its inode, for any namespace but the host's.
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_inode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<&'a str>,
    uid: u32,
    user: Option<&'a str>,
    recv_q: u32,
    send_q: u32,
    pid: Option<u32>,
    process: Option<&'a str>,
    /// Every (pid, fd) holding the socket.
    owners: Vec<OwnerView<'a>>,
    /// For a connection nobody has accept()ed yet: the listener it waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    accept_queue_of: Option<QueueView<'a>>,
    /// Why no process holds it, when none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    no_holder: Option<&'static str>,
    /// The service (processes holding sockets in common) of its holders.
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<ServiceView<'a>>,
    timer: Option<Timer>,
    retransmits: u8,
    cookie: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_info: Option<&'a TcpInfo>,
}

fn view<'a>(s: &'a Socket, snap: &'a Snapshot) -> SocketView<'a> {
    let name = |o: &Owner| snap.process(o.pid).map(|p| p.name.as_str());
    let owner_views = |owners: &[Owner]| -> Vec<OwnerView<'a>> {
        owners
            .iter()
            .map(|o| OwnerView {
                pid: o.pid,
                fd: o.fd,
                process: snap.process(o.pid).map(|p| p.name.as_str()),
            })
            .collect()
    };
    let queue = snap.holders().listener_of(snap, s);
    let first = holders::effective(snap, s).first().copied();
    let service = first
        .and_then(|o| snap.holders().service_of(o.pid))
        .map(|svc| ServiceView {
            id: svc.id,
            name: svc.name.as_deref(),
            pids: &svc.pids,
        });
    let ns = snap.namespaces.get(s.netns);
    SocketView {
        netns: snap.namespaces.name(s.netns),
        netns_inode: ns.map(|n| n.inode),
        container: ns.and_then(|n| n.container.as_deref()),
        pod: ns.and_then(|n| n.pod.as_deref()),
        proto: s.proto.name(),
        family: s.family.number(),
        state: s.state.kernel_name(),
        local_addr: s.local.ip(),
        local_port: s.local.port(),
        remote_addr: s.remote.ip(),
        remote_port: s.remote.port(),
        inode: s.inode,
        uid: s.uid,
        user: snap.user_name(s.uid),
        recv_q: s.recv_q,
        send_q: s.send_q,
        pid: first.map(|o| o.pid),
        process: first.and_then(|o| name(&o)),
        owners: owner_views(&s.owners),
        accept_queue_of: queue.map(|l| QueueView {
            local_addr: l.local.ip(),
            local_port: l.local.port(),
            holders: owner_views(&l.owners),
        }),
        no_holder: holders::why_none(snap, s).map(|w| w.reason()),
        service,
        timer: s.timer,
        retransmits: s.retransmits,
        cookie: format!("{:016x}", s.cookie),
        tcp_info: s.tcp_info.as_deref(),
    }
}

/// Writes a JSON array, one socket per line. Every control, C1 and bidi
/// character in a string is written as a `\uXXXX` escape, so the output is
/// safe to print on a terminal and parses back to the exact text.
///
/// Big tables are serialized [`CHUNK`] sockets at a time on every core, and
/// the chunks written in order: on 100k+ sockets this is a good part of the
/// run time.
pub fn write_sockets<W: Write>(out: W, snap: &Snapshot, sockets: &[&Socket]) -> io::Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    write_in_chunks(out, snap, sockets, CHUNK, threads)
}

/// [`write_sockets`] with the chunk size and thread count given (tests use
/// small chunks, so that a few sockets make several rounds).
fn write_in_chunks<W: Write>(
    out: W,
    snap: &Snapshot,
    sockets: &[&Socket],
    chunk: usize,
    threads: usize,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    out.write_all(b"[")?;
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); threads];
    for (g, group) in sockets.chunks(chunk * threads).enumerate() {
        let chunks: Vec<&[&Socket]> = group.chunks(chunk).collect();
        let results = std::thread::scope(|scope| {
            let (first, rest) = bufs.split_first_mut().expect("one buffer or more");
            let helpers: Vec<_> = rest
                .iter_mut()
                .zip(&chunks[1..])
                .map(|(buf, chunk)| scope.spawn(move || serialize_chunk(buf, snap, chunk)))
                .collect();
            let mut results = vec![serialize_chunk(first, snap, chunks[0])];
            results.extend(helpers.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("JSON serializer thread panicked")))
            }));
            results
        });
        for (c, (result, buf)) in results.into_iter().zip(&bufs).enumerate() {
            result?;
            // Every socket is written as ",\n{...}"; the first one has no comma.
            let skip = usize::from(g == 0 && c == 0);
            out.write_all(&buf[skip..])?;
        }
    }
    out.write_all(b"\n]\n")?;
    out.flush()
}

/// Sockets per unit of work in [`write_sockets`].
const CHUNK: usize = 4096;

/// `,\n{...}` for each socket of `chunk`, into `buf` (cleared first).
fn serialize_chunk(buf: &mut Vec<u8>, snap: &Snapshot, chunk: &[&Socket]) -> io::Result<()> {
    buf.clear();
    for s in chunk {
        buf.extend_from_slice(b",\n");
        let mut ser = serde_json::Serializer::with_formatter(&mut *buf, SafeFormatter);
        view(s, snap)
            .serialize(&mut ser)
            .map_err(io::Error::other)?;
    }
    Ok(())
}

/// serde_json escapes only what JSON requires (below U+0020, `"` and `\`);
/// this also escapes what a terminal would act on.
pub struct SafeFormatter;

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Keys, states, addresses and nearly every name are printable ASCII.
        if fragment.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c, escape) in crate::sanitize::must_escape(fragment) {
            if escape {
                w.write_all(&fragment.as_bytes()[start..i])?;
                // Beyond the BMP (tag characters), as a surrogate pair.
                for unit in c.encode_utf16(&mut [0; 2]) {
                    write!(w, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    #[test]
    fn json_has_the_documented_fields() {
        let snap = fixture::small();
        let all: Vec<&Socket> = snap.sockets.iter().collect();
        let mut buf = Vec::new();
        write_sockets(&mut buf, &snap, &all).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 8);
        let cw = &arr[1];
        assert_eq!(cw["proto"], "tcp");
        assert_eq!(cw["family"], 4);
        assert_eq!(cw["state"], "CLOSE_WAIT");
        assert_eq!(cw["local_addr"], "127.0.0.1");
        assert_eq!(cw["local_port"], 6800);
        assert_eq!(cw["remote_port"], 51000);
        assert_eq!(cw["pid"], 1000);
        assert_eq!(cw["process"], "redis-server");
        assert_eq!(cw["owners"][0]["fd"], 7);
        assert!(cw["tcp_info"].is_object());
        let udp = &arr[6];
        assert_eq!(udp["state"], "CLOSE");
        assert!(udp.get("tcp_info").is_none());
        let tw = &arr[7];
        assert!(tw["pid"].is_null() && tw["process"].is_null());
    }

    #[test]
    fn chunked_output_is_the_plain_array() {
        let snap = fixture::small();
        // Chunks of 5 on 3 threads: several rounds, a round that does not use
        // every thread, and a partial last chunk.
        let many: Vec<&Socket> = snap.sockets.iter().cycle().take(5 * 3 * 4 + 7).collect();
        let mut buf = Vec::new();
        write_in_chunks(&mut buf, &snap, &many, 5, 3).unwrap();
        let mut default_chunks = Vec::new();
        write_sockets(&mut default_chunks, &snap, &many).unwrap();
        assert!(buf == default_chunks, "the chunk size changed the output");
        let mut expected = b"[".to_vec();
        for (i, s) in many.iter().enumerate() {
            expected.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            let mut ser = serde_json::Serializer::with_formatter(&mut expected, SafeFormatter);
            view(s, &snap).serialize(&mut ser).unwrap();
        }
        expected.extend_from_slice(b"\n]\n");
        assert!(buf == expected, "chunked JSON differs from the plain array");

        let mut empty = Vec::new();
        write_sockets(&mut empty, &snap, &[]).unwrap();
        assert_eq!(empty, b"[\n]\n");
    }

    #[test]
    fn hostile_names_are_escaped_and_read_back_exactly() {
        let mut snap = fixture::small();
        let evil = "x\x1b]0;t\x07\u{9b}2J\u{202e}";
        snap.processes.get_mut(&1000).unwrap().name = evil.to_string();
        let all: Vec<&Socket> = snap.sockets.iter().collect();
        let mut buf = Vec::new();
        write_sockets(&mut buf, &snap, &all).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| crate::sanitize::is_unsafe(c) && c != '\n')
        );
        assert!(text.contains("\\u001b]0;t\\u0007\\u009b2J\\u202e"));
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v[1]["process"], evil);
    }
}
