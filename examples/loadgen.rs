//! Socket load for `bench/run.sh`: holds ~133k real TCP sockets on loopback.
//!
//! ```text
//! cargo run --release --example loadgen -- [--workers 8] [--established 50000]
//!     [--close-wait 10000] [--time-wait 10000] [--port P]
//! ```
//!
//! The coordinator (this process, no sockets of its own) re-executes itself
//! as worker and churner processes:
//!
//! * worker `i` listens on `127.77.0.(i+1):PORT` and connects to worker
//!   `i+1`'s listener (a ring), so each connection has its two ends in two
//!   different processes. Of its connections, `established` stay open on both
//!   ends; for `close-wait` ones the client closes at once and the accepting
//!   worker keeps its end, which sits in CLOSE_WAIT (the client's orphaned
//!   FIN_WAIT2 is dropped by the kernel after `tcp_fin_timeout`).
//! * the churner listens on `127.77.1.1..16:PORT` and keeps about
//!   `time-wait` sockets in TIME_WAIT: a burst at start, then it replaces the
//!   ones that expire (the kernel keeps TIME_WAIT for 60 s; the churner asks it,
//!   with a sock_diag lookup, when they are really gone). Its churn can be
//!   paused (SIGUSR1 to the coordinator) and resumed (SIGUSR2), so that two
//!   tools can be compared on an unchanging set of held sockets.
//!
//! Every held socket has `SO_LINGER` 0, so stopping the load resets the
//! connections instead of leaving 100k sockets in TIME_WAIT behind.
//!
//! The coordinator prints one line starting with `ready:` once the load is in
//! place, then waits. SIGTERM or SIGINT stops it and all its children; a child
//! whose coordinator is gone (even killed with SIGKILL) sees its stdin close
//! and exits too.

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};
use netlink_sys::{Socket as NlSocket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{Backlog, listen, setsockopt, sockopt};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the kernel keeps a socket in TIME_WAIT (`TCP_TIMEWAIT_LEN`).
const TIME_WAIT_LEN: Duration = Duration::from_secs(60);
/// Listeners the churner spreads its short connections over. The kernel picks
/// the ephemeral port of each connect a few ports (random, up to 16) past the
/// previous one to the same destination, and with `tcp_tw_reuse` (2, loopback
/// only, by default) it recycles a TIME_WAIT socket it lands on: a few hundred
/// connections per destination keep that from ever wrapping around.
const CHURN_LISTENERS: u8 = 16;
/// Descriptors a process needs besides its sockets (stdio, the listener, slack).
const FD_SLACK: u64 = 64;

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--worker") => worker(&args[1..]),
        Some("--churner") => churner(&args[1..]),
        _ => coordinator(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- coordinator

struct Config {
    workers: usize,
    established: usize,
    close_wait: usize,
    time_wait: usize,
    /// Listener port; by default the first from [`DEFAULT_PORT`] free on every
    /// listener address (another loadgen may be running).
    port: Option<u16>,
}

const DEFAULT_PORT: u16 = 7700;

const USAGE: &str =
    "usage: loadgen [--workers N] [--established N] [--close-wait N] [--time-wait N] [--port P]";

fn parse_config(args: &[String]) -> Result<Config> {
    let mut c = Config {
        workers: 8,
        established: 50_000,
        close_wait: 10_000,
        time_wait: 10_000,
        port: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let n: usize = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--workers" => c.workers = n,
            "--established" => c.established = n,
            "--close-wait" => c.close_wait = n,
            "--time-wait" => c.time_wait = n,
            "--port" => {
                c.port = Some(u16::try_from(n).map_err(|_| format!("bad port {n}"))?);
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if !(1..=254).contains(&c.workers) {
        return Err("--workers must be between 1 and 254".into());
    }
    if c.port == Some(0) {
        return Err("--port must not be 0".into());
    }
    Ok(c)
}

/// `total` split into `parts` shares that differ by at most one.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

fn worker_addr(i: usize, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(127, 77, 0, (i + 1) as u8), port)
}

fn churn_addr(i: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(127, 77, 1, i + 1), port)
}

/// The first port from [`DEFAULT_PORT`] on which every listener can bind.
fn free_port(workers: usize) -> Result<u16> {
    'port: for port in DEFAULT_PORT..DEFAULT_PORT + 100 {
        let addrs = (0..workers)
            .map(|i| worker_addr(i, port))
            .chain((0..CHURN_LISTENERS).map(|i| churn_addr(i, port)));
        for addr in addrs {
            if TcpListener::bind(addr).is_err() {
                continue 'port;
            }
        }
        return Ok(port);
    }
    Err(format!(
        "no free listener port in {DEFAULT_PORT}..{}: use --port",
        DEFAULT_PORT + 100
    ))
}

/// Raises the soft fd limit to the hard one and returns it.
fn raise_fd_limit() -> Result<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| format!("setrlimit: {e}"))?;
    Ok(hard)
}

