//! The monitor's `App` in a replay, fed the driver's updates by hand on
//! fixture snapshots and drawn to ratatui's TestBackend: what the header
//! says, which keys become replay commands, what a replay refuses, the time
//! prompt, and how jumps and steps treat the history. Times are shown in
//! UTC here, so the screens are the same on every machine.

use crate::ui_harness;

use ui_harness::{new_app, press, render, screen, typed};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sockscope::act::export::Format;
use sockscope::app::actions::ActionEffect;
use sockscope::app::keymap::Action;
use sockscope::app::{App, Effect, Event, Mode};
use sockscope::engine::Analyzer;
use sockscope::model::findings::Kind;
use sockscope::model::history::History;
use sockscope::model::{TcpState, fixture};
use sockscope::replay::{Command, Frame, Status, Ticket, Update};
use sockscope::ui::Theme;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The fixture's time, 2027-01-15 08:00:00 UTC: the recording's start.
fn start() -> SystemTime {
    fixture::small().taken_at
}

fn status(index: usize, playing: bool) -> Status {
    Status {
        index,
        frames: 3601,
        time: start() + Duration::from_secs(index as u64),
        start: start(),
        end: start() + Duration::from_secs(3600),
        playing,
        speed: 1.0,
    }
}

thread_local! {
    /// The driver's analyzer: each test runs on a thread of its own.
    static ANALYZER: std::cell::RefCell<Analyzer> = std::cell::RefCell::new(Analyzer::new());
}

/// What the driver sends after a jump to frame `index`: its snapshot and
/// the history of `lead` frames before it.
fn jump(index: usize, lead: usize) -> Update {
    let mut history = History::default();
    for n in index - lead..=index {
        history.record(&fixture::leaking(n as u64));
    }
    // As the driver does: an analyzer goes on from the rebuilt history.
    let analysis = ANALYZER.with_borrow_mut(|a| {
        *a = Analyzer::with_history(history);
        a.analyze(Arc::new(fixture::leaking(index as u64)), None, None)
    });
    Update {
        status: status(index, false),
        frame: Some(Frame {
            analysis,
            jumped: true,
            host: "recorded-host".into(),
            kernel: "6.1.0-rec".into(),
        }),
        note: None,
        ticket: None,
    }
}

/// What the driver sends for the frame after the one on screen.
fn next(index: usize) -> Update {
    Update {
        status: status(index, false),
        frame: Some(Frame {
            analysis: ANALYZER.with_borrow_mut(|a| {
                a.digest(Arc::new(fixture::leaking(index as u64)), None, None)
            }),
            jumped: false,
            host: "recorded-host".into(),
            kernel: "6.1.0-rec".into(),
        }),
        note: None,
        ticket: None,
    }
}

fn send(app: &mut App, update: Update) -> Vec<Effect> {
    app.handle(Event::Replay(Box::new(update)))
}

/// A replay showing frame 125 (+2m05s) after a jump with 5 frames of lead-in.
fn replay_app() -> App {
    let mut app = new_app();
    app.start_replay(jiff::tz::TimeZone::UTC);
    // 20 frames of lead-in: a growth figure needs 15 s of history.
    send(&mut app, jump(125, 20));
    app
}

fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.handle(Event::Key(KeyEvent::new(code, modifiers)))
}

fn last_line(t: &str) -> &str {
    t.lines().last().unwrap_or("")
}

