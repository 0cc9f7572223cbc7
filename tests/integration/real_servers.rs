//! Issue 17: real servers as they really fail, diagnosed on real sockets.
//! nginx and haproxy are Debian's, started in the foreground by the test
//! with its own config on free loopback ports and temporary directories;
//! skipped with a visible reason where they are missing (a failure under
//! `CI=true`). Each test asserts only on the pids and ports it created.
//! The kernel's side (namespaces, timers, SCM_RIGHTS) is in `kernel_facts`.

use crate::common;
use crate::diagnose::diagnose_via;

use common::poll;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The program, or a visible skip (a failure under `CI=true`).
fn program_or_skip(test: &str, name: &str, package: &str) -> Option<std::path::PathBuf> {
    let found = common::find_program(name).or_else(|| {
        ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        common::skipped(
            test,
            &format!("{name} itself"),
            &format!("{name} is not installed"),
            &format!("apt-get install {package}, as .ci/run does"),
        );
    }
    found
}

/// A server process and the processes it forked; all are SIGKILLed (and
/// continued, should they be stopped) on drop.
struct Server {
    child: Child,
    extra: Vec<u32>,
}

impl Server {
    fn start(cmd: &mut Command) -> Server {
        let child = common::spawn_locked(cmd.stdin(Stdio::null()));
        Server {
            child,
            extra: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for &pid in self.extra.iter().chain([self.child.id()].iter()) {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        }
        let _ = self.child.wait();
    }
}

/// The pids whose parent is `parent`, from `/proc/PID/stat`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// `State:` letter of a process.
fn state_of(pid: u32) -> Option<char> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|s| s.trim().chars().next())
}

pub(crate) fn findings(doc: &Value) -> Vec<&Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .collect()
}

pub(crate) fn of_kind<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    findings(doc)
        .into_iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

pub(crate) fn text(f: &Value, field: &str) -> String {
    f[field].as_str().unwrap_or_default().to_string()
}

/// A healthy answer from nginx on `port`, on a fresh connection.
fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply.starts_with("HTTP/1.1 200").then_some(reply)
}

/// nginx in the foreground with `workers` workers, on 127.0.0.1:`port`.
fn nginx(bin: &Path, dir: &Path, port: u16, workers: u32, backlog: u32) -> Server {
    let d = dir.display();
    let conf = format!(
        "worker_processes {workers};\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {d}/body;\n\
           proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n\
           scgi_temp_path {d}/scgi;\n\
           keepalive_timeout 60s;\n\
           keepalive_requests 100000;\n\
           server {{ listen 127.0.0.1:{port} backlog={backlog}; location / {{ return 200 \"ok\\n\"; }} }}\n\
         }}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    let mut server = Server::start(
        Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    poll("nginx answers", || get(port));
    server.extra = poll("nginx's workers", || {
        let w = children_of(server.pid());
        (w.len() == workers as usize).then_some(w)
    });
    server
}

#[test]
fn nginx_with_stopped_workers_names_the_workers_not_the_master() {
    let test = "nginx_with_stopped_workers_names_the_workers_not_the_master";
    let Some(bin) = program_or_skip(test, "nginx", "nginx-light") else {
        return;
    };
    if !common::root_or_skip(test, "nginx with its workers stopped") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = nginx(&bin, dir.path(), port, 2, 8);
    let (master, workers) = (server.pid(), server.extra.clone());
    // Keep-alive clients the workers accept and hold, then the workers stop.
    let mut kept: Vec<TcpStream> = Vec::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf).expect("an answer");
        kept.push(s);
    }
    for &w in &workers {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(w as i32),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .expect("SIGSTOP a worker");
        poll("the worker stopped", || {
            (state_of(w) == Some('T')).then_some(())
        });
    }
    // Clients connect while nobody accepts, and give up: their ends are
    // orphaned in FIN_WAIT2, the server's in CLOSE_WAIT (accepted by a
    // worker, or still in the accept queue).
    let mut gave_up = 0;
    for _ in 0..20 {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            gave_up += 1;
        }
    }
    assert!(gave_up > 0, "no connect completed at all");
    drop(kept);
    // One sample: the queued connections their clients gave up on (CLOSE_WAIT) are evidence at once.
    let (code, doc) = diagnose_via(&[], &["--for", "0", &format!("port:{port}")]);
    assert_eq!(code, 1, "a stalled listener is a problem: {doc:#}");
    let stalled: Vec<&Value> = of_kind(&doc, "accept_stalled")
        .into_iter()
        .filter(|f| f["port"] == port)
        .collect();
    assert_eq!(stalled.len(), 1, "{doc:#}");
    let f = stalled[0];
    let summary = text(f, "summary");
    assert!(
        summary.contains(&format!(
            "both nginx workers ({} and {}) are stopped (SIGSTOP): nothing accepts on :{port}",
            workers[0], workers[1]
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("the master {master} only holds the listener")),
        "{summary}"
    );
    assert!(
        workers.contains(&(f["pid"].as_u64().unwrap() as u32)),
        "{f:#}"
    );
    assert!(text(f, "next_step").contains("kill -CONT"), "{f:#}");
    // The CLOSE_WAIT the stopped workers hold says they are stopped first.
    let cw: Vec<&Value> = of_kind(&doc, "close_wait_leak");
    assert!(
        cw.iter()
            .any(|f| text(f, "summary").contains("are stopped (SIGSTOP): ")),
        "{doc:#}"
    );
    // Each orphaned client end counts once, for the real holder of its peer.
    let orphans: Vec<&Value> = of_kind(&doc, "fin_wait2")
        .into_iter()
        .filter(|f| text(f, "filter").contains("pid:none"))
        .collect();
    assert_eq!(orphans.len(), 1, "{doc:#}");
    let peers = orphans[0]["peers"].as_array().unwrap();
    let total: u64 = peers.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(total, orphans[0]["count"].as_u64().unwrap(), "{peers:#?}");
    for p in peers {
        let pid = p["pid"].as_u64().map(|p| p as u32);
        if p["queued"] == true {
            assert_eq!(
                pid,
                Some(master),
                "a queued peer belongs to the listener: {p:#}"
            );
        } else {
            assert!(pid.is_some_and(|p| workers.contains(&p)), "{p:#}");
        }
    }
}

