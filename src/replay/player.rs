//! Which frame a replay shows, and when the next one is due while playing.
//! Pure: commands and the clock in, a frame index out.

use super::Command;
use std::time::{Duration, Instant, SystemTime};

/// The speeds `[` and `]` step through; `--speed` may give any value between
/// the first and the last.
pub const SPEEDS: [f64; 9] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

pub struct Player {
    times: Vec<SystemTime>,
    /// How long to wait after frame i at 1x: the recorded gap, or at the
    /// start of a new recording run the run's interval (not the hours
    /// between two runs).
    gaps: Vec<Duration>,
    index: usize,
    playing: bool,
    speed: f64,
    /// When the wait for the next frame began (the last move or play).
    since: Instant,
    notes: Vec<String>,
}

impl Player {
    /// A paused player on frame `index`. `gaps` has one entry per frame but
    /// the last.
    pub fn new(
        times: Vec<SystemTime>,
        gaps: Vec<Duration>,
        index: usize,
        speed: f64,
        now: Instant,
    ) -> Player {
        assert!(!times.is_empty(), "a recording has at least one frame");
        assert_eq!(gaps.len(), times.len() - 1, "one gap between two frames");
        let index = index.min(times.len() - 1);
        Player {
            times,
            gaps,
            index,
            playing: false,
            speed: speed.clamp(SPEEDS[0], SPEEDS[SPEEDS.len() - 1]),
            since: now,
            notes: Vec::new(),
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn playing(&self) -> bool {
        self.playing
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    fn last(&self) -> usize {
        self.times.len() - 1
    }

    /// Puts the player back on `index` and pauses (the frame there could not
    /// be shown).
    pub fn stop_at(&mut self, index: usize) {
        self.index = index.min(self.last());
        self.playing = false;
    }

    /// Messages for the status line since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    pub fn command(&mut self, command: Command, now: Instant) {
        let last = self.last();
        match command {
            Command::StepBack if self.index == 0 => self.note("at the first frame"),
            Command::StepBack => self.move_to(self.index - 1, now),
            Command::StepForward if self.index == last => self.note("at the last frame"),
            Command::StepForward => self.move_to(self.index + 1, now),
            Command::PlayPause if self.playing => self.playing = false,
            Command::PlayPause => {
                if self.index == last {
                    if last == 0 {
                        self.note("one frame: nothing to play");
                        return;
                    }
                    // Play at the end means play it again.
                    self.index = 0;
                    self.note("playing from the start");
                }
                self.playing = true;
                self.since = now;
            }
            Command::Slower | Command::Faster => self.change_speed(command == Command::Faster),
            Command::Start => self.move_to(0, now),
            Command::End => {
                self.move_to(last, now);
                self.playing = false;
            }
            Command::Seek(t) => {
                let before = self.times.partition_point(|&f| f <= t).saturating_sub(1);
                let times = &self.times;
                let index = super::nearest(before, |i| times[i], times.len(), t);
                self.move_to(index, now);
            }
        }
    }

    fn move_to(&mut self, index: usize, now: Instant) {
        self.index = index;
        self.since = now;
        if index == self.last() {
            self.playing = false;
        }
    }

    fn change_speed(&mut self, faster: bool) {
        let next = if faster {
            SPEEDS.iter().copied().find(|&s| s > self.speed)
        } else {
            SPEEDS.iter().rev().copied().find(|&s| s < self.speed)
        };
        match next {
            // A new speed also applies to the wait already under way.
            Some(s) => self.speed = s,
            None if faster => self.note("already at the fastest speed"),
            None => self.note("already at the slowest speed"),
        }
    }

    fn note(&mut self, text: &str) {
        self.notes.push(text.to_string());
    }

    /// When the next frame is due, while playing.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.playing || self.index >= self.last() {
            return None;
        }
        Some(self.since + self.gaps[self.index].div_f64(self.speed))
    }

