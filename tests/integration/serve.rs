//! `sockscope serve` end to end: the real binary on a loopback port, scraped
//! with a plain HTTP/1.1 client over std's TcpStream, while child processes
//! hold real sockets (a CLOSE_WAIT leak, a hostile name).

pub(crate) mod client;
use crate::common;

use client::{Exposition, Sample, Server, http, scrape};
use common::{Helper, close_wait_leaker, exe_comm, find_program, hex, sockscope};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

/// Tests that count CLOSE_WAIT sockets per process take this, so that one
/// test's leak does not outrank another's.
static LEAKS: Mutex<()> = Mutex::new(());

fn leaks_lock() -> std::sync::MutexGuard<'static, ()> {
    LEAKS.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_close_wait_leak_shows_per_process_per_state_and_as_a_finding() {
    let _leaks = leaks_lock();
    let (leaker, _port) = close_wait_leaker(5);
    // Every holder its own series, whatever else this machine runs.
    let server = Server::start(&["--top", "10000"]);
    let m = server.scrape();
    let pid = leaker.pid().to_string();

    let mine = m.find(
        "sockscope_process_sockets",
        &[("pid", &pid), ("state", "CLOSE_WAIT")],
    );
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert_eq!(mine[0].value, 5.0);
    assert_eq!(mine[0].labels["process"], exe_comm());
    assert_eq!(mine[0].labels["proto"], "tcp");
    // The leaker's listener is counted too.
    assert_eq!(
        m.value(
            "sockscope_process_sockets",
            &[("pid", &pid), ("state", "LISTEN")]
        ),
        Some(1.0)
    );

    // The machine-wide families count every process's sockets and findings,
    // so no figure in them is this test's to pin down: only that they are
    // there, for the states our sockets are in (the clients' ends are
    // orphaned FIN_WAIT2), and typed as gauges.
    for state in ["CLOSE_WAIT", "FIN_WAIT2"] {
        assert!(
            m.value("sockscope_sockets", &[("proto", "tcp"), ("state", state)])
                .is_some(),
            "no sockscope_sockets series for {state}"
        );
    }
    assert_eq!(
        m.types.get("sockscope_sockets").map(String::as_str),
        Some("gauge")
    );
    assert!(
        !m.find("sockscope_findings", &[("kind", "close_wait_leak")])
            .is_empty(),
        "every finding kind has a series, even at 0"
    );
    assert_eq!(
        m.types.get("sockscope_findings").map(String::as_str),
        Some("gauge")
    );

    // Kernel counters: counters named ..._total and typed counter.
    let counters: Vec<&Sample> = m
        .samples
        .iter()
        .filter(|s| s.name.starts_with("sockscope_netstat_") && s.name.ends_with("_total"))
        .collect();
    assert!(counters.len() > 50, "{} kernel counters", counters.len());
    for s in &counters {
        assert_eq!(
            m.types.get(&s.name).map(String::as_str),
            Some("counter"),
            "{}",
            s.name
        );
    }
    let retrans = m
        .value("sockscope_netstat_tcp_retranssegs_total", &[])
        .unwrap();
    assert!(retrans >= 0.0);
    assert!(
        m.value("sockscope_netstat_tcp_activeopens_total", &[])
            .is_some(),
        "Tcp.ActiveOpens is exposed"
    );
    assert_eq!(
        m.types
            .get("sockscope_netstat_tcp_currestab")
            .map(String::as_str),
        Some("gauge"),
        "CurrEstab goes up and down"
    );
    assert!(m.find("sockscope_netstat_tcp_rtomin", &[]).is_empty());
    assert!(m.find("sockscope_netstat_tcp_rtomin_total", &[]).is_empty());

    assert_eq!(m.value("sockscope_collections_total", &[]), Some(1.0));
    assert!(
        m.value("sockscope_collection_duration_seconds", &[])
            .unwrap()
            > 0.0
    );
    let taken = m
        .value("sockscope_snapshot_timestamp_seconds", &[])
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(taken <= now && taken > now - 3600.0, "{taken} vs {now}");
}

