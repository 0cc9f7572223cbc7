//! The tracker on fixed event sequences, as the kernel emits them (the
//! sequences were read off this kernel's trace_pipe for real connections).

use super::*;
use crate::model::TcpState;
use crate::trace::format::{Event, Kind};
use std::time::Duration;

const L: &str = "127.0.0.1:6800";
const R: &str = "127.0.0.1:51000";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn st(t: u64, sk: u64, local: &str, remote: &str, old: u8, new: u8, pid: u32) -> Event {
    Event {
        time: ms(t),
        kind: Kind::State { old, new },
        sk,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        pid,
    }
}

fn service() -> PortKey {
    PortKey {
        port: 6800,
        local: true,
    }
}

/// The server's side of a connection the client closes first, and the
/// client's side, as the kernel reports both on loopback.
fn one_connection(t: &mut Tracker, at: u64, n: u64) {
    let c = 1000 + n * 2;
    let s = c + 1;
    let client = format!("127.0.0.1:{}", 40000 + n);
    t.event(st(at, c, "127.0.0.1:0", L, CLOSE, SYN_SENT, 77));
    t.event(st(at, c, &client, L, SYN_SENT, ESTABLISHED, 0));
    t.event(st(at, s, L, &client, LISTEN, SYN_RECV, 0));
    t.event(st(at, s, L, &client, SYN_RECV, ESTABLISHED, 0));
    t.event(st(at + 20, c, &client, L, ESTABLISHED, FIN_WAIT1, 77));
    t.event(st(at + 20, s, L, &client, ESTABLISHED, CLOSE_WAIT, 0));
    t.event(st(at + 20, c, &client, L, FIN_WAIT1, FIN_WAIT2, 0));
    t.event(st(at + 320, s, L, &client, CLOSE_WAIT, LAST_ACK, 55));
    t.event(st(at + 320, s, L, &client, LAST_ACK, CLOSE, 0));
    t.event(st(at + 320, c, &client, L, FIN_WAIT2, CLOSE, 0));
}

#[test]
fn counts_every_short_connection_under_its_service_and_holder() {
    let mut t = Tracker::new(ms(0));
    t.set_listeners([(6800, 55)].into());
    for n in 0..1000 {
        one_connection(&mut t, n, n);
    }
    let w = t.take(ms(2000));
    let s = &w.by_port[&service()];
    assert_eq!((s.opened, s.closed), (1000, 1000));
    assert_eq!(s.closed_peer, 1000, "the server saw the peer close first");
    assert_eq!(s.lifetime_percentile(50.0), Some(ms(320)));
    assert_eq!(
        s.in_state_percentile(TcpState::CloseWait, 99.0),
        Some(ms(300))
    );
    assert_eq!(
        w.by_process[&55].opened, 1000,
        "accepted: the listener's holder"
    );
    let client = &w.by_port[&PortKey {
        port: 6800,
        local: false,
    }];
    assert_eq!((client.opened, client.closed_local), (1000, 1000));
    assert_eq!(w.by_process[&77].opened, 1000, "connect(): the caller");
    assert_eq!(w.total.opened, 2000);
    assert!(t.is_empty(), "closed connections are forgotten");
    assert_eq!(
        t.take(ms(3000)).total,
        Stats::default(),
        "a new window starts empty"
    );
}

#[test]
fn a_close_wait_of_300_ms_is_exact() {
    let mut t = Tracker::new(ms(0));
    one_connection(&mut t, 100, 1);
    let tr: Vec<_> = t.recent().iter().filter(|x| x.old == CLOSE_WAIT).collect();
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].after, Some(ms(300)));
    assert_eq!(tr[0].new, LAST_ACK);
}

#[test]
fn seen_gives_the_exact_entry_of_a_connection_still_in_close_wait() {
    let mut t = Tracker::new(ms(0));
    t.event(st(10, 5, L, R, LISTEN, SYN_RECV, 0));
    t.event(st(10, 5, L, R, SYN_RECV, ESTABLISHED, 0));
    t.event(st(40, 5, L, R, ESTABLISHED, CLOSE_WAIT, 0));
    let seen = t.seen();
    let s = seen[&(L.parse().unwrap(), R.parse().unwrap())];
    assert_eq!(s, (TcpState::CloseWait, ms(40)));
}

