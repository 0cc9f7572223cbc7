//! The driver on real recordings written with the recorder: which frames it
//! sends, with or without a rebuilt history, and when. The clock is passed
//! in, so nothing here sleeps.

use super::*;
use crate::model::Snapshot;
use crate::model::{TcpState, fixture};
use crate::record::{Recorder, Recording, SessionInfo};
use std::path::Path;
use std::time::{Duration, Instant};

fn info(host: &str) -> SessionInfo {
    SessionInfo {
        host: host.into(),
        kernel: "6.1".into(),
        filter: String::new(),
        interval: Duration::from_secs(1),
    }
}

fn record(path: &Path, host: &str, frames: impl Iterator<Item = u64>) {
    let mut rec = Recorder::create(path, info(host)).unwrap();
    for n in frames {
        rec.write(&fixture::leaking(n)).unwrap();
    }
}

fn close_waits(snap: &Snapshot) -> usize {
    snap.sockets
        .iter()
        .filter(|s| s.state == TcpState::CloseWait)
        .count()
}

/// A driver on a 10-frame recording, paused on frame `index`.
fn driver(dir: &tempfile::TempDir, index: usize, now: Instant) -> Driver {
    let path = dir.path().join("run.rec");
    record(&path, "testhost", 0..10);
    unlimited(Driver::new(
        Recording::open(&path).unwrap(),
        index,
        1.0,
        now,
    ))
}

/// Every frame of lead-in, however slow the machine.
fn unlimited(mut d: Driver) -> Driver {
    d.set_rebuild_budget(Duration::from_secs(3600));
    d
}

/// The frame of the next update, which must have one.
fn next_frame(d: &mut Driver, now: Instant) -> (Status, Frame) {
    let u = d.poll(now).expect("an update");
    (u.status, u.frame.expect("a frame"))
}

#[test]
fn the_first_frame_comes_with_the_history_of_the_frames_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut d = driver(&dir, 9, now);
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!((status.index, status.frames), (9, 10));
    assert!(!status.playing);
    assert_eq!(status.time, frame.analysis.snapshot.taken_at);
    assert_eq!(close_waits(&frame.analysis.snapshot), 2 + 9);
    assert_eq!(frame.host, "testhost");
    let history = frame.jump_history().expect("a jump brings its history");
    assert_eq!(history.samples().len(), 10, "every frame up to the target");
    assert_eq!(
        history.state_series(TcpState::CloseWait),
        (0..10).map(|n| 2 + n).collect::<Vec<u64>>()
    );
    assert!(d.poll(now).is_none(), "nothing new");
}

#[test]
fn one_step_forward_is_recorded_by_the_app_a_step_back_is_a_jump() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut d = driver(&dir, 4, now);
    next_frame(&mut d, now);
    d.shown();
    d.command(Command::StepForward, now);
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!(status.index, 5);
    assert_eq!(close_waits(&frame.analysis.snapshot), 2 + 5);
    assert!(
        frame.jump_history().is_none(),
        "follows the frame on screen"
    );
    d.shown();
    d.command(Command::StepBack, now);
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!(status.index, 4);
    assert_eq!(frame.jump_history().expect("a jump").samples().len(), 5);
    d.shown();
    d.command(Command::Start, now);
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!(status.index, 0);
    assert_eq!(close_waits(&frame.analysis.snapshot), 2);
    assert_eq!(frame.jump_history().expect("a jump").samples().len(), 1);
}

#[test]
fn frames_wait_until_the_app_took_the_last_one_in_and_keys_coalesce() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut d = driver(&dir, 9, now);
    next_frame(&mut d, now);
    // Three steps back while the app is still busy with the first frame.
    for _ in 0..3 {
        d.command(Command::StepBack, now);
    }
    assert!(
        d.poll(now).is_none(),
        "the screen is busy: nothing goes out"
    );
    d.shown();
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!(status.index, 6, "one frame for the three steps");
    assert!(frame.jump_history().is_some());
}

#[test]
fn playing_sends_each_frame_at_the_recorded_pace_over_the_speed() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut d = driver(&dir, 2, start);
    next_frame(&mut d, start);
    d.shown();
    d.command(Command::Faster, start);
    d.command(Command::PlayPause, start);
    let u = d.poll(start).expect("the status changed");
    assert!(u.frame.is_none());
    assert!(u.status.playing);
    assert_eq!(u.status.speed, 2.0);
    // Frames are 1 s apart: at 2x one is due every half second.
    let due = d.deadline().expect("playing");
    assert_eq!(due, start + Duration::from_millis(500));
    assert!(d.poll(due - Duration::from_millis(1)).is_none());
    let (status, frame) = next_frame(&mut d, due);
    assert_eq!(status.index, 3);
    assert!(
        frame.jump_history().is_none(),
        "playing records frame after frame"
    );
    assert_eq!(d.deadline(), None, "the app has not taken it in");
    assert!(d.poll(due + Duration::from_secs(9)).is_none());
    d.shown();
    let late = due + Duration::from_secs(9);
    let (status, _) = next_frame(&mut d, late);
    assert_eq!(status.index, 4, "a late app slows the replay, no skipping");
    // Play to the end.
    let mut now = late;
    let mut last = None;
    for _ in 0..10 {
        d.shown();
        now += Duration::from_secs(1);
        if let Some(u) = d.poll(now) {
            last = Some(u);
        }
    }
    let u = last.expect("updates");
    assert_eq!(u.status.index, 9);
    assert!(!u.status.playing);
    assert_eq!(d.deadline(), None);
}

