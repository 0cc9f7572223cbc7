//! Shared helpers for the integration tests: running the real binary, parsing
//! its JSON, polling for a socket state, and child processes that hold real
//! loopback sockets.
//!
//! Child processes are this same test binary run again with
//! `--exact child_process_entry_point` and the role in [`ROLE_ENV`]: every test
//! binary has a `#[test] fn child_process_entry_point()` at its root that calls
//! [`child_main`], which returns at once unless the variable is set. A child
//! prints one `@@ ...` line per command it is sent on stdin and exits when its
//! stdin closes, so it dies with the test that owns the pipe.

#![allow(dead_code)]

pub mod netns;
pub mod py_server;
use serde::Deserialize;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// Which role a re-executed test binary plays.
pub const ROLE_ENV: &str = "SOCKSCOPE_TEST_ROLE";
/// The name of the `#[test]` at the root of every test binary that hosts child roles.
pub const ENTRY_POINT: &str = "child_process_entry_point";
/// How long to wait for the kernel to reach a state before giving up.
pub const POLL_LIMIT: Duration = Duration::from_secs(5);

/// Held while spawning any process from a test. Between fork and exec a new
/// process holds copies of all of this process's descriptors (close-on-exec
/// or not), so a test that checks the exact owners of a socket held by the
/// test process itself takes this lock around its scan.
pub static SPAWN_LOCK: Mutex<()> = Mutex::new(());

pub fn spawn_locked(cmd: &mut Command) -> Child {
    let _guard = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"))
}

/// Runs a command to completion, capturing stdout and stderr.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn_locked(cmd)
        .wait_with_output()
        .expect("wait for command")
}

/// The sockscope binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sockscope")
}

pub fn sockscope(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    cmd
}

/// One owner in the JSON output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub struct OwnerRow {
    pub pid: u32,
    pub fd: u32,
    pub process: Option<String>,
}

/// One socket in the JSON output (fields the tests look at).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Row {
    pub proto: String,
    pub family: u8,
    pub state: String,
    pub local_addr: String,
    pub local_port: u16,
    pub remote_addr: String,
    pub remote_port: u16,
    pub inode: u64,
    pub uid: u32,
    pub user: Option<String>,
    pub recv_q: u32,
    pub send_q: u32,
    pub pid: Option<u32>,
    pub process: Option<String>,
    pub owners: Vec<OwnerRow>,
    pub cookie: String,
}

impl Row {
    pub fn is(&self, proto: &str, local_port: u16, remote_port: u16) -> bool {
        self.proto == proto && self.local_port == local_port && self.remote_port == remote_port
    }
}

/// Parses `snapshot --json` output, checking it is one JSON array.
pub fn parse_rows(stdout: &[u8]) -> Vec<Row> {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "snapshot --json printed something that is not a JSON array of sockets: {e}\n{}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// Runs `sockscope snapshot --json ARGS netns:host`, asserts exit 0, parses
/// the rows. The tests' sockets are in sockscope's own namespace: another
/// namespace (a container, another test's `ip netns`) may have a socket on
/// the same address and port.
pub fn snapshot_json(args: &[&str]) -> Vec<Row> {
    let mut all = vec!["snapshot", "--json"];
    all.extend_from_slice(args);
    all.push("netns:host");
    let out = output(&mut sockscope(&all));
    assert_eq!(
        out.status.code(),
        Some(0),
        "sockscope {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_rows(&out.stdout)
}

/// Calls `f` until it returns Some, for up to [`POLL_LIMIT`] (and at least
/// three times, for a machine so busy that one call takes that long).
pub fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    for attempt in 1.. {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            attempt < 3 || start.elapsed() < POLL_LIMIT,
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unreachable!()
}

/// Runs `snapshot --json ARGS` until exactly one row matches `pred`, and returns it.
pub fn poll_row(what: &str, args: &[&str], pred: impl Fn(&Row) -> bool) -> Row {
    poll(what, || {
        let rows = snapshot_json(args);
        let mut matching: Vec<Row> = rows.into_iter().filter(|r| pred(r)).collect();
        assert!(
            matching.len() <= 1,
            "{what}: more than one row: {matching:#?}"
        );
        matching.pop()
    })
}

/// `comm` of a process started from this test binary: the file name, cut at 15 bytes.
pub fn exe_comm() -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let name = exe.file_name().expect("file name").as_bytes();
    String::from_utf8_lossy(&name[..name.len().min(15)]).into_owned()
}

pub fn read_proc(pid: u32, file: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{file}"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/{file}: {e}"))
}

