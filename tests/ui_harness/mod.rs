//! Shared by the tests that drive the monitor's `App` with keys and draw it
//! to ratatui's `TestBackend`: an app on a fixed snapshot, key presses, and
//! the screen as text.

#![allow(dead_code)] // each test file uses part of it

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sockscope::app::keymap::{Action, Keymap};
use sockscope::app::{App, CollectStats, Effect, Event};
use sockscope::model::{Filter, Snapshot, fixture};
use sockscope::ui::{self, Theme};
use std::sync::Arc;
use std::time::Duration;

/// What the collector reports with each fixture sample (`took 12ms` in the header).
pub const STATS: CollectStats = CollectStats {
    took: Duration::from_millis(12),
    interval: Duration::from_secs(1),
};

/// An app with the default keys, no filter, and fixed host and kernel
/// names for the header; no sample yet.
pub fn new_app() -> App {
    let mut app = App::new(
        Keymap::defaults(),
        Filter::default(),
        Duration::from_secs(1),
    );
    app.host = "testhost".into();
    app.kernel = "6.1.0".into();
    app
}

/// An app that has shown `snap`.
pub fn app_with(snap: Snapshot) -> App {
    let mut app = new_app();
    app.handle(Event::Snapshot(Arc::new(snap), STATS));
    app
}

/// The fixture, with redis-server (pid 1000, 3 sockets, 2 CLOSE_WAIT) on the first row.
pub fn fixture_app() -> App {
    app_with(fixture::small())
}

pub fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

pub fn render(app: &App, w: u16, h: u16, theme: Theme) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| ui::draw(f, app, &theme)).unwrap();
    term
}

/// The screen's text, one line per row.
pub fn screen(term: &Terminal<TestBackend>) -> String {
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Asserts that the help text shows every key bound to every action except
/// those in `except` (the other mode's: live-only or replay-only).
pub fn assert_help_lists_keys(help: &str, keymap: &Keymap, except: &[Action]) {
    for a in Action::ALL {
        if except.contains(&a) {
            continue;
        }
        for k in keymap.keys(a) {
            assert!(
                help.contains(&k.label()),
                "help lacks {} for {}:\n{help}",
                k.label(),
                a.name()
            );
        }
    }
}
