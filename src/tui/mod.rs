//! The live monitor's runtime: terminal setup and restore, the collector,
//! input, signal and resolver threads, and the one loop that applies effects.
//!
//! Everything reaches the loop as an [`Event`] on one channel. The loop drains
//! what is queued before drawing, and draws only when something changed (or
//! once a second, for the sample's age).

mod act;
pub mod replay;
mod terminal;

use crate::app::keymap::Keymap;
use crate::app::{App, CollectStats, Effect, Event};
use crate::collect::{Collector, Options, SystemCollector};
use crate::model::Filter;
use crate::ui::{self, Theme};
use ratatui::crossterm::event as ct;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

/// The monitor may use at most 1/this of one core: on very large socket
/// tables the interval lengthens itself, and the header shows the real one.
/// 11 rather than 10 leaves room for drawing between refreshes.
const MAX_COLLECT_SHARE: u32 = 11;
/// Above this many sockets the periodic dump leaves out `tcp_info` (the
/// limit lives in `collect`, shared with `record` and `serve`).
use crate::collect::TCP_INFO_LIMIT;

pub struct Config {
    pub filter: Filter,
    pub interval: Duration,
    pub options: Options,
    pub keymap: Keymap,
    /// `--read-only`: k and x are refused.
    pub read_only: bool,
    /// `--record FILE`: every collected snapshot is appended to it.
    pub recorder: Option<(crate::record::Recorder, String)>,
}

enum Control {
    Interval(Duration),
    /// Collect now (an action changed what there is to see).
    Now,
    /// The connection the user is looking at: its `tcp_info` is fetched on
    /// its own when the periodic dump leaves `tcp_info` out.
    Focus(Option<Box<crate::model::Socket>>),
}

pub fn run(config: Config) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the live monitor needs a terminal; for scripts use `sockscope snapshot` (or `--json`)"
        );
    }
    let (tx, rx) = mpsc::channel::<Event>();
    let (ctl_tx, ctl_rx) = mpsc::channel::<Control>();
    let recording = config.recorder.as_ref().map(|(_, path)| path.clone());
    spawn_collector(
        tx.clone(),
        ctl_rx,
        config.options,
        config.interval,
        config.recorder.map(|(r, _)| r),
    );

    let mut app = App::new(config.keymap, config.filter, config.interval);
    app.read_only = config.read_only;
    app.recording = recording;
    app.ssh = crate::act::plan::SshSession::from_env();
    app.host = sysinfo::System::host_name().unwrap_or_default();
    app.kernel = sysinfo::System::kernel_version().unwrap_or_default();
    interact(app, rx, tx, ctl_tx, None)
}

/// The terminal, input, signals and reverse DNS around the event loop: the
/// same for the live monitor and a replay.
fn interact(
    mut app: App,
    rx: Receiver<Event>,
    events: Sender<Event>,
    control: Sender<Control>,
    replay: Option<Sender<replay::ToDriver>>,
) -> anyhow::Result<()> {
    spawn_signals(events.clone())?;
    let resolver = spawn_resolver(events.clone());
    let theme = Theme::from_env();

    let mut term = terminal::Guard::enter()?;
    spawn_input(events.clone());
    let size = term.size()?;
    app.page = ui::table_rows(size.width, size.height);
    let senders = Senders {
        events,
        control,
        resolver,
        replay,
    };
    event_loop(&mut app, &mut term, &theme, &rx, &senders)
}

/// Where the loop sends work: back to itself (results of actions), to the
/// collector, to the resolver, to the replay driver.
struct Senders {
    events: Sender<Event>,
    control: Sender<Control>,
    resolver: Sender<std::net::IpAddr>,
    replay: Option<Sender<replay::ToDriver>>,
}