#[test]
fn top_one_folds_the_other_holders_into_one_other_series() {
    let _leaks = leaks_lock();
    let (big, _) = close_wait_leaker(4);
    let (small, _) = close_wait_leaker(2);
    let server = Server::start(&["--top", "1"]);
    let m = server.scrape();
    let close_wait = m.find("sockscope_process_sockets", &[("state", "CLOSE_WAIT")]);
    let named: Vec<&&Sample> = close_wait
        .iter()
        .filter(|s| s.labels.contains_key("pid"))
        .collect();
    assert_eq!(named.len(), 1, "{close_wait:#?}");
    // The top holder on this machine: the big leaker, or something holding
    // more (a benchmark load running beside the tests).
    if named[0].labels["pid"] == big.pid().to_string() {
        assert_eq!(named[0].value, 4.0);
    } else {
        assert!(named[0].value >= 4.0, "{named:#?}");
    }
    let other = m
        .value(
            "sockscope_process_sockets",
            &[("process", "other"), ("state", "CLOSE_WAIT")],
        )
        .expect("an other series");
    assert!(
        named[0].value + other >= 6.0,
        "both leakers are counted, one of them (at least) in other: {other}"
    );
    assert!(
        m.find(
            "sockscope_process_sockets",
            &[("pid", &small.pid().to_string()), ("state", "CLOSE_WAIT")]
        )
        .is_empty()
    );
    // At most one named series per protocol and state.
    let mut named_per_state: HashMap<(String, String), usize> = HashMap::new();
    for s in m.find("sockscope_process_sockets", &[]) {
        if s.labels.contains_key("pid") {
            *named_per_state
                .entry((s.labels["proto"].clone(), s.labels["state"].clone()))
                .or_default() += 1;
        }
    }
    assert!(
        named_per_state.values().all(|&n| n == 1),
        "{named_per_state:?}"
    );
}

#[test]
fn concurrent_scrapes_within_an_interval_share_one_collection() {
    let server = Server::start(&["--interval", "3600"]);
    let scrapers = 6;
    let barrier = Arc::new(Barrier::new(scrapers));
    let handles: Vec<_> = (0..scrapers)
        .map(|_| {
            let port = server.port;
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                scrape(port)
            })
        })
        .collect();
    let results: Vec<Exposition> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let stamps: Vec<f64> = results
        .iter()
        .map(|m| {
            assert_eq!(m.value("sockscope_collections_total", &[]), Some(1.0));
            m.value("sockscope_snapshot_timestamp_seconds", &[])
                .unwrap()
        })
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] == w[1]), "{stamps:?}");
    assert_eq!(
        server.scrape().value("sockscope_collections_total", &[]),
        Some(1.0)
    );
}

#[test]
fn a_scrape_after_the_interval_collects_again() {
    let server = Server::start(&["--interval", "100ms"]);
    assert_eq!(
        server.scrape().value("sockscope_collections_total", &[]),
        Some(1.0)
    );
    // Longer than the interval, whatever the machine's speed.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.scrape().value("sockscope_collections_total", &[]),
        Some(2.0)
    );
}

