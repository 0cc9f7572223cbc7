//! Layouts read from real format files (this kernel's and the older
//! `tcp_event_sk_skb` layout of `tcp_send_reset`), and records built at the
//! offsets those files give.

use super::*;
use std::time::Duration;

const SET_STATE: &str = include_str!("../fixtures/inet_sock_set_state.6.18.format");
const SEND_RESET: &str = include_str!("../fixtures/tcp_send_reset.6.18.format");
const SEND_RESET_OLD: &str = include_str!("../fixtures/tcp_send_reset.5.15.format");
const RECEIVE_RESET: &str = include_str!("../fixtures/tcp_receive_reset.6.18.format");

fn put(raw: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    if raw.len() < offset + bytes.len() {
        raw.resize(offset + bytes.len(), 0);
    }
    raw[offset..offset + bytes.len()].copy_from_slice(bytes);
}

fn field(layout: &Layout, name: &str) -> usize {
    layout.fields[name].0
}

#[test]
fn parses_offsets_and_sizes_by_name() {
    let l = Layout::parse(SET_STATE);
    assert_eq!(l.fields["skaddr"], (8, 8));
    assert_eq!(l.fields["oldstate"], (16, 4));
    assert_eq!(l.fields["saddr_v6"], (40, 16));
    assert_eq!(l.fields["common_type"], (0, 2));
    assert!(!l.has("nosuchfield"));
}

fn set_state_record(l: &Layout, id: u16, v6: bool) -> Vec<u8> {
    let mut raw = Vec::new();
    put(&mut raw, 0, &id.to_ne_bytes());
    put(
        &mut raw,
        field(l, "skaddr"),
        &0xffff_8881_dead_beefu64.to_ne_bytes(),
    );
    put(&mut raw, field(l, "oldstate"), &1i32.to_ne_bytes());
    put(&mut raw, field(l, "newstate"), &8i32.to_ne_bytes());
    put(&mut raw, field(l, "sport"), &6800u16.to_ne_bytes());
    put(&mut raw, field(l, "dport"), &51000u16.to_ne_bytes());
    put(&mut raw, field(l, "protocol"), &6u16.to_ne_bytes());
    if v6 {
        put(&mut raw, field(l, "family"), &10u16.to_ne_bytes());
        let a: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
        put(&mut raw, field(l, "saddr_v6"), &a.octets());
        put(&mut raw, field(l, "daddr_v6"), &b.octets());
    } else {
        put(&mut raw, field(l, "family"), &2u16.to_ne_bytes());
        put(&mut raw, field(l, "saddr"), &[127, 0, 0, 1]);
        put(&mut raw, field(l, "daddr"), &[10, 1, 2, 3]);
    }
    raw.resize(72, 0);
    raw
}

#[test]
fn decodes_a_state_change_v4_and_v6() {
    let l = Layout::parse(SET_STATE);
    let mut ls = Layouts::default();
    ls.insert(0, 2287, l.clone());
    let e = ls
        .decode(
            &set_state_record(&l, 2287, false),
            Duration::from_secs(5),
            42,
        )
        .unwrap();
    assert_eq!(e.kind, Kind::State { old: 1, new: 8 });
    assert_eq!(e.sk, 0xffff_8881_dead_beef);
    assert_eq!(e.local, "127.0.0.1:6800".parse().unwrap());
    assert_eq!(e.remote, "10.1.2.3:51000".parse().unwrap());
    assert_eq!(e.pid, 42);
    let e = ls
        .decode(&set_state_record(&l, 2287, true), Duration::ZERO, 0)
        .unwrap();
    assert_eq!(e.local, "[2001:db8::1]:6800".parse().unwrap());
}

#[test]
fn ignores_other_protocols_unknown_ids_and_short_records() {
    let l = Layout::parse(SET_STATE);
    let mut ls = Layouts::default();
    ls.insert(0, 2287, l.clone());
    let mut raw = set_state_record(&l, 2287, false);
    put(&mut raw, field(&l, "protocol"), &132u16.to_ne_bytes()); // SCTP
    assert_eq!(ls.decode(&raw, Duration::ZERO, 0), None);
    assert_eq!(
        ls.decode(&set_state_record(&l, 9999, false), Duration::ZERO, 0),
        None
    );
    let raw = set_state_record(&l, 2287, false);
    for cut in [0, 1, 10, 30, 39] {
        assert_eq!(
            ls.decode(&raw[..cut], Duration::ZERO, 0),
            None,
            "cut at {cut}"
        );
    }
}

#[test]
fn reset_sent_with_sockaddrs_as_linux_6_lays_them_out() {
    let l = Layout::parse(SEND_RESET);
    assert!(!l.has("sport"), "6.x carries sockaddrs");
    let mut ls = Layouts::default();
    ls.insert(1, 2280, l.clone());
    let mut raw = Vec::new();
    put(&mut raw, 0, &2280u16.to_ne_bytes());
    let mut sa = vec![0u8; 28];
    sa[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    sa[2..4].copy_from_slice(&6800u16.to_be_bytes());
    sa[4..8].copy_from_slice(&[127, 0, 0, 1]);
    put(&mut raw, field(&l, "saddr"), &sa);
    let mut da = vec![0u8; 28];
    da[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    da[2..4].copy_from_slice(&40000u16.to_be_bytes());
    da[8..24].copy_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    put(&mut raw, field(&l, "daddr"), &da);
    let e = ls.decode(&raw, Duration::ZERO, 0).unwrap();
    assert_eq!(e.kind, Kind::ResetSent);
    assert_eq!(e.sk, 0, "no socket");
    assert_eq!(e.local, "127.0.0.1:6800".parse().unwrap());
    assert_eq!(e.remote, "[::1]:40000".parse().unwrap());
}

#[test]
fn reset_sent_with_separate_fields_as_older_kernels_lay_them_out() {
    let l = Layout::parse(SEND_RESET_OLD);
    assert!(l.has("sport"));
    let mut ls = Layouts::default();
    ls.insert(1, 1467, l.clone());
    let mut raw = Vec::new();
    put(&mut raw, 0, &1467u16.to_ne_bytes());
    put(&mut raw, field(&l, "skaddr"), &7u64.to_ne_bytes());
    put(&mut raw, field(&l, "sport"), &443u16.to_ne_bytes());
    put(&mut raw, field(&l, "dport"), &5555u16.to_ne_bytes());
    put(&mut raw, field(&l, "family"), &2u16.to_ne_bytes());
    put(&mut raw, field(&l, "saddr"), &[192, 0, 2, 1]);
    put(&mut raw, field(&l, "daddr"), &[192, 0, 2, 2]);
    let e = ls.decode(&raw, Duration::ZERO, 0).unwrap();
    assert_eq!((e.kind, e.sk), (Kind::ResetSent, 7));
    assert_eq!(e.local, "192.0.2.1:443".parse().unwrap());
    assert_eq!(e.remote, "192.0.2.2:5555".parse().unwrap());
}

#[test]
fn reset_received_carries_ports_and_cookie_layout() {
    let l = Layout::parse(RECEIVE_RESET);
    assert_eq!(l.fields["sock_cookie"], (64, 8));
    assert_eq!(
        l.fields["saddr_v6"],
        (30, 16),
        "unaligned offsets are read as given"
    );
}
