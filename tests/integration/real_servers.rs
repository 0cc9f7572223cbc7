//! Issue 17: real servers as they really fail, diagnosed on real sockets.
//! nginx and haproxy are Debian's, started in the foreground by the test
//! with its own config on free loopback ports; port-range and
//! `tcp_tw_reuse` changes happen only inside a network namespace the test
//! creates (`unshare -n`), never on the host. Each test asserts only on the
//! pids, ports and namespaces it created.

use crate::common;

use common::{output, poll, sockscope};
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

/// `diagnose --json ARGS` through `prefix` (e.g. `unshare`): exit status and document.
fn diagnose_via(prefix: &[&str], args: &[&str]) -> (i32, Value) {
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

fn findings(doc: &Value) -> Vec<&Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .collect()
}

fn of_kind<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    findings(doc)
        .into_iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn text(f: &Value, field: &str) -> String {
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
             timeout client-fin 60s\n  timeout server-fin 6s\n\
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
    poll("the backend holds every upstream end in CLOSE_WAIT", || {
        backend_cw(n)
    });
    poll("haproxy's upstream ends are FIN_WAIT2", || {
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

/// Like [`poll`], for something that takes a timeout to happen (up to 20 s).
fn poll_long<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `script` (Python) as root in a network namespace of its own, with
/// loopback up; its stdout.
fn in_new_netns(script: &str, args: &[&str]) -> std::process::Output {
    let out = output(
        Command::new("unshare")
            .args([
                "-n",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec python3 -c \"$0\" \"$@\"",
            ])
            .arg(script)
            .args(args),
    );
    assert!(
        out.status.success(),
        "the namespace's script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn port_exhaustion_under_tw_reuse_2_with_failing_connects_is_never_info() {
    let test = "port_exhaustion_under_tw_reuse_2_with_failing_connects_is_never_info";
    if !common::root_or_skip(test, "port exhaustion in a namespace of its own") {
        return;
    }
    for tool in ["unshare", "ip"] {
        assert!(
            common::find_program(tool).is_some(),
            "{tool} is needed (.ci/run installs it)"
        );
    }
    // In the namespace: 1000 ports, tcp_tw_reuse = 2 (the default); a
    // server that closes after its client; a client that connects and
    // closes as fast as it can, counting EADDRNOTAVAIL, while sockscope
    // diagnoses.
    let script = r#"
import errno, json, os, socket, subprocess, sys, threading, time
open('/proc/sys/net/ipv4/ip_local_port_range', 'w').write('40000 40999')
open('/proc/sys/net/ipv4/tcp_tw_reuse', 'w').write('2')
l = socket.socket(); l.bind(('127.0.0.1', 18400)); l.listen(4096)
server = os.fork()
if server == 0:
    while True:
        c, _ = l.accept()
        c.recv(1)
        c.close()
l.close()
stop = False
failed = 0
def churn():
    global failed
    while not stop:
        s = socket.socket()
        try:
            s.connect(('127.0.0.1', 18400))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                failed += 1
        s.close()
t = threading.Thread(target=churn); t.start()
time.sleep(2)
before = failed
d = subprocess.run([sys.argv[1], 'diagnose', '--json', '--for', '2', 'rport:18400'], capture_output=True)
after = failed
stop = True; t.join()
os.kill(server, 9)
print(json.dumps({'code': d.returncode, 'doc': json.loads(d.stdout), 'failed_during': after - before}))
"#;
    let out = in_new_netns(script, &[common::bin()]);
    let res: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    let failed = res["failed_during"].as_u64().unwrap();
    assert!(
        failed > 0,
        "the client never hit EADDRNOTAVAIL: the situation was not produced ({res:#})"
    );
    let doc = &res["doc"];
    let tw = of_kind(doc, "time_wait_pressure");
    let f = tw
        .iter()
        .find(|f| f["port"] == 18400)
        .unwrap_or_else(|| panic!("no time_wait_pressure towards :18400: {doc:#}"));
    assert_ne!(
        f["severity"], "info",
        "connects are failing ({failed} during the diagnosis): {f:#}"
    );
    assert!(text(f, "message").contains("EADDRNOTAVAIL"), "{f:#}");
    assert_eq!(res["code"], 1, "{res:#}");
}

#[test]
fn syn_retries_at_a_full_accept_queue_are_not_reported_as_packet_loss() {
    let test = "syn_retries_at_a_full_accept_queue_are_not_reported_as_packet_loss";
    if !common::root_or_skip(test, "SYN retries in a namespace of its own") {
        return;
    }
    // In the namespace (its counters are its own): a listener that never
    // accepts, with a backlog of 2, and 200 clients trying to connect (their SYNs retried at 1 s and 3 s).
    let script = r#"
import json, socket, subprocess, sys, time
l = socket.socket(); l.bind(('127.0.0.1', 18500)); l.listen(2)
clients = []
for _ in range(200):
    s = socket.socket(); s.setblocking(False)
    try:
        s.connect(('127.0.0.1', 18500))
    except BlockingIOError:
        pass
    clients.append(s)
time.sleep(1.5)
d = subprocess.run([sys.argv[1], 'diagnose', '--json', '--for', '3'], capture_output=True)
snmp = open('/proc/net/netstat').read().split('\n')
names, values = snmp[0].split(), snmp[1].split()
print(json.dumps({'code': d.returncode, 'doc': json.loads(d.stdout),
                  'syn_retrans': int(values[names.index('TCPSynRetrans')])}))
"#;
    let out = in_new_netns(script, &[common::bin()]);
    let res: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    assert!(
        res["syn_retrans"].as_u64().unwrap() > 0,
        "no SYN was retried: the situation was not produced ({res:#})"
    );
    let doc = &res["doc"];
    let loss: Vec<&Value> = of_kind(doc, "retransmissions");
    assert!(
        loss.iter().all(|f| f["severity"] == "info"),
        "SYN retries are not packet loss: {doc:#}"
    );
    assert!(
        !findings(doc)
            .iter()
            .any(|f| text(f, "next_step").contains("ip -s link")),
        "nobody is sent to interface errors: {doc:#}"
    );
    let at_listener: Vec<&Value> = findings(doc)
        .into_iter()
        .filter(|f| f["port"] == 18500)
        .filter(|f| f["kind"] == "listen_queue_full" || f["kind"] == "accept_stalled")
        .collect();
    assert_eq!(at_listener.len(), 1, "{doc:#}");
    assert!(
        text(at_listener[0], "message").contains("TcpExt.TCPSynRetrans rose by"),
        "the SYN retries are tied to the full queue: {:#}",
        at_listener[0]
    );
}

#[test]
fn time_wait_and_orphaned_fin_wait2_carry_their_time_left_from_both_sources() {
    // TIME_WAIT: the client closes first and the server after it.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_port = c.local_addr().unwrap().port();
    let (s, _) = l.accept().unwrap();
    drop(c);
    std::thread::sleep(Duration::from_millis(50));
    drop(s);
    // Orphaned FIN_WAIT2: a client that closes while the server keeps its end.
    let c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let orphan_port = c2.local_addr().unwrap().port();
    let (_kept, _) = l.accept().unwrap();
    drop(c2);
    for source in ["netlink", "proc"] {
        let timer_of = |lport: u16, state: &str| {
            poll(&format!("{state} on :{lport} via {source}"), || {
                let out = output(&mut sockscope(&[
                    "snapshot",
                    "--json",
                    "--source",
                    source,
                    &format!("lport:{lport}"),
                    &format!("rport:{port}"),
                ]));
                let rows: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
                rows.into_iter()
                    .find(|r| r["state"] == state)
                    .map(|r| r["timer"].clone())
            })
        };
        for (lport, state) in [(client_port, "TIME_WAIT"), (orphan_port, "FIN_WAIT2")] {
            let timer = timer_of(lport, state);
            let left = timer["expires_ms"]
                .as_u64()
                .unwrap_or_else(|| panic!("{state} via {source} has no time left: {timer}"));
            assert!(left > 0 && left <= 60_000, "{state} via {source}: {timer}");
        }
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

#[test]
fn a_socket_passed_by_pid_1_over_scm_rights_counts_as_the_receivers_filter_lists_it() {
    let test = "a_socket_passed_by_pid_1_over_scm_rights_counts_as_the_receivers_filter_lists_it";
    if !common::root_or_skip(test, "SCM_RIGHTS from pid 1 in a PID namespace of its own") {
        return;
    }
    // In a PID namespace the script is pid 1 (as systemd is for socket
    // activation): it accepts two connections, passes both to a receiver
    // over SCM_RIGHTS, keeps its copy of the first, and the clients close.
    let script = r#"
import json, os, socket, subprocess, sys, time
a, b = socket.socketpair()
receiver = os.fork()
if receiver == 0:
    a.close()
    msg, fds, _, _ = socket.recv_fds(b, 16, 2)
    b.send(b'ok')
    b.recv(1)
    os._exit(0)
b.close()
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(8)
port = l.getsockname()[1]
c1 = socket.create_connection(('127.0.0.1', port)); s1, _ = l.accept()
c2 = socket.create_connection(('127.0.0.1', port)); s2, _ = l.accept()
socket.send_fds(a, [b'fds'], [s1.fileno(), s2.fileno()])
a.recv(2)
s2.close()
c1.close(); c2.close()
time.sleep(0.3)
d = subprocess.run([sys.argv[1], 'diagnose', '--json', '--for', '0', 'lport:%d' % port], capture_output=True)
doc = json.loads(d.stdout)
listed = {}
for f in doc['findings']:
    if f['kind'] == 'close_wait_leak':
        rows = subprocess.run([sys.argv[1], 'snapshot', '--json'] + f['filter'].split(), capture_output=True)
        listed[f['filter']] = len(json.loads(rows.stdout))
print(json.dumps({'doc': doc, 'receiver': receiver, 'listed': listed}))
a.close()
os.waitpid(receiver, 0)
"#;
    let out = output(
        Command::new("unshare")
            .args(["-p", "-f", "--mount-proc", "--", "python3", "-c", script])
            .arg(common::bin()),
    );
    assert!(
        out.status.success(),
        "the namespace's script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    let receiver = res["receiver"].as_u64().unwrap();
    let cw = of_kind(&res["doc"], "close_wait_leak");
    assert_eq!(cw.len(), 1, "one finding for the two sockets: {res:#}");
    let f = cw[0];
    assert_eq!(f["pid"], receiver, "{f:#}");
    assert_eq!(f["count"], 2, "{f:#}");
    let filter = text(f, "filter");
    assert_eq!(
        res["listed"][&filter], f["count"],
        "the finding's filter `{filter}` lists what it counts: {res:#}"
    );
}

#[test]
fn a_socket_held_only_by_a_thread_with_its_own_fd_table_gets_the_true_cause() {
    // A thread that unshared its fd table (CLONE_FILES) opens a listener:
    // /proc/PID/fd (the main thread's table) does not show it.
    let script = r#"
import ctypes, socket, sys, threading, time
CLONE_FILES = 0x400
libc = ctypes.CDLL(None, use_errno=True)
ready = threading.Event()
def private():
    if libc.unshare(CLONE_FILES) != 0:
        print('unshare failed', ctypes.get_errno(), flush=True); ready.set(); return
    l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
    print(l.getsockname()[1], flush=True)
    ready.set()
    time.sleep(30)
threading.Thread(target=private, daemon=True).start()
ready.wait()
sys.stdin.read()
"#;
    let mut child = common::spawn_locked(
        Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let pid = child.id();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the thread said {line:?}"));
    let out = output(&mut sockscope(&[
        "snapshot",
        "--json",
        &format!("lport:{port}"),
    ]));
    let rows = common::parse_rows(&out.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if rows[0].owners.iter().any(|o| o.pid == pid) {
        // An owner scan that reads each thread's table finds it: nothing to explain.
    } else {
        let note = stderr
            .lines()
            .find(|l| l.starts_with("sockscope: "))
            .unwrap_or_else(|| panic!("an owner is missing and nothing says why: {stderr:?}"));
        assert!(
            note.contains("held by a thread with its own fd table"),
            "the note names the cause that fits: {note}"
        );
        assert!(!note.contains(" 0 sockets"), "{note}");
        let (n, _) = common::parse_attribution_note(note).expect("the note parses");
        assert!(n >= 1, "{note}");
    }
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}
