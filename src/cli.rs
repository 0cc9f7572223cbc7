//! Command-line interface: parses arguments and chooses a sink for the same
//! collect + model code.

pub mod actions;
pub mod docs;
pub mod record;
pub mod replay;

use crate::collect::{Collector, Options, SourceChoice, SystemCollector};
use crate::model::{Filter, Snapshot, Socket};
use crate::output;
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Every TCP and UDP socket on this machine, which process owns it, and what state it is stuck in.
#[derive(Debug, Parser)]
#[command(name = "sockscope", version = VERSION, about, after_help = FILTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Start the live monitor already filtered (e.g. `sockscope 6800 cw`).
    pub filter: Vec<String>,
    /// Refresh interval of the live monitor: `1s`, `500ms`, `2.5s`, `3`.
    /// It lengthens itself when collection would take more than 10% of a core.
    #[arg(long, value_parser = parse_interval, default_value = "1s")]
    pub interval: std::time::Duration,
    /// Where the live monitor reads the socket table from.
    #[arg(long, value_enum, default_value_t = SourceChoice::Auto)]
    pub source: SourceChoice,
    /// Turn every action off: the monitor's k and x, and the kill and destroy commands.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Record what the monitor collects to FILE while it runs (see `record`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
    /// Look at one network namespace only: `host`, a container's, pod's or
    /// `ip netns` name, a namespace inode, or the pid of a process in it
    /// (the same as the filter term `netns:...`).
    #[arg(long, global = true, value_name = "NAME|PID")]
    pub netns: Option<String>,
}

/// The filter term `--netns` stands for: a pid becomes its namespace's
/// inode (or `host`), anything else is taken as a name.
pub fn netns_term(what: &str) -> Result<String, Failure> {
    let pid_ns = |pid: &str| -> Option<u64> {
        let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
        crate::collect::netns::discover::parse_link(link.to_str()?)
    };
    if !what.is_empty() && what.bytes().all(|b| b.is_ascii_digit()) && what.len() < 8 {
        let Some(ino) = pid_ns(what) else {
            return Err(Failure::Usage(format!(
                "--netns {what}: no process {what} whose network namespace can be read \
                 (it exited, or only root or its owner can read /proc/{what}/ns/net)"
            )));
        };
        return Ok(if Some(ino) == pid_ns("self") {
            "netns:host".into()
        } else {
            format!("netns:{ino}")
        });
    }
    if what.is_empty() || what.chars().any(char::is_whitespace) {
        return Err(Failure::Usage(format!(
            "--netns `{what}`: expected a namespace name or a pid"
        )));
    }
    Ok(format!("netns:{what}"))
}

/// `0.1.0 (e6be386)`: the package version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SOCKSCOPE_COMMIT"),
    ")"
);

/// `1s`, `500ms`, `2.5s`, or a bare number of seconds; from 0.1 s to 1 hour.
pub fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let d = crate::record::parse_duration(text.trim())
        .ok_or_else(|| format!("`{text}` is not a duration (try 1s, 500ms, 2.5)"))?;
    if !(0.1..=3600.0).contains(&d.as_secs_f64()) {
        return Err(format!(
            "`{text}`: the interval must be between 100ms and 1h"
        ));
    }
    Ok(d)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every socket once, with its owners, and exit.
    Snapshot(SnapshotArgs),
    /// Send a signal to the processes that hold matching sockets (through a
    /// pidfd: a reused pid is never signalled). Asks first unless --yes.
    Kill(actions::KillArgs),
    /// Destroy matching sockets with netlink SOCK_DESTROY, as `ss -K` (needs
    /// CAP_NET_ADMIN). Asks first unless --yes.
    Destroy(actions::DestroyArgs),
    /// Watch for a short window and say what is wrong, who is responsible and
    /// what to do. Exit status: 0 when nothing is at warning level, 1 when
    /// something is warning or critical, 2 on error.
    Diagnose(DiagnoseArgs),
    /// Record snapshots to a file until Ctrl-C or --duration, for `replay`
    /// and `snapshot --from` / `diagnose --from` afterwards. Key frames plus
    /// deltas, compressed; a recording cut short by a crash reads back up to the cut.
    Record(record::RecordArgs),
    /// The monitor over a recording, with a time cursor: step, play, change
    /// speed, jump to a time. Every view works on the recorded data.
    Replay(replay::ReplayArgs),
    /// Serve Prometheus metrics over HTTP at /metrics: sockets by state and
    /// by process, findings, kernel counters. Loopback only unless --listen
    /// says otherwise. Runs until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Print a shell completion script: `sockscope completions bash >
    /// /etc/bash_completion.d/sockscope`, zsh (as `_sockscope` in $fpath),
    /// fish (in ~/.config/fish/completions/sockscope.fish).
    Completions {
        #[arg(value_enum)]
        shell: docs::Shell,
    },
    /// Print the manual page, sockscope(1), in roff: `sockscope man | man -l -`.
    Man,
}

