//! The kill dialog (`k`) and the destroy confirmation (`x`), centred over
//! the main screen.
//!
//! ```text
//! ┌ send a signal ─────────────────────────────────┐
//! │ pid       23449                                │
//! │ process   python3                              │
//! │ user      root                                 │
//! │ command   python3 leak.py 6800                 │
//! │ sockets   341 held, 260 in CLOSE_WAIT          │
//! │                                                │
//! │ signal  ▶ SIGTERM  ask it to exit              │
//! │           SIGKILL  end it at once              │
//! │ ...                                            │
//! │ Enter send  ↑↓ signal  Esc cancel              │
//! └────────────────────────────────────────────────┘
//! ```

use super::Theme;
use crate::act::signal::Signal;
use crate::app::App;
use crate::app::actions::{DestroyDialog, Dialog, KillDialog, Opening};
use crate::sanitize::clean;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub fn render(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    // The header and the status line stay visible around the dialog.
    let area = if area.height > 12 {
        Rect::new(area.x, area.y + 1, area.width, area.height - 2)
    } else {
        area
    };
    let (title, lines) = match &app.dialog {
        Some(Dialog::Kill(d)) => (" send a signal ".to_string(), kill_lines(app, d, theme)),
        Some(Dialog::Destroy(d)) => destroy_lines(d, theme, area.height),
        None => return,
    };
    let width = area.width.min(76);
    let height = area.height.min(lines.len() as u16 + 2);
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(title, theme.title())),
        ),
        popup,
    );
}

fn field<'a>(name: &'a str, value: String, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!(" {name:<9} "), theme.dim()),
        Span::raw(value),
    ])
}

fn kill_lines<'a>(app: &App, d: &'a KillDialog, theme: &Theme) -> Vec<Line<'a>> {
    let o = &d.owner;
    let ready = match &d.target {
        Opening::Ready(t) => Some(t),
        Opening::Pending => None,
    };
    // What was read after the pidfd was taken, once there is a pidfd.
    let name = ready.map_or(o.name.as_str(), |t| t.name.as_str());
    let mut name = clean(name).into_owned();
    if ready.is_some_and(|t| t.name != o.name) {
        name.push_str(&format!("  (was {} in the sample)", clean(&o.name)));
    }
    let user = ready
        .and_then(|t| app.snapshot.user_name(t.uid).map(str::to_string))
        .or_else(|| o.user.clone())
        .or_else(|| ready.map(|t| t.uid.to_string()))
        .unwrap_or_else(|| "?".into());
    let cmdline = ready.map_or(o.cmdline.as_str(), |t| t.cmdline.as_str());
    let mut lines = vec![
        field("pid", o.pid.to_string(), theme),
        field("process", name, theme),
        field("user", clean(&user).into_owned(), theme),
        field("command", clean(cmdline).into_owned(), theme),
        field(
            "sockets",
            format!("{} held, {} in CLOSE_WAIT", o.sockets, o.close_wait),
            theme,
        ),
    ];
    if let Some(only) = d.choices.first().filter(|_| d.choices.len() == 1) {
        let text = only.describe(&app.snapshot);
        let text = text.strip_prefix("frees ").unwrap_or(&text);
        lines.push(field("frees", clean(text).into_owned(), theme));
    }
    lines.push(Line::from(""));
    if d.choices.len() > 1 {
        lines.extend(choice_lines(app, d, theme));
        lines.push(Line::from(""));
    }
    for (i, s) in Signal::ALL.iter().enumerate() {
        let label = if i == 0 { " signal" } else { "" };
        let text = format!("{:<8} {}", s.to_string(), s.describe());
        lines.push(choice_line(label, text, *s == d.signal, theme));
    }
    lines.push(Line::from(""));
    if let Some(ssh) = &d.ssh {
        let text = if d.asked_again {
            format!(" ! this process holds your SSH session ({ssh}): Enter again to send anyway")
        } else {
            format!(" ! this process holds your SSH session ({ssh}): signalling it may end it")
        };
        lines.push(Line::from(Span::styled(text, theme.trouble())));
    }
    // Every holder's pidfd, not only the first's: Enter waits for them all.
    let all_ready = ready.is_some() && d.others.iter().all(|(_, t)| matches!(t, Opening::Ready(_)));
    lines.push(if all_ready {
        Line::from(Span::styled(
            if d.others.is_empty() {
                " pidfd open: if the process exits, no other process gets the signal"
            } else {
                " pidfds open: if a process exits, no other process gets the signal"
            },
            theme.dim(),
        ))
    } else {
        Line::from(Span::styled(" opening the process…", theme.dim()))
    });
    let keys: &[(&str, &str)] = if d.choices.len() > 1 {
        &[
            ("Enter", "send"),
            ("↑↓", "signal"),
            ("←→", "whom"),
            ("Esc", "cancel"),
        ]
    } else {
        &[("Enter", "send"), ("↑↓", "signal"), ("Esc", "cancel")]
    };
    lines.push(keys_line(keys, theme));
    lines
}

/// One line of a list to choose from: a label on the first, `▶` on the chosen.
fn choice_line<'a>(label: &str, text: String, chosen: bool, theme: &Theme) -> Line<'a> {
    let style = if chosen {
        theme.selected()
    } else {
        Style::new()
    };
    Line::from(vec![
        Span::styled(format!("{label:<10}"), theme.dim()),
        Span::raw(if chosen { "▶ " } else { "  " }),
        Span::styled(text, style),
    ])
}