/// A program on PATH, if installed.
pub fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `CI=true` (as `.ci/run` sets): a check that cannot run there is a
/// failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Says that `test` skipped `what` because `why`, where `cargo test` shows
/// it: straight to the terminal's stderr, past the test harness's capture
/// (which hides a passing test's `eprintln!`). Under `CI=true` it fails the
/// test instead, with `fix` (what CI lacks).
pub fn skipped(test: &str, what: &str, why: &str, fix: &str) {
    assert!(
        !under_ci(),
        "{test}: cannot check {what}: {why}, and CI=true: {fix}"
    );
    let line = format!("\nSKIPPED {test}: {what} not checked: {why} ({fix})\n");
    // Not eprintln!: the harness captures that for tests that pass.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// True when running as root; otherwise reports the test as skipped (see
/// [`skipped`]), which fails it under `CI=true`.
pub fn root_or_skip(test: &str, what: &str) -> bool {
    if is_root() {
        return true;
    }
    skipped(test, what, "not root", "run it as root, as .ci/run does");
    false
}

/// Whether this machine has IPv6 on loopback (some containers do not).
pub fn ipv6_loopback() -> bool {
    match TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            // Not a CI failure: some CI containers have no IPv6 at all.
            let line = format!("\nSKIPPED: IPv6 checks: no IPv6 on loopback here ({e})\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            false
        }
    }
}

/// A child process: its stdin and stdout are pipes to the test. On drop its
/// stdin is closed (it exits by itself), then it is killed if it has not, and
/// reaped.
pub struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Lines of the child's stdout, read by a thread so that a child that
    /// never answers fails the test instead of hanging it.
    lines: mpsc::Receiver<String>,
    pub pid: u32,
}

/// How long a child may take to answer one command.
pub const REPLY_LIMIT: Duration = Duration::from_secs(30);

impl Helper {
    /// This test binary in `role`, with extra environment.
    pub fn role(role: &str, env: &[(&str, &OsStr)]) -> Helper {
        let exe = std::env::current_exe().expect("current_exe");
        Helper::role_via(&exe, role, env, &[])
    }

    /// Like [`Helper::role`], for a copy `exe` of this test binary, started
    /// through a `wrapper` command such as `setpriv ...` that execs it in
    /// place (so the pid stays the same).
    pub fn role_via(
        exe: &std::path::Path,
        role: &str,
        env: &[(&str, &OsStr)],
        wrapper: &[&str],
    ) -> Helper {
        let mut cmd = match wrapper {
            [program, args @ ..] => {
                let mut c = Command::new(program);
                c.args(args).arg(exe);
                c
            }
            [] => Command::new(exe),
        };
        cmd.args(["--exact", ENTRY_POINT, "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, role);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Helper::start(&mut cmd)
    }

    /// Any command; stdin and stdout become pipes, stderr is inherited.
    pub fn start(cmd: &mut Command) -> Helper {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = spawn_locked(cmd);
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = child.id();
        Helper {
            child,
            stdin,
            lines,
            pid,
        }
    }

    /// Reads lines until one holding `@@ `, and returns its words after
    /// `@@ ok`. Other output (the test harness's own, which may start the
    /// same line) is skipped.
    pub fn reply(&mut self) -> Vec<String> {
        loop {
            let line = match self.lines.recv_timeout(REPLY_LIMIT) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("child {} did not answer in {REPLY_LIMIT:?}", self.pid)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("child {} exited before answering", self.pid)
                }
            };
            if let Some(at) = line.find("@@ ") {
                let rest = &line[at + 3..];
                let words: Vec<String> = rest.split(' ').map(String::from).collect();
                assert_eq!(words[0], "ok", "child {} failed: {rest}", self.pid);
                return words[1..].to_vec();
            }
        }
    }