#[derive(Debug, Args)]
#[command(after_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Address and port to listen on (an IP address, not a host name). The
    /// default answers only this machine; `0.0.0.0:10737` or `[::]:10737`
    /// lets a remote Prometheus scrape it (anyone who can reach the port then
    /// sees every process name holding a socket). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = crate::serve::DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Collect at most once per interval: scrapes within it get the cached
    /// result. `5s`, `500ms`, `30` (seconds); at most `3600`.
    #[arg(long, value_parser = parse_interval, default_value = "5s")]
    pub interval: std::time::Duration,
    /// In sockscope_process_sockets, how many processes per protocol and
    /// state get a series of their own; the others are summed into one
    /// process="other" series.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub top: u32,
    /// Where to read the socket table from.
    #[arg(long, value_enum, default_value_t = SourceChoice::Auto)]
    pub source: SourceChoice,
}

const SERVE_HELP: &str = "\
Paths: /metrics (Prometheus text format, or OpenMetrics when the scraper asks
for it) and / (a page linking /metrics). HEAD is answered as GET; other paths
get 404, other methods 405.

Series: sockscope_sockets{proto,state}, sockscope_process_sockets{pid,process,
proto,state}, sockscope_findings{kind,severity}, the kernel's counters named
after /proc/net/snmp and netstat, lower-cased
(TcpExt.ListenOverflows: sockscope_netstat_tcpext_listenoverflows_total), and
the exporter's own (sockscope_collections_total, ...). The README lists them.

Exit status: 0 after Ctrl-C or SIGTERM, 1 when it cannot listen, 2 on a usage error.";

#[derive(Debug, Args)]
#[command(after_help = FILTER_HELP)]
pub struct DiagnoseArgs {
    /// Only look at the sockets these terms select (e.g. `port:6800`, `pid:4242`).
    pub filter: Vec<String>,
    /// `{"findings": [...]}` instead of text.
    #[arg(long)]
    pub json: bool,
    /// How long to sample, to measure growth and counter rates: `2`, `5s`,
    /// `500ms`; `0` looks once. Default 2 s, and longer when CLOSE_WAIT
    /// sockets are in view: a growth verdict needs 15 s of samples, so it
    /// samples on until then and says over how long. With --from, how much
    /// of the recording before --at to look at, default 60 s. Ctrl-C ends a
    /// live window early, with the report so far.
    #[arg(long = "for", value_name = "SECONDS", value_parser = parse_window)]
    pub window: Option<std::time::Duration>,
    /// Where to read the socket table from.
    #[arg(long, value_enum, default_value_t = SourceChoice::Auto)]
    pub source: SourceChoice,
    #[command(flatten)]
    pub from: record::FromArgs,
}

/// A sampling window: like an interval, but 0 (one sample) is allowed.
pub fn parse_window(text: &str) -> Result<std::time::Duration, String> {
    if text.trim().parse::<f64>().is_ok_and(|v| v == 0.0) {
        return Ok(std::time::Duration::ZERO);
    }
    parse_interval(text)
}

#[derive(Debug, Args)]
#[command(after_help = FILTER_HELP)]
pub struct SnapshotArgs {
    /// Filter terms, all of which must match (e.g. `6800 cw`, `proc:nginx state:listen`).
    pub filter: Vec<String>,
    /// One JSON array, one object per socket.
    #[arg(long)]
    pub json: bool,
    /// Where to read the socket table from.
    #[arg(long, value_enum, default_value_t = SourceChoice::Auto)]
    pub source: SourceChoice,
    #[command(flatten)]
    pub from: record::FromArgs,
}

pub const FILTER_HELP: &str = "\
Filter terms (all must match; `!term` negates):
  6800, port:N       local or remote port       lport:N, rport:N   one end only
  pid:N              owner pid                  proc:NAME          owner name contains NAME
  user:NAME|UID      socket or owner user       state:S            close-wait, cw, est, tw, fw2, listen, ...
  addr:IP|CIDR       either address             laddr:, raddr:     one end only
  pid:none           sockets no process holds   proto:tcp|udp      family:4|6
  a bare word        a state, or a process name containing it

