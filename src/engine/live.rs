//! The engine on a thread of its own, for the live monitor: it samples on
//! its cadence, digests, and leaves the newest analysis in a [`Slot`]; the
//! UI is woken once per slot fill, so a UI that cannot draw holds at most
//! one sample, never a queue of them.

use super::slot::Slot;
use super::{Analysis, Engine};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How much nicer than the UI the engine thread runs (and the collection
/// workers it starts, which inherit it). A key press wakes the UI thread
/// while a refresh of 130k sockets holds a core for 100 ms: at the same
/// weight, the UI thread and the row builds it asks for wait their turn
/// behind it on a 2-core machine. The engine's budget is CPU time, not
/// wall time, so sampling does not cost more for it; on a busy machine a
/// refresh takes longer, and yields to the machine's own work, as a
/// monitoring tool should.
pub const ENGINE_NICE: i32 = 5;

/// Lowers the calling thread's scheduling weight by [`ENGINE_NICE`] (Linux
/// keeps a nice value per thread; `setpriority` on pid 0 sets the caller's
/// only). Best effort: a failure leaves the weight as it was.
fn nicer() {
    use rustix::process::{getpriority_process, setpriority_process};
    if let Ok(now) = getpriority_process(None) {
        let _ = setpriority_process(None, (now + ENGINE_NICE).min(19));
    }
}

/// What the monitor tells the engine.
#[derive(Debug)]
pub enum Control {
    /// The user's interval changed.
    Interval(Duration),
    /// Sample now, a full dump (an action changed what there is to see).
    Now,
    /// The connection the user is looking at.
    Focus(Option<Box<crate::model::Socket>>),
}

/// What the engine tells the monitor, besides filling the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A new analysis is in the slot.
    Sample,
    /// A sample could not be taken; the engine goes on trying.
    Failed(String),
    /// `--record` could not write; recording stopped.
    RecordFailed(String),
}

/// The running engine: its control channel and its slot.
pub struct Live {
    pub control: Sender<Control>,
    pub slot: Slot<Arc<Analysis>>,
}

/// Starts the engine thread. `notify` returns false once nobody listens,
/// which ends the thread.
pub fn spawn(
    mut engine: Engine,
    mut recorder: Option<crate::record::Recorder>,
    notify: impl Fn(Notice) -> bool + Send + 'static,
) -> Live {
    let (control, rx) = mpsc::channel();
    let slot = Slot::default();
    let out = slot.clone();
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            nicer();
            let mut force_full = false;
            let mut publish = |sampled: Result<Arc<Analysis>, super::SourceError>| match sampled {
                Ok(analysis) => {
                    let snap = Arc::clone(&analysis.snapshot);
                    let woke = !out.put(analysis) || notify(Notice::Sample);
                    // Written after the screen has the sample, so it never
                    // waits on the disk.
                    if let Some(r) = &mut recorder
                        && let Err(e) = r.write(&snap)
                    {
                        recorder = None;
                        woke && notify(Notice::RecordFailed(e.to_string()))
                    } else {
                        woke
                    }
                }
                Err(e) => notify(Notice::Failed(e.to_string())),
            };
            loop {
                let start = Instant::now();
                if !engine.tick(force_full, &mut publish) {
                    return;
                }
                match wait(&mut engine, &rx, start) {
                    Some(full) => force_full = full,
                    None => return,
                }
            }
        })
        .expect("spawn the engine thread");
    Live { control, slot }
}

/// Waits until the next sample is due, taking control messages meanwhile.
/// Some(true) when a full sample was asked for; None when the monitor is gone.
fn wait(engine: &mut Engine, rx: &Receiver<Control>, start: Instant) -> Option<bool> {
    loop {
        let due = start + engine.cadence().interval();
        let left = due.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            // A new interval takes effect now, not after the old wait.
            Ok(Control::Interval(d)) => {
                engine.cadence_mut().set_base(d);
                return Some(false);
            }
            Ok(Control::Now) => return Some(true),
            Ok(Control::Focus(f)) => engine.set_focus(f),
            Err(RecvTimeoutError::Timeout) => return Some(false),
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}
