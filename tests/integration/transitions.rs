//! Transitions from the kernel's tracepoints, with real connections: what
//! lives and dies between two refreshes is counted, attributed to its port
//! and process, and timed exactly.

use crate::common::{self, Holder};
use sockscope::collect::{Options, SourceChoice};
use sockscope::engine::source::SystemSource;
use sockscope::engine::{Analysis, Engine};
use sockscope::trace::{PortKey, Status, Transitions, Window};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An engine as the monitor runs it, following the transitions; None (a
/// skip, a failure under CI) when this machine cannot follow them.
fn engine(test: &str) -> Option<Engine> {
    if !common::root_or_skip(test, "transitions from the tracepoints") {
        return None;
    }
    let trace = Transitions::start();
    if let Some(why) = trace.unavailable() {
        common::skipped(
            test,
            "transitions",
            why,
            "a kernel with perf events and the TCP tracepoints",
        );
        return None;
    }
    let source = SystemSource::new(Options {
        source: SourceChoice::Auto,
        tcp_info: false,
        owners: true,
        incremental: true,
        namespaces: true,
    });
    let mut e = Engine::new(Box::new(source), Duration::from_secs(1));
    e.follow_transitions(trace);
    Some(e)
}

fn step(e: &mut Engine) -> Arc<Analysis> {
    e.step(false).expect("a sample")
}

/// The transitions of the samples taken until `done` holds of their sum
/// (the feed drains every 50 ms; on a busy machine a little later).
fn until(e: &mut Engine, mut done: impl FnMut(&Window) -> bool) -> (Window, Arc<Analysis>) {
    let start = Instant::now();
    let mut sum = Window::default();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let a = step(e);
        let t = a.trace.as_ref().expect("transitions are followed");
        assert_eq!(t.status, Status::On);
        sum.add(&t.window);
        if done(&sum) || start.elapsed() > Duration::from_secs(15) {
            return (sum, a);
        }
    }
}

fn service(port: u16) -> PortKey {
    PortKey { port, local: true }
}

fn client_of(port: u16) -> PortKey {
    PortKey { port, local: false }
}

#[test]
fn a_thousand_connections_of_20_ms_between_two_refreshes_are_all_counted() {
    let Some(mut e) =
        engine("a_thousand_connections_of_20_ms_between_two_refreshes_are_all_counted")
    else {
        return;
    };
    let mut h = Holder::new();
    let (lid, port) = h.listen("127.0.0.1:0");
    // The first sample: the listener's holder is known before the burst.
    e.step(true).expect("first sample");
    let started = Instant::now();
    h.brief(&format!("127.0.0.1:{port}"), 1000, 20, lid);
    let burst = started.elapsed();
    let (w, _) = until(&mut e, |w| {
        w.by_port
            .get(&service(port))
            .is_some_and(|s| s.closed >= 1000)
    });
    let s = &w.by_port[&service(port)];
    assert_eq!(
        (s.opened, s.closed),
        (1000, 1000),
        "every accepted connection, burst took {burst:?}"
    );
    assert_eq!(s.closed_peer, 1000, "the clients closed first");
    assert_eq!(s.lifetimes_us.len(), 1000, "every lifetime measured");
    let p50 = s.lifetime_percentile(50.0).unwrap();
    assert!(
        p50 >= Duration::from_millis(20),
        "each lived 20 ms at least: p50 {p50:?}"
    );
    assert!(
        p50 <= burst,
        "and no longer than the whole burst: p50 {p50:?}, burst {burst:?}"
    );
    let c = &w.by_port[&client_of(port)];
    assert_eq!(
        (c.opened, c.closed, c.closed_local),
        (1000, 1000, 1000),
        "the client ends"
    );
    let by_holder = &w.by_process[&h.pid()];
    assert_eq!(
        by_holder.opened, 2000,
        "both ends are the holder's: accepted (its listener) and connected"
    );
    // Nothing of ours was lost: every count above is exact. (`dropped` is
    // the whole machine's, which a busy neighbour can raise.)
}