/// A child process and the pipe ends the coordinator talks to it through.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(name: String, args: &[String]) -> Result<Proc> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Proc {
            name,
            child,
            stdin,
            stdout,
        })
    }

    /// The next line the child prints, which must start with `want`.
    fn expect(&mut self, want: &str) -> Result<String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(format!("{} exited before saying {want:?}", self.name)),
            Ok(_) if line.starts_with(want) => Ok(line.trim_end().to_string()),
            Ok(_) => Err(format!("{} said {:?}, expected {want:?}", self.name, line)),
            Err(e) => Err(format!("reading from {}: {e}", self.name)),
        }
    }

    fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to {}: {e}", self.name))
    }
}

/// Every child; dropping it stops them all, whichever way the coordinator ends.
#[derive(Default)]
struct Children(Vec<Proc>);

impl Drop for Children {
    fn drop(&mut self) {
        for p in &mut self.0 {
            p.stdin = None; // EOF: the child exits by itself even if kill fails
            let _ = p.child.kill();
        }
        for p in &mut self.0 {
            let _ = p.child.wait();
        }
    }
}

/// Reads `key=N` from a child's status line.
fn field(line: &str, key: &str) -> usize {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn coordinator(args: &[String]) -> Result<()> {
    let c = parse_config(args)?;
    let started = Instant::now();
    let port = match c.port {
        Some(p) => p,
        None => free_port(c.workers)?,
    };

    // Preflight: every worker must fit its sockets under the fd limit.
    let limit = raise_fd_limit()?;
    for i in 0..c.workers {
        let prev = (i + c.workers - 1) % c.workers;
        let fds = share(c.established, c.workers, i)
            + share(c.established, c.workers, prev)
            + share(c.close_wait, c.workers, prev)
            + FD_SLACK as usize;
        if fds as u64 > limit {
            return Err(format!(
                "worker {i} would hold {fds} fds, over the limit of {limit}: use more --workers"
            ));
        }
    }

    // Signals are taken with sigwait, never by handlers. Children start with
    // an empty mask (std resets it before exec).
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
    ] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("sigprocmask: {e}"))?;

    let mut children = Children::default();
    for i in 0..c.workers {
        let next = (i + 1) % c.workers;
        let prev = (i + c.workers - 1) % c.workers;
        let accept = share(c.established, c.workers, prev) + share(c.close_wait, c.workers, prev);
        let args = [
            "--worker".to_string(),
            worker_addr(i, port).to_string(),
            worker_addr(next, port).to_string(),
            share(c.established, c.workers, i).to_string(),
            share(c.close_wait, c.workers, i).to_string(),
            accept.to_string(),
        ];
        children.0.push(Proc::spawn(format!("worker {i}"), &args)?);
    }
    if c.time_wait > 0 {
        let args = [
            "--churner".to_string(),
            c.time_wait.to_string(),
            port.to_string(),
        ];
        children.0.push(Proc::spawn("churner".to_string(), &args)?);
    }
    let has_churner = c.time_wait > 0;
    let workers = c.workers;

    // Every listener is up before anyone connects.
    for p in &mut children.0[..workers] {
        p.expect("listening")?;
    }
    for p in &mut children.0[..workers] {
        p.send("go")?;
    }
    let (mut est, mut cw, mut accepted, mut tw) = (0, 0, 0, 0);
    for p in &mut children.0 {
        let line = p.expect("ready")?;
        est += field(&line, "established");
        cw += field(&line, "close_wait");
        accepted += field(&line, "accepted");
        tw += field(&line, "time_wait");
    }
    let pids: Vec<String> = children
        .0
        .iter()
        .map(|p| p.child.id().to_string())
        .collect();
    println!(
        "ready: established={est} close_wait={cw} time_wait={tw} held_sockets={held} \
         listeners={listeners} port={port} workers={workers} setup={secs:.1}s pid={me} children={pids}",
        held = est + accepted,
        listeners = workers
            + if has_churner {
                CHURN_LISTENERS as usize
            } else {
                0
            },
        secs = started.elapsed().as_secs_f64(),
        me = std::process::id(),
        pids = pids.join(","),
    );
    let _ = std::io::stdout().flush();

    loop {
        match signals.wait().map_err(|e| format!("sigwait: {e}"))? {
            Signal::SIGINT | Signal::SIGTERM => return Ok(()),
            sig @ (Signal::SIGUSR1 | Signal::SIGUSR2) if has_churner => {
                let churner = children.0.last_mut().expect("churner is last");
                churner.send(if sig == Signal::SIGUSR1 {
                    "pause"
                } else {
                    "resume"
                })?;
            }
            Signal::SIGCHLD => {
                for p in &mut children.0 {
                    if let Ok(Some(status)) = p.child.try_wait() {
                        return Err(format!("{} exited unexpectedly ({status})", p.name));
                    }
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- worker

/// Exits the process when the coordinator closes our stdin (it stopped or died).
fn exit_on_stdin_eof(on_line: impl Fn(&str) + Send + 'static) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => on_line(line.trim()),
            }
        }
    });
}