/// Choices shown at once; the rest scroll with ←→.
const CHOICES_SHOWN: usize = 3;

/// Whom to signal: each holder of the selection, then all of them, with what
/// each choice frees (a socket is freed only when all its holders let go).
fn choice_lines<'a>(app: &App, d: &KillDialog, theme: &Theme) -> Vec<Line<'a>> {
    let n = d.choices.len();
    let first = d
        .choice
        .saturating_sub(CHOICES_SHOWN - 1)
        .min(n.saturating_sub(CHOICES_SHOWN));
    let who_of = |c: &crate::act::plan::Frees| match &c.pids[..] {
        [one] => {
            let name = app
                .snapshot
                .process(*one)
                .map_or("?".to_string(), |p| clean(&p.name).into_owned());
            format!("{one} {name}")
        }
        many => format!("all {} holders", many.len()),
    };
    // As wide as the widest shown, so the "frees" texts line up.
    let width = d
        .choices
        .iter()
        .skip(first)
        .take(CHOICES_SHOWN)
        .map(|c| who_of(c).chars().count())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (i, c) in d.choices.iter().enumerate().skip(first).take(CHOICES_SHOWN) {
        let label = if i == first { " to" } else { "" };
        let text = format!("{:<width$} {}", who_of(c), c.short());
        lines.push(choice_line(label, text, i == d.choice, theme));
    }
    if n > CHOICES_SHOWN {
        lines.push(Line::from(Span::styled(
            format!("{:<12}{} of {n}  ←→ for the others", "", d.choice + 1),
            theme.dim(),
        )));
    }
    lines
}

fn keys_line<'a>(keys: &[(&'a str, &'a str)], theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::raw(" ")];
    for (k, what) in keys {
        spans.push(Span::styled(*k, theme.title()));
        spans.push(Span::styled(format!(" {what}  "), theme.dim()));
    }
    Line::from(spans)
}

/// What the destroy would hurt (true) or leave (false), one line each.
fn destroy_notes(d: &DestroyDialog) -> Vec<(String, bool)> {
    let mut notes: Vec<(String, bool)> = d
        .warnings
        .iter()
        .map(|w| (format!(" ! {}", clean(w)), true))
        .collect();
    if d.spared_listeners > 0 {
        notes.push((
            format!(
                " {} listener{} left out: add state:listen to the filter to include {}",
                d.spared_listeners,
                if d.spared_listeners == 1 { "" } else { "s" },
                if d.spared_listeners == 1 {
                    "it"
                } else {
                    "them"
                },
            ),
            false,
        ));
    }
    let held = d.held.len();
    if held > 0 {
        notes.push((
            format!(
                " Their {held} descriptors stay open in their processes until close() or exit."
            ),
            false,
        ));
    }
    notes
}

fn destroy_lines<'a>(d: &'a DestroyDialog, theme: &Theme, height: u16) -> (String, Vec<Line<'a>>) {
    let n = d.tuples.len();
    let title = format!(" destroy {n} socket{} ", if n == 1 { "" } else { "s" });
    let states: Vec<String> = d.states.iter().map(|(s, c)| format!("{c} {s}")).collect();
    let mut lines = vec![Line::from(vec![
        Span::raw(" "),
        Span::raw(clean(&d.what).into_owned()),
        Span::styled(": ", theme.dim()),
        Span::raw(states.join(", ")),
    ])];
    // Borders, the line above, and the four below the list.
    let notes = destroy_notes(d);
    let fixed = 2 + 1 + 4 + usize::from(d.ssh.is_some()) + notes.len();
    let room = usize::from(height).saturating_sub(fixed).max(1);
    // The last page stays full however far the list was scrolled.
    let scroll = d.scroll.min(n.saturating_sub(room));
    for t in d.tuples.iter().skip(scroll).take(room) {
        let style = if t.state.is_trouble() {
            theme.trouble()
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(format!("  {t}"), style)));
    }
    let end = (scroll + room).min(n);
    let more = n - end;
    if more > 0 || scroll > 0 {
        let more = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        lines.push(Line::from(Span::styled(
            format!("  {}–{end} of {n}{more}  ↑↓ PgUp PgDn scroll", scroll + 1),
            theme.dim(),
        )));
    }
    for (text, hurts) in notes {
        let style = if hurts { theme.trouble() } else { theme.dim() };
        lines.push(Line::from(Span::styled(text, style)));
    }
    lines.push(Line::from(Span::styled(
        " The kernel aborts each one (RST to the peer where needed), as ss -K.",
        theme.dim(),
    )));
    if let Some(ssh) = &d.ssh {
        let text = if d.asked_again {
            format!(" ! one is your SSH session ({ssh}): Enter again to destroy anyway")
        } else {
            format!(" ! one is your SSH session ({ssh}): destroying it ends this session")
        };
        lines.push(Line::from(Span::styled(text, theme.trouble())));
    }
    lines.push(Line::from(""));
    lines.push(keys_line(&[("Enter", "destroy"), ("Esc", "cancel")], theme));
    (title, lines)
}