    /// Moves one frame on when it is due; true if it moved. The wait for the
    /// next one starts now, not at the deadline: a screen that could not keep
    /// up slows the replay down instead of making it skip or rush.
    pub fn tick(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due => {
                self.move_to(self.index + 1, now);
                if !self.playing {
                    self.note("end of the recording");
                }
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    /// Frames at 0, 1, 2, 4 and 8 s: gaps of 1, 1, 2 and 4 s.
    fn player(index: usize, now: Instant) -> Player {
        let times: Vec<SystemTime> = [0, 1, 2, 4, 8].into_iter().map(t).collect();
        let gaps = times
            .windows(2)
            .map(|w| w[1].duration_since(w[0]).unwrap())
            .collect();
        Player::new(times, gaps, index, 1.0, now)
    }

    #[test]
    fn steps_move_one_frame_and_stop_at_the_ends_with_a_note() {
        let now = Instant::now();
        let mut p = player(4, now);
        p.command(Command::StepForward, now);
        assert_eq!(p.index(), 4);
        assert_eq!(p.take_notes(), ["at the last frame"]);
        p.command(Command::StepBack, now);
        p.command(Command::StepBack, now);
        assert_eq!(p.index(), 2);
        p.command(Command::Start, now);
        p.command(Command::StepBack, now);
        assert_eq!(p.index(), 0);
        assert_eq!(p.take_notes(), ["at the first frame"]);
        p.command(Command::End, now);
        assert_eq!(p.index(), 4);
    }

    #[test]
    fn seek_finds_the_last_frame_at_or_before_the_time() {
        let now = Instant::now();
        let mut p = player(0, now);
        p.command(Command::Seek(t(3)), now);
        assert_eq!(p.index(), 2);
        p.command(Command::Seek(t(4)), now);
        assert_eq!(p.index(), 3);
        // To the nearest second, as the frame's time is shown.
        p.command(Command::Seek(t(4) - Duration::from_millis(400)), now);
        assert_eq!(p.index(), 3, "4 s is what frame 3 shows");
        p.command(Command::Seek(t(4) - Duration::from_millis(600)), now);
        assert_eq!(p.index(), 2);
        // Frames closer than a second apart: the nearest, not the last
        // within the half second.
        let times: Vec<SystemTime> = [0, 100, 200, 300]
            .into_iter()
            .map(|ms| t(0) + Duration::from_millis(ms))
            .collect();
        let gaps = vec![Duration::from_millis(100); 3];
        let mut fast = Player::new(times, gaps, 3, 1.0, now);
        fast.command(Command::Seek(t(0)), now);
        assert_eq!(fast.index(), 0);
        fast.command(Command::Seek(t(0) + Duration::from_millis(180)), now);
        assert_eq!(fast.index(), 2);
        p.command(Command::Seek(t(0) - Duration::from_secs(9)), now);
        assert_eq!(p.index(), 0);
        p.command(Command::Seek(t(99)), now);
        assert_eq!(p.index(), 4);
    }

    #[test]
    fn playing_follows_the_recorded_gaps_divided_by_the_speed() {
        let start = Instant::now();
        let mut p = player(1, start);
        assert_eq!(p.deadline(), None, "paused");
        p.command(Command::PlayPause, start);
        // Frame 1 to 2 took 1 s.
        assert_eq!(p.deadline(), Some(start + Duration::from_secs(1)));
        assert!(!p.tick(start + Duration::from_millis(999)));
        assert!(p.tick(start + Duration::from_secs(1)));
        assert_eq!(p.index(), 2);
        // Frame 2 to 3 took 2 s; at 4x that is half a second, counted from
        // the move even when the move came late.
        p.command(Command::Faster, start);
        p.command(Command::Faster, start);
        assert_eq!(p.speed(), 4.0);
        let moved = start + Duration::from_secs(1);
        assert_eq!(p.deadline(), Some(moved + Duration::from_millis(500)));
        assert!(
            p.tick(start + Duration::from_secs(5)),
            "late: one frame, not a burst"
        );
        assert_eq!(p.index(), 3);
        assert_eq!(
            p.deadline(),
            Some(start + Duration::from_secs(5) + Duration::from_secs(1))
        );
        // The last frame ends the play.
        assert!(p.tick(start + Duration::from_secs(6)));
        assert_eq!(p.index(), 4);
        assert!(!p.playing());
        assert_eq!(p.deadline(), None);
        assert_eq!(p.take_notes(), ["end of the recording"]);
    }

    #[test]
    fn play_at_the_end_plays_from_the_start_and_pause_stops() {
        let now = Instant::now();
        let mut p = player(4, now);
        p.command(Command::PlayPause, now);
        assert!(p.playing());
        assert_eq!(p.index(), 0);
        assert_eq!(p.take_notes(), ["playing from the start"]);
        p.command(Command::PlayPause, now);
        assert!(!p.playing());
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn speed_steps_through_the_list_and_stops_at_its_ends() {
        let now = Instant::now();
        let mut p = player(0, now);
        for _ in 0..20 {
            p.command(Command::Faster, now);
        }
        assert_eq!(p.speed(), 64.0);
        assert_eq!(
            p.take_notes().last().unwrap(),
            "already at the fastest speed"
        );
        for _ in 0..20 {
            p.command(Command::Slower, now);
        }
        assert_eq!(p.speed(), 0.25);
        // A speed between two steps goes to the next one.
        let mut p = Player::new(vec![t(0)], vec![], 0, 10.0, now);
        p.command(Command::Faster, now);
        assert_eq!(p.speed(), 16.0);
        let mut p = Player::new(vec![t(0)], vec![], 0, 10.0, now);
        p.command(Command::Slower, now);
        assert_eq!(p.speed(), 8.0);
    }

    #[test]
    fn a_single_frame_does_not_play() {
        let now = Instant::now();
        let mut p = Player::new(vec![t(0)], vec![], 0, 1.0, now);
        p.command(Command::PlayPause, now);
        assert!(!p.playing());
        assert_eq!(p.take_notes(), ["one frame: nothing to play"]);
    }

    #[test]
    fn moving_while_playing_keeps_playing_from_there() {
        let now = Instant::now();
        let mut p = player(0, now);
        p.command(Command::PlayPause, now);
        let later = now + Duration::from_millis(700);
        p.command(Command::StepForward, later);
        assert!(p.playing());
        assert_eq!(p.deadline(), Some(later + Duration::from_secs(1)));
        p.command(Command::End, later);
        assert!(!p.playing(), "nothing left to play");
    }
}
