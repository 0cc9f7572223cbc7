//! `sockscope serve` against a hostile local client: a pipeliner that never
//! reads, an idle flood under systemd's 1024-descriptor limit, a request
//! line without an end, HTTP/2.0 request lines, and too few descriptors;
//! throughout, a normal scraper is answered within a second, serve's
//! resident memory stays bounded and SIGTERM ends it within a second.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The deadline for a normal scrape while the attack goes on.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(1);

struct Serve {
    child: Child,
    port: u16,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Serve {
    /// `sockscope serve` on a free loopback port, under `prlimit --nofile=N`
    /// when given.
    fn start(nofile: Option<u32>) -> Serve {
        Serve::start_holding(nofile, 0, "3600")
    }

    /// As [`Serve::start`], with `held` descriptors already open (inherited
    /// from a shell), so that the limit is reached before serve's own cap.
    fn start_holding(nofile: Option<u32>, held: u32, interval: &str) -> Serve {
        let mut cmd = match nofile {
            Some(n) if held > 0 => {
                common::find_program("prlimit").expect("prlimit (util-linux) is installed");
                let mut c = Command::new("bash");
                c.arg("-c")
                    .arg(format!(
                        "for i in $(seq 10 {}); do eval \"exec $i</dev/null\"; done; exec prlimit --nofile={n} -- \"$0\" \"$@\"",
                        9 + held
                    ))
                    .arg(common::bin());
                c
            }
            Some(n) => {
                common::find_program("prlimit").expect("prlimit (util-linux) is installed");
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}")).arg("--").arg(common::bin());
                c
            }
            None => Command::new(common::bin()),
        };
        // A long interval: after the first scrape, answers come from the
        // cache, so the deadline measures the server under attack, not how
        // fast a debug build collects on a busy machine.
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--interval", interval])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = common::spawn_locked(&mut cmd);
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().expect("a first line").unwrap();
        let port = first
            .strip_prefix("sockscope: serving http://127.0.0.1:")
            .and_then(|r| r.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("{first}"))
            .parse()
            .unwrap();
        // The first scrape collects (a full owner scan): not timed.
        let mut warm = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        warm.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        warm.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut first = Vec::new();
        warm.read_to_end(&mut first).expect("the first scrape");
        assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
        // Keep reading stderr so that serve never blocks on it.
        let (tx, stderr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Serve {
            child,
            port,
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in kB.
    fn rss_kb(&self) -> u64 {
        let status = String::from_utf8(common::read_proc(self.pid(), "status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// One normal scrape; returns how long it took. Fails the test when it
    /// is not a whole 200 answer within [`SCRAPE_DEADLINE`].
    fn scrape(&self) -> Duration {
        let start = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(SCRAPE_DEADLINE)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut body = Vec::new();
        s.read_to_end(&mut body)
            .unwrap_or_else(|e| panic!("the scrape was not answered: {e}"));
        let took = start.elapsed();
        assert!(
            body.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{:?}",
            &body[..body.len().min(80)]
        );
        assert!(
            String::from_utf8_lossy(&body).contains("sockscope_collections_total"),
            "a whole exposition"
        );
        assert!(took < SCRAPE_DEADLINE, "a scrape took {took:?}");
        took
    }

    /// SIGTERM, and the time until it exited.
    fn terminate(mut self) -> (Option<i32>, Duration) {
        let start = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        (status.code(), start.elapsed())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Scrapes `n` times, a little apart; returns the slowest.
fn scrapes(serve: &Serve, n: usize) -> Duration {
    (0..n)
        .map(|_| {
            let took = serve.scrape();
            std::thread::sleep(Duration::from_millis(50));
            took
        })
        .max()
        .unwrap()
}

/// Lets this test process open many connections.
fn raise_own_nofile() {
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

#[test]
fn a_pipeliner_that_never_reads_blocks_no_one_and_sigterm_still_ends_serve() {
    let serve = Serve::start(None);
    serve.scrape();
    let base = serve.rss_kb();
    // 100 requests on one connection, none of the answers read; a small
    // receive buffer so the answers back up at once.
    let mut hog = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    nix::sys::socket::setsockopt(&hog, nix::sys::socket::sockopt::RcvBuf, &4096).unwrap();
    let one = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    hog.write_all(&one.repeat(100)).unwrap();
    // Others that read slowly: a byte a while.
    let mut slow: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
            s.write_all(one).unwrap();
            s
        })
        .collect();
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        for s in &mut slow {
            let _ = s.read(&mut [0u8; 1]);
        }
        worst = worst.max(serve.scrape());
    }
    let rss = serve.rss_kb();
    eprintln!("pipeliner + 10 slow readers: slowest scrape {worst:?}, RSS {base} kB -> {rss} kB");
    assert!(rss < base + 100_000, "RSS grew from {base} kB to {rss} kB");
    let (code, took) = serve.terminate();
    eprintln!("SIGTERM with the pipeliner connected: exit {code:?} after {took:?}");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
    drop(hog);
}

#[test]
fn an_idle_flood_under_a_1024_descriptor_limit_locks_no_scraper_out() {
    raise_own_nofile();
    let serve = Serve::start(Some(1024));
    serve.scrape();
    let base = serve.rss_kb();
    // Far more connections than serve has descriptors: idle ones, and ones
    // that send a byte of a request now and then.
    let mut idle = Vec::new();
    let mut worst = Duration::ZERO;
    for round in 0..6 {
        for _ in 0..500 {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", serve.port)) {
                idle.push(s);
            }
        }
        for s in idle.iter_mut().step_by(7) {
            let _ = s.write_all(b"G");
        }
        worst = worst.max(scrapes(&serve, 3));
        eprintln!("round {round}: {} connections opened", idle.len());
    }
    assert!(idle.len() >= 2000, "{}", idle.len());
    let rss = serve.rss_kb();
    eprintln!(
        "{} idle connections: slowest scrape {worst:?}, RSS {base} kB -> {rss} kB",
        idle.len()
    );
    assert!(rss < base + 100_000, "RSS grew from {base} kB to {rss} kB");
    let (code, took) = serve.terminate();
    assert_eq!(code, Some(0), "serve survived the flood");
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
}

#[test]
fn running_out_of_descriptors_is_survived_and_serve_keeps_accepting() {
    raise_own_nofile();
    // 100 descriptors, 75 of them taken before serve starts: its cap on
    // connections (half the limit, less a reserve) is more than is left.
    let serve = Serve::start_holding(Some(100), 75, "3600");
    serve.scrape();
    let held: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", serve.port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let worst = scrapes(&serve, 5);
    let said: Vec<String> = serve.stderr.try_iter().collect();
    eprintln!(
        "{} connections against 25 free descriptors: slowest scrape {worst:?}; {said:?}",
        held.len()
    );
    assert!(
        said.iter().any(|l| l.contains("out of file descriptors")),
        "{said:?}"
    );
    let (code, _) = serve.terminate();
    assert_eq!(code, Some(0), "serve did not stop accepting");
}

#[test]
fn a_request_line_without_an_end_is_answered_431_and_not_buffered() {
    let serve = Serve::start(None);
    serve.scrape();
    let base = serve.rss_kb();
    let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    // Up to 256 MiB; serve closes long before.
    while sent < 256 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let rss = serve.rss_kb();
    let mut answer = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut answer);
    eprintln!("long line: {sent} bytes taken before the close, RSS {base} kB -> {rss} kB");
    assert!(sent < 64 << 20, "serve kept reading: {sent} bytes");
    assert!(rss < base + 50_000, "RSS grew from {base} kB to {rss} kB");
    // The 431 may be lost to the reset of a close with unread data; when it
    // arrives, it is the right one.
    if !answer.is_empty() {
        assert!(
            answer.starts_with(b"HTTP/1.1 431"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    // A long header line, sent whole, gets its 431.
    let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    let long = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    s.write_all(long.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    serve.scrape();
}

#[test]
fn http2_request_lines_are_answered_or_closed_and_hold_nothing() {
    let serve = Serve::start(None);
    for request in [
        &b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n"[..],
        b"GET /metrics HTTP/2.0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let start = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
        s.write_all(request).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = Vec::new();
        let got = s.read_to_end(&mut answer);
        let took = start.elapsed();
        assert!(
            got.is_ok(),
            "{:?}: neither answered nor closed within {took:?}",
            String::from_utf8_lossy(request)
        );
        assert!(
            answer.is_empty()
                || answer.starts_with(b"HTTP/1.1 4")
                || answer.starts_with(b"HTTP/1.1 5"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        serve.scrape();
    }
}

/// Reads until the server closes the connection (true, with the bytes
/// read) or `limit` passes with the connection still open (false).
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (bool, usize) {
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0;
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (true, total),
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (true, total),
        }
    }
    (false, total)
}

#[test]
fn idle_and_trickling_connections_are_closed_after_the_header_timeout() {
    let serve = Serve::start(None);
    let mut idle = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    let mut trickle = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    // A keep-alive connection that got one answer, then says nothing.
    let mut kept = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let writer = {
        let mut t = trickle.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                .iter()
                .cycle()
                .take(40)
            {
                if t.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    // 10 s is the limit; 20 s is a generous bound that proves there is one.
    for (what, s) in [
        ("idle", &mut idle),
        ("trickling", &mut trickle),
        ("kept", &mut kept),
    ] {
        let left = Duration::from_secs(20).saturating_sub(start.elapsed());
        assert!(
            read_until_closed(s, left).0,
            "the {what} connection is still open after {:?}",
            start.elapsed()
        );
    }
    eprintln!(
        "idle, trickling and kept-alive connections closed after {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() >= Duration::from_secs(9),
        "closed before the timeout"
    );
    let _ = writer.join();
    serve.scrape();
}

#[test]
fn a_client_that_never_reads_its_answers_loses_the_connection() {
    let serve = Serve::start(None);
    // How long one answer is here (the machine's table).
    let mut probe = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    probe
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).unwrap();
    let mut hog = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    nix::sys::socket::setsockopt(&hog, nix::sys::socket::sockopt::RcvBuf, &4096).unwrap();
    let one = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let asked = 500;
    hog.write_all(&one.repeat(asked)).unwrap();
    let start = Instant::now();
    // Not reading at all for longer than the write-stall limit (10 s) ...
    std::thread::sleep(Duration::from_secs(13));
    serve.scrape();
    // ... leaves a closed connection behind what was in flight: reading
    // now gets that and the end, not the other answers.
    let (closed, got) = read_until_closed(&mut hog, Duration::from_secs(30));
    assert!(closed, "still open after {:?}", start.elapsed());
    eprintln!(
        "the hog's connection ended after {:?}: {got} bytes of {} asked for",
        start.elapsed(),
        asked * answer.len()
    );
    assert!(
        got < asked * answer.len() / 2,
        "{got} bytes: it was still being served"
    );
}

#[test]
fn an_unprivileged_neighbour_flooding_and_sending_an_endless_line_locks_no_scraper_out() {
    let Some(nobody) = common::as_nobody() else {
        common::skipped(
            "an_unprivileged_neighbour_flooding_and_sending_an_endless_line_locks_no_scraper_out",
            "an attack from nobody",
            "not root",
            "run it as root, as .ci/run does",
        );
        return;
    };
    common::find_program("bash").expect("bash is installed");
    let serve = Serve::start(Some(1024));
    let base = serve.rss_kb();
    let port = serve.port;
    // As nobody: 1,500 idle connections from bash, then a request line of
    // 256 MiB without an end on one more.
    let script = format!(
        "ulimit -n 4096; for i in $(seq 1500); do exec {{fd}}<>/dev/tcp/127.0.0.1/{port} || true; done; \
         echo opened; \
         (printf 'GET /'; head -c 268435456 /dev/zero | tr '\\0' a) > /dev/tcp/127.0.0.1/{port} 2>/dev/null; \
         echo sent; read"
    );
    let mut cmd = Command::new(nobody[0]);
    cmd.args(&nobody[1..])
        .args(["bash", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut attacker = common::spawn_locked(&mut cmd);
    let mut lines = BufReader::new(attacker.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "opened");
    let worst = scrapes(&serve, 10);
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "sent",
        "the endless line ended"
    );
    let worst = worst.max(scrapes(&serve, 5));
    let rss = serve.rss_kb();
    eprintln!(
        "nobody's flood and endless line: slowest scrape {worst:?}, RSS {base} kB -> {rss} kB"
    );
    assert!(rss < base + 100_000, "RSS grew from {base} kB to {rss} kB");
    drop(attacker.stdin.take());
    let _ = attacker.wait();
    let (code, took) = serve.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
}