#[test]
fn haproxy_waiting_on_a_backend_that_never_closes_names_the_backend() {
    let test = "haproxy_waiting_on_a_backend_that_never_closes_names_the_backend";
    let Some(bin) = program_or_skip(test, "haproxy", "haproxy") else {
        return;
    };
    if !common::root_or_skip(test, "haproxy in front of a leaking backend") {
        return;
    }
    let (front, back) = (free_port(), free_port());
    // The backend: accepts, reads to the end, never closes.
    let backend_script = format!(
        "import socket, sys\n\
         l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         l.bind(('127.0.0.1', {back})); l.listen(512)\n\
         print('ready', flush=True)\n\
         kept = []\n\
         while True:\n\
         \x20   c, _ = l.accept(); kept.append(c)\n"
    );
    let mut backend = Server::start(
        Command::new("python3")
            .args(["-c", &backend_script])
            .stdout(Stdio::piped()),
    );
    {
        let mut line = String::new();
        let out = backend.child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let backend_pid = backend.pid();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 1000\n\
             defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  \
             timeout client-fin 60s\n  timeout server-fin 15s\n\
             frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
             backend be\n  server s1 127.0.0.1:{back}\n"
        ),
    )
    .unwrap();
    let proxy = Server::start(
        Command::new(&bin)
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .stderr(Stdio::null()),
    );
    poll("haproxy listens", || {
        TcpStream::connect(("127.0.0.1", front)).ok()
    });
    let proxy_pid = proxy.pid();
    // Clients send a request and close: haproxy passes the close on.
    let n = 110;
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", front)).expect("connect to haproxy");
        s.write_all(b"hello\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    }
    let backend_cw = |want: usize| {
        let rows = common::snapshot_json(&["state:close-wait", &format!("lport:{back}")]);
        (rows.iter().filter(|r| r.pid == Some(backend_pid)).count() >= want).then_some(())
    };
    poll_long("the backend holds every upstream end in CLOSE_WAIT", || {
        backend_cw(n)
    });
    poll_long("haproxy's upstream ends are FIN_WAIT2", || {
        let rows = common::snapshot_json(&["state:fin-wait-2", &format!("rport:{back}")]);
        (rows.iter().filter(|r| r.pid == Some(proxy_pid)).count() >= n).then_some(())
    });
    let (_, doc) = diagnose_via(
        &[],
        &["--for", "0", &format!("pid:{proxy_pid},{backend_pid}")],
    );
    let cw = of_kind(&doc, "close_wait_leak");
    let of_pid = |pid: u32| {
        cw.iter()
            .find(|f| f["pid"] == pid)
            .unwrap_or_else(|| panic!("no close_wait_leak for pid {pid}: {doc:#}"))
    };
    let (p, b) = (of_pid(proxy_pid), of_pid(backend_pid));
    assert_eq!(
        p["severity"], b["severity"],
        "the proxy's part at the root's severity"
    );
    assert!(
        text(p, "summary").starts_with(&format!("python3 (pid {backend_pid}) does not close")),
        "{p:#}"
    );
    assert!(
        !text(p, "next_step").contains("Find the code path in haproxy"),
        "{p:#}"
    );
    let order: Vec<u64> = cw.iter().filter_map(|f| f["pid"].as_u64()).collect();
    let pos = |pid: u32| order.iter().position(|&p| p == u64::from(pid)).unwrap();
    assert!(
        pos(backend_pid) < pos(proxy_pid),
        "the root first: {order:?}"
    );

    // haproxy's server-fin timeout resets the backend side: the backend's
    // sockets leave the table, their descriptors stay.
    poll_long("the backend's CLOSE_WAIT reset away", || {
        let rows = common::snapshot_json(&["state:close-wait", &format!("lport:{back}")]);
        rows.iter()
            .all(|r| r.pid != Some(backend_pid))
            .then_some(())
    });
    let (code, doc) = diagnose_via(&[], &["--for", "2"]);
    let held: Vec<&Value> = of_kind(&doc, "closed_sockets_held")
        .into_iter()
        .filter(|f| f["pid"] == backend_pid)
        .collect();
    assert_eq!(held.len(), 1, "the dead descriptors are a finding: {doc:#}");
    assert!(
        held[0]["count"].as_u64().unwrap() >= n as u64,
        "{:#}",
        held[0]
    );
    assert_eq!(held[0]["severity"], "warning", "{:#}", held[0]);
    assert_eq!(code, 1);
    drop(proxy);
}