    /// Sends one command and returns the reply's words.
    pub fn send(&mut self, command: &str) -> Vec<String> {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write to child");
        stdin.flush().expect("flush to child");
        self.reply()
    }

    /// Sends a command whose reply is numbers.
    pub fn send_nums<T: std::str::FromStr>(&mut self, command: &str) -> Vec<T>
    where
        T::Err: std::fmt::Debug,
    {
        self.send(command)
            .iter()
            .map(|w| w.parse().expect("number in reply"))
            .collect()
    }

    /// Kills at once (SIGKILL) and reaps.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A holder child with its sockets: convenience wrappers over [`Helper::send`].
pub struct Holder {
    pub h: Helper,
}

impl Holder {
    pub fn new() -> Holder {
        Holder {
            h: Helper::role("holder", &[]),
        }
    }

    pub fn pid(&self) -> u32 {
        self.h.pid
    }

    /// TCP listener on `addr` (`127.0.0.1:0`, `[::1]:0`): (id, port).
    pub fn listen(&mut self, addr: &str) -> (u32, u16) {
        let r = self.h.send(&format!("listen {addr}"));
        (r[0].parse().unwrap(), r[1].parse().unwrap())
    }

    /// TCP connection to `addr`: (id, local port).
    pub fn connect(&mut self, addr: &str) -> (u32, u16) {
        let r = self.h.send(&format!("connect {addr}"));
        (r[0].parse().unwrap(), r[1].parse().unwrap())
    }

    /// Accepts on listener `id`: (id, peer port).
    pub fn accept(&mut self, id: u32) -> (u32, u16) {
        let r = self.h.send(&format!("accept {id}"));
        (r[0].parse().unwrap(), r[1].parse().unwrap())
    }

    /// UDP socket bound to `addr`: (id, port).
    pub fn udp(&mut self, addr: &str) -> (u32, u16) {
        let r = self.h.send(&format!("udp {addr}"));
        (r[0].parse().unwrap(), r[1].parse().unwrap())
    }

    pub fn udp_connect(&mut self, id: u32, addr: &str) {
        self.h.send(&format!("udp-connect {id} {addr}"));
    }

    /// Sets listener `id`'s backlog.
    pub fn backlog(&mut self, id: u32, n: u32) {
        self.h.send(&format!("backlog {id} {n}"));
    }

    /// Echoes on every connection to listener `id`, from threads in the child.
    pub fn echo(&mut self, id: u32) {
        self.h.send(&format!("echo {id}"));
    }

    /// `n` connections to `addr` accepted on `listener`, each closed by the
    /// client first: `n` client ends in TIME_WAIT.
    pub fn churn(&mut self, addr: &str, n: u32, listener: u32) {
        self.h.send(&format!("churn {addr} {n} {listener}"));
    }

    /// For a holder started in a new network namespace: loopback up,
    /// ephemeral ports `lo..=hi`, `tcp_tw_reuse` off.
    /// `n` connections to `addr` accepted by `listener`, each living `ms`.
    pub fn brief(&mut self, addr: &str, n: u32, ms: u64, listener: u32) {
        self.h.send(&format!("brief {addr} {n} {ms} {listener}"));
    }

    pub fn netns(&mut self, lo: u16, hi: u16) {
        self.h.send(&format!("netns {lo} {hi}"));
    }

    pub fn shutdown_write(&mut self, id: u32) {
        self.h.send(&format!("shutdown-write {id}"));
    }

    pub fn close(&mut self, id: u32) {
        self.h.send(&format!("close {id}"));
    }

    /// The descriptor number of socket `id` in the child.
    pub fn fd(&mut self, id: u32) -> u32 {
        self.h.send(&format!("fd {id}"))[0].parse().unwrap()
    }

    /// Starts `sh` as a child of the holder with socket `id` as its fd 2;
    /// returns the pid of that `sh`.
    pub fn share(&mut self, id: u32) -> u32 {
        self.h.send(&format!("share {id}"))[0].parse().unwrap()
    }

