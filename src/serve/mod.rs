//! `sockscope serve`: a Prometheus exporter.
//!
//! ```text
//!  scrapes ──▶ hyper (HTTP/1.1), every connection on one thread ──▶ GET /metrics
//!                                                                     │
//!                            Mutex<Exporter> ◀── a blocking thread ◀──┘
//!                            collector + History + cached bodies
//!                            (a fresh collection at most once per --interval;
//!                             scrapes meanwhile wait for it or share it)
//! ```
//!
//! Collection is lazy and single-flight: the first scrape after the cache
//! expired collects while holding the lock, the others queue behind it and
//! get the same answer. Nothing is collected when nobody scrapes.

pub mod metrics;

use crate::collect::{Options, SourceChoice, TCP_INFO_LIMIT};
use crate::engine::{Engine, source::SystemSource};
use metrics::{Bodies, Collection};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default port: the Prometheus project's list of exporter ports has no
/// free one left in 9100-9999, and 10737 is in neither it nor /etc/services.
pub const DEFAULT_PORT: u16 = 10737;
/// `--listen`'s default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10737";

pub struct Config {
    pub listen: SocketAddr,
    pub interval: Duration,
    pub top: usize,
    pub source: SourceChoice,
}

/// Why `serve` stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("cannot serve HTTP on {addr}: {message}")]
    Server { addr: SocketAddr, message: String },
    #[error("stopped accepting connections: {0}")]
    Accept(std::io::Error),
}

fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program holds that port: pick another with --listen ADDR:PORT)"
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need root)",
        std::io::ErrorKind::AddrNotAvailable => " (no interface of this machine has that address)",
        _ => "",
    }
}

/// The cached answer to `/metrics`.
#[derive(Clone)]
enum Answer {
    Metrics(Arc<Bodies>),
    /// The collection failed: HTTP 500 with this text.
    Failed(Arc<str>),
}

struct Cached {
    started: Instant,
    finished: Instant,
    answer: Answer,
}

/// Everything a collection needs, behind one lock.
struct Exporter {
    /// The sampling engine: its history lets findings see growth and age.
    engine: Engine,
    interval: Duration,
    top: usize,
    cached: Option<Cached>,
    collections: u64,
    errors: u64,
    /// Set once the attribution note (owners not visible) has been printed.
    noted: bool,
    /// Whether the next collection asks for `tcp_info` (see [`TCP_INFO_LIMIT`]).
    tcp_info: bool,
    /// The transitions summed since start, exported as counters.
    transitions: metrics::transitions::Totals,
}

impl Exporter {
    fn new(config: &Config) -> Exporter {
        // As the monitor: incremental owner scans, tcp_info while affordable.
        let options = Options {
            source: config.source,
            tcp_info: true,
            owners: true,
            incremental: true,
            namespaces: true,
        };
        Exporter {
            engine: {
                let mut e = Engine::new(Box::new(SystemSource::new(options)), config.interval);
                e.follow_transitions(crate::trace::Transitions::start());
                e
            },
            interval: config.interval,
            top: config.top,
            cached: None,
            collections: 0,
            errors: 0,
            noted: false,
            tcp_info: true,
            transitions: Default::default(),
        }
    }

    /// The answer for a scrape that arrived at `arrived`: the cached one if
    /// its collection started less than an interval ago, or if it finished
    /// after the scrape arrived (the scrape was waiting for it: single
    /// flight, even when collecting takes longer than the interval); else a
    /// fresh one.
    fn answer(&mut self, arrived: Instant) -> Answer {
        if let Some(c) = &self.cached
            && (c.started.elapsed() < self.interval || c.finished >= arrived)
        {
            return c.answer.clone();
        }
        let started = Instant::now();
        let answer = self.collect();
        // The interval counts from the start, so a slow collection does not
        // stretch the cadence.
        self.cached = Some(Cached {
            started,
            finished: Instant::now(),
            answer: answer.clone(),
        });
        answer
    }