fn event_loop(
    app: &mut App,
    term: &mut terminal::Guard,
    theme: &Theme,
    rx: &Receiver<Event>,
    senders: &Senders,
) -> anyhow::Result<()> {
    let ctl = &senders.control;
    let mut dirty = true;
    let mut focus: Option<crate::model::ConnKey> = None;
    loop {
        let selected = app.selected_socket();
        if selected.map(|s| s.key()) != focus {
            focus = selected.map(|s| s.key());
            let _ = ctl.send(Control::Focus(selected.cloned().map(Box::new)));
        }
        if dirty {
            app.clock = SystemTime::now();
            // A terminal that went away fails the write: that ends the loop.
            term.draw(|f| ui::draw(f, app, theme))?;
            dirty = false;
        }
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => {
                dirty = true;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Apply everything queued before drawing, so a held key or a paste
        // does not lag behind the screen.
        for ev in std::iter::once(first).chain(rx.try_iter()) {
            if let Event::Resize(w, h) = ev {
                let drawn = terminal::clamp(ratatui::layout::Size::new(w, h));
                app.page = ui::table_rows(drawn.width, drawn.height);
            }
            for effect in app.handle(ev) {
                match effect {
                    Effect::Quit => return Ok(()),
                    Effect::SetInterval(d) => {
                        let _ = ctl.send(Control::Interval(d));
                    }
                    Effect::Resolve(ips) => {
                        for ip in ips {
                            let _ = senders.resolver.send(ip);
                        }
                    }
                    Effect::Action(a) => act::perform(a, app, term, senders),
                    Effect::Replay(command) => {
                        if let Some(driver) = &senders.replay {
                            let _ = driver.send(replay::ToDriver::Command(command));
                        }
                    }
                }
            }
            dirty = true;
        }
    }
}

fn spawn_collector(
    tx: Sender<Event>,
    ctl: Receiver<Control>,
    options: Options,
    interval: Duration,
    mut recorder: Option<crate::record::Recorder>,
) {
    std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || {
            let mut base = interval;
            let mut collector = SystemCollector::new(options);
            let mut focus: Option<Box<crate::model::Socket>> = None;
            let mut cpu_before = process_cpu();
            loop {
                let start = Instant::now();
                let result = collector.collect();
                let took = start.elapsed();
                // CPU the whole process spent per refresh (collection on several
                // threads, and the UI digesting the previous sample) decides how
                // often we can afford to refresh.
                let cpu_now = process_cpu();
                let per_cycle = cpu_now.saturating_sub(cpu_before);
                cpu_before = cpu_now;
                let interval = base.max(took.max(per_cycle) * MAX_COLLECT_SHARE);
                let (event, snap) = match result {
                    Ok(mut snap) => {
                        if let Some(f) = &focus
                            && f.proto == crate::model::Proto::Tcp
                        {
                            add_focus_tcp_info(&mut collector, &mut snap, f);
                        }
                        collector.set_tcp_info(snap.sockets.len() <= TCP_INFO_LIMIT);
                        let snap = Arc::new(snap);
                        let stats = CollectStats { took, interval };
                        (Event::Snapshot(Arc::clone(&snap), stats), Some(snap))
                    }
                    Err(e) => (Event::CollectFailed(e.to_string()), None),
                };
                if tx.send(event).is_err() {
                    return;
                }
                // Written after the screen has the sample, so it never waits on the disk.
                if let (Some(r), Some(snap)) = (&mut recorder, snap)
                    && let Err(e) = r.write(&snap)
                {
                    recorder = None;
                    if tx.send(Event::RecordFailed(e.to_string())).is_err() {
                        return;
                    }
                }
                loop {
                    let left = (start + interval).saturating_duration_since(Instant::now());
                    match ctl.recv_timeout(left) {
                        // A new interval takes effect now, not after the old wait.
                        Ok(Control::Interval(d)) => {
                            base = d;
                            break;
                        }
                        Ok(Control::Now) => break,
                        Ok(Control::Focus(f)) => focus = f,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        })
        .expect("spawn collector thread");
}

/// CPU time this process has used so far (user + system, all threads).
fn process_cpu() -> Duration {
    let ticks = procfs::process::Process::myself()
        .and_then(|p| p.stat())
        .map(|st| st.utime + st.stime)
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / procfs::ticks_per_second() as f64)
}

/// Fills in `tcp_info` for the focused connection when the dump left it out.
fn add_focus_tcp_info(
    collector: &mut SystemCollector,
    snap: &mut crate::model::Snapshot,
    focus: &crate::model::Socket,
) {
    let key = focus.key();
    let Some(sock) = snap.sockets.iter_mut().find(|s| s.key() == key) else {
        return;
    };
    if sock.tcp_info.is_some() {
        return;
    }
    if let Some(fresh) = collector.query_one(sock)
        && fresh.state == sock.state
    {
        sock.tcp_info = fresh.tcp_info;
    }
}

fn spawn_input(tx: Sender<Event>) {
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            loop {
                let ev = match ct::read() {
                    Ok(ct::Event::Key(k)) => Event::Key(k),
                    Ok(ct::Event::Resize(w, h)) => Event::Resize(w, h),
                    Ok(_) => continue,
                    // The terminal is gone (EIO after an SSH drop): stop, do not spin.
                    Err(_) => Event::Terminate,
                };
                let stop = matches!(ev, Event::Terminate);
                if tx.send(ev).is_err() || stop {
                    return;
                }
            }
        })
        .expect("spawn input thread");
}

fn spawn_signals(tx: Sender<Event>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    // SIGQUIT too: its default (a core dump) would leave the terminal raw.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(Event::Terminate);
            }
        })?;
    Ok(())
}

/// Reverse DNS off the UI thread; each address is asked once.
fn spawn_resolver(tx: Sender<Event>) -> Sender<std::net::IpAddr> {
    let (req_tx, req_rx) = mpsc::channel::<std::net::IpAddr>();
    std::thread::Builder::new()
        .name("resolver".into())
        .spawn(move || {
            for ip in req_rx {
                let name = dns_lookup::lookup_addr(&ip)
                    .ok()
                    .filter(|n| *n != ip.to_string());
                if tx.send(Event::Resolved(ip, name)).is_err() {
                    return;
                }
            }
        })
        .expect("spawn resolver thread");
    req_tx
}