#[test]
fn the_header_says_replay_with_the_frame_time_position_and_frame_number() {
    let app = replay_app();
    let t = screen(&render(&app, 120, 40, Theme::mono()));
    let header = t.lines().next().unwrap();
    assert!(
        header.starts_with(
            "sockscope │ REPLAY paused 1x │ 2027-01-15 08:02:05 │ +2m05s / 1h00m00s │ 133 sockets │ recorded-host │ frame 126/3601"
        ),
        "{header}"
    );
    assert!(
        header.contains("recorded-host"),
        "the recording's host: {header}"
    );
    assert!(
        !header.contains(" ago"),
        "no sample age in a replay: {header}"
    );
    assert!(!header.contains("every "), "no refresh interval: {header}");
    assert!(last_line(&t).contains(", . step"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn at_80x24_the_header_keeps_replay_time_and_position() {
    let mut app = replay_app();
    send(
        &mut app,
        Update {
            status: status(125, true),
            frame: None,
            note: None,
            ticket: None,
        },
    );
    let t = screen(&render(&app, 80, 24, Theme::mono()));
    let header = t.lines().next().unwrap();
    assert!(
        header
            .starts_with("sockscope │ REPLAY playing 1x │ 2027-01-15 08:02:05 │ +2m05s / 1h00m00s"),
        "{header}"
    );
    assert!(last_line(&t).contains("p pause"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn the_replay_marker_is_reverse_video_so_it_shows_without_colour() {
    let app = replay_app();
    let term = render(&app, 120, 40, Theme::mono());
    let buf = term.backend().buffer();
    let col = "sockscope │ ".chars().count() as u16;
    assert_eq!(buf[(col, 0)].symbol(), "R");
    assert!(
        buf[(col, 0)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );
}

#[test]
fn replay_keys_become_commands_for_the_driver_in_every_view() {
    let mut app = replay_app();
    let none = KeyModifiers::NONE;
    for (code, mods, command) in [
        (KeyCode::Char('.'), none, Command::StepForward),
        (KeyCode::Char(','), none, Command::StepBack),
        (KeyCode::Char(']'), none, Command::Faster),
        (KeyCode::Char('['), none, Command::Slower),
        (KeyCode::Char('{'), none, Command::Start),
        (KeyCode::Char('}'), none, Command::End),
        (KeyCode::Home, KeyModifiers::CONTROL, Command::Start),
        (KeyCode::End, KeyModifiers::CONTROL, Command::End),
        (KeyCode::Char('p'), none, Command::PlayPause),
        (KeyCode::Char(' '), none, Command::PlayPause),
    ] {
        for view in ['1', '2', '3', '4', '5'] {
            press(&mut app, KeyCode::Char(view));
            assert_eq!(
                key(&mut app, code, mods),
                vec![Effect::Replay(command)],
                "{code:?} in view {view}"
            );
        }
    }
    assert!(!app.paused, "p plays or pauses the replay, not the view");
    // Home and End without Ctrl still move in the table.
    press(&mut app, KeyCode::Char('1'));
    assert!(press(&mut app, KeyCode::End).is_empty());
    assert_eq!(app.cursor, app.rows.len() - 1);
}

#[test]
fn k_and_x_are_refused_because_nothing_in_a_replay_is_live() {
    let mut app = replay_app();
    for view in ['1', '2'] {
        press(&mut app, KeyCode::Char(view));
        for k in ['k', 'x'] {
            assert!(press(&mut app, KeyCode::Char(k)).is_empty(), "{k}");
            assert_eq!(app.mode, Mode::Normal);
            assert!(app.dialog.is_none());
            let status = app.status.clone().unwrap_or_default();
            assert!(
                status.contains("not live") && status.contains("k and x are off"),
                "{status}"
            );
            let t = screen(&render(&app, 120, 40, Theme::mono()));
            assert!(
                last_line(&t).starts_with("a replay shows recorded sockets"),
                "{t}"
            );
        }
    }
    press(&mut app, KeyCode::Char('1'));
    // The refresh interval is the recording's.
    assert!(press(&mut app, KeyCode::Char('+')).is_empty());
    assert!(
        app.status
            .as_deref()
            .unwrap()
            .contains("[ and ] change the playback speed")
    );
    // Export and copy work on what is shown.
    assert_eq!(
        press(&mut app, KeyCode::Char('e')),
        vec![Effect::Action(ActionEffect::Export(Format::Csv))]
    );
    assert!(matches!(
        press(&mut app, KeyCode::Char('y')).as_slice(),
        [Effect::Action(ActionEffect::Copy(_))]
    ));
}

#[test]
fn replay_keys_in_the_live_monitor_only_say_where_they_work() {
    let mut app = ui_harness::fixture_app();
    for c in [',', '.', '[', ']', '{', '}', 't'] {
        assert!(press(&mut app, KeyCode::Char(c)).is_empty(), "{c}");
        let status = app.status.clone().unwrap_or_default();
        assert!(status.contains("sockscope replay FILE"), "{c}: {status}");
        assert_eq!(app.mode, Mode::Normal);
    }
}

#[test]
fn the_time_prompt_jumps_to_a_valid_time_and_keeps_a_bad_one_with_its_error() {
    let mut app = replay_app();
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.mode, Mode::Jump);
    let t = screen(&render(&app, 100, 30, Theme::mono()));
    assert!(last_line(&t).starts_with("jump to:"), "{t}");
    assert!(last_line(&t).contains("-1m before the end"), "{t}");

    typed(&mut app, "soon");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.mode, Mode::Jump, "a bad time keeps the prompt open");
    let t = screen(&render(&app, 140, 30, Theme::mono()));
    assert!(
        last_line(&t).starts_with("jump to: soon")
            && last_line(&t).contains("`soon` is not a time"),
        "{t}"
    );
    // Editing clears the error; a time past the end is refused with the length.
    press(&mut app, KeyCode::Char('u'));
    key(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(app.prompt, "");
    typed(&mut app, "2h");
    press(&mut app, KeyCode::Enter);
    assert!(
        app.prompt_error
            .as_deref()
            .unwrap()
            .contains("past the end")
    );
    for _ in 0..2 {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "1m30s");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Effect::Replay(Command::Seek(
            start() + Duration::from_secs(90)
        ))]
    );
    assert_eq!(app.mode, Mode::Normal);
    // Wall-clock time, in the replay's zone (UTC here), and before the end.
    press(&mut app, KeyCode::Char('t'));
    typed(&mut app, "08:30");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Effect::Replay(Command::Seek(
            start() + Duration::from_secs(1800)
        ))]
    );
    press(&mut app, KeyCode::Char('t'));
    typed(&mut app, "-10s");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Effect::Replay(Command::Seek(
            start() + Duration::from_secs(3590)
        ))]
    );
    // Esc cancels without moving; `q` in the prompt is a character, not quit.
    press(&mut app, KeyCode::Char('t'));
    typed(&mut app, "q");
    assert_eq!(app.mode, Mode::Jump);
    assert!(press(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.prompt, "");
}

#[test]
fn a_jump_replaces_the_history_and_the_next_frame_is_recorded_on_top() {
    let mut app = replay_app();
    assert_eq!(
        app.history.samples().len(),
        21,
        "20 frames of lead-in and the target"
    );
    send(&mut app, next(126));
    assert_eq!(app.history.samples().len(), 22);
    assert_eq!(app.history.delta(TcpState::CloseWait), 1);
    assert_eq!(app.snapshot.taken_at, start() + Duration::from_secs(126));
    assert_eq!(app.replay_status().unwrap().index, 126);
    // Back to the start: a history of one frame.
    send(&mut app, jump(0, 0));
    assert_eq!(app.history.samples().len(), 1);
    assert_eq!(app.counts.get(TcpState::CloseWait), 2);
}

#[test]
fn findings_and_the_detail_pane_work_on_the_recorded_frame() {
    let mut app = replay_app();
    let leak = app
        .findings
        .iter()
        .find(|f| f.kind == Kind::CloseWaitLeak && f.pid == Some(1000))
        .expect("redis-server's CLOSE_WAIT leak");
    assert_eq!(leak.count, 2 + 125);
    assert!(leak.summary.contains("growing"), "{}", leak.summary);
    press(&mut app, KeyCode::Char('2'));
    let t = screen(&render(&app, 120, 40, Theme::mono()));
    assert!(t.contains("close_wait_leak"), "{t}");
    // Enter drills from the finding into its sockets: the recorded ones.
    press(&mut app, KeyCode::Char('1'));
    press(&mut app, KeyCode::Enter);
    assert!(app.rows.len() >= 127, "{} rows", app.rows.len());
}

#[test]
fn the_app_lets_the_driver_go_on_once_it_took_a_frame_in() {
    let mut app = replay_app();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut update = next(126);
    update.ticket = Some(Ticket::new(move || tx.send(()).unwrap()));
    send(&mut app, update);
    assert!(rx.try_recv().is_ok(), "the ticket was dropped");
}

#[test]
fn a_note_from_the_driver_is_shown_until_the_next_key() {
    let mut app = replay_app();
    send(
        &mut app,
        Update {
            status: status(125, false),
            frame: None,
            note: Some("ignored 17 bytes of a torn tail at the end of x.rec".into()),
            ticket: None,
        },
    );
    let t = screen(&render(&app, 120, 40, Theme::mono()));
    assert!(
        last_line(&t).starts_with("ignored 17 bytes of a torn tail"),
        "{t}"
    );
    press(&mut app, KeyCode::Down);
    assert_eq!(app.status, None);
}

#[test]
fn the_replay_help_lists_its_keys_instead_of_k_x_and_the_interval_and_fits_80x24() {
    let mut app = replay_app();
    press(&mut app, KeyCode::Char('?'));
    let t = screen(&render(&app, 80, 24, Theme::mono()));
    ui_harness::assert_help_lists_keys(&t, &app.keymap, &Action::LIVE);
    assert!(t.contains("play / pause the replay"), "{t}");
    assert!(t.contains("Ctrl-Home"), "{t}");
    assert!(!t.contains("refresh interval"), "{t}");
    assert!(!t.contains("signal the owner"), "{t}");
    assert!(t.contains("state:cw"), "the filter syntax still fits:\n{t}");
}

#[test]
fn hostile_recorded_names_are_drawn_without_control_characters() {
    let mut app = new_app();
    app.start_replay(jiff::tz::TimeZone::UTC);
    let mut update = jump(3, 1);
    if let Some(frame) = &mut update.frame {
        let mut snap = (*frame.analysis.snapshot).clone();
        snap.processes.get_mut(&1000).unwrap().name = "evil\x1b[2J\x07name".into();
        let mut analysis = (*frame.analysis).clone();
        analysis.snapshot = Arc::new(snap);
        frame.analysis = Arc::new(analysis);
        frame.host = "host\x1b]0;pwned\x07".into();
    }
    send(&mut app, update);
    let t = screen(&render(&app, 120, 40, Theme::mono()));
    assert!(!t.contains('\x1b') && !t.contains('\x07'), "{t:?}");
    assert!(t.contains("evil"), "{t}");
}