    /// A loopback listener, a client connected to it and the accepted end:
    /// (listener port, client id, client port, server id).
    pub fn connected_pair(&mut self, addr: &str) -> Pair {
        let (listener, port) = self.listen(addr);
        let target = match addr.rsplit_once(':') {
            Some((host, _)) => format!("{host}:{port}"),
            None => panic!("address without port: {addr}"),
        };
        let (client, client_port) = self.connect(&target);
        let (server, peer_port) = self.accept(listener);
        assert_eq!(peer_port, client_port);
        Pair {
            listener,
            port,
            client,
            client_port,
            server,
        }
    }
}

/// See [`Holder::connected_pair`].
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    pub listener: u32,
    pub port: u16,
    pub client: u32,
    pub client_port: u16,
    pub server: u32,
}

/// Entry point for child roles; returns at once in a normal test run.
pub fn child_main() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    match role.as_str() {
        "holder" => holder(),
        "hostile" => hostile(),
        "churn" => churn(),
        other => panic!("unknown child role {other}"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ {line}").expect("write to parent");
    out.flush().expect("flush to parent");
}

/// Blocks until the parent closes our stdin.
fn wait_for_eof() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
}

enum Sock {
    Listener(TcpListener),
    Stream(TcpStream),
    Udp(UdpSocket),
}

impl Sock {
    fn fd(&self) -> i32 {
        match self {
            Sock::Listener(s) => s.as_raw_fd(),
            Sock::Stream(s) => s.as_raw_fd(),
            Sock::Udp(s) => s.as_raw_fd(),
        }
    }

    fn try_clone_fd(&self) -> std::io::Result<OwnedFd> {
        Ok(match self {
            Sock::Listener(s) => s.try_clone()?.into(),
            Sock::Stream(s) => s.try_clone()?.into(),
            Sock::Udp(s) => s.try_clone()?.into(),
        })
    }
}

/// Role `holder`: creates, connects and closes sockets on command.
fn holder() {
    raise_fd_limit();
    let mut socks: HashMap<u32, Sock> = HashMap::new();
    let mut next_id = 0u32;
    let mut heirs: Vec<Child> = Vec::new();
    let mut kept: Vec<Sock> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let result = holder_command(&words, &mut socks, &mut next_id, &mut heirs, &mut kept);
        match result {
            Ok(reply) => say(format!("ok {reply}").trim_end()),
            Err(e) => say(&format!("err {line}: {e}")),
        }
    }
    for mut heir in heirs {
        drop(heir.stdin.take());
        let _ = heir.wait();
    }
}

