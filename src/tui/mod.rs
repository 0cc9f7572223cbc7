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
use crate::app::{App, Effect, Event};
use crate::collect::Options;
use crate::model::Filter;
use crate::ui::{self, Theme};
use ratatui::crossterm::event as ct;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime};

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

use crate::engine::live::{self, Control, Notice};
use crate::engine::slot::Slot;

pub fn run(config: Config) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the live monitor needs a terminal; for scripts use `sockscope snapshot` (or `--json`)"
        );
    }
    let (tx, rx) = mpsc::channel::<Event>();
    let recording = config.recorder.as_ref().map(|(_, path)| path.clone());
    let source = crate::engine::source::SystemSource::new(config.options);
    let mut engine = crate::engine::Engine::new(Box::new(source), config.interval);
    engine.follow_transitions(crate::trace::Transitions::start());
    let events = tx.clone();
    let engine = live::spawn(engine, config.recorder.map(|(r, _)| r), move |notice| {
        let ev = match notice {
            Notice::Sample => Event::Sampled,
            Notice::Failed(msg) => Event::CollectFailed(msg),
            Notice::RecordFailed(msg) => Event::RecordFailed(msg),
        };
        events.send(ev).is_ok()
    });

    let mut app = App::new(config.keymap, config.filter, config.interval);
    app.read_only = config.read_only;
    app.recording = recording;
    app.ssh = crate::act::plan::SshSession::from_env();
    app.host = sysinfo::System::host_name().unwrap_or_default();
    app.kernel = sysinfo::System::kernel_version().unwrap_or_default();
    interact(app, rx, tx, engine.control, engine.slot, None)
}

/// The terminal, input, signals and reverse DNS around the event loop: the
/// same for the live monitor and a replay.
fn interact(
    mut app: App,
    rx: Receiver<Event>,
    events: Sender<Event>,
    control: Sender<Control>,
    samples: Slot<Arc<crate::engine::Analysis>>,
    replay: Option<Sender<replay::ToDriver>>,
) -> anyhow::Result<()> {
    spawn_signals(events.clone())?;
    let rows_to = events.clone();
    app.use_rows_worker(crate::app::rows::Worker::spawn(move |built| {
        rows_to.send(Event::Rows(Box::new(built))).is_ok()
    }));
    let resolver = spawn_resolver(events.clone());
    let theme = Theme::from_env();

    let mut term = terminal::Guard::enter()?;
    spawn_input(events.clone());
    let size = term.size()?;
    app.page = ui::table_rows(size.width, size.height);
    let senders = Senders {
        events,
        control,
        samples,
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
    /// Where the engine leaves the newest analysis.
    samples: Slot<Arc<crate::engine::Analysis>>,
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
            app.clock = draw_clock(app);
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
        // does not lag behind the screen; the newest sample is taken from
        // the engine's slot (it holds one, never a queue).
        let mut batch = Vec::new();
        for ev in std::iter::once(first).chain(rx.try_iter()) {
            match ev {
                Event::Sampled => {
                    if let Some(a) = senders.samples.take() {
                        batch.push(Event::Analysis(a));
                    }
                }
                Event::Resize(w, h) => {
                    let drawn = terminal::clamp(ratatui::layout::Size::new(w, h));
                    app.page = ui::table_rows(drawn.width, drawn.height);
                    batch.push(ev);
                }
                ev => batch.push(ev),
            }
        }
        if batch.is_empty() {
            continue;
        }
        for effect in app.handle_batch(batch) {
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

/// The wall clock the header's "0.4s ago" is measured against: the sample's
/// own time plus the steady time since it, so a clock step does not show
/// as a sample minutes old (a replay, whose samples carry no steady clock,
/// uses the wall clock).
fn draw_clock(app: &App) -> SystemTime {
    if app.replay.is_some() {
        return SystemTime::now();
    }
    let since = crate::collect::clock::boottime().saturating_sub(app.snapshot.monotonic);
    app.snapshot.taken_at + since
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
