//! `sockscope diagnose` on real loopback sockets: a CLOSE_WAIT leak, an owned
//! FIN_WAIT2, TIME_WAIT churn and a full accept queue each produce the right
//! finding naming the right pid and port; a busy healthy server produces none.

use crate::common;

use common::{Helper, Holder, output, poll, sockscope};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `diagnose --json ARGS` (through `prefix`, e.g. nsenter) and returns
/// the exit status and the parsed document.
pub(crate) fn diagnose_via(prefix: &[&str], args: &[&str]) -> (i32, Value) {
    let mut cmd = match prefix {
        [program, rest @ ..] => {
            let mut c = Command::new(program);
            c.args(rest).arg(common::bin());
            c
        }
        [] => Command::new(common::bin()),
    };
    cmd.args(["diagnose", "--json"]).args(args);
    let out = output(&mut cmd);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "diagnose {args:?} did not print JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit status"), doc)
}

fn diagnose(args: &[&str]) -> (i32, Value) {
    diagnose_via(&[], args)
}

fn findings(doc: &Value) -> &Vec<Value> {
    doc["findings"].as_array().expect("findings array")
}

fn of_kind<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    findings(doc).iter().filter(|f| f["kind"] == kind).collect()
}

fn is_warning_or_worse(f: &Value) -> bool {
    f["severity"] == "warning" || f["severity"] == "critical"
}

/// The listener's Recv-Q as `snapshot` reports it.
fn accept_queue(port: u16) -> u32 {
    let rows = common::snapshot_json(&["state:listen", &format!("lport:{port}")]);
    rows.first().map_or(0, |r| r.recv_q)
}

/// Clients connect, the child accepts each, the clients close: the child
/// never closes its ends, which stay in CLOSE_WAIT.
fn leak_one(h: &mut Holder, listener: u32, port: u16) {
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    h.accept(listener);
    drop(client);
}

#[test]
fn growing_close_wait_leak_in_a_child_is_found_with_its_pid_and_port() {
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    for _ in 0..12 {
        leak_one(&mut h, listener, port);
    }
    let pid = h.pid().to_string();
    poll("12 CLOSE_WAIT in the child", || {
        let rows = common::snapshot_json(&["state:close-wait", &format!("pid:{pid}")]);
        (rows.len() == 12).then_some(())
    });
    // The leak keeps growing while diagnose watches.
    let filter = format!("pid:{pid}");
    let diag = std::thread::spawn(move || diagnose(&["--for", "2", &filter]));
    let mut leaked = 12;
    while !diag.is_finished() {
        leak_one(&mut h, listener, port);
        leaked += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, doc) = diag.join().unwrap();
    assert_eq!(
        code, 1,
        "a growing leak of 12+ is a warning: exit 1\n{doc:#}"
    );
    let leaks = of_kind(&doc, "close_wait_leak");
    assert_eq!(leaks.len(), 1, "{doc:#}");
    let f = leaks[0];
    assert_eq!(f["pid"], h.pid(), "{f:#}");
    assert_eq!(f["port"], port, "{f:#}");
    let count = f["count"].as_u64().unwrap();
    assert!((12..=leaked).contains(&count), "{count} of {leaked}: {f:#}");
    assert!(f["growth_per_min"].as_f64().unwrap() > 0.0, "{f:#}");
    assert_eq!(f["process"], common::exe_comm());
    assert!(is_warning_or_worse(f), "{f:#}");
    assert_eq!(f["filter"], format!("pid:{pid} state:close-wait"));
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("has not called close()"),
        "{f:#}"
    );
    // The clients' ends are orphaned FIN_WAIT2 on this machine: named as peers.
    assert_eq!(f["peers"][0]["addr"], "127.0.0.1", "{f:#}");
    assert_eq!(f["peers"][0]["state"], "FIN_WAIT2", "{f:#}");
}

