//! Turns a [`Player`]'s frame index into frames to show: snapshots read from
//! the recording, and after a jump a history rebuilt from the frames before
//! it. No threads and no terminal: the caller passes the clock in, and sends
//! what [`Driver::poll`] returns.

use super::{Command, Frame, Player, Status, Update};
use crate::engine::Analyzer;
use crate::model::history::{History, TREND_SAMPLES};
use crate::record::{Cursor, RecordError, Recording};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many frames before a jump's target go into its history: a
/// process's trend column and the findings' growth look this far back.
const LEAD_MAX: usize = TREND_SAMPLES;
/// Rebuilding the history of a jump should take about this long at most:
/// at 130k sockets one frame costs ~50 ms to read and record, so only a few
/// frames before the target are read there.
const REBUILD_BUDGET: Duration = Duration::from_millis(300);

pub struct Driver {
    rec: Recording,
    cursor: Cursor,
    player: Player,
    /// The first frame of each frame's recording run.
    run_start: Vec<usize>,
    /// The frame last sent to the app.
    sent: Option<usize>,
    /// A frame was sent and the app has not taken it in yet.
    in_flight: bool,
    last_status: Option<Status>,
    notes: Vec<String>,
    /// What reading and recording one frame costs, measured on the last jump.
    per_frame: Option<Duration>,
    budget: Duration,
    /// History and findings of the frames on screen so far.
    analyzer: Analyzer,
}

impl Driver {
    /// A paused replay of `rec` that will show frame `index` first.
    pub fn new(rec: Recording, index: usize, speed: f64, now: Instant) -> Driver {
        let n = rec.len();
        let mut run_start = Vec::with_capacity(n);
        let mut gaps = Vec::with_capacity(n.saturating_sub(1));
        for i in 0..n {
            let new_run = i == 0 || rec.session_index(i) != rec.session_index(i - 1);
            run_start.push(if new_run { i } else { run_start[i - 1] });
            if i > 0 {
                gaps.push(if new_run {
                    Duration::from_millis(rec.session(i).interval_ms)
                } else {
                    rec.time(i)
                        .duration_since(rec.time(i - 1))
                        .unwrap_or_default()
                });
            }
        }
        let times = (0..n).map(|i| rec.time(i)).collect();
        let mut notes = Vec::new();
        notes.extend(rec.notes());
        let filter = &rec.session(index.min(n - 1)).filter;
        if !filter.is_empty() {
            notes.push(format!(
                "recorded with the filter `{filter}`: other sockets are not in it"
            ));
        }
        Driver {
            player: Player::new(times, gaps, index, speed, now),
            rec,
            cursor: Cursor::new(),
            run_start,
            sent: None,
            in_flight: false,
            last_status: None,
            notes,
            per_frame: None,
            budget: REBUILD_BUDGET,
            analyzer: Analyzer::new(),
        }
    }

    /// How long rebuilding a jump's history may take (tests make it
    /// unlimited, or nothing, so that what they check does not depend on
    /// the machine's speed).
    pub fn set_rebuild_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    pub fn command(&mut self, command: Command, now: Instant) {
        self.player.command(command, now);
    }

    /// The app took in the last frame sent.
    pub fn shown(&mut self) {
        self.in_flight = false;
    }

    /// When [`Driver::poll`] has something to do without a command: the next
    /// frame while playing (None while paused, or while the app is busy with
    /// a frame: its [`super::Ticket`] wakes the caller).
    pub fn deadline(&self) -> Option<Instant> {
        if self.in_flight {
            None
        } else {
            self.player.deadline()
        }
    }

    /// The next update to send, if any: a frame when the player moved and
    /// the app is ready for one, else the status when it changed or a note.
    /// Call until it returns None.
    pub fn poll(&mut self, now: Instant) -> Option<Update> {
        let mut frame = None;
        if !self.in_flight {
            self.player.tick(now);
            let target = self.player.index();
            if self.sent != Some(target) {
                match self.frame(target) {
                    Ok(f) => {
                        frame = Some(f);
                        self.sent = Some(target);
                        self.in_flight = true;
                    }
                    Err(e) => {
                        // Stay where we were; say why.
                        self.player.stop_at(self.sent.unwrap_or(target));
                        self.sent = Some(self.player.index());
                        self.notes.push(e.to_string());
                    }
                }
            }
        }
        self.notes.extend(self.player.take_notes());
        let status = self.status();
        if frame.is_none() && self.notes.is_empty() && self.last_status.as_ref() == Some(&status) {
            return None;
        }
        self.last_status = Some(status.clone());
        let note =
            (!self.notes.is_empty()).then(|| self.notes.drain(..).collect::<Vec<_>>().join("; "));
        Some(Update {
            status,
            frame,
            note,
            ticket: None,
        })
    }

    fn status(&self) -> Status {
        let index = self.sent.unwrap_or(self.player.index());
        Status {
            index,
            frames: self.rec.len(),
            time: self.rec.time(index),
            start: self.rec.start(),
            end: self.rec.end(),
            playing: self.player.playing(),
            speed: self.player.speed(),
        }
    }

    fn frame(&mut self, target: usize) -> Result<Frame, RecordError> {
        let follows = matches!(self.sent, Some(s) if target == s + 1 && self.run_start[s] == self.run_start[target]);
        // Digested here, off the UI thread, by the same analyzer as a live sample.
        let analysis = if follows {
            let snap = self.cursor.seek(&self.rec, target)?;
            self.analyzer.digest(Arc::new(snap), None, None)
        } else {
            let (snap, history) = self.rebuild(target)?;
            self.analyzer = Analyzer::with_history(history);
            self.analyzer.analyze(Arc::new(snap), None, None)
        };
        let session = self.rec.session(target);
        Ok(Frame {
            analysis,
            jumped: !follows,
            host: session.host.clone(),
            kernel: session.kernel.clone(),
        })
    }

    /// The snapshot of `target` and a history of the frames before it in its
    /// recording run: as many as fit in [`REBUILD_BUDGET`], up to [`LEAD_MAX`].
    fn rebuild(&mut self, target: usize) -> Result<(crate::model::Snapshot, History), RecordError> {
        let first = self.run_start[target];
        let lead = match self.per_frame {
            Some(cost) => affordable(cost, self.budget),
            None => LEAD_MAX,
        };
        let mut from = target.saturating_sub(lead).max(first);
        let started = Instant::now();
        let mut history = History::default();
        let mut i = from;
        while i < target {
            history.record(&self.cursor.seek(&self.rec, i)?);
            i += 1;
            if self.per_frame.is_none() && i == from + 1 {
                // The first frame says what each costs: if the rest would
                // overrun the budget, start closer to the target instead.
                let cost = started.elapsed();
                self.per_frame = Some(cost);
                let closer = target
                    .saturating_sub(affordable(cost, self.budget))
                    .max(first);
                if closer > i {
                    from = closer;
                    i = closer;
                    history = History::default();
                }
            }
        }
        let snap = self.cursor.seek(&self.rec, target)?;
        history.record(&snap);
        let frames = (target - from + 1) as u32;
        self.per_frame = Some(started.elapsed() / frames);
        Ok((snap, history))
    }
}

/// Frames of lead-in that fit `budget` at `cost` each.
fn affordable(cost: Duration, budget: Duration) -> usize {
    let n = budget.as_nanos() / cost.as_nanos().max(1);
    (n as usize).clamp(1, LEAD_MAX)
}