#[test]
fn resets_sent_by_a_listener_closed_under_load_are_counted() {
    let Some(mut e) = engine("resets_sent_by_a_listener_closed_under_load_are_counted") else {
        return;
    };
    let mut server = Holder::new();
    let (lid, port) = server.listen("127.0.0.1:0");
    let addr = format!("127.0.0.1:{port}");
    let mut clients = Holder::new();
    for _ in 0..20 {
        clients.connect(&addr); // queued, never accepted
    }
    e.step(true).expect("first sample");
    server.close(lid); // the kernel resets the 20 queued connections
    let mut refused = 0;
    for _ in 0..10 {
        // Nothing listens now: each SYN is answered with a reset.
        if std::net::TcpStream::connect(&addr).is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 10);
    let (w, _) = until(&mut e, |w| {
        w.by_port
            .get(&service(port))
            .is_some_and(|s| s.resets_sent >= 30)
    });
    let s = &w.by_port[&service(port)];
    assert_eq!(
        w.resets_no_socket.get(&port),
        Some(&10),
        "the refused connects"
    );
    assert_eq!(
        s.resets_sent, 30,
        "20 queued connections reset and 10 refused connects"
    );
    let c = &w.by_port[&client_of(port)];
    assert!(
        c.resets_received >= 20,
        "the queued clients got theirs: {c:?}"
    );
}

#[test]
fn a_close_wait_of_300_ms_shows_its_exact_duration_and_age() {
    let Some(mut e) = engine("a_close_wait_of_300_ms_shows_its_exact_duration_and_age") else {
        return;
    };
    let mut h = Holder::new();
    let (lid, port) = h.listen("127.0.0.1:0");
    let (cid, _) = h.connect(&format!("127.0.0.1:{port}"));
    let (sid, _) = h.accept(lid);
    e.step(true).expect("first sample");
    let before_fin = sockscope::collect::clock::boottime();
    h.close(cid); // the server end goes to CLOSE_WAIT
    let after_fin = sockscope::collect::clock::boottime();
    std::thread::sleep(Duration::from_millis(300));
    // The first sample to show it in CLOSE_WAIT already knows how long.
    let (_, a) = until(&mut e, |w| {
        w.by_port
            .get(&service(port))
            .is_some_and(|s| s.entered(sockscope::model::TcpState::CloseWait) >= 1)
    });
    let sock = a
        .snapshot
        .sockets
        .iter()
        .find(|s| s.local.port() == port && s.state == sockscope::model::TcpState::CloseWait)
        .expect("the CLOSE_WAIT end");
    let (age, lower_bound) = a
        .history
        .age(&sock.key(), a.snapshot.monotonic)
        .expect("an age");
    assert!(!lower_bound, "exact, not 'or earlier'");
    let now = a.snapshot.monotonic;
    assert!(
        age >= now - after_fin && age <= now - before_fin,
        "age {age:?} is from the FIN, between {:?} and {:?}",
        now - after_fin,
        now - before_fin
    );
    let before_close = sockscope::collect::clock::boottime();
    h.close(sid);
    let after_close = sockscope::collect::clock::boottime();
    let (_, a) = until(&mut e, |w| {
        w.by_port.get(&service(port)).is_some_and(|s| s.closed >= 1)
    });
    let t = a.trace.as_ref().unwrap();
    let tr = t
        .recent
        .iter()
        .find(|t| t.local.port() == port && t.old == 8)
        .expect("the CLOSE_WAIT's end is listed");
    assert_eq!(tr.new, 9, "CLOSE_WAIT to LAST_ACK");
    let after = tr.after.expect("its duration");
    let (low, high) = (before_close - after_fin, after_close - before_fin);
    assert!(low >= Duration::from_millis(300));
    assert!(
        after >= low && after <= high,
        "{after:?} within [{low:?}, {high:?}]"
    );
}

