//! A network namespace's counters (`snmp`, `netstat`), `sockstat` and
//! sysctls, kept open between refreshes, with a signature that tells
//! whether anything moved.
//!
//! The signature covers `snmp` and `snmp6` whole (every segment and
//! datagram in or out, every connection opened) and `sockstat`'s socket
//! counts in use and in TIME_WAIT (a socket opened, closed or expired). While it stands still
//! the last parsed context is shared, not parsed again, and `netstat`
//! (whose TcpExt counters move with the same segments) is not read; and
//! the socket table cannot have changed but for what moves no counter (see
//! [`crate::collect::netns::MAX_REUSE`] and [`crate::collect::HOST_REUSE`]).

use super::system;
use crate::model::SystemContext;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

/// The sysctls are read again this often.
pub const SYSCTL_EVERY: Duration = Duration::from_secs(30);

/// The files, in the order [`Counters::open`] takes them. `snmp6` is only
/// signed (its counters are not shown): IPv6 datagrams are counted there,
/// not in `snmp`.
pub const FILES: [&str; 5] = ["snmp", "sockstat", "sockstat6", "netstat", "snmp6"];

/// The counter files of one namespace, opened once and read again with
/// `pread` at 0.
pub struct Counters {
    files: Vec<Option<File>>,
    sysctls: BTreeMap<String, String>,
    sysctls_at: Option<Duration>,
    /// The context last parsed, with its signature.
    system: Option<(u64, Arc<SystemContext>)>,
}

impl Counters {
    /// Opens [`FILES`] under `dir` (`/proc/net` for the namespace of the
    /// process, `/proc/thread-self/net` from a thread that entered another).
    /// A file that cannot be opened is left out of every reading.
    pub fn open(dir: &str) -> Counters {
        Counters {
            files: FILES
                .iter()
                .map(|f| File::open(format!("{dir}/{f}")).ok())
                .collect(),
            sysctls: BTreeMap::new(),
            sysctls_at: None,
            system: None,
        }
    }

    /// True when the sysctls are due to be read again at `now` (a steady
    /// clock): then give them to [`Counters::set_sysctls`].
    pub fn sysctls_due(&self, now: Duration) -> bool {
        self.sysctls_at
            .is_none_or(|at| now.saturating_sub(at) >= SYSCTL_EVERY)
    }

    pub fn set_sysctls(&mut self, sysctls: BTreeMap<String, String>, now: Duration) {
        self.sysctls = sysctls;
        self.sysctls_at = Some(now);
        self.system = None;
    }

    /// The counters, sockstat and sysctls, and the signature (see the
    /// module's doc).
    pub fn read(&mut self) -> (Arc<SystemContext>, u64) {
        let mut signature = crc32fast::Hasher::new();
        let mut texts: [Vec<u8>; 5] = Default::default();
        for i in [0, 1, 2, 4] {
            if let Some(Some(file)) = self.files.get(i)
                && read_at_start(file, &mut texts[i]).is_ok()
            {
                match i {
                    1 | 2 => own_sockstat(&texts[i], &mut signature),
                    _ => signature.update(&texts[i]),
                }
            }
        }
        let signature = u64::from(signature.finalize());
        if let Some((sig, system)) = &self.system
            && *sig == signature
        {
            return (Arc::clone(system), signature);
        }
        if let Some(Some(file)) = self.files.get(3)
            && read_at_start(file, &mut texts[3]).is_err()
        {
            texts[3].clear();
        }
        let mut sys = SystemContext {
            sysctls: self.sysctls.clone(),
            ..SystemContext::default()
        };
        for (i, text) in texts.iter().enumerate().take(4) {
            let text = String::from_utf8_lossy(text);
            match i {
                0 | 3 => system::parse_counter_pairs(&text, &mut sys.counters),
                _ => system::parse_sockstat(&text, &mut sys.sockstat),
            }
        }
        let sys = Arc::new(sys);
        self.system = Some((signature, Arc::clone(&sys)));
        (sys, signature)
    }
}

