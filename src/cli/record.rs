//! `record`, and reading a recording for `snapshot --from` / `diagnose --from`.

use super::{Failure, parse_filter, parse_interval};
use crate::collect::{Options, SourceChoice};
use crate::engine::{Engine, source::SystemSource};
use crate::model::{Filter, Snapshot};
use crate::record::{Cursor, Recorder, Recording, SessionInfo};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
#[command(after_help = super::FILTER_HELP)]
pub struct RecordArgs {
    /// The recording. A new file, or an earlier recording to continue (any
    /// other file is refused, never overwritten).
    pub file: PathBuf,
    /// Only record the sockets these terms select (e.g. `port:6800`).
    pub filter: Vec<String>,
    /// Time between frames: `1s`, `500ms`, `5`.
    #[arg(long, value_parser = parse_interval, default_value = "1s")]
    pub interval: Duration,
    /// Stop after this long: `90s`, `10m`, `2h`, `1h30m`. Without it, record
    /// until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Where to read the socket table from.
    #[arg(long, value_enum, default_value_t = SourceChoice::Auto)]
    pub source: SourceChoice,
}

/// `--from FILE [--at T]`, shared by `snapshot` and `diagnose`.
#[derive(Debug, Args)]
pub struct FromArgs {
    /// Read a recording (made with `sockscope record` or `--record`) instead of this machine.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// The moment of the recording to read: seconds after its start (`90`,
    /// `1m30s`), before its end (`-30s`), or a local time of day (`03:12`,
    /// `03:12:30`, `2026-11-24 03:12`). Default: its last frame.
    #[arg(
        long,
        value_name = "TIME",
        requires = "from",
        allow_hyphen_values = true
    )]
    pub at: Option<String>,
}

/// A length of time: seconds (`90`, `2.5`) or with units (`90s`, `10m`, `1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::record::parse_duration(text.trim())
        .ok_or_else(|| format!("`{text}` is not a length of time (try 90, 90s, 10m, 1h30m)"))
}

pub fn record(args: RecordArgs) -> Result<(), Failure> {
    let filter = parse_filter(&args.filter)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(anyhow::Error::from)?;
    }
    let mut recorder = Recorder::create(&args.file, session_info(&filter, args.interval))
        .map_err(anyhow::Error::from)?;
    // The engine's source and tcp_info rule; every frame a full dump.
    let source = SystemSource::new(Options {
        source: args.source,
        tcp_info: true,
        owners: true,
        incremental: true,
        namespaces: true,
    });
    let mut engine = Engine::new(Box::new(source), args.interval);
    // Each frame keeps the transitions of its interval (when they can be followed).
    engine.follow_transitions(crate::trace::Transitions::start());
    let mut err = std::io::stderr();
    if recorder.kept_damage > 0 {
        let _ = writeln!(
            err,
            "sockscope: {} holds {} damaged bytes; they are kept as they are and this run goes after them (readers skip them)",
            args.file.display(),
            recorder.kept_damage
        );
    }
    let _ = writeln!(
        err,
        "sockscope: recording to {} every {}{} (Ctrl-C stops)",
        args.file.display(),
        crate::app::format_interval(args.interval),
        args.duration
            .map(|d| format!(" for {}", crate::record::format_span(d)))
            .unwrap_or_default()
    );
    let start = Instant::now();
    let before = recorder.bytes;
    let mut keys = 0;
    let (mut total, mut changed) = (0, 0);
    let mut due = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let (snap, _, _) = engine
            .sample(true)
            .map_err(|e| anyhow::anyhow!("cannot collect: {e}"))?;
        // Copied only to be filtered: the engine keeps the sample too.
        let snap = if filter.is_empty() {
            snap
        } else {
            let mut mine = Arc::unwrap_or_clone(snap);
            keep_matching(&mut mine, &filter);
            Arc::new(mine)
        };
        let written = recorder.write(&snap).map_err(anyhow::Error::from)?;
        keys += usize::from(written.key);
        total += written.total;
        // The first frame has nothing to change from.
        changed += if recorder.frames > 1 {
            written.changed
        } else {
            0
        };
        due += args.interval;
        // A frame that took longer than the interval: the next one is due
        // now, not a burst of catch-up frames.
        due = due.max(start.elapsed());
        if args.duration.is_some_and(|d| due > d) {
            break;
        }
        // Sleep in short steps so that Ctrl-C is answered at once.
        while !stop.load(Ordering::Relaxed) {
            let left = (start + due).saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
    let took = start.elapsed().as_secs_f64().max(0.001);
    let bytes = recorder.bytes - before;
    let _ = writeln!(
        err,
        "sockscope: recorded {} frames ({keys} key {}) in {took:.0} s: {} ({}) to {}",
        recorder.frames,
        if keys == 1 { "frame" } else { "frames" },
        size(bytes),
        rate_per_hour(bytes, recorder.frames, took),
        args.file.display()
    );
    let frames = recorder.frames.max(1) as f64;
    let per_frame = changed as f64 / (frames - 1.0).max(1.0);
    let _ = writeln!(
        err,
        "sockscope: {:.0} sockets per frame on average, {per_frame:.1} of them changed per frame ({:.2}%)",
        total as f64 / frames,
        100.0 * per_frame / (total as f64 / frames).max(1.0),
    );
    Ok(())
}

