//! `sockscope replay FILE`: the monitor over a recording, with a time cursor.
//!
//! ```text
//!  keys ──App──▶ Effect::Replay(Command) ──▶ driver thread ──▶ Event::Replay(Update)
//!                                            Driver: Recording, Cursor,
//!                                            Player (which frame, when),
//!                                            History rebuilt on jumps
//! ```
//!
//! [`Player`] is pure: commands and the clock in, the frame to show out.
//! [`Driver`] reads frames and rebuilds history; the thread in `tui::replay`
//! only moves messages. Neither needs a terminal, so both are tested alone.

mod driver;
mod player;

pub use driver::Driver;
pub use player::{Player, SPEEDS};

use crate::model::history::History;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the user asks of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    StepBack,
    StepForward,
    PlayPause,
    Slower,
    Faster,
    Start,
    End,
    /// The frame nearest this time, never one taken much after it (see
    /// [`SEEK_SLACK`]).
    Seek(SystemTime),
}

/// Where a replay is: the frame on screen and how it moves.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Index of the frame on screen, from 0.
    pub index: usize,
    pub frames: usize,
    /// When the frame on screen was taken.
    pub time: SystemTime,
    pub start: SystemTime,
    pub end: SystemTime,
    pub playing: bool,
    /// Recorded time per wall-clock time while playing.
    pub speed: f64,
}

/// A frame to show.
#[derive(Debug)]
pub struct Frame {
    /// The frame digested: after a jump with the history of the frames
    /// before it (and of this one), else with the history so far.
    pub analysis: Arc<crate::engine::Analysis>,
    /// The frame does not follow the one before on screen.
    pub jumped: bool,
    /// The recording run's host and kernel.
    pub host: String,
    pub kernel: String,
}

impl Frame {
    /// The history a jump rebuilt; None when the frame follows the last.
    pub fn jump_history(&self) -> Option<&History> {
        self.jumped.then_some(&*self.analysis.history)
    }
}

/// What the driver tells the app: always where it is, sometimes a frame,
/// sometimes a message for the status line.
#[derive(Debug)]
pub struct Update {
    pub status: Status,
    pub frame: Option<Frame>,
    pub note: Option<String>,
    /// Dropped once the app has taken the update in, which lets the driver
    /// prepare the next frame: frames never queue up behind a busy screen.
    pub ticket: Option<Ticket>,
}

/// Runs its callback when dropped.
pub struct Ticket(Option<Box<dyn FnOnce() + Send>>);

impl Ticket {
    pub fn new(on_drop: impl FnOnce() + Send + 'static) -> Ticket {
        Ticket(Some(Box::new(on_drop)))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket")
    }
}

/// How far after a requested time the frame shown for it may be. Frames are
/// shown to the nearest second and collection jitters: `20s` may show a
/// frame taken at 20.3 s (shown as +20s), never one shown as +21s.
pub const SEEK_SLACK: Duration = Duration::from_millis(499);

/// The frame a replay shows for `t` (`--at`, the time prompt).
pub fn frame_at(rec: &crate::record::Recording, t: SystemTime) -> usize {
    nearest(rec.index_at(t), |i| rec.time(i), rec.len(), t)
}

/// The frame for `t`, given `before`, the last frame at or before it: that
/// one, or the next when it is nearer and at most [`SEEK_SLACK`] after `t`.
/// Never later than that: a moment's state is what was known by then.
fn nearest(before: usize, time: impl Fn(usize) -> SystemTime, len: usize, t: SystemTime) -> usize {
    let next = before + 1;
    if next >= len || time(before) > t {
        return before;
    }
    let behind = t.duration_since(time(before)).unwrap_or_default();
    let ahead = time(next).duration_since(t).unwrap_or_default();
    if ahead < behind && ahead <= SEEK_SLACK {
        next
    } else {
        before
    }
}

/// `+2m05s / 1h00m00s`: where the frame on screen is in the recording, to
/// the nearest second (a frame taken 9.998 s in is `+10s`, as typed to reach
/// it).
pub fn position(status: &Status) -> String {
    let half = Duration::from_millis(500);
    let at = status.time.duration_since(status.start).unwrap_or_default() + half;
    let span = status.end.duration_since(status.start).unwrap_or_default() + half;
    format!(
        "+{} / {}",
        crate::record::format_span(at),
        crate::record::format_span(span)
    )
}

/// `0.25x`, `1x`, `64x`.
pub fn format_speed(speed: f64) -> String {
    let text = format!("{speed:.2}");
    format!("{}x", text.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests;