#[test]
fn close_wait_age_reaches_back_before_sockscope_started() {
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    h.accept(listener);
    drop(client);
    let pid = h.pid();
    // tcp_info's "last ACK received" dates the peer's FIN, so the age is
    // known before sockscope has watched for that long.
    std::thread::sleep(Duration::from_secs(3));
    let started = std::time::SystemTime::now();
    let (_, doc) = diagnose(&["--for", "0", &format!("pid:{pid}")]);
    let f = of_kind(&doc, "close_wait_leak")[0];
    let seen: jiff::Timestamp = f["first_seen"].as_str().unwrap().parse().unwrap();
    let started = jiff::Timestamp::try_from(started).unwrap();
    let age = started.duration_since(seen);
    assert!(
        age >= jiff::SignedDuration::from_secs(2),
        "first_seen {seen} should be about 3 s before {started}: {f:#}"
    );
    assert_eq!(f["first_seen_exact"], false);
}

#[test]
fn owned_fin_wait2_names_the_half_closing_process_and_its_local_peer() {
    let mut server = Holder::new();
    let (listener, port) = server.listen("127.0.0.1:0");
    let mut client = Holder::new();
    let (conn, _) = client.connect(&format!("127.0.0.1:{port}"));
    server.accept(listener);
    client.shutdown_write(conn);
    let pid = client.pid();
    poll("the client's end in FIN_WAIT2", || {
        let rows = common::snapshot_json(&["state:fin-wait-2", &format!("pid:{pid}")]);
        (rows.len() == 1).then_some(())
    });
    let (_, doc) = diagnose(&["--for", "0", &format!("pid:{pid}")]);
    let fw = of_kind(&doc, "fin_wait2");
    assert_eq!(fw.len(), 1, "{doc:#}");
    let f = fw[0];
    assert_eq!(f["pid"], pid, "{f:#}");
    assert_eq!(f["port"], port, "the service the client talks to: {f:#}");
    assert_eq!(f["ports"][0], port, "{f:#}");
    assert_eq!(f["peers"][0]["pid"], server.pid(), "{f:#}");
    assert_eq!(f["peers"][0]["state"], "CLOSE_WAIT", "{f:#}");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("shutdown()"), "{message}");
    assert!(
        message.contains(&format!("(pid {})", server.pid())),
        "the peer is named: {message}"
    );
}

#[test]
fn time_wait_churn_in_a_small_port_range_is_found_with_the_port() {
    if common::find_program("ip").is_none() || common::find_program("unshare").is_none() {
        panic!("this test needs `ip` (iproute2) and `unshare` (util-linux); .ci/run installs them");
    }
    // A network namespace of its own: a 100-port ephemeral range that the
    // rest of the machine does not share.
    let exe = std::env::current_exe().unwrap();
    let mut h = Holder {
        h: Helper::role_via(&exe, "holder", &[], &["unshare", "-n", "--"]),
    };
    h.netns(40000, 40099);
    let (listener, port) = h.listen("127.0.0.1:0");
    let target = format!("127.0.0.1:{port}");
    h.churn(&target, 70, listener);
    // One connection still open: the client process can be named.
    h.connect(&target);
    h.accept(listener);
    let ns = format!("--net=/proc/{}/ns/net", h.pid());
    let (code, doc) = diagnose_via(&["nsenter", &ns, "--"], &["--for", "0"]);
    let tw = of_kind(&doc, "time_wait_pressure");
    let f = tw
        .iter()
        .find(|f| f["port"] == port)
        .unwrap_or_else(|| panic!("no time_wait_pressure for port {port}: {doc:#}"));
    assert!(is_warning_or_worse(f), "71 of 100 ports: {f:#}");
    assert_eq!(code, 1);
    assert_eq!(f["count"], 70, "{f:#}");
    assert_eq!(f["pid"], h.pid(), "the process connected there: {f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("71 of 100 ephemeral ports"), "{summary}");
    assert!(
        f["message"].as_str().unwrap().contains("active closer"),
        "{f:#}"
    );
}

/// A non-blocking connect; the socket stays open, whatever the handshake does.
fn connect_nowait(port: u16) -> OwnedFd {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, connect, socket};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK,
        None,
    )
    .unwrap();
    let addr = SockaddrIn::new(127, 0, 0, 1, port);
    match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => fd,
        Err(e) => panic!("connect to {port}: {e}"),
    }
}

