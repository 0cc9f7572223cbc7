//! The reading of replies: sequence numbers, port ids, DONE's error,
//! duplicates; and a dump after one that was left unread.

use super::*;
use std::net::TcpListener;

const SEQ: u32 = 7;
const PORT: u32 = 4242;

/// One inet_diag answer as the kernel frames it.
fn answer(seq: u32, port: u32, cookie: u64, local_port: u16) -> Vec<u8> {
    use netlink_packet_sock_diag::inet::InetResponseHeader;
    let mut id = SocketId::new_v4();
    id.source_port = local_port;
    id.cookie = cookie.to_ne_bytes();
    let resp = InetResponse {
        header: InetResponseHeader {
            family: AF_INET,
            state: TcpState::CloseWait as u8,
            timer: None,
            socket_id: id,
            recv_queue: 0,
            send_queue: 0,
            uid: 0,
            inode: 99,
        },
        nlas: Default::default(),
    };
    let mut header = NetlinkHeader::default();
    header.sequence_number = seq;
    header.port_number = port;
    header.flags = netlink_packet_core::NLM_F_MULTIPART;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(Box::new(resp))),
    );
    msg.finalize();
    let mut bytes = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut bytes);
    bytes
}

/// NLMSG_DONE with its error code (0: the dump is complete).
fn done(seq: u32, port: u32, code: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&20u32.to_ne_bytes());
    b.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    b.extend_from_slice(&netlink_packet_core::NLM_F_MULTIPART.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&port.to_ne_bytes());
    b.extend_from_slice(&code.to_ne_bytes());
    b
}

fn reply() -> Reply<'static> {
    Reply {
        what: "tcp4",
        seq: SEQ,
        port: PORT,
        single: false,
        seen: Default::default(),
        undecoded: None,
    }
}

fn walk_all(batches: &[Vec<u8>]) -> (Vec<u16>, Option<Result<(), NetlinkError>>) {
    let mut reply = reply();
    let mut ports = Vec::new();
    for batch in batches {
        match reply.walk(batch, &mut |r, _| {
            ports.push(r.header.socket_id.source_port)
        }) {
            Walk::More => {}
            Walk::End(end) => return (ports, Some(end)),
            Walk::Broken(e) => return (ports, Some(Err(e))),
        }
    }
    (ports, None)
}

#[test]
fn replies_of_an_earlier_request_or_for_another_port_are_skipped() {
    let batch = [
        answer(SEQ - 1, PORT, 1, 1001), // the rest of an earlier dump
        done(SEQ - 1, PORT, 0),         // and its end, which is not ours
        answer(SEQ, PORT + 1, 2, 1002), // another socket's
        answer(SEQ, PORT, 3, 1003),
    ]
    .concat();
    let (ports, end) = walk_all(&[batch, done(SEQ, PORT, 0)]);
    assert_eq!(ports, vec![1003]);
    assert!(matches!(end, Some(Ok(()))), "{end:?}");
}