#[test]
fn the_end_of_the_recording_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut d = driver(&dir, 8, start);
    next_frame(&mut d, start);
    d.shown();
    d.command(Command::PlayPause, start);
    d.poll(start);
    let u = d
        .poll(start + Duration::from_secs(1))
        .expect("the last frame");
    assert_eq!(u.status.index, 9);
    assert_eq!(u.note.as_deref(), Some("end of the recording"));
    d.shown();
    assert!(d.poll(start + Duration::from_secs(2)).is_none());
}

#[test]
fn a_seek_is_a_jump_to_the_last_frame_at_or_before_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut d = driver(&dir, 9, now);
    let (status, _) = next_frame(&mut d, now);
    d.shown();
    d.command(
        Command::Seek(status.start + Duration::from_millis(3500)),
        now,
    );
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!(status.index, 3);
    assert_eq!(frame.jump_history().unwrap().samples().len(), 4);
    assert_eq!(position(&status), "+3s / 9s");
}

#[test]
fn a_new_recording_run_starts_a_new_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    record(&path, "first", 0..3);
    record(&path, "second", 100..103);
    let now = Instant::now();
    let rec = Recording::open(&path).unwrap();
    let mut d = unlimited(Driver::new(rec, 2, 1.0, now));
    let (_, frame) = next_frame(&mut d, now);
    assert_eq!(frame.host, "first");
    d.shown();
    d.command(Command::StepForward, now);
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!(status.index, 3);
    assert_eq!(frame.host, "second");
    let history = frame.jump_history().expect("the next run is not continued");
    assert_eq!(history.samples().len(), 1);
    // From the last frame of run two, the lead-in stays within the run.
    d.shown();
    d.command(Command::End, now);
    let (_, frame) = next_frame(&mut d, now);
    assert_eq!(frame.jump_history().unwrap().samples().len(), 3);
}

#[test]
fn a_torn_tail_is_said_once_with_the_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    record(&path, "testhost", 0..4);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let now = Instant::now();
    let rec = Recording::open(&path).unwrap();
    assert!(rec.ignored_bytes > 0);
    let mut d = Driver::new(rec, usize::MAX, 1.0, now);
    let u = d.poll(now).unwrap();
    assert_eq!(u.status.index, 2, "the torn frame is not there");
    let note = u.note.expect("a note");
    assert!(
        note.starts_with("ignored ") && note.contains("bytes of a torn tail"),
        "{note}"
    );
    d.shown();
    d.command(Command::StepBack, now);
    assert!(d.poll(now).unwrap().note.is_none(), "once");
}

#[test]
fn when_frames_are_slow_to_rebuild_a_jump_reads_fewer_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let mut d = driver(&dir, 9, now);
    // No time at all: the frame itself and the one before, for a delta.
    d.set_rebuild_budget(Duration::ZERO);
    let (_, frame) = next_frame(&mut d, now);
    assert_eq!(frame.jump_history().unwrap().samples().len(), 2);
    d.shown();
    d.command(
        Command::Seek(frame.analysis.snapshot.taken_at - Duration::from_secs(3)),
        now,
    );
    let (status, frame) = next_frame(&mut d, now);
    assert_eq!(status.index, 6);
    assert_eq!(frame.jump_history().unwrap().samples().len(), 2);
}

#[test]
fn speeds_are_written_short() {
    assert_eq!(format_speed(0.25), "0.25x");
    assert_eq!(format_speed(0.5), "0.5x");
    assert_eq!(format_speed(1.0), "1x");
    assert_eq!(format_speed(64.0), "64x");
}

#[test]
fn a_ticket_runs_its_callback_when_dropped() {
    let (tx, rx) = std::sync::mpsc::channel();
    let ticket = Ticket::new(move || tx.send(()).unwrap());
    assert!(rx.try_recv().is_err());
    drop(ticket);
    assert!(rx.try_recv().is_ok());
}

#[test]
fn a_time_picks_the_nearest_frame_never_one_much_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    record(&path, "testhost", 0..10);
    let rec = Recording::open(&path).unwrap();
    let start = rec.start();
    assert_eq!(frame_at(&rec, start + Duration::from_millis(2400)), 2);
    assert_eq!(frame_at(&rec, start + Duration::from_millis(2600)), 3);
    assert_eq!(frame_at(&rec, start - Duration::from_secs(5)), 0);
    assert_eq!(frame_at(&rec, rec.end() + Duration::from_secs(5)), 9);
}
