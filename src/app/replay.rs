//! The app's side of `sockscope replay`: frames in from the driver, the keys
//! that move through the recording out as [`Effect::Replay`], the time
//! prompt (`t`), and the live-system actions a replay refuses.

use super::keymap::Action;
use super::{App, Effect, Mode};
use crate::record::parse_at_between;
use crate::replay::{Command, Status, Update};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::tz::TimeZone;

/// What the app knows of the replay it shows.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Where the driver is; None until its first update.
    pub status: Option<Status>,
    /// The zone of the header's clock and of `14:05` in the time prompt.
    pub tz: TimeZone,
}

const NOT_LIVE: &str = "a replay shows recorded sockets, not live ones: k and x are off (run sockscope on the machine)";

impl App {
    /// Makes this app a replay: its samples come from a recording, and the
    /// header, keys and actions change accordingly.
    pub fn start_replay(&mut self, tz: TimeZone) {
        self.replay = Some(Replay { status: None, tz });
    }

    pub fn replay_status(&self) -> Option<&Status> {
        self.replay.as_ref()?.status.as_ref()
    }

    pub(super) fn on_replay_update(&mut self, update: Update) -> Vec<Effect> {
        let Update {
            status,
            frame,
            note,
            ticket,
        } = update;
        if let Some(r) = &mut self.replay {
            r.status = Some(status);
        }
        if let Some(note) = note {
            self.status = Some(note);
        }
        if let Some(frame) = frame {
            self.host = frame.host;
            self.kernel = frame.kernel;
            // Digested by the driver, with the history of the frames before.
            self.show(frame.analysis);
        }
        // Taken in: the driver may prepare the next frame.
        drop(ticket);
        self.resolve_effects()
    }

    /// Replay keys, and keys a replay handles its own way; None for the rest.
    pub(super) fn on_replay_action(&mut self, action: Action) -> Option<Vec<Effect>> {
        let Some(replay) = &self.replay else {
            if Action::REPLAY.contains(&action) {
                self.status = Some(format!(
                    "{} moves through a recording: sockscope replay FILE",
                    self.key_label(action)
                ));
                return Some(Vec::new());
            }
            return None;
        };
        let command = match action {
            Action::StepBack => Command::StepBack,
            Action::StepForward => Command::StepForward,
            Action::PlaySlower => Command::Slower,
            Action::PlayFaster => Command::Faster,
            Action::ReplayStart => Command::Start,
            Action::ReplayEnd => Command::End,
            Action::Pause => Command::PlayPause,
            Action::JumpTo => {
                if replay.status.is_none() {
                    self.status = Some("the recording is still loading".into());
                } else {
                    self.mode = Mode::Jump;
                    self.prompt.clear();
                    self.prompt_error = None;
                }
                return Some(Vec::new());
            }
            Action::Kill | Action::Destroy => {
                self.status = Some(NOT_LIVE.into());
                return Some(Vec::new());
            }
            Action::Slower | Action::Faster => {
                self.status = Some(format!(
                    "a replay keeps the recorded interval: {} and {} change the playback speed",
                    self.key_label(Action::PlaySlower),
                    self.key_label(Action::PlayFaster)
                ));
                return Some(Vec::new());
            }
            _ => return None,
        };
        Some(vec![Effect::Replay(command)])
    }

    /// The first key bound to `action`, as the help writes it.
    pub(super) fn key_label(&self, action: Action) -> String {
        self.keymap
            .keys(action)
            .first()
            .map(|k| k.label())
            .unwrap_or_else(|| action.name().to_string())
    }

    /// Keys in the time prompt: Enter jumps, or shows why the time is not
    /// one and keeps the prompt open; Esc cancels.
    pub(super) fn on_jump_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => {
                let Some(status) = self.replay_status() else {
                    self.mode = Mode::Normal;
                    return Vec::new();
                };
                let tz = self.replay.as_ref().map_or(TimeZone::UTC, |r| r.tz.clone());
                match parse_at_between(&self.prompt, status.start, status.end, &tz) {
                    Ok(t) => {
                        self.mode = Mode::Normal;
                        self.prompt.clear();
                        return vec![Effect::Replay(Command::Seek(t))];
                    }
                    Err(e) => self.prompt_error = Some(e),
                }
            }
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.prompt.clear();
                self.prompt_error = None;
            }
            KeyCode::Char('c') if ctrl => return vec![Effect::Quit],
            KeyCode::Char('u') if ctrl => {
                self.prompt.clear();
                self.prompt_error = None;
            }
            KeyCode::Backspace => {
                self.prompt.pop();
                self.prompt_error = None;
            }
            KeyCode::Char(c) if !c.is_control() && !ctrl => {
                self.prompt.push(c);
                self.prompt_error = None;
            }
            _ => {}
        }
        Vec::new()
    }
}
