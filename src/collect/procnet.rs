//! Socket table from `/proc/net/{tcp,tcp6,udp,udp6}`: the fallback when netlink
//! sock_diag is not available (old kernels, seccomp-restricted containers).

use crate::model::{Family, Proto, Socket, TcpState, Timer, TimerKind};
use procfs::net::{TcpNetEntry, UdpNetEntry, UdpState};

#[derive(Debug, thiserror::Error)]
#[error("cannot read /proc/net/{table}: {source}")]
pub struct ProcNetError {
    pub table: &'static str,
    #[source]
    pub source: procfs::ProcError,
}

/// Reads all four tables into `out`.
pub fn read_all(out: &mut Vec<Socket>) -> Result<(), ProcNetError> {
    read_from("/proc/net", out)
}

/// Reads the four tables of the directory `dir`: `/proc/net` for
/// sockscope's own network namespace, `/proc/PID/net` for the namespace
/// of process PID.
pub fn read_from(dir: &str, out: &mut Vec<Socket>) -> Result<(), ProcNetError> {
    let read = |table: &'static str| {
        std::fs::read(format!("{dir}/{table}")).map_err(|e| ProcNetError {
            table,
            source: procfs::ProcError::from(e),
        })
    };
    for (family, table) in [(Family::V4, "tcp"), (Family::V6, "tcp6")] {
        // Read once and parsed twice: procfs for the entries, `timers` for
        // the `tr`, `tm->when` and `retrnsmt` columns procfs skips.
        let text = read(table)?;
        let rows = <procfs::net::TcpNetEntries as procfs::FromBufReadSI>::from_buf_read(
            &text[..],
            procfs::current_system_info(),
        )
        .map(|e| e.0)
        .map_err(|source| ProcNetError { table, source })?;
        let mut timers = timers(&text);
        for e in &rows {
            let (timer, retransmits) = timers.next().unwrap_or_default();
            if let Some(mut s) = from_tcp(e, family) {
                s.timer = timer;
                s.retransmits = retransmits;
                out.push(s);
            }
        }
    }
    for (family, table) in [(Family::V4, "udp"), (Family::V6, "udp6")] {
        let text = read(table)?;
        let rows = <procfs::net::UdpNetEntries as procfs::FromBufReadSI>::from_buf_read(
            &text[..],
            procfs::current_system_info(),
        )
        .map(|e| e.0)
        .map_err(|source| ProcNetError { table, source })?;
        out.extend(rows.iter().map(|e| from_udp(e, family)));
    }
    Ok(())
}

fn from_tcp(e: &TcpNetEntry, family: Family) -> Option<Socket> {
    let state = TcpState::from_kernel(e.state.to_u8())?;
    Some(Socket {
        proto: Proto::Tcp,
        family,
        state,
        local: e.local_address,
        remote: e.remote_address,
        inode: e.inode,
        uid: e.uid,
        // /proc/net/tcp shows the accept backlog of a listener in rx_queue as
        // netlink does, so the two sources agree.
        recv_q: e.rx_queue,
        send_q: e.tx_queue,
        timer: None,
        retransmits: 0,
        cookie: 0,
        tcp_info: None,
        owners: Default::default(),
        netns: crate::model::HOST_NETNS,
    })
}

fn from_udp(e: &UdpNetEntry, family: Family) -> Socket {
    let state = match e.state {
        UdpState::Established => TcpState::Established,
        _ => TcpState::Close,
    };
    Socket {
        proto: Proto::Udp,
        family,
        state,
        local: e.local_address,
        remote: e.remote_address,
        inode: e.inode,
        uid: e.uid,
        recv_q: e.rx_queue,
        send_q: e.tx_queue,
        timer: None,
        retransmits: 0,
        cookie: 0,
        tcp_info: None,
        owners: Default::default(),
        netns: crate::model::HOST_NETNS,
    }
}

/// USER_HZ: `/proc/net/tcp` gives `tm->when` in clock ticks
/// (`jiffies_delta_to_clock_t`), 100 a second on every Linux architecture.
const MS_PER_TICK: u64 = 10;

/// The timer of each row of a `/proc/net/tcp{,6}` text, in order: `tr` (1
/// retransmit, 2 keepalive or the FIN_WAIT2 timer, 3 TIME_WAIT, 4 zero
/// window probe), `tm->when` (hex clock ticks left) and `retrnsmt` (hex).
fn timers(text: &[u8]) -> impl Iterator<Item = (Option<Timer>, u8)> + '_ {
    text.split(|&b| b == b'\n')
        .skip(1)
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|line| {
            let line = std::str::from_utf8(line).unwrap_or("");
            let mut f = line.split_whitespace().skip(5);
            let (tr, when) = f
                .next()
                .and_then(|t| t.split_once(':'))
                .unwrap_or(("0", "0"));
            let retrans = f
                .next()
                .and_then(|r| u64::from_str_radix(r, 16).ok())
                .unwrap_or(0);
            // `%02X`: "01", "03".
            let kind = match u8::from_str_radix(tr, 16).unwrap_or(0) {
                1 => Some(TimerKind::Retransmit),
                2 => Some(TimerKind::Keepalive),
                3 => Some(TimerKind::TimeWait),
                4 => Some(TimerKind::ZeroWindowProbe),
                _ => None,
            };
            let timer = kind.map(|kind| Timer {
                kind,
                expires_ms: u64::from_str_radix(when, 16)
                    .ok()
                    .map(|t| t.saturating_mul(MS_PER_TICK)),
            });
            (timer, retrans.min(255) as u8)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_read_tr_when_and_retransmits_from_each_row() {
        let text = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000 100 0 0 10 0\n\
   1: 0100007F:9C40 0100007F:1F90 06 00000000:00000000 03:0000157C 00000000     0        0 0 3 0000\n\
   2: 0100007F:9C41 0100007F:1F90 01 00000000:00000010 01:00000014 00000003  1000        0 5 1 0000\n";
        let got: Vec<_> = timers(text).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (None, 0));
        assert_eq!(
            got[1].0,
            Some(Timer {
                kind: TimerKind::TimeWait,
                expires_ms: Some(0x157c * 10)
            })
        );
        assert_eq!(got[2].0.map(|t| t.kind), Some(TimerKind::Retransmit));
        assert_eq!(got[2].0.and_then(|t| t.expires_ms), Some(200));
        assert_eq!(got[2].1, 3);
    }
}
