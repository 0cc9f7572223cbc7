//! `sockscope replay FILE`: the monitor's terminal and loop, fed by a driver
//! thread that reads the recording instead of a collector.

use super::Control;
use crate::app::keymap::Keymap;
use crate::app::{App, Event};
use crate::model::Filter;
use crate::record::Recording;
use crate::replay::{Command, Driver, Ticket};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

pub struct ReplayConfig {
    pub recording: Recording,
    /// Where to start; the last frame when None.
    pub at: Option<SystemTime>,
    pub speed: f64,
    pub filter: Filter,
    pub keymap: Keymap,
}

/// What the driver thread hears: the user's commands, and that the app took
/// in the last frame.
pub(super) enum ToDriver {
    Command(Command),
    Shown,
}

/// Runs the replay until the user quits. It starts paused, on the last
/// frame or at `at`.
pub fn run(config: ReplayConfig) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the replay needs a terminal; for scripts use `sockscope snapshot --from FILE --at TIME`"
        );
    }
    let rec = config.recording;
    let index = config
        .at
        .map_or(rec.len() - 1, |t| crate::replay::frame_at(&rec, t));
    let interval = Duration::from_millis(rec.session(index).interval_ms);
    let (tx, rx) = mpsc::channel::<Event>();
    let (driver_tx, driver_rx) = mpsc::channel::<ToDriver>();
    let driver = Driver::new(rec, index, config.speed, Instant::now());
    spawn_driver(tx.clone(), driver_rx, driver_tx.clone(), driver);

    let mut app = App::new(config.keymap, config.filter, interval);
    app.start_replay(jiff::tz::TimeZone::system());
    // There is no collector: what the loop tells one goes nowhere.
    let (control, _) = mpsc::channel::<Control>();
    super::interact(app, rx, tx, control, Default::default(), Some(driver_tx))
}

fn spawn_driver(
    events: Sender<Event>,
    commands: Receiver<ToDriver>,
    me: Sender<ToDriver>,
    mut driver: Driver,
) {
    std::thread::Builder::new()
        .name("replay".into())
        .spawn(move || {
            loop {
                while let Some(mut update) = driver.poll(Instant::now()) {
                    if update.frame.is_some() {
                        let me = me.clone();
                        update.ticket = Some(Ticket::new(move || {
                            let _ = me.send(ToDriver::Shown);
                        }));
                    }
                    if events.send(Event::Replay(Box::new(update))).is_err() {
                        return;
                    }
                }
                let first = match driver.deadline() {
                    Some(due) => {
                        match commands.recv_timeout(due.saturating_duration_since(Instant::now())) {
                            Ok(m) => Some(m),
                            Err(RecvTimeoutError::Timeout) => None,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    None => match commands.recv() {
                        Ok(m) => Some(m),
                        Err(_) => return,
                    },
                };
                // Everything queued at once: held keys move far in one frame.
                for message in first.into_iter().chain(commands.try_iter()) {
                    match message {
                        ToDriver::Command(c) => driver.command(c, Instant::now()),
                        ToDriver::Shown => driver.shown(),
                    }
                }
            }
        })
        .expect("spawn replay thread");
}
