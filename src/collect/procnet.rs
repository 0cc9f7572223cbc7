//! Socket table from `/proc/net/{tcp,tcp6,udp,udp6}`: the fallback when netlink
//! sock_diag is not available (old kernels, seccomp-restricted containers).

use crate::model::{Family, Proto, Socket, TcpState};
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
    let tcp = |table, r: procfs::ProcResult<Vec<TcpNetEntry>>| {
        r.map_err(|source| ProcNetError { table, source })
    };
    let udp = |table, r: procfs::ProcResult<Vec<UdpNetEntry>>| {
        r.map_err(|source| ProcNetError { table, source })
    };
    for (family, rows) in [
        (Family::V4, tcp("tcp", procfs::net::tcp())?),
        (Family::V6, tcp("tcp6", procfs::net::tcp6())?),
    ] {
        out.extend(rows.iter().filter_map(|e| from_tcp(e, family)));
    }
    for (family, rows) in [
        (Family::V4, udp("udp", procfs::net::udp())?),
        (Family::V6, udp("udp6", procfs::net::udp6())?),
    ] {
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
        owners: Vec::new(),
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
        owners: Vec::new(),
    }
}