/// A listener with the largest backlog the kernel allows (`net.core.somaxconn`).
fn listener(addr: SocketAddrV4) -> Result<TcpListener> {
    // std sets SO_REUSEADDR and listens with a small backlog; listening again
    // on a listening socket only changes the backlog.
    let l = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listen(&l, Backlog::MAXALLOWABLE).map_err(|e| format!("listen {addr}: {e}"))?;
    Ok(l)
}

/// Close with a reset rather than a FIN: no TIME_WAIT left behind when we stop.
fn reset_on_close(s: &TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = setsockopt(s, sockopt::Linger, &linger);
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// `--worker LISTEN CONNECT ESTABLISHED CLOSE_WAIT ACCEPT`
fn worker(args: &[String]) -> Result<()> {
    let [listen_addr, connect_addr, est, cw, accept] = args else {
        return Err("worker: bad arguments".into());
    };
    let listen_addr: SocketAddrV4 = listen_addr.parse().map_err(|_| "bad address")?;
    let connect_addr: SocketAddrV4 = connect_addr.parse().map_err(|_| "bad address")?;
    let num = |s: &String| s.parse::<usize>().map_err(|_| format!("bad number {s}"));
    let (est, cw, accept) = (num(est)?, num(cw)?, num(accept)?);
    raise_fd_limit()?;

    let listener = listener(listen_addr)?;
    println!("listening");
    let mut go = String::new();
    std::io::stdin()
        .read_line(&mut go)
        .map_err(|e| format!("stdin: {e}"))?;
    if go.trim() != "go" {
        return Ok(()); // the coordinator gave up
    }
    exit_on_stdin_eof(|_| {});

    // The listener stays open (in the acceptor's result) once all are in.
    let acceptor = std::thread::spawn(move || -> Result<(TcpListener, Vec<TcpStream>)> {
        let mut held = Vec::with_capacity(accept);
        while held.len() < accept {
            let (s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
            reset_on_close(&s);
            held.push(s);
        }
        Ok((listener, held))
    });

    let mut clients = Vec::with_capacity(est);
    for n in 0..est + cw {
        let s = TcpStream::connect(connect_addr).map_err(|e| {
            format!("connect {connect_addr} (connection {n}): {e} (ephemeral ports exhausted? see net.ipv4.ip_local_port_range)")
        })?;
        if n < est {
            reset_on_close(&s);
            clients.push(s);
        }
        // else: closed here with a FIN; the peer's end stays in CLOSE_WAIT.
    }
    let (_listener, accepted) = acceptor.join().map_err(|_| "acceptor panicked")??;
    println!(
        "ready established={} close_wait={cw} accepted={}",
        clients.len(),
        accepted.len()
    );
    park_forever()
}

// ---------------------------------------------------------------- churner

/// Asks the kernel whether one TCP socket is still in TIME_WAIT: a sock_diag
/// lookup of its exact 4-tuple, the way `ss` queries one socket.
///
/// The churner needs this because the kernel's TIME_WAIT timer is coarse: a
/// socket lasts 60 s plus up to one timer-wheel step (2 s at HZ=250), and a
/// burst of them made together goes together. Refilling on our own clock would
/// either double the count for a moment or leave a hole.
struct Probe {
    socket: NlSocket,
    buf: Vec<u8>,
    seq: u32,
}

impl Probe {
    fn open() -> std::io::Result<Probe> {
        let mut socket = NlSocket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&NlAddr::new(0, 0))?;
        Ok(Probe {
            socket,
            buf: vec![0; 8192],
            seq: 0,
        })
    }

    fn in_time_wait(&mut self, local: SocketAddrV4, remote: SocketAddrV4) -> std::io::Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family: AF_INET,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: SocketId {
                    source_port: local.port(),
                    destination_port: remote.port(),
                    source_address: IpAddr::V4(*local.ip()),
                    destination_address: IpAddr::V4(*remote.ip()),
                    interface_id: 0,
                    cookie: [0xff; 8], // INET_DIAG_NOCOOKIE: match on the 4-tuple only
                },
            })
            .into(),
        );
        packet.finalize();
        let mut request = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut request);
        self.socket.send(&request, 0)?;
        let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
        let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[..n])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(match msg.payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                r.header.state == TCP_TIME_WAIT && r.header.socket_id.source_port == local.port()
            }
            NetlinkPayload::Error(e) => match e.code {
                Some(c) if -c.get() == nix::libc::ENOENT => false,
                _ => return Err(std::io::Error::other(format!("sock_diag: {e:?}"))),
            },
            _ => false,
        })
    }
}