#[test]
fn a_dump_whose_done_carries_an_error_is_an_error_not_complete() {
    let batch = [answer(SEQ, PORT, 1, 1001), done(SEQ, PORT, -libc::EINTR)].concat();
    let (ports, end) = walk_all(&[batch]);
    assert_eq!(ports, vec![1001]);
    match end {
        Some(Err(NetlinkError::Dump { source, .. })) => {
            assert_eq!(source.raw_os_error(), Some(libc::EINTR))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_socket_that_comes_twice_in_one_dump_is_kept_once() {
    // inet_diag resumes by bucket index: a socket can be sent again in the
    // next batch.
    let first = [answer(SEQ, PORT, 11, 1001), answer(SEQ, PORT, 12, 1002)].concat();
    let second = [
        answer(SEQ, PORT, 12, 1002),
        answer(SEQ, PORT, 13, 1003),
        done(SEQ, PORT, 0),
    ]
    .concat();
    let (ports, end) = walk_all(&[first, second]);
    assert_eq!(ports, vec![1001, 1002, 1003]);
    assert!(matches!(end, Some(Ok(()))));
}

#[test]
fn an_answer_that_cannot_be_decoded_fails_the_dump_only_at_its_end() {
    let mut bad = answer(SEQ, PORT, 1, 1001);
    bad.truncate(NLMSG_HDR_LEN + 8); // shorter than an inet_diag_msg
    bad[..4].copy_from_slice(&((NLMSG_HDR_LEN + 8) as u32).to_ne_bytes());
    let batch = [bad, answer(SEQ, PORT, 2, 1002)].concat();
    let mut reply = reply();
    let mut ports = Vec::new();
    let mut on = |r: &InetResponse, _: &[u8]| ports.push(r.header.socket_id.source_port);
    assert!(
        matches!(reply.walk(&batch, &mut on), Walk::More),
        "read on to DONE"
    );
    match reply.walk(&done(SEQ, PORT, 0), &mut on) {
        Walk::End(Err(NetlinkError::Decode { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(ports, vec![1002]);
}

#[test]
fn a_dump_after_one_left_unread_on_the_same_dumper_is_complete() {
    // Enough listeners that the first dump does not fit in the kernel's
    // first batch, so it is still running when the second request comes:
    // on the same socket the kernel would answer EBUSY.
    let listeners: Vec<TcpListener> = (0..150)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: std::collections::HashSet<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let req = DumpRequest {
        proto: Proto::Tcp,
        family: Family::V4,
        tcp_info: true,
    };
    let mut dumper = Dumper::open().unwrap();
    dumper.abandon_a_dump(req).unwrap();
    for round in 0..2 {
        let mut out = Vec::new();
        dumper
            .dump(req, &mut out)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut ours: Vec<u16> = out
            .iter()
            .filter(|s| s.state == TcpState::Listen && ports.contains(&s.local.port()))
            .map(|s| s.local.port())
            .collect();
        ours.sort_unstable();
        let before = ours.len();
        ours.dedup();
        assert_eq!(before, ours.len(), "round {round}: no socket twice");
        assert_eq!(ours.len(), listeners.len(), "round {round}: every listener");
        assert!(
            out.iter()
                .filter(|s| ports.contains(&s.local.port()))
                .all(|s| s.tcp_info.is_some()),
            "round {round}: tcp_info decoded"
        );
    }
}

#[test]
fn a_trouble_states_dump_leaves_out_listeners_and_keeps_close_wait() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    drop(server); // the client's side is now CLOSE_WAIT
    let local = client.local_addr().unwrap();
    let req = DumpRequest {
        proto: Proto::Tcp,
        family: Family::V4,
        tcp_info: false,
    };
    let mask = state_mask(&[TcpState::CloseWait, TcpState::TimeWait]);
    let mut dumper = Dumper::open().unwrap();
    let mut found = None;
    for _ in 0..200 {
        let mut out = Vec::new();
        dumper.dump_states(req, mask, &mut out).unwrap();
        assert!(
            out.iter()
                .all(|s| matches!(s.state, TcpState::CloseWait | TcpState::TimeWait)),
            "only the states asked for"
        );
        // Ours by both ends: another connection may have the same local
        // address and port towards another peer.
        let peer = listener.local_addr().unwrap();
        found = out
            .into_iter()
            .find(|s| s.local == local && s.remote == peer);
        if found.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(found.map(|s| s.state), Some(TcpState::CloseWait));
}

#[test]
fn one_legacy_tcp_dump_has_both_families_as_the_per_family_dumps_do() {
    // Our own sockets: a v4 and a v6 listener, a connection on each.
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let c4 = std::net::TcpStream::connect(v4.local_addr().unwrap()).unwrap();
    let Ok(v6) = TcpListener::bind("[::1]:0") else {
        skip_no_v6();
        return;
    };
    let c6 = std::net::TcpStream::connect(v6.local_addr().unwrap()).unwrap();
    let ours = [
        v4.local_addr().unwrap(),
        c4.local_addr().unwrap(),
        v6.local_addr().unwrap(),
        c6.local_addr().unwrap(),
    ];
    let mut d = Dumper::open().unwrap();
    let mut both = Vec::new();
    d.dump_tcp_both_families(true, &mut both).unwrap();
    let mut per_family = Vec::new();
    for family in [Family::V4, Family::V6] {
        let req = DumpRequest {
            proto: Proto::Tcp,
            family,
            tcp_info: true,
        };
        d.dump(req, &mut per_family).unwrap();
    }
    let pick = |all: &[Socket]| {
        let mut v: Vec<(
            std::net::SocketAddr,
            std::net::SocketAddr,
            TcpState,
            u64,
            bool,
        )> = all
            .iter()
            .filter(|s| {
                ours.contains(&s.local)
                    && (ours.contains(&s.remote) || s.remote.ip().is_unspecified())
            })
            .map(|s| (s.local, s.remote, s.state, s.cookie, s.tcp_info.is_some()))
            .collect();
        v.sort();
        v
    };
    let (a, b) = (pick(&both), pick(&per_family));
    // Two listeners, two clients, the two accepted ends.
    assert_eq!(a.len(), 6, "our six sockets, once each: {a:?}");
    assert_eq!(a, b);
    assert!(a.iter().all(|s| s.4), "tcp_info asked for and given: {a:?}");
    // And the dumper still answers the next request.
    let mut again = Vec::new();
    d.dump_tcp_both_families(false, &mut again).unwrap();
    assert_eq!(pick(&again).len(), 6);
}

/// A machine without IPv6 on loopback cannot run the v6 half.
fn skip_no_v6() {
    assert!(
        std::env::var_os("CI").is_none(),
        "IPv6 loopback is needed for this test under CI"
    );
    eprintln!("SKIPPED one_legacy_tcp_dump_has_both_families: no IPv6 loopback");
}

/// `answer` with raw attributes (type, value) after its `inet_diag_msg`.
fn with_attributes(mut msg: Vec<u8>, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    for (kind, value) in attrs {
        let len = 4 + value.len();
        msg.extend_from_slice(&(len as u16).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(value);
        msg.resize(msg.len() + ((len + 3) & !3) - len, 0);
    }
    let total = msg.len() as u32;
    msg[..4].copy_from_slice(&total.to_ne_bytes());
    msg
}

#[test]
fn tcp_info_is_read_among_the_attributes_the_kernel_always_adds() {
    // INET_DIAG_SHUTDOWN (8) and INET_DIAG_SOCKOPT (22) around
    // INET_DIAG_INFO (2), whose value is only handed on, whatever its length.
    let info = [7u8; 104];
    let msg = with_attributes(
        answer(SEQ, PORT, 1, 1001),
        &[(8, &[0]), (INET_DIAG_INFO, &info), (22, &[1, 0])],
    );
    let mut reply = reply();
    let mut seen = Vec::new();
    let mut on = |r: &InetResponse, _: &[u8]| {
        let bytes = r.nlas.iter().find_map(|n| match n {
            Nla::TcpInfo(b) => Some(b.clone()),
            _ => None,
        });
        seen.push((r.header.socket_id.source_port, bytes));
    };
    assert!(matches!(reply.walk(&msg, &mut on), Walk::More));
    assert!(matches!(
        reply.walk(&done(SEQ, PORT, 0), &mut on),
        Walk::End(Ok(()))
    ));
    assert_eq!(seen, vec![(1001, Some(info.to_vec()))]);
}

#[test]
fn an_attribute_longer_than_its_answer_fails_the_dump_at_its_end() {
    let mut bad = with_attributes(answer(SEQ, PORT, 1, 1001), &[(8, &[0])]);
    // The attribute says 64 bytes where 8 are left.
    let at = bad.len() - 8;
    bad[at..at + 2].copy_from_slice(&64u16.to_ne_bytes());
    let batch = [bad, answer(SEQ, PORT, 2, 1002)].concat();
    let mut reply = reply();
    let mut ports = Vec::new();
    let mut on = |r: &InetResponse, _: &[u8]| ports.push(r.header.socket_id.source_port);
    assert!(matches!(reply.walk(&batch, &mut on), Walk::More));
    match reply.walk(&done(SEQ, PORT, 0), &mut on) {
        Walk::End(Err(NetlinkError::Decode { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(ports, vec![1002]);
}