/// Like [`poll`], for something that takes a timeout to happen, or many
/// connections on a busy machine (up to 40 s).
fn poll_long<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_healthy_nginx_under_ab_keepalive_200_for_30_s_gets_no_warning() {
    let test = "a_healthy_nginx_under_ab_keepalive_200_for_30_s_gets_no_warning";
    let Some(nginx_bin) = program_or_skip(test, "nginx", "nginx-light") else {
        return;
    };
    let Some(ab) = program_or_skip(test, "ab", "apache2-utils") else {
        return;
    };
    if !common::root_or_skip(test, "a healthy nginx under load") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = nginx(&nginx_bin, dir.path(), port, 2, 511);
    let mut pids = server.extra.clone();
    pids.push(server.pid());
    // 30 s of load, once; sockscope samples over all but its first and last second.
    let load = common::spawn_locked(
        Command::new(&ab)
            .args(["-q", "-k", "-c", "200", "-t", "30", "-n", "100000000"])
            .arg(format!("http://127.0.0.1:{port}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (_, doc) = diagnose_via(&[], &["--for", "28", &format!("port:{port}")]);
    let report = load.wait_with_output().expect("ab");
    let ab_out = String::from_utf8_lossy(&report.stdout);
    assert!(
        ab_out.contains("Failed requests:        0"),
        "the load itself must be healthy: {ab_out}"
    );
    let complete: u64 = ab_out
        .lines()
        .find_map(|l| l.strip_prefix("Complete requests:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(complete > 1000, "ab hardly ran: {ab_out}");
    let bad: Vec<&Value> = findings(&doc)
        .into_iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(bad.is_empty(), "a healthy nginx got warnings: {bad:#?}");
    assert!(
        doc["samples"].as_u64().unwrap_or(0) >= 10,
        "sampled the load: {doc:#}"
    );
    drop(server);
}