/// `TCP_TIME_WAIT` in the kernel's numbering.
const TCP_TIME_WAIT: u8 = 6;
/// Without a working probe, when a TIME_WAIT socket is surely gone: 60 s plus
/// one timer-wheel step at HZ=100 (the coarsest).
const TIME_WAIT_MAX: Duration = Duration::from_secs(66);

/// One short connection whose client end ends in TIME_WAIT; returns that end's address.
fn time_wait_once(listener: &TcpListener, addr: SocketAddrV4) -> Result<SocketAddrV4> {
    let client = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let local = match client.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => a,
        other => return Err(format!("unexpected local address {other:?}")),
    };
    let (mut server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    drop(client); // the client closes first: it is the end that waits
    let mut byte = [0u8; 1];
    let _ = server.read(&mut byte); // the FIN has arrived (EOF)
    drop(server); // LAST_ACK, then gone; the client moves to TIME_WAIT
    Ok(local)
}

/// The churner's state: its listeners and the TIME_WAIT sockets it made.
struct Churn {
    target: usize,
    listeners: Vec<(TcpListener, SocketAddrV4)>,
    next: usize,
    probe: Option<Probe>,
    /// Oldest first: when each was made, and its 4-tuple.
    made: VecDeque<(Instant, SocketAddrV4, SocketAddrV4)>,
}

impl Churn {
    /// Forgets the sockets the kernel has dropped, then makes new ones up to the target.
    fn top_up(&mut self, paused: &AtomicBool) -> Result<()> {
        while let Some(&(t, local, remote)) = self.made.front() {
            let age = t.elapsed();
            if age < TIME_WAIT_LEN {
                break;
            }
            let gone = match self.probe.as_mut() {
                _ if age >= TIME_WAIT_MAX => true,
                None => false,
                Some(p) => match p.in_time_wait(local, remote) {
                    Ok(alive) => !alive,
                    Err(e) => {
                        eprintln!(
                            "loadgen: churner: sock_diag lookup failed ({e}); using the clock"
                        );
                        self.probe = None;
                        false
                    }
                },
            };
            if !gone {
                break;
            }
            self.made.pop_front();
        }
        while self.made.len() < self.target && !paused.load(Ordering::Relaxed) {
            let (l, addr) = &self.listeners[self.next % self.listeners.len()];
            self.next = self.next.wrapping_add(1);
            let local = time_wait_once(l, *addr)?;
            self.made.push_back((Instant::now(), local, *addr));
        }
        Ok(())
    }
}

/// `--churner TARGET PORT`
fn churner(args: &[String]) -> Result<()> {
    let [target, port] = args else {
        return Err("churner: bad arguments".into());
    };
    let target: usize = target.parse().map_err(|_| "bad target")?;
    let port: u16 = port.parse().map_err(|_| "bad port")?;
    let mut listeners = Vec::new();
    for i in 0..CHURN_LISTENERS {
        let addr = churn_addr(i, port);
        listeners.push((listener(addr)?, addr));
    }
    let paused = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&paused);
    exit_on_stdin_eof(move |line| match line {
        "pause" => flag.store(true, Ordering::SeqCst),
        "resume" => flag.store(false, Ordering::SeqCst),
        _ => {}
    });
    let probe = Probe::open()
        .inspect_err(|e| {
            eprintln!(
                "loadgen: churner: no sock_diag ({e}); assuming TIME_WAIT lasts {TIME_WAIT_MAX:?}"
            )
        })
        .ok();
    let mut churn = Churn {
        target,
        listeners,
        next: 0,
        probe,
        made: VecDeque::with_capacity(target),
    };
    churn.top_up(&paused)?;
    println!("ready time_wait={}", churn.made.len());
    loop {
        std::thread::sleep(Duration::from_millis(50));
        churn.top_up(&paused)?;
    }
}