/// The figures of a `sockstat` text that are the namespace's own: socket
/// counts in use and TIME_WAIT. `orphan`, `alloc` and `mem` are the whole
/// machine's in any namespace, and move with other namespaces' traffic.
fn own_sockstat(text: &[u8], into: &mut crc32fast::Hasher) {
    for line in text.split(|&b| b == b'\n') {
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let Some(section) = words.next() else {
            continue;
        };
        into.update(section);
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            if !matches!(key, b"orphan" | b"alloc" | b"mem") {
                into.update(key);
                into.update(value);
            }
        }
    }
}

/// Reads the whole of a `/proc` file from its start again.
fn read_at_start(file: &File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read_at(&mut chunk, buf.len() as u64)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(text: &str) -> u32 {
        let mut h = crc32fast::Hasher::new();
        own_sockstat(text.as_bytes(), &mut h);
        h.finalize()
    }

    #[test]
    fn the_machines_socket_memory_and_orphans_do_not_move_a_namespaces_signature() {
        let quiet =
            "sockets: used 5\nTCP: inuse 3 orphan 0 tw 0 alloc 42 mem 242\nUDP: inuse 1 mem 7\n";
        let host_busy = "sockets: used 5\nTCP: inuse 3 orphan 12 tw 0 alloc 9042 mem 88242\nUDP: inuse 1 mem 70\n";
        assert_eq!(sig(quiet), sig(host_busy));
        let own_tw =
            "sockets: used 5\nTCP: inuse 3 orphan 0 tw 1 alloc 42 mem 242\nUDP: inuse 1 mem 7\n";
        let own_socket =
            "sockets: used 6\nTCP: inuse 4 orphan 0 tw 0 alloc 42 mem 242\nUDP: inuse 1 mem 7\n";
        assert_ne!(sig(quiet), sig(own_tw));
        assert_ne!(sig(quiet), sig(own_socket));
    }

    /// Counter files of our own, changed one at a time: the signature
    /// stands while they do, and moves with a segment (snmp), an IPv6
    /// datagram (snmp6), a socket in use (sockstat6), but not with the
    /// machine's orphans; the context is parsed from them.
    #[test]
    fn the_signature_moves_with_segments_datagrams_and_sockets_only() {
        let dir = tempfile::tempdir().unwrap();
        let write = |f: &str, text: &str| std::fs::write(dir.path().join(f), text).unwrap();
        let snmp = |segs: u32| format!("Tcp: ActiveOpens InSegs\nTcp: 3 {segs}\n");
        let sockstat = |orphan: u32| format!("TCP: inuse 4 orphan {orphan} tw 1 alloc 9 mem 2\n");
        let snmp6 = |dgrams: u32| format!("Udp6InDatagrams                 \t{dgrams}\n");
        write("snmp", &snmp(10));
        write("sockstat", &sockstat(0));
        write("sockstat6", "TCP6: inuse 2\n");
        write("netstat", "TcpExt: ListenDrops\nTcpExt: 7\n");
        write("snmp6", &snmp6(5));
        let mut c = Counters::open(dir.path().to_str().unwrap());
        let (sys, first) = c.read();
        assert_eq!(sys.counters.get("Tcp.InSegs"), Some(&10), "{sys:?}");
        assert_eq!(sys.counters.get("TcpExt.ListenDrops"), Some(&7), "{sys:?}");
        assert_eq!(sys.sockstat.get("TCP6.inuse"), Some(&2), "{sys:?}");
        assert_eq!(c.read().1, first, "nothing moved");
        write("sockstat", &sockstat(12));
        assert_eq!(
            c.read().1,
            first,
            "the machine's orphans are not the namespace's"
        );
        write("snmp", &snmp(11));
        let segment = c.read().1;
        assert_ne!(segment, first, "a segment");
        assert_eq!(
            c.read().0.counters.get("Tcp.InSegs"),
            Some(&11),
            "parsed again"
        );
        write("snmp6", &snmp6(6));
        let datagram = c.read().1;
        assert_ne!(datagram, segment, "an IPv6 datagram");
        write("sockstat6", "TCP6: inuse 3\n");
        assert_ne!(c.read().1, datagram, "an IPv6 socket");
    }
}