fn holder_command(
    words: &[&str],
    socks: &mut HashMap<u32, Sock>,
    next_id: &mut u32,
    heirs: &mut Vec<Child>,
    kept: &mut Vec<Sock>,
) -> Result<String, Box<dyn std::error::Error>> {
    let addr = |i: usize| -> Result<SocketAddr, Box<dyn std::error::Error>> {
        Ok(words.get(i).ok_or("missing address")?.parse()?)
    };
    let id = |i: usize| -> Result<u32, Box<dyn std::error::Error>> {
        Ok(words.get(i).ok_or("missing id")?.parse()?)
    };
    let add = |socks: &mut HashMap<u32, Sock>, next_id: &mut u32, s: Sock| {
        *next_id += 1;
        socks.insert(*next_id, s);
        *next_id
    };
    Ok(match words.first().copied().unwrap_or("") {
        "listen" => {
            let l = TcpListener::bind(addr(1)?)?;
            let port = l.local_addr()?.port();
            format!("{} {port}", add(socks, next_id, Sock::Listener(l)))
        }
        "connect" => {
            let s = TcpStream::connect(addr(1)?)?;
            let port = s.local_addr()?.port();
            format!("{} {port}", add(socks, next_id, Sock::Stream(s)))
        }
        "accept" => {
            let Some(Sock::Listener(l)) = socks.get(&id(1)?) else {
                return Err("not a listener".into());
            };
            let (s, peer) = l.accept()?;
            format!("{} {}", add(socks, next_id, Sock::Stream(s)), peer.port())
        }
        "udp" => {
            let u = UdpSocket::bind(addr(1)?)?;
            let port = u.local_addr()?.port();
            format!("{} {port}", add(socks, next_id, Sock::Udp(u)))
        }
        "udp-connect" => {
            let Some(Sock::Udp(u)) = socks.get(&id(1)?) else {
                return Err("not a UDP socket".into());
            };
            u.connect(addr(2)?)?;
            String::new()
        }
        "shutdown-write" => {
            let Some(Sock::Stream(s)) = socks.get(&id(1)?) else {
                return Err("not a stream".into());
            };
            s.shutdown(Shutdown::Write)?;
            String::new()
        }
        "backlog" => {
            // listen() again on a listening socket only changes its backlog.
            let Some(Sock::Listener(l)) = socks.get(&id(1)?) else {
                return Err("not a listener".into());
            };
            let n: i32 = words.get(2).ok_or("missing backlog")?.parse()?;
            nix::sys::socket::listen(l, nix::sys::socket::Backlog::new(n)?)?;
            String::new()
        }
        "echo" => {
            // Serves every connection to listener `id` on its own thread,
            // echoing what it reads, until the peer closes.
            let Some(Sock::Listener(l)) = socks.get(&id(1)?) else {
                return Err("not a listener".into());
            };
            let l = l.try_clone()?;
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    let Ok(mut conn) = conn else { break };
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            String::new()
        }
        "churn" => {
            // N short connections to ADDR, each closed by the client first:
            // the client ends stay in TIME_WAIT.
            let target = addr(1)?;
            let n: u32 = words.get(2).ok_or("missing count")?.parse()?;
            let Some(Sock::Listener(l)) = socks.get(&id(3)?) else {
                return Err("not a listener".into());
            };
            for _ in 0..n {
                let client = TcpStream::connect(target)?;
                let (mut server, _) = l.accept()?;
                drop(client);
                // Read the client's FIN, then close: the server end goes
                // through LAST_ACK and is gone; the client keeps TIME_WAIT.
                let mut buf = [0u8; 1];
                let _ = server.read(&mut buf)?;
            }
            String::new()
        }
        "brief" => {
            // N connections to ADDR that each live MS milliseconds, accepted
            // by listener ID, in batches of 100 at a time: the client closes
            // first, the server reads the FIN and closes.
            let target = addr(1)?;
            let n: u32 = words.get(2).ok_or("missing count")?.parse()?;
            let ms: u64 = words.get(3).ok_or("missing ms")?.parse()?;
            let Some(Sock::Listener(l)) = socks.get(&id(4)?) else {
                return Err("not a listener".into());
            };
            let mut left = n;
            while left > 0 {
                let batch = left.min(100);
                let mut pairs = Vec::new();
                for _ in 0..batch {
                    let client = TcpStream::connect(target)?;
                    let (server, _) = l.accept()?;
                    pairs.push((client, server));
                }
                std::thread::sleep(std::time::Duration::from_millis(ms));
                for (client, mut server) in pairs {
                    drop(client);
                    let mut buf = [0u8; 1];
                    let _ = server.read(&mut buf)?;
                }
                left -= batch;
            }
            String::new()
        }
        "netns" => {
            // In a fresh network namespace: loopback up, and a small
            // ephemeral port range without TIME_WAIT reuse.
            let up = Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()?;
            if !up.success() {
                return Err("ip link set lo up failed".into());
            }
            std::fs::write(
                "/proc/sys/net/ipv4/ip_local_port_range",
                format!(
                    "{} {}",
                    words.get(1).ok_or("lo")?,
                    words.get(2).ok_or("hi")?
                ),
            )?;
            std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "0")?;
            String::new()
        }
        "close" => {
            socks.remove(&id(1)?).ok_or("no such socket")?;
            String::new()
        }
        "fd" => socks.get(&id(1)?).ok_or("no such socket")?.fd().to_string(),
        "share" => {
            let fd = socks.get(&id(1)?).ok_or("no such socket")?.try_clone_fd()?;
            // The socket becomes fd 2 of `sh`, which waits for its stdin (a pipe
            // from us) to close.
            let child = Command::new("sh")
                .args(["-c", "read x"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::from(fd))
                .spawn()?;
            let pid = child.id();
            heirs.push(child);
            pid.to_string()
        }
        "listen-many" => {
            // N listeners on 127.0.0.1: "port:fd" for each.
            let n: usize = words.get(1).ok_or("missing count")?.parse()?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let l = TcpListener::bind("127.0.0.1:0")?;
                out.push(format!("{}:{}", l.local_addr()?.port(), l.as_raw_fd()));
                kept.push(Sock::Listener(l));
            }
            out.join(" ")
        }
        "udp-many" => {
            let n: usize = words.get(1).ok_or("missing count")?.parse()?;
            for _ in 0..n {
                kept.push(Sock::Udp(UdpSocket::bind("127.0.0.1:0")?));
            }
            n.to_string()
        }
        other => return Err(format!("unknown command {other:?}").into()),
    })
}