Exit status: 0 success, 1 runtime failure, 2 usage error.";

/// A failure with the exit status it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad flag or filter term: exit 2.
    Usage(String),
    /// Anything that went wrong at run time: exit 1.
    Runtime(anyhow::Error),
    /// A run-time failure with its own status (`diagnose` uses 2: its 1 means "found something").
    RuntimeWith(anyhow::Error, u8),
    /// Nothing went wrong; exit quietly with this status.
    Exit(u8),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            // stderr may be a terminal that is gone: never panic on it.
            let _ = writeln!(std::io::stderr(), "sockscope: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => runtime_failure(&e, 1),
        Err(Failure::RuntimeWith(e, code)) => runtime_failure(&e, code),
        Err(Failure::Exit(code)) => ExitCode::from(code),
    }
}

fn runtime_failure(e: &anyhow::Error, code: u8) -> ExitCode {
    if is_broken_pipe(e) {
        // `sockscope snapshot | head`: the reader has what it wanted.
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(std::io::stderr(), "sockscope: {}", without_repeats(e));
    ExitCode::from(code)
}

/// The error and its causes, each said once: an error whose message already
/// quotes its source (`cannot open x: Is a directory (os error 21)`) is not
/// followed by that source again.
pub fn without_repeats(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn run(mut cli: Cli) -> Result<(), Failure> {
    if let Some(what) = &cli.netns {
        let term = netns_term(what)?;
        match &mut cli.command {
            Some(Command::Snapshot(a)) => a.filter.push(term),
            Some(Command::Kill(a)) => a.filter.push(term),
            Some(Command::Destroy(a)) => a.filter.push(term),
            Some(Command::Diagnose(a)) => a.filter.push(term),
            Some(Command::Replay(a)) => a.filter.push(term),
            Some(Command::Record(a)) => a.filter.push(term),
            None => cli.filter.push(term),
            Some(_) => {
                return Err(Failure::Usage(
                    "--netns narrows snapshot, diagnose, the monitor, record, replay, kill and destroy"
                        .into(),
                ));
            }
        }
    }
    match cli.command {
        Some(Command::Snapshot(args)) => snapshot(args),
        Some(Command::Kill(args)) => actions::kill(args, cli.read_only),
        Some(Command::Destroy(args)) => actions::destroy(args, cli.read_only),
        Some(Command::Diagnose(args)) => diagnose(args).map_err(|f| match f {
            Failure::Runtime(e) => Failure::RuntimeWith(e, 2),
            other => other,
        }),
        Some(Command::Replay(args)) => replay::replay(args),
        Some(Command::Record(args)) => record::record(args),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Completions { shell }) => {
            let mut out = Vec::new();
            docs::completions(shell, &mut out);
            write_stdout(&out)
        }
        Some(Command::Man) => {
            let mut out = Vec::new();
            docs::man_page(&mut out).map_err(anyhow::Error::from)?;
            write_stdout(&out)
        }
        None => monitor(Monitor {
            filter: cli.filter,
            interval: cli.interval,
            source: cli.source,
            read_only: cli.read_only,
            record: cli.record,
        }),
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| anyhow::Error::new(e).context("cannot write to stdout"))?;
    Ok(())
}

/// What the live monitor was asked for on the command line.
struct Monitor {
    filter: Vec<String>,
    interval: std::time::Duration,
    source: SourceChoice,
    read_only: bool,
    record: Option<std::path::PathBuf>,
}

fn monitor(m: Monitor) -> Result<(), Failure> {
    let filter = parse_filter(&m.filter)?;
    let keymap = load_keymap()?;
    // Opened before the screen is taken, so that a refusal reads plainly.
    let recorder = match &m.record {
        Some(path) => Some((
            crate::record::Recorder::create(path, record::session_info(&filter, m.interval))
                .map_err(anyhow::Error::from)?,
            path.display().to_string(),
        )),
        None => None,
    };
    crate::tui::run(crate::tui::Config {
        filter,
        interval: m.interval,
        options: Options {
            source: m.source,
            tcp_info: true,
            owners: true,
            incremental: true,
            namespaces: true,
        },
        keymap,
        read_only: m.read_only,
        recorder,
    })
    .map_err(Failure::Runtime)
}

/// The default keymap with the user's config applied; a broken config is a
/// usage error that says which file and what is wrong, one that cannot be
/// read is left out with a note.
fn load_keymap() -> Result<crate::app::keymap::Keymap, Failure> {
    use crate::app::keymap::{Keymap, config_path};
    let user = match config_path() {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Some((text, path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            // Not ours to fix (nobody with root's HOME, a directory): the
            // defaults, with a note, rather than no monitor at all.
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "sockscope: cannot read {}: {e}; using the default keys",
                    crate::sanitize::clean(&path.display().to_string())
                );
                None
            }
        },
        None => None,
    };
    Keymap::load(user.as_ref().map(|(t, p)| (t.as_str(), p.as_str())))
        .map_err(|e| Failure::Usage(e.to_string()))
}