#[test]
fn a_connection_opened_before_watching_has_no_lifetime_or_first_state_age() {
    let mut t = Tracker::new(ms(0));
    t.set_listeners([(6800, 55)].into());
    t.event(st(10, 9, L, R, ESTABLISHED, CLOSE_WAIT, 0));
    t.event(st(30, 9, L, R, CLOSE_WAIT, LAST_ACK, 0));
    t.event(st(31, 9, L, R, LAST_ACK, CLOSE, 0));
    let w = t.take(ms(100));
    let s = &w.by_port[&service()];
    assert_eq!((s.opened, s.closed, s.closed_peer), (0, 1, 1));
    assert!(s.lifetimes_us.is_empty(), "its opening was not seen");
    assert_eq!(
        s.in_state_percentile(TcpState::CloseWait, 50.0),
        Some(ms(20))
    );
    assert_eq!(s.in_state_percentile(TcpState::Established, 50.0), None);
    assert_eq!(w.by_process[&55].closed, 1);
}

#[test]
fn resets_are_counted_for_the_service_that_sends_them() {
    let mut t = Tracker::new(ms(0));
    t.set_listeners([(6800, 55)].into());
    // A connection reset by the server (SO_LINGER 0), then a SYN to the port
    // after its listener closed: answered with a reset from no socket.
    t.event(st(0, 5, L, R, LISTEN, SYN_RECV, 0));
    t.event(st(0, 5, L, R, SYN_RECV, ESTABLISHED, 0));
    t.event(Event {
        kind: Kind::ResetSent,
        ..st(5, 5, L, R, 0, 0, 0)
    });
    t.event(st(5, 5, L, R, ESTABLISHED, CLOSE, 55));
    t.event(Event {
        kind: Kind::ResetSent,
        ..st(6, 0, L, "127.0.0.1:51002", 0, 0, 0)
    });
    let w = t.take(ms(10));
    let s = &w.by_port[&service()];
    assert_eq!(s.resets_sent, 2);
    assert_eq!(s.closed_reset, 1);
    assert_eq!(w.resets_no_socket[&6800], 1);
    assert_eq!(w.total.resets_sent, 2);
}

#[test]
fn a_refused_connect_is_a_failed_open() {
    let mut t = Tracker::new(ms(0));
    t.event(st(0, 3, "127.0.0.1:0", L, CLOSE, SYN_SENT, 77));
    t.event(Event {
        kind: Kind::ResetReceived,
        ..st(1, 3, "127.0.0.1:44190", L, 0, 0, 0)
    });
    t.event(st(1, 3, "127.0.0.1:44190", L, SYN_SENT, CLOSE, 0));
    let w = t.take(ms(2));
    let s = &w.by_port[&PortKey {
        port: 6800,
        local: false,
    }];
    assert_eq!(
        (s.opened, s.closed, s.failed, s.resets_received),
        (1, 1, 1, 1)
    );
}

#[test]
fn listeners_are_not_connections_but_are_listed() {
    let mut t = Tracker::new(ms(0));
    t.event(st(0, 1, L, "0.0.0.0:0", CLOSE, LISTEN, 55));
    t.event(st(9, 1, L, "0.0.0.0:0", LISTEN, CLOSE, 55));
    let w = t.take(ms(10));
    assert_eq!(w.total.opened, 0);
    assert_eq!(t.recent().len(), 2);
    assert!(t.is_empty());
}

#[test]
fn prune_forgets_stale_connections_the_sample_does_not_show() {
    let mut t = Tracker::new(ms(0));
    t.event(st(0, 5, L, R, LISTEN, SYN_RECV, 0));
    t.event(st(0, 6, L, "127.0.0.1:51001", LISTEN, SYN_RECV, 0));
    t.prune(ms(120_000), Duration::from_secs(60), |_, r| {
        r.port() == 51000
    });
    assert_eq!(t.len(), 1);
}