#[test]
fn a_full_accept_queue_names_the_listener_process_and_port() {
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    // A backlog of 1 and a program that never calls accept().
    h.backlog(listener, 1);
    let clients: Vec<OwnedFd> = (0..5).map(|_| connect_nowait(port)).collect();
    poll("the accept queue to fill", || {
        (accept_queue(port) >= 2).then_some(())
    });
    let (code, doc) = diagnose(&["--for", "1", &format!("lport:{port}")]);
    assert_eq!(code, 1, "{doc:#}");
    // Nobody accepts: accept_stalled tells it (the queue over its backlog
    // included), rather than listen_queue_full's "not fast enough".
    assert!(of_kind(&doc, "listen_queue_full").is_empty(), "{doc:#}");
    let stalled = of_kind(&doc, "accept_stalled");
    assert_eq!(stalled.len(), 1, "{doc:#}");
    let f = stalled[0];
    assert_eq!(f["pid"], h.pid(), "{f:#}");
    assert_eq!(f["port"], port, "{f:#}");
    assert_eq!(f["severity"], "critical", "{f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("(pid {}) is not calling accept()", h.pid())),
        "{summary}"
    );
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("has not taken them"), "{message}");
    assert!(message.contains("over its backlog (1)"), "{message}");
    drop(clients);
}

#[test]
fn a_busy_healthy_server_gets_no_warning() {
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    h.echo(listener);
    let mut conns: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for c in &conns {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let pid = h.pid().to_string();
    let diag = std::thread::spawn(move || diagnose(&["--for", "2", &format!("pid:{pid}")]));
    // Traffic on every connection while diagnose samples.
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let mut rounds = 0;
    while !diag.is_finished() || rounds == 0 {
        for c in &mut conns {
            c.write_all(&[7u8; 1024]).unwrap();
            c.read_exact(&mut buf).unwrap();
        }
        rounds += 1;
        assert!(start.elapsed() < Duration::from_secs(60), "diagnose hung");
    }
    let (code, doc) = diag.join().unwrap();
    let serious: Vec<&Value> = findings(&doc)
        .iter()
        .filter(|f| is_warning_or_worse(f))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
    assert_eq!(code, 0, "{doc:#}");
    assert!(doc["sockets"].as_u64().unwrap() >= 41, "{doc:#}");
}

#[test]
fn text_output_names_the_leak_and_what_to_do() {
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    for _ in 0..3 {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        h.accept(listener);
        drop(client);
    }
    let pid = h.pid();
    poll("3 CLOSE_WAIT", || {
        let rows = common::snapshot_json(&["state:close-wait", &format!("pid:{pid}")]);
        (rows.len() == 3).then_some(())
    });
    let out = output(&mut sockscope(&[
        "diagnose",
        "--for",
        "0",
        &format!("pid:{pid}"),
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "3 fresh CLOSE_WAIT are info: {text}"
    );
    assert!(text.contains("info close_wait_leak:"), "{text}");
    assert!(
        text.contains(&format!(
            "(pid {pid}) holds 3 sockets in CLOSE_WAIT on port {port}"
        )),
        "{text}"
    );
    assert!(text.contains("Next: "), "{text}");
    assert!(
        text.contains(&format!("sockscope snapshot pid:{pid} state:close-wait")),
        "{text}"
    );
}

#[test]
fn bad_usage_exits_2_and_nothing_found_exits_0() {
    let out = output(&mut sockscope(&["diagnose", "bogus:term"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let out = output(&mut sockscope(&["diagnose", "--for", "soon"]));
    assert_eq!(out.status.code(), Some(2));
    // No socket has this owner: nothing to find.
    let out = output(&mut sockscope(&["diagnose", "--for", "0", "pid:4000000"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("No problems found"));
}

#[test]
fn ctrl_c_ends_a_long_window_with_the_report_so_far() {
    let mut h = Holder::new();
    let (_lid, port) = h.listen("127.0.0.1:0");
    let mut child = sockscope(&[
        "diagnose",
        "--for",
        "10m",
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
    assert!(
        line.starts_with("sockscope: sampling for 10m00s; Ctrl-C reports early"),
        "{line:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().expect("diagnose");
    assert_eq!(out.status.code(), Some(0), "a report, not a signal death");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let span = doc["sampled_for_s"].as_f64().expect("sampled_for_s");
    assert!(
        (1.0..60.0).contains(&span),
        "the window ended at Ctrl-C, after the sleep: {doc}"
    );
    assert_eq!(doc["sockets"], 1, "its own listener: {doc}");
}