    fn collect(&mut self) -> Answer {
        let start = Instant::now();
        // Always a full dump: a scrape is the cadence here.
        let result = self.engine.step(true);
        let took = start.elapsed();
        self.collections += 1;
        let analysis = match result {
            Ok(a) => a,
            Err(e) => {
                self.errors += 1;
                return Answer::Failed(format!("sockscope: cannot collect: {e}\n").into());
            }
        };
        let snap = &analysis.snapshot;
        let tcp_info_now = self.tcp_info;
        // The engine's rule: above the limit, the next dumps leave tcp_info out.
        self.tcp_info = snap.sockets.len() <= TCP_INFO_LIMIT;
        if !self.noted
            && let Some(note) = snap.attribution.note()
        {
            let _ = writeln!(std::io::stderr(), "sockscope: {note}");
            self.noted = true;
        }
        let found = &analysis.findings;
        let run = Collection {
            took,
            collections: self.collections,
            errors: self.errors,
            tcp_info: tcp_info_now,
        };
        let mut families = metrics::families(snap, found, &run, self.top);
        if let Some(t) = &analysis.trace {
            self.transitions.add(t, self.top);
        }
        families.extend(self.transitions.families());
        match metrics::encode(families) {
            Ok(bodies) => Answer::Metrics(Arc::new(bodies)),
            Err(_) => {
                self.errors += 1;
                Answer::Failed("sockscope: cannot encode the metrics\n".into())
            }
        }
    }
}

/// Runs until SIGINT or SIGTERM (Ok) or until the server breaks (Err).
///
/// One thread runs every connection (hyper on a current-thread tokio
/// runtime); collections run on a blocking thread so that they never hold
/// up the others. See [`limits`] for what a connection may cost.
pub fn run(config: Config) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.listen).map_err(|source| ServeError::Bind {
        addr: config.listen,
        hint: bind_hint(&source),
        source,
    })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    let server_err = |message: String| ServeError::Server { addr, message };
    listener
        .set_nonblocking(true)
        .map_err(|e| server_err(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        // Collections are single-flight behind one lock: more threads
        // would only wait on it.
        .max_blocking_threads(2)
        .build()
        .map_err(|e| server_err(format!("cannot start the runtime: {e}")))?;
    let exporter = Arc::new(Mutex::new(Exporter::new(&config)));
    let result = runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| server_err(e.to_string()))?;
        let signals =
            Signals::new().map_err(|e| server_err(format!("cannot watch for signals: {e}")))?;
        let _ = writeln!(
            std::io::stderr(),
            "sockscope: serving http://{addr}/metrics"
        );
        accept_loop(listener, exporter, signals).await
    });
    // Connections still open are dropped (closed) here; a collection still
    // running is not waited for long.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// What one client may cost, and for how long.
pub mod limits {
    use std::time::Duration;
    /// A request's line and headers must arrive within this, counted from
    /// the connection's start or the end of the previous answer; an idle
    /// keep-alive connection is closed after it.
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// A write that makes no progress for this long (a client that does
    /// not read its answer) closes the connection.
    pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
    /// The request line and headers together; more is answered 431 and
    /// closed, without buffering the rest.
    pub const MAX_HEAD_BYTES: usize = 16 * 1024;
    /// Headers in one request (hyper answers more with 431).
    pub const MAX_HEADERS: usize = 64;
    /// Connections open at once, at most; fewer when the descriptor limit
    /// is low (half of it, less a reserve). A new connection beyond it
    /// closes the oldest one that is not being answered, so a flood of idle
    /// connections cannot lock a scraper out.
    pub const MAX_CONNECTIONS: usize = 512;
    /// How long to pause accepting when the process is out of descriptors
    /// and no connection is idle enough to close.
    pub const EMFILE_PAUSE: Duration = Duration::from_millis(20);
    /// Descriptors left free for a collection when they ran out.
    pub const COLLECTION_RESERVE: usize = 12;
    /// Out of descriptors, the cap drops to the connections open at that
    /// moment, less [`COLLECTION_RESERVE`]; it is raised back after this long.
    pub const EMFILE_RETRY: Duration = Duration::from_secs(5);
}