#[test]
fn without_privilege_diagnose_says_transitions_are_off_and_works() {
    let Some(wrapper) = common::as_nobody() else {
        common::skipped(
            "without_privilege_diagnose_says_transitions_are_off_and_works",
            "an unprivileged run",
            "not root (cannot drop to nobody)",
            "run it as root, as .ci/run does",
        );
        return;
    };
    let copies = common::sockscope_for_nobody();
    let out = common::output(
        std::process::Command::new(wrapper[0])
            .args(&wrapper[1..])
            .arg(&copies.sockscope)
            .args(["diagnose", "--for", "1s", "--json", "port:1"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "stderr: {stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let t = &doc["transitions"];
    assert_eq!(t["status"], "off", "{t}");
    let reason = t["reason"].as_str().unwrap();
    assert!(
        reason.contains("perf_event_open") || reason.contains("tracefs"),
        "the reason names what refused: {reason}"
    );
}

#[test]
fn diagnose_reports_a_windows_connections_for_the_port_asked() {
    if !common::root_or_skip(
        "diagnose_reports_a_windows_connections_for_the_port_asked",
        "transitions",
    ) {
        return;
    }
    let mut h = Holder::new();
    let (lid, port) = h.listen("127.0.0.1:0");
    let mut other = Holder::new();
    let (oid, oport) = other.listen("127.0.0.1:0");
    // A window far longer than the test, started before the connections
    // (diagnose says when) and ended with Ctrl-C after they have all closed.
    let mut child = common::sockscope(&[
        "diagnose",
        "--for",
        "120s",
        "--json",
        &format!("lport:{port}"),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("sockscope");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("diagnose's stderr");
    assert!(line.contains("sampling for"), "diagnose started: {line:?}");
    h.brief(&format!("127.0.0.1:{port}"), 300, 5, lid);
    other.brief(&format!("127.0.0.1:{oport}"), 50, 5, oid);
    // The feed drains every 50 ms; give it a few rounds, then end the window.
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().expect("diagnose");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        doc["sampled_for_s"].as_f64().unwrap() < 60.0,
        "Ctrl-C ended the window"
    );
    let t = &doc["transitions"];
    assert_eq!(t["status"], "on", "{t}");
    let ports = t["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1, "only the port asked for: {ports:?}");
    let p = &ports[0];
    assert_eq!(
        (p["port"].as_u64(), p["side"].as_str()),
        (Some(u64::from(port)), Some("local"))
    );
    assert_eq!(p["opened"], 300);
    assert_eq!(p["closed"], 300);
    assert_eq!(p["closed_by"]["peer"], 300);
    assert_eq!(p["pid"], h.pid());
    assert_eq!(p["lifetime"]["count"], 300);
    assert!(p["lifetime"]["p50_ms"].as_f64().unwrap() >= 5.0);
    assert!(t["dropped"].is_u64(), "the drop counter is reported: {t}");
}

#[test]
fn a_recording_keeps_each_intervals_transitions_for_the_replay() {
    if !common::root_or_skip(
        "a_recording_keeps_each_intervals_transitions_for_the_replay",
        "transitions",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.rec");
    let mut h = Holder::new();
    let (lid, port) = h.listen("127.0.0.1:0");
    let mut rec = common::sockscope(&["record", "--interval", "200ms", file.to_str().unwrap()])
        .spawn()
        .expect("sockscope record");
    std::thread::sleep(Duration::from_millis(800));
    h.brief(&format!("127.0.0.1:{port}"), 200, 2, lid);
    std::thread::sleep(Duration::from_millis(800));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(rec.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert!(rec.wait().unwrap().success());
    let recording = sockscope::record::Recording::open(&file).expect("the recording");
    let mut cursor = sockscope::record::Cursor::new();
    let (mut opened, mut closed, mut with) = (0, 0, 0);
    for i in 0..recording.len() {
        let snap = cursor.seek(&recording, i).unwrap();
        if let Some(w) = &snap.transitions {
            with += 1;
            if let Some(s) = w.by_port.get(&service(port)) {
                opened += s.opened;
                closed += s.closed;
            }
        }
    }
    assert_eq!(
        with,
        recording.len(),
        "every frame has its interval's transitions"
    );
    assert_eq!(
        (opened, closed),
        (200, 200),
        "and together they count every connection"
    );
    // A replay's analysis shows them as the monitor's would.
    let mut analyzer = sockscope::engine::Analyzer::new();
    let last = analyzer.digest(
        Arc::new(cursor.seek(&recording, recording.len() - 1).unwrap()),
        None,
        None,
    );
    assert_eq!(
        last.trace.as_ref().map(|t| t.status.clone()),
        Some(Status::On)
    );
}