#[test]
fn unknown_paths_get_404_and_methods_other_than_get_and_head_405() {
    let server = Server::start(&[]);
    assert_eq!(server.get("/nope").status, 404);
    assert_eq!(server.get("/metrics/x").status, 404);
    let post = http(server.port, "POST", "/metrics", &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(http(server.port, "DELETE", "/", &[]).status, 405);
    let head = http(server.port, "HEAD", "/metrics", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
    let index = server.get("/");
    assert_eq!(index.status, 200);
    assert!(index.body.contains("href=\"/metrics\""), "{}", index.body);
    // A query string does not change the path.
    assert_eq!(server.get("/metrics?x=1").status, 200);
}

#[test]
fn openmetrics_is_served_to_a_scraper_that_asks_for_it() {
    let server = Server::start(&[]);
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let r = http(server.port, "GET", "/metrics", &[("Accept", accept)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("# EOF\n"));
    assert!(
        r.body
            .contains("# TYPE sockscope_netstat_tcp_retranssegs counter\n")
    );
    assert!(
        r.body
            .contains("\nsockscope_netstat_tcp_retranssegs_total ")
    );
}

#[test]
fn sigterm_and_ctrl_c_end_it_cleanly() {
    use nix::sys::signal::Signal;
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let server = Server::start(&[]);
        assert_eq!(server.get("/metrics").status, 200);
        assert_eq!(server.stop(signal), Some(0), "{signal}");
    }
}

#[test]
fn a_port_in_use_is_a_clear_error_with_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = common::output(&mut sockscope(&["serve", "--listen", &addr]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("sockscope: cannot listen on {addr}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("pick another with --listen"), "{stderr}");
}

#[test]
fn a_malformed_listen_address_or_top_is_a_usage_error() {
    for args in [
        &["serve", "--listen", "localhost"][..],
        &["serve", "--listen", "127.0.0.1"],
        &["serve", "--listen", "127.0.0.1:99999"],
        &["serve", "--top", "-1"],
        &["serve", "--interval", "0"],
    ] {
        let out = common::output(&mut sockscope(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// `promtool check metrics` (from Debian's `prometheus` package) accepts
/// the exposition: parse errors and lint (names, help, types) alike. CI
/// installs it; elsewhere the test says it skipped.
#[test]
fn promtool_accepts_the_exposition() {
    let Some(promtool) = find_program("promtool") else {
        common::skipped(
            "promtool_accepts_the_exposition",
            "promtool check metrics",
            "promtool is not on PATH",
            ".ci/run installs it: Debian package prometheus",
        );
        return;
    };
    let _leaks = leaks_lock();
    let (_leaker, _) = close_wait_leaker(3);
    let hostile = hostile_holder(b"\x1b]0;x\x07\"q\n\\z");
    let server = Server::start(&["--top", "10000"]);
    let body = server.get("/metrics").body;
    assert!(
        body.contains(&format!("pid=\"{}\"", hostile.pid)),
        "the hostile holder is scraped"
    );
    let mut check = std::process::Command::new(promtool);
    check
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = common::spawn_locked(&mut check);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A process whose name (`comm`) is `comm`, holding a loopback listener.
fn hostile_holder(comm: &[u8]) -> Helper {
    let mut h = Helper::role(
        "hostile",
        &[
            (common::HOSTILE_COMM_ENV, OsStr::new(&hex(comm))),
            (common::HOSTILE_ARGV_ENV, OsStr::new(&hex(b"hostile"))),
        ],
    );
    let _port: u16 = h.reply()[0].parse().unwrap();
    assert_eq!(h.reply(), ["ready"]);
    h
}

#[test]
fn a_hostile_process_name_reaches_the_label_cleaned_and_escaped() {
    let hostile = hostile_holder(b"\x1b]0;x\x07\"q\n\\z");
    let server = Server::start(&["--top", "10000"]);
    let body = server.get("/metrics").body;
    assert!(!body.contains('\x1b') && !body.contains('\x07'));
    let line = body
        .lines()
        .find(|l| l.contains(&format!("pid=\"{}\"", hostile.pid)))
        .expect("the hostile holder's series");
    // ESC, BEL and the newline are `?`; the quote and backslash escaped.
    assert!(line.contains(r#"process="?]0;x?\"q?\\z""#), "{line}");
    let m = Exposition::parse(&body);
    let s = m.find(
        "sockscope_process_sockets",
        &[("pid", &hostile.pid.to_string())],
    );
    assert_eq!(s[0].labels["process"], "?]0;x?\"q?\\z");
    assert!(server.stderr_lines().iter().all(|l| !l.contains('\x1b')));
}

#[test]
fn connections_between_two_scrapes_are_counted_by_port_and_closer() {
    if !common::root_or_skip(
        "connections_between_two_scrapes_are_counted_by_port_and_closer",
        "transitions",
    ) {
        return;
    }
    let server = Server::start(&["--interval", "100ms"]);
    let mut h = common::Holder::new();
    let (lid, port) = h.listen("127.0.0.1:0");
    let first = server.scrape();
    assert_eq!(first.value("sockscope_transitions_up", &[]), Some(1.0));
    h.brief(&format!("127.0.0.1:{port}"), 150, 2, lid);
    let p = port.to_string();
    let labels = [("port", p.as_str()), ("side", "local")];
    let opened = common::poll("the 150 connections in the counters", || {
        std::thread::sleep(Duration::from_millis(150));
        let e = server.scrape();
        e.value("sockscope_connections_opened_total", &labels)
            .filter(|&v| v >= 150.0)
            .map(|v| (v, e))
    });
    assert_eq!(opened.0, 150.0);
    let e = opened.1;
    let by_peer = [
        ("port", p.as_str()),
        ("side", "local"),
        ("closed_by", "peer"),
    ];
    assert_eq!(
        e.value("sockscope_connections_closed_total", &by_peer),
        Some(150.0)
    );
    // The drop counter is the whole machine's: that it is exported is ours.
    assert!(
        e.value("sockscope_transitions_dropped_events_total", &[])
            .is_some()
    );
}
