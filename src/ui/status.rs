//! The bottom line: a prompt (filter, or a replay's time), a message, or key
//! hints.

use super::Theme;
use crate::app::keymap::Action;
use crate::app::{App, Mode, View};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let line = if matches!(app.mode, Mode::Filter | Mode::Jump) {
        prompt(app, theme)
    } else if let Some(msg) = &app.status {
        Line::from(Span::styled(msg.clone(), theme.warn()))
    } else {
        hints(app, theme)
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn prompt<'a>(app: &'a App, theme: &Theme) -> Line<'a> {
    let label = if app.mode == Mode::Jump {
        "jump to: "
    } else {
        "/"
    };
    let mut spans = vec![
        Span::styled(label, theme.title()),
        // Selected (typing replaces it) as in a browser's address bar.
        if app.prompt_selected {
            Span::styled(app.prompt.clone(), theme.selected())
        } else {
            Span::raw(app.prompt.clone())
        },
        Span::styled(" ", theme.selected()),
    ];
    if let Some(err) = &app.prompt_error {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(err.clone(), theme.error()));
    } else if app.mode == Mode::Jump && app.prompt.is_empty() {
        spans.push(Span::styled(
            "  90s after the start, -1m before the end, 14:05 local time; Esc cancels",
            theme.dim(),
        ));
    }
    Line::from(spans)
}

/// `? help  / filter  ...`: the keys that matter here, from the keymap in force.
fn hints<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let key = |a: Action| {
        app.keymap
            .keys(a)
            .first()
            .map(|k| k.label())
            .unwrap_or_default()
    };
    let mut spans = Vec::new();
    let mut hint = |keys: String, what: &str| {
        spans.push(Span::styled(keys, theme.title()));
        spans.push(Span::styled(format!(" {what}  "), theme.dim()));
    };
    let replay = app.replay.as_ref();
    let playing = app.replay_status().is_some_and(|s| s.playing);
    let pause = match (replay, playing) {
        (None, _) => "pause",
        (Some(_), false) => "play",
        (Some(_), true) => "pause",
    };
    let step = || format!("{} {}", key(Action::StepBack), key(Action::StepForward));
    if app.view != View::Sockets {
        hint(
            format!("{}{}", key(Action::Up), key(Action::Down)),
            "scroll",
        );
        hint(super::views::keys_hint(app), "views");
        hint(key(Action::Back), "back");
        hint(key(Action::Help), "help");
        if replay.is_some() {
            hint(step(), "step");
        }
        hint(key(Action::Pause), pause);
        hint(key(Action::Quit), "quit");
    } else if replay.is_some() {
        hint(key(Action::Help), "help");
        hint(key(Action::Filter), "filter");
        hint(step(), "step");
        hint(key(Action::Pause), pause);
        let speed = format!("{} {}", key(Action::PlaySlower), key(Action::PlayFaster));
        hint(speed, "speed");
        hint(key(Action::JumpTo), "time");
        hint(key(Action::Group), "group");
        hint(key(Action::Quit), "quit");
    } else {
        for (a, what) in [
            (Action::Help, "help"),
            (Action::Filter, "filter"),
            (Action::Group, "group"),
            (Action::SortNext, "sort"),
            (Action::Enter, "inspect"),
            (Action::Back, "back"),
            (Action::Pause, "pause"),
            (Action::Quit, "quit"),
        ] {
            hint(key(a), what);
        }
    }
    Line::from(spans)
}
