//! `sockscope serve`: a Prometheus exporter.
//!
//! ```text
//!  scrapes ──▶ tiny_http ──▶ workers (WORKERS threads) ──▶ GET /metrics
//!                                                            │
//!                            Mutex<Exporter> ◀───────────────┘
//!                            collector + History + cached bodies
//!                            (a fresh collection at most once per --interval;
//!                             scrapes meanwhile wait for it or share it)
//! ```
//!
//! Collection is lazy and single-flight: the first scrape after the cache
//! expired collects while holding the lock, the others queue behind it and
//! get the same answer. Nothing is collected when nobody scrapes.

pub mod metrics;

use crate::collect::{Collector, Options, SourceChoice, SystemCollector, TCP_INFO_LIMIT};
use crate::model::Filter;
use crate::model::history::History;
use metrics::{Bodies, Collection};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, Server};

/// The default port: the Prometheus project's list of exporter ports has no
/// free one left in 9100-9999, and 10737 is in neither it nor /etc/services.
pub const DEFAULT_PORT: u16 = 10737;
/// `--listen`'s default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10737";

/// Threads answering requests. A scrape that collects holds the others'
/// `/metrics` until it is done; `/` and errors are answered meanwhile.
const WORKERS: usize = 4;

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
    collector: SystemCollector,
    /// Kept across collections so findings see growth and age.
    history: History,
    interval: Duration,
    top: usize,
    cached: Option<Cached>,
    collections: u64,
    errors: u64,
    /// Set once the attribution note (owners not visible) has been printed.
    noted: bool,
    /// Whether the next collection asks for `tcp_info` (see [`TCP_INFO_LIMIT`]).
    tcp_info: bool,
}

impl Exporter {
    fn new(config: &Config) -> Exporter {
        // As the monitor: incremental owner scans, tcp_info while affordable.
        let options = Options {
            source: config.source,
            tcp_info: true,
            owners: true,
            incremental: true,
        };
        Exporter {
            collector: SystemCollector::new(options),
            history: History::default(),
            interval: config.interval,
            top: config.top,
            cached: None,
            collections: 0,
            errors: 0,
            noted: false,
            tcp_info: true,
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
        let result = self.collector.collect();
        let took = start.elapsed();
        self.collections += 1;
        let snap = match result {
            Ok(snap) => snap,
            Err(e) => {
                self.errors += 1;
                return Answer::Failed(format!("sockscope: cannot collect: {e}\n").into());
            }
        };
        let tcp_info_now = self.tcp_info;
        // As the monitor does: above the limit, the next dumps leave tcp_info out.
        self.tcp_info = snap.sockets.len() <= TCP_INFO_LIMIT;
        self.collector.set_tcp_info(self.tcp_info);
        if !self.noted
            && let Some(note) = snap.attribution.note()
        {
            let _ = writeln!(std::io::stderr(), "sockscope: {note}");
            self.noted = true;
        }
        self.history.record(&snap);
        let found = crate::model::findings::analyze(&snap, &self.history, &Filter::default());
        let run = Collection {
            took,
            collections: self.collections,
            errors: self.errors,
            tcp_info: tcp_info_now,
        };
        let families = metrics::families(&snap, &found, &run, self.top);
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
pub fn run(config: Config) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.listen).map_err(|source| ServeError::Bind {
        addr: config.listen,
        hint: bind_hint(&source),
        source,
    })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    let server = Server::from_listener(listener, None).map_err(|e| ServeError::Server {
        addr,
        message: e.to_string(),
    })?;
    let server = Arc::new(server);

    let exporter = Arc::new(Mutex::new(Exporter::new(&config)));

    let stopping = Arc::new(AtomicBool::new(false));
    watch_signals(&server, &stopping, addr)?;
    let _ = writeln!(
        std::io::stderr(),
        "sockscope: serving http://{addr}/metrics"
    );

    let fatal: Arc<Mutex<Option<std::io::Error>>> = Arc::new(Mutex::new(None));
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let server = Arc::clone(&server);
            let exporter = Arc::clone(&exporter);
            let stopping = Arc::clone(&stopping);
            let fatal = Arc::clone(&fatal);
            std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || {
                    loop {
                        match server.recv() {
                            Ok(request) => respond(request, &exporter),
                            Err(e) => {
                                // An unblock from the signal thread, or tiny_http's
                                // accept loop died (it does not accept again).
                                if !stopping.swap(true, Ordering::SeqCst) {
                                    *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                                    for _ in 0..WORKERS {
                                        server.unblock();
                                    }
                                }
                                return;
                            }
                        }
                    }
                })
                .expect("spawn an HTTP worker thread")
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    match fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(e) => Err(ServeError::Accept(e)),
        None => Ok(()),
    }
}

/// On SIGINT or SIGTERM: stop taking requests, let the workers finish the
/// ones they hold, return from [`run`].
fn watch_signals(
    server: &Arc<Server>,
    stopping: &Arc<AtomicBool>,
    addr: SocketAddr,
) -> Result<(), ServeError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| ServeError::Server {
            addr,
            message: format!("cannot watch for signals: {e}"),
        })?;
    let server = Arc::clone(server);
    let stopping = Arc::clone(stopping);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() && !stopping.swap(true, Ordering::SeqCst) {
                for _ in 0..WORKERS {
                    server.unblock();
                }
            }
        })
        .expect("spawn the signal thread");
    Ok(())
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
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

fn respond(request: Request, exporter: &Mutex<Exporter>) {
    let path = request.url().split('?').next().unwrap_or("");
    let is_get = matches!(request.method(), Method::Get | Method::Head);
    let response = match (path, is_get) {
        ("/metrics" | "/", false) => Response::from_string("method not allowed: use GET\n")
            .with_status_code(405)
            .with_header(header("Allow", "GET, HEAD")),
        ("/", true) => Response::from_string(INDEX_HTML)
            .with_header(header("Content-Type", "text/html; charset=utf-8")),
        ("/metrics", true) => {
            let arrived = Instant::now();
            let answer = exporter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .answer(arrived);
            match answer {
                Answer::Metrics(bodies) => {
                    let openmetrics = request
                        .headers()
                        .iter()
                        .filter(|h| h.field.equiv("Accept"))
                        .any(|h| wants_openmetrics(h.value.as_str()));
                    let (body, content_type) = if openmetrics {
                        (bodies.openmetrics.clone(), metrics::OPENMETRICS_TYPE)
                    } else {
                        (bodies.text.clone(), metrics::TEXT_TYPE)
                    };
                    Response::from_string(body).with_header(header("Content-Type", content_type))
                }
                Answer::Failed(text) => Response::from_string(text.to_string())
                    .with_status_code(500)
                    .with_header(header("Content-Type", "text/plain; charset=utf-8")),
            }
        }
        _ => Response::from_string("not found: the metrics are at /metrics\n")
            .with_status_code(404)
            .with_header(header("Content-Type", "text/plain; charset=utf-8")),
    };
    // The scraper may have gone; nothing to do about it.
    let _ = request.respond(response);
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