fn parse_filter(terms: &[String]) -> Result<Filter, Failure> {
    Filter::from_args(terms).map_err(|e| Failure::Usage(e.to_string()))
}

/// Sockets that match, in a stable order: protocol, local port, addresses.
pub fn select<'a>(snap: &'a Snapshot, filter: &Filter) -> Vec<&'a Socket> {
    let mut sockets: Vec<&Socket> = snap
        .sockets
        .iter()
        .filter(|s| filter.matches(s, snap))
        .collect();
    // One key per socket rather than two per comparison: on 100k+ sockets
    // building the key is most of the sort's time.
    sockets.sort_by_cached_key(|s| {
        (
            s.proto,
            s.family,
            s.local.port(),
            s.local.ip(),
            s.remote,
            s.inode,
        )
    });
    sockets
}

fn snapshot(args: SnapshotArgs) -> Result<(), Failure> {
    let filter = parse_filter(&args.filter)?;
    let snap = match &args.from.from {
        Some(path) => {
            let rec = record::open(path)?;
            let at = args.from.at.as_deref();
            record::read_frames(&rec, at, std::time::Duration::ZERO, |_| {})?
        }
        None => SystemCollector::new(Options {
            source: args.source,
            // tcp_info is only printed in JSON; leaving it out halves the kernel's work.
            tcp_info: args.json,
            owners: true,
            incremental: false,
            namespaces: true,
        })
        .collect()
        .map_err(anyhow::Error::from)?,
    };
    let sockets = select(&snap, &filter);
    let stdout = std::io::stdout();
    let result = if args.json {
        output::json::write_sockets(stdout.lock(), &snap, &sockets)
    } else {
        let color =
            stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let prefer: Vec<u32> = filter.pids().collect();
        output::table::write_table(stdout.lock(), &snap, &sockets, &prefer, color)
    };
    result.map_err(|e| anyhow::Error::new(e).context("cannot write to stdout"))?;
    if let Some(note) = &snap.source_note {
        let _ = writeln!(std::io::stderr(), "sockscope: {note}");
    }
    if let Some(note) = snap.attribution.note() {
        let _ = writeln!(std::io::stderr(), "sockscope: {note}");
    }
    if let Some(note) = snap.namespaces.note() {
        let _ = writeln!(std::io::stderr(), "sockscope: {note}");
    }
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    crate::serve::run(crate::serve::Config {
        listen: args.listen,
        interval: args.interval,
        top: args.top as usize,
        source: args.source,
    })
    .map_err(|e| Failure::Runtime(e.into()))
}

fn diagnose(args: DiagnoseArgs) -> Result<(), Failure> {
    use crate::model::findings;
    use std::time::Duration;
    let filter = parse_filter(&args.filter)?;
    // The engine's analyzer, whichever the samples come from.
    let mut analyzer = crate::engine::Analyzer::new();
    let mut trace = None;
    let (snap, samples) = match &args.from.from {
        Some(path) => {
            let rec = record::open(path)?;
            let window = args.window.unwrap_or(Duration::from_secs(60));
            let mut samples = 0;
            let last = record::read_frames(&rec, args.from.at.as_deref(), window, |f| {
                analyzer.record(f);
                samples += 1;
            })?;
            (last, samples)
        }
        None => {
            let mut t = Transitions::new();
            let r = sample_live(&args, &filter, &mut analyzer, &mut t)?;
            trace = Some(t);
            r
        }
    };
    let history = analyzer.history();
    let mut found = findings::analyze(&snap, history, &filter);
    let transitions = trace.map(|t| match t.feed.unavailable() {
        Some(why) => output::transitions::Report::off(why),
        None => {
            findings::transitions::analyze(&snap, &t.window, &filter, &mut found);
            output::transitions::Report::build(&t.window, &snap, &filter, t.cpu)
        }
    });
    let run = output::findings::Run {
        sampled_for_s: (history.span().as_secs_f64() * 1000.0).round() / 1000.0,
        samples,
        sockets: snap
            .sockets
            .iter()
            .filter(|s| filter.matches(s, &snap))
            .count(),
        filter: filter.text().to_string(),
        taken_at: snap.taken_at,
        transitions,
    };
    let stdout = std::io::stdout();
    let result = if args.json {
        output::findings::write_json(stdout.lock(), &run, &found)
    } else {
        let tty = stdout.is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let width = if tty { output::findings::width() } else { 100 };
        output::findings::write_text(stdout.lock(), &run, &found, width, color)
    };
    result.map_err(|e| anyhow::Error::new(e).context("cannot write to stdout"))?;
    if let Some(note) = &snap.source_note {
        let _ = writeln!(std::io::stderr(), "sockscope: {note}");
    }
    if let Some(note) = snap.attribution.note() {
        let _ = writeln!(std::io::stderr(), "sockscope: {note}");
    }
    if let Some(note) = snap.namespaces.note() {
        let _ = writeln!(std::io::stderr(), "sockscope: {note}");
    }
    match findings::worst(&found) {
        Some(s) if s >= findings::Severity::Warning => Err(Failure::Exit(1)),
        _ => Ok(()),
    }
}

