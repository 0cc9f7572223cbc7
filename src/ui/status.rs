//! The bottom line: the filter prompt, a message, or key hints.

use super::Theme;
use crate::app::keymap::Action;
use crate::app::{App, Mode, View};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let line = if app.mode == Mode::Filter {
        let mut spans = vec![
            Span::styled("/", theme.title()),
            Span::raw(app.prompt.clone()),
            Span::styled(" ", theme.selected()),
        ];
        if let Some(err) = &app.prompt_error {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(err.clone(), theme.error()));
        }
        Line::from(spans)
    } else if let Some(msg) = &app.status {
        Line::from(Span::styled(msg.clone(), theme.warn()))
    } else {
        let hint = |a: Action, what: &str| {
            let key = app
                .keymap
                .keys(a)
                .first()
                .map(|k| k.label())
                .unwrap_or_default();
            vec![
                Span::styled(key, theme.title()),
                Span::styled(format!(" {what}  "), theme.dim()),
            ]
        };
        let mut spans = Vec::new();
        if app.view != View::Sockets {
            let key = |a: Action| {
                app.keymap
                    .keys(a)
                    .first()
                    .map(|k| k.label())
                    .unwrap_or_default()
            };
            spans.push(Span::styled(
                format!("{}{}", key(Action::Up), key(Action::Down)),
                theme.title(),
            ));
            spans.push(Span::styled(" scroll  ", theme.dim()));
            spans.push(Span::styled(super::views::keys_hint(app), theme.title()));
            spans.push(Span::styled(" views  ", theme.dim()));
            for (a, what) in [
                (Action::Back, "back"),
                (Action::Help, "help"),
                (Action::Pause, "pause"),
                (Action::Quit, "quit"),
            ] {
                spans.extend(hint(a, what));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
            return;
        }
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
            spans.extend(hint(a, what));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