/// Lets a holder keep a few thousand sockets even where the soft limit is 1024.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = 8192.max(soft);
        if setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)).is_err() {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Environment of the `hostile` role: hex of the bytes to write to comm, and
/// hex of each argument (`,`-separated; the first is argv[0]).
pub const HOSTILE_COMM_ENV: &str = "SOCKSCOPE_TEST_HOSTILE_COMM";
pub const HOSTILE_ARGV_ENV: &str = "SOCKSCOPE_TEST_HOSTILE_ARGV";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The `sh -c` script a hostile child runs: writes its comm with printf
/// (octal escapes for every byte, so any byte survives), says it is ready
/// and waits for stdin to close.
pub fn hostile_script(comm: &[u8]) -> String {
    let escaped: String = comm.iter().map(|b| format!("\\{b:03o}")).collect();
    format!("printf '{escaped}' > /proc/self/comm || exit 1; echo '@@ ok ready'; read x")
}

/// Role `hostile`: opens a listener, says its port, then replaces itself
/// with `sh` whose argv are raw bytes (possibly not UTF-8, which the test
/// harness itself could not be given) and which holds the listener as fd 2
/// and renames itself.
fn hostile() {
    let comm = unhex(&std::env::var(HOSTILE_COMM_ENV).expect("comm"));
    let argv: Vec<Vec<u8>> = std::env::var(HOSTILE_ARGV_ENV)
        .expect("argv")
        .split(',')
        .map(unhex)
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    say(&format!("ok {}", listener.local_addr().unwrap().port()));
    let err = Command::new("/bin/sh")
        .arg0(OsStr::from_bytes(&argv[0]))
        .arg("-c")
        .arg(hostile_script(&comm))
        .args(argv[1..].iter().map(|a| OsStr::from_bytes(a)))
        .env_remove(ROLE_ENV)
        .stderr(Stdio::from(OwnedFd::from(listener)))
        .exec();
    say(&format!("err exec sh: {err}"));
}

/// Role `churn`: names itself `c<pid>`, then holds one listener and says its port.
fn churn() {
    let pid = std::process::id();
    std::fs::write("/proc/self/comm", format!("c{pid}")).expect("write comm");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    say(&format!("ok {}", listener.local_addr().unwrap().port()));
    wait_for_eof();
}

/// The attribution note → (sockets with no known owner, processes whose fd
/// table could not be read): `sockscope: 3 sockets have no known owner: the
/// fd tables of 2 processes could not be read (they ...)`, `sockscope: the
/// fd tables of 1 process could not be read (...); every socket in view was
/// attributed`, `sockscope: 1 socket has no known owner: held by a thread
/// with its own fd table ...`.
pub fn parse_attribution_note(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("sockscope: ")?;
    let (n, rest) = match rest.split_once(" no known owner: ") {
        Some((head, rest)) => {
            let n = head
                .strip_suffix(" sockets have")
                .or_else(|| head.strip_suffix(" socket has"))?;
            (n.parse().ok()?, rest)
        }
        None => (0, rest),
    };
    let m = match rest.strip_prefix("the fd tables of ") {
        Some(rest) => {
            let (m, why) = rest
                .split_once(" processes could not be read (")
                .or_else(|| rest.split_once(" process could not be read ("))?;
            let known = [
                "a security module or another namespace's ptrace policy refuses even root)",
                "only root or their owner can read them: run as root to see their owners)",
            ];
            if !known.iter().any(|k| why.starts_with(k)) {
                return None;
            }
            m.parse().ok()?
        }
        None if rest.starts_with("it is held by a thread with its own fd table")
            || rest.starts_with("they are held by a thread with its own fd table") =>
        {
            0
        }
        None => return None,
    };
    Some((n, m))
}

/// Asserts that `stderr` holds nothing but (at most one) attribution note.
pub fn assert_stderr_is_at_most_the_note(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 1, "more than one line on stderr: {text:?}");
    for line in lines {
        assert!(
            parse_attribution_note(line).is_some(),
            "unexpected stderr: {line:?}"
        );
    }
}

