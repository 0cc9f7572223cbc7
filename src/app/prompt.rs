//! The filter prompt (`/`): typed terms apply live; Enter keeps them, Esc
//! goes back to the filter from before, a bad term keeps the last good one.

use super::{App, Effect, Mode};
use crate::model::Filter;
use crossterm::event::{KeyCode, KeyEvent};

impl App {
    pub(super) fn on_prompt_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                self.prompt_selected = false;
                if let Some(err) = self.prompt_error.take() {
                    // Keep the filter from before the prompt, not a half-typed one.
                    self.filter = self.prompt_saved();
                    self.filter_changed();
                    let kept = if self.filter.is_empty() {
                        "no filter"
                    } else {
                        self.filter.text()
                    };
                    self.status = Some(format!("{err}; kept {kept}"));
                }
            }
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.prompt_selected = false;
                self.prompt_error = None;
                // Cancel: back to the filter in force before the prompt opened.
                let saved = self.prompt_saved();
                let changed = saved.text() != self.filter.text();
                self.filter = saved;
                if changed {
                    self.filter_changed();
                }
            }
            KeyCode::Backspace => {
                if std::mem::take(&mut self.prompt_selected) {
                    self.prompt.clear();
                } else {
                    self.prompt.pop();
                }
                self.apply_prompt();
            }
            // A cursor key keeps the text for editing (at its end).
            KeyCode::Left | KeyCode::Right | KeyCode::Home | KeyCode::End => {
                self.prompt_selected = false;
            }
            KeyCode::Char('c')
                if key
                    .modifiers
                    .contains(crossterm::event::KeyModifiers::CONTROL) =>
            {
                return vec![Effect::Quit];
            }
            KeyCode::Char('u')
                if key
                    .modifiers
                    .contains(crossterm::event::KeyModifiers::CONTROL) =>
            {
                self.prompt.clear();
                self.prompt_selected = false;
                self.apply_prompt();
            }
            KeyCode::Char(c) if !c.is_control() => {
                // Typing over the selected filter replaces it.
                if std::mem::take(&mut self.prompt_selected) {
                    self.prompt.clear();
                }
                self.prompt.push(c);
                self.apply_prompt();
            }
            _ => {}
        }
        Vec::new()
    }

    fn prompt_saved(&self) -> Filter {
        self.saved_filter.clone().unwrap_or_default()
    }

    /// Applies the prompt live as it is typed; a bad term shows its error and
    /// the last good filter stays in force.
    fn apply_prompt(&mut self) {
        match Filter::parse(&self.prompt) {
            Ok(f) => {
                self.prompt_error = None;
                let changed = f.text() != self.filter.text();
                self.filter = f;
                if changed {
                    self.filter_changed();
                }
            }
            Err(e) => self.prompt_error = Some(e.to_string()),
        }
    }
}