/// What the run would write in an hour; not extrapolated from a first key
/// frame alone, nor from under a second.
fn rate_per_hour(bytes: u64, frames: u64, took_s: f64) -> String {
    if frames < 2 || took_s < 1.0 {
        "too short to estimate a rate per hour".into()
    } else {
        format!("{}/hour", size((bytes as f64 * 3600.0 / took_s) as u64))
    }
}

/// What the session block says about this run.
pub fn session_info(filter: &Filter, interval: Duration) -> SessionInfo {
    SessionInfo {
        host: crate::collect::host::host_name(),
        kernel: crate::collect::host::kernel_version(),
        filter: filter.text().to_string(),
        interval,
    }
}

/// Drops the sockets the filter does not select, and the processes that then
/// hold nothing.
pub fn keep_matching(snap: &mut Snapshot, filter: &Filter) {
    if filter.is_empty() {
        return;
    }
    let keep: Vec<bool> = snap
        .sockets
        .iter()
        .map(|s| filter.matches(s, snap))
        .collect();
    let mut it = keep.iter();
    snap.sockets
        .retain(|_| *it.next().expect("one flag per socket"));
    let holders: std::collections::HashSet<u32> = snap
        .sockets
        .iter()
        .flat_map(|s| s.owners.iter().map(|o| o.pid))
        .collect();
    snap.processes.retain(|pid, _| holders.contains(pid));
    // The namespaces of the kept sockets only.
    let spaces: std::collections::HashSet<u64> = snap.sockets.iter().map(|s| s.netns).collect();
    if snap.namespaces.list.keys().any(|ns| !spaces.contains(ns)) {
        let list = std::sync::Arc::make_mut(&mut snap.namespaces.list);
        list.retain(|ns, _| spaces.contains(ns));
    }
}

/// Decimal units, as disks and budgets are counted: `812 B`, `3.4 kB`, `97.2 MB`.
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// Opens a recording for `--from`, saying once on stderr what damage or torn tail was left out.
pub fn open(path: &Path) -> Result<Recording, Failure> {
    let rec = Recording::open(path).map_err(anyhow::Error::from)?;
    for note in rec.notes() {
        let _ = writeln!(std::io::stderr(), "sockscope: {note}");
    }
    Ok(rec)
}

/// Reads the frames `--at` selects, oldest first: those in the `window`
/// before that moment (for `diagnose`'s rates and growth), then the one at it
/// (as `replay` finds it). Each is handed to `each` and dropped, so a long
/// window over a large table holds one frame at a time. Returns the last.
pub fn read_frames(
    rec: &Recording,
    at: Option<&str>,
    window: Duration,
    mut each: impl FnMut(&Snapshot),
) -> Result<Snapshot, Failure> {
    let target = match at {
        Some(text) => {
            let t = crate::record::parse_at(text, rec)
                .map_err(|e| Failure::Usage(format!("--at: {e}")))?;
            crate::replay::frame_at(rec, t)
        }
        None => rec.len() - 1,
    };
    let from = rec.time(target).checked_sub(window).unwrap_or(rec.start());
    // The first frame inside the window (index_at gives the one at or before).
    let first = rec.index_at(from);
    let first = if rec.time(first) < from {
        (first + 1).min(target)
    } else {
        first
    };
    let mut cursor = Cursor::new();
    let mut seek = |i| {
        cursor
            .seek(rec, i)
            .map_err(|e| Failure::Runtime(anyhow::Error::from(e)))
    };
    for i in first..target {
        each(&seek(i)?);
    }
    let last = seek(target)?;
    each(&last);
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_too_short_is_not_extrapolated_to_an_hour() {
        assert_eq!(
            rate_per_hour(2841, 1, 0.001),
            "too short to estimate a rate per hour"
        );
        assert_eq!(
            rate_per_hour(2841, 3, 0.5),
            "too short to estimate a rate per hour"
        );
        assert_eq!(rate_per_hour(1000, 10, 10.0), "360.0 kB/hour");
    }

    #[test]
    fn durations_parse_in_the_usual_spellings() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("").is_err(), "an empty duration is not 0 s");
        assert!(parse_duration("  ").is_err());
    }

    #[test]
    fn a_filtered_frame_keeps_only_the_selected_sockets_and_their_owners() {
        let mut snap = crate::model::fixture::small();
        keep_matching(&mut snap, &Filter::parse("port:6800").unwrap());
        assert!(!snap.sockets.is_empty());
        assert!(
            snap.sockets
                .iter()
                .all(|s| s.local.port() == 6800 || s.remote.port() == 6800)
        );
        let pids: Vec<u32> = snap.processes.keys().copied().collect();
        assert!(pids.iter().all(|pid| {
            snap.sockets
                .iter()
                .any(|s| s.owners.iter().any(|o| o.pid == *pid))
        }));
        assert!(
            !snap.processes.contains_key(&4242),
            "nginx holds no 6800 socket"
        );
    }
}