/// The socket table without the fields that change from one look to the
/// next, for comparing two listings.
pub fn identity(
    r: &Row,
) -> (
    String,
    u8,
    String,
    String,
    u16,
    String,
    u16,
    u64,
    Vec<OwnerRow>,
) {
    (
        r.proto.clone(),
        r.family,
        r.state.clone(),
        r.local_addr.clone(),
        r.local_port,
        r.remote_addr.clone(),
        r.remote_port,
        r.inode,
        r.owners.clone(),
    )
}

/// `setpriv` arguments that drop to `nobody`, or None when this is not
/// possible here (not root). Fails the test when root lacks setpriv.
pub fn as_nobody() -> Option<Vec<&'static str>> {
    if !is_root() {
        return None;
    }
    find_program("setpriv").expect("setpriv (util-linux) is installed");
    let group = ["nogroup", "nobody"]
        .into_iter()
        .find(|g| nix::unistd::Group::from_name(g).ok().flatten().is_some())
        .expect("a nogroup or nobody group");
    assert!(nix::unistd::User::from_name("nobody").unwrap().is_some());
    Some(vec![
        "setpriv",
        "--reuid=nobody",
        if group == "nogroup" {
            "--regid=nogroup"
        } else {
            "--regid=nobody"
        },
        "--clear-groups",
    ])
}

/// Copies of the sockscope binary (and, when asked, of this test binary)
/// that `nobody` can run (the build directory may be under a private home
/// directory).
pub struct NobodyCopy {
    _dir: tempfile::TempDir,
    pub sockscope: PathBuf,
    /// This test binary under its own file name (so the same comm), when asked.
    pub test: Option<PathBuf>,
}

pub fn sockscope_for_nobody() -> NobodyCopy {
    copies_for_nobody(false)
}

pub fn copies_for_nobody(with_test_binary: bool) -> NobodyCopy {
    use std::os::unix::fs::PermissionsExt;
    // No fork while the copies are open for writing, or running one could
    // fail with ETXTBSY.
    let _no_spawns = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::Builder::new()
        .prefix("sockscope-test-")
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temporary directory");
    let sockscope = dir.path().join("sockscope");
    std::fs::copy(bin(), &sockscope).expect("copy sockscope");
    let test = with_test_binary.then(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let test = dir.path().join(exe.file_name().expect("file name"));
        std::fs::copy(&exe, &test).expect("copy the test binary");
        test
    });
    NobodyCopy {
        _dir: dir,
        sockscope,
        test,
    }
}

/// Whether `pid` has ended: gone from /proc, or a zombie waiting for its
/// parent (a test's child is not reaped until its handle drops).
pub fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// A holder child with a loopback listener and `n` accepted connections
/// whose clients it closed: `n` sockets in CLOSE_WAIT that it never closes
/// (and `n` orphaned FIN_WAIT2 client ends). Returns it with the port.
pub fn close_wait_leaker(n: usize) -> (Holder, u16) {
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    for _ in 0..n {
        let (client, _) = h.connect(&format!("127.0.0.1:{port}"));
        h.accept(listener);
        h.close(client);
    }
    let filter = format!("lport:{port}");
    poll(&format!("{n} CLOSE_WAIT sockets on port {port}"), || {
        let rows = snapshot_json(&[&filter, "state:close-wait"]);
        (rows.len() == n && rows.iter().all(|r| r.pid == Some(h.pid()))).then_some(())
    });
    (h, port)
}

/// How many sockets are in CLOSE_WAIT on local port `port`.
pub fn close_wait_on(port: u16) -> usize {
    snapshot_json(&[&format!("lport:{port}"), "state:close-wait"]).len()
}