/// Samples this machine once a second over the window (twice at least),
/// the last sample at its end; and on, up to the growth window, while
/// CLOSE_WAIT sockets the filter selects are there (unless `--for 0`).
/// The transitions over a live diagnose's window, from before its first
/// sample to its last.
struct Transitions {
    feed: crate::trace::Transitions,
    window: crate::trace::Window,
    cpu: std::time::Duration,
}

impl Transitions {
    fn new() -> Transitions {
        Transitions {
            feed: crate::trace::Transitions::start(),
            window: Default::default(),
            cpu: Default::default(),
        }
    }

    /// Adds the transitions up to `snap`; the first call only starts the window.
    fn sampled(&mut self, snap: &Snapshot, first: bool) {
        let t = self.feed.sample(snap, true);
        self.cpu = t.cpu;
        if !first {
            self.window.add(&t.window);
        } else {
            self.window.from = t.window.to;
            self.window.to = t.window.to;
        }
    }
}

fn sample_live(
    args: &DiagnoseArgs,
    filter: &Filter,
    analyzer: &mut crate::engine::Analyzer,
    trace: &mut Transitions,
) -> Result<(Snapshot, usize), Failure> {
    use std::time::{Duration, Instant};
    let window = args.window.unwrap_or(Duration::from_secs(2));
    let mut collector = SystemCollector::new(Options {
        source: args.source,
        // Retransmissions and ages come from tcp_info.
        tcp_info: true,
        owners: true,
        incremental: true,
        namespaces: true,
    });
    // Ctrl-C or SIGTERM ends the window early with a report; a second
    // Ctrl-C ends the process as usual.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(anyhow::Error::from)?;
    }
    let start = Instant::now();
    let mut snap = collector.collect().map_err(anyhow::Error::from)?;
    trace.sampled(&snap, true);
    analyzer.record(&snap);
    let mut samples = 1;
    if !window.is_zero() {
        // The window starts now; say so, for whoever waits on it.
        let _ = writeln!(
            std::io::stderr(),
            "sockscope: sampling for {}; Ctrl-C reports early",
            crate::model::format::duration_short(window)
        );
    }
    let step = window.min(Duration::from_secs(1));
    let mut due = Duration::ZERO;
    let needs_a_verdict = |snap: &Snapshot| {
        snap.sockets.iter().any(|s| {
            s.proto == crate::model::Proto::Tcp
                && s.state == crate::model::TcpState::CloseWait
                && filter.matches(s, snap)
        })
    };
    let growth_window = crate::model::history::GROWTH_WINDOW;
    loop {
        let want = if !window.is_zero() && due >= window && needs_a_verdict(&snap) {
            growth_window
        } else {
            window
        };
        if due >= want {
            break;
        }
        due = (due + step).min(want);
        let stopped = sleep_until(start + due, &stop);
        snap = collector.collect().map_err(anyhow::Error::from)?;
        trace.sampled(&snap, false);
        analyzer.record(&snap);
        samples += 1;
        if stopped {
            break;
        }
    }
    Ok((snap, samples))
}

/// Sleeps until `at` or until `stop` is raised; true when it was.
fn sleep_until(at: std::time::Instant, stop: &AtomicBool) -> bool {
    use std::time::{Duration, Instant};
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_in_the_usual_spellings() {
        use std::time::Duration;
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("fast").unwrap_err().contains("fast"));
    }
}