/// Connections open at once under the current descriptor limit.
fn connection_cap() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let budget = soft.saturating_sub(64) / 2;
    (budget.min(limits::MAX_CONNECTIONS as u64) as usize).max(4)
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn either(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// One open connection, oldest first in [`Connections`].
struct Slot {
    id: u64,
    /// Set while a request is being answered (from its head to the handler's
    /// return): such a connection is not closed to make room.
    busy: Arc<AtomicBool>,
    task: tokio::task::AbortHandle,
}

#[derive(Default)]
struct Connections {
    open: std::collections::VecDeque<Slot>,
    next_id: u64,
}

impl Connections {
    /// Closes the oldest connection that is not being answered; false if
    /// every one is.
    fn evict_idle(&mut self) -> bool {
        match self
            .open
            .iter()
            .position(|s| !s.busy.load(Ordering::Relaxed))
        {
            Some(i) => {
                let slot = self.open.remove(i).expect("in range");
                slot.task.abort();
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(i) = self.open.iter().position(|s| s.id == id) {
            self.open.remove(i);
        }
    }
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    exporter: Arc<Mutex<Exporter>>,
    mut signals: Signals,
) -> Result<(), ServeError> {
    let full_cap = connection_cap();
    let mut cap = full_cap;
    // When descriptors last ran out: the cap is lowered to what fitted then,
    // and tried at full again a while later.
    let mut short_since: Option<Instant> = None;
    let connections = Arc::new(Mutex::new(Connections::default()));
    let mut said_emfile = false;
    loop {
        let accepted = tokio::select! {
            _ = signals.either() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_out_of_descriptors(&e) => {
                if !said_emfile {
                    let _ = writeln!(
                        std::io::stderr(),
                        "sockscope: out of file descriptors ({e}); closing idle connections to keep accepting"
                    );
                    said_emfile = true;
                }
                // Fewer connections fit than the cap says: hold this many
                // for a while, closing the oldest idle one for each new one.
                // A collection needs descriptors of its own (netlink, /proc):
                // leave it some.
                let evicted = {
                    let mut open = lock(&connections);
                    cap = open
                        .open
                        .len()
                        .saturating_sub(limits::COLLECTION_RESERVE)
                        .clamp(1, full_cap);
                    let mut evicted = false;
                    while open.open.len() > cap && open.evict_idle() {
                        evicted = true;
                    }
                    evicted || open.evict_idle()
                };
                short_since = Some(Instant::now());
                let pause = if evicted {
                    // Only for the closed connection's task to be dropped.
                    Duration::from_millis(1)
                } else {
                    limits::EMFILE_PAUSE
                };
                tokio::select! {
                    _ = signals.either() => return Ok(()),
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
            // The client went before we took it, or a signal: not ours to mind.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::WouldBlock
                ) || e.raw_os_error() == Some(libc::EPROTO) =>
            {
                continue;
            }
            Err(e) => return Err(ServeError::Accept(e)),
        };
        if short_since.is_some_and(|t| t.elapsed() > limits::EMFILE_RETRY) {
            short_since = None;
            cap = full_cap;
        }
        let mut open = lock(&connections);
        if open.open.len() >= cap && !open.evict_idle() {
            // Every connection is being answered: refuse this one at once,
            // without a task or a buffer.
            drop(open);
            let _ = stream.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        let id = open.next_id;
        open.next_id += 1;
        let busy = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(serve_connection(
            stream,
            Arc::clone(&exporter),
            Arc::clone(&busy),
            Arc::clone(&connections),
            id,
        ));
        open.open.push_back(Slot {
            id,
            busy,
            task: task.abort_handle(),
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    exporter: Arc<Mutex<Exporter>>,
    busy: Arc<AtomicBool>,
    connections: Arc<Mutex<Connections>>,
    id: u64,
) {
    let io = hyper_util::rt::TokioIo::new(WriteStall::new(stream));
    let service = hyper::service::service_fn(move |request| {
        let exporter = Arc::clone(&exporter);
        let busy = Arc::clone(&busy);
        async move {
            busy.store(true, Ordering::Relaxed);
            let response = respond(request, exporter).await;
            busy.store(false, Ordering::Relaxed);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits::HEADER_READ_TIMEOUT)
        .max_buf_size(limits::MAX_HEAD_BYTES)
        .max_headers(limits::MAX_HEADERS)
        .serve_connection(io, service)
        .await;
    lock(&connections).remove(id);
}

/// A TCP stream whose writes fail once they have made no progress for
/// [`limits::WRITE_STALL_TIMEOUT`]: a client that never reads its answer
/// loses the connection instead of holding it.
struct WriteStall {
    stream: tokio::net::TcpStream,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl WriteStall {
    fn new(stream: tokio::net::TcpStream) -> WriteStall {
        WriteStall {
            stream,
            stalled: None,
        }
    }

    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match polled {
            Poll::Pending => {
                let stalled = self.stalled.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep(limits::WRITE_STALL_TIMEOUT))
                });
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

use std::future::Future as _;

impl tokio::io::AsyncRead for WriteStall {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WriteStall {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

const INDEX_HTML: &str = "<!DOCTYPE html>
<html><head><meta charset=\"utf-8\"><title>sockscope exporter</title></head>
<body><h1>sockscope exporter</h1>
<p>Every TCP and UDP socket on this machine by state and owning process, the findings of the diagnosis engine and the kernel's TCP/IP counters.</p>
<p><a href=\"/metrics\">/metrics</a></p>
</body></html>
";

/// Whether the scraper prefers OpenMetrics: it lists
/// `application/openmetrics-text` with a non-zero quality.
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f64>().ok())
            .unwrap_or(1.0);
        media.eq_ignore_ascii_case("application/openmetrics-text") && q > 0.0
    })
}

type Body = http_body_util::Full<hyper::body::Bytes>;

fn reply(
    status: u16,
    content_type: Option<&str>,
    body: impl Into<hyper::body::Bytes>,
) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Body::new(body.into()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
    if let Some(t) = content_type {
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_str(t).expect("a valid header"),
        );
    }
    response
}

async fn respond(
    request: hyper::Request<hyper::body::Incoming>,
    exporter: Arc<Mutex<Exporter>>,
) -> hyper::Response<Body> {
    let path = request.uri().path();
    let is_get = matches!(*request.method(), hyper::Method::GET | hyper::Method::HEAD);
    const PLAIN: Option<&str> = Some("text/plain; charset=utf-8");
    match (path, is_get) {
        ("/metrics" | "/", false) => {
            let mut r = reply(405, PLAIN, "method not allowed: use GET\n");
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            r
        }
        ("/", true) => reply(200, Some("text/html; charset=utf-8"), INDEX_HTML),
        ("/metrics", true) => {
            let arrived = Instant::now();
            let openmetrics = request
                .headers()
                .get_all(hyper::header::ACCEPT)
                .iter()
                .any(|v| v.to_str().is_ok_and(wants_openmetrics));
            // Collecting blocks for as long as it takes: off the thread
            // that serves the connections.
            let answer = tokio::task::spawn_blocking(move || lock(&exporter).answer(arrived)).await;
            match answer {
                Ok(Answer::Metrics(bodies)) => {
                    if openmetrics {
                        reply(
                            200,
                            Some(metrics::OPENMETRICS_TYPE),
                            bodies.openmetrics.clone(),
                        )
                    } else {
                        reply(200, Some(metrics::TEXT_TYPE), bodies.text.clone())
                    }
                }
                Ok(Answer::Failed(text)) => reply(500, PLAIN, text.to_string()),
                Err(_) => reply(500, PLAIN, "sockscope: the collection failed\n"),
            }
        }
        _ => reply(404, PLAIN, "not found: the metrics are at /metrics\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_served_only_to_who_asks_for_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(prometheus));
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics("application/openmetrics-text;q=0"));
        assert!(wants_openmetrics("Application/OpenMetrics-Text"));
    }

    fn metrics_of(answer: &Answer) -> Arc<Bodies> {
        match answer {
            Answer::Metrics(bodies) => Arc::clone(bodies),
            Answer::Failed(e) => panic!("collection failed: {e}"),
        }
    }

    #[test]
    fn a_scrape_that_waited_for_a_collection_shares_it_even_past_the_interval() {
        let mut exporter = Exporter::new(&Config {
            listen: DEFAULT_LISTEN.parse().unwrap(),
            interval: Duration::from_millis(100),
            top: 10,
            source: SourceChoice::Auto,
        });
        exporter.noted = true; // no attribution note in the test output
        let waiting = Instant::now();
        let first = metrics_of(&exporter.answer(Instant::now()));
        assert_eq!(exporter.collections, 1);
        // Longer than the interval: only a scrape that arrived during (or
        // before) that collection may still have its answer.
        std::thread::sleep(Duration::from_millis(200));
        let shared = metrics_of(&exporter.answer(waiting));
        assert!(Arc::ptr_eq(&first, &shared));
        assert_eq!(exporter.collections, 1);
        let fresh = metrics_of(&exporter.answer(Instant::now()));
        assert!(!Arc::ptr_eq(&first, &fresh));
        assert_eq!(exporter.collections, 2);
        assert!(fresh.text.contains("sockscope_collections_total 2\n"));
    }

    #[test]
    fn the_default_listen_address_is_loopback_on_the_documented_port() {
        let addr: SocketAddr = DEFAULT_LISTEN.parse().unwrap();
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), DEFAULT_PORT);
    }
}
