//! Shared holders drawn to ratatui's TestBackend at 80×24: a forked server
//! whose parent and child hold the same sockets, its accept queue, and the
//! kill dialog that offers both and says what each frees.

use crate::ui_harness;

use ui_harness::{app_with, press as key, render, screen, typed};

use crossterm::event::KeyCode;
use sockscope::app::App;
use sockscope::app::actions::Dialog;
use sockscope::model::{Proto, TcpState, fixture};
use sockscope::ui::Theme;
use std::time::Duration;

fn app(snap: sockscope::model::Snapshot) -> App {
    let clock = snap.taken_at + Duration::from_millis(300);
    let mut app = app_with(snap);
    app.clock = clock;
    app
}

fn text(app: &App) -> String {
    screen(&render(app, 80, 24, Theme::mono()))
}

#[test]
fn process_rows_say_what_a_parent_and_its_child_share() {
    let mut a = app(fixture::forked());
    typed(&mut a, "/6900");
    key(&mut a, KeyCode::Enter);
    let t = text(&a);
    assert!(t.contains("SHARED"), "{t}");
    let child = t
        .lines()
        .find(|l| l.trim_start().starts_with("101 "))
        .expect("child row");
    assert!(child.contains("4 w/100"), "{child}"); // the listener and 3 CLOSE_WAIT
    let parent = t
        .lines()
        .find(|l| l.trim_start().starts_with("100 "))
        .expect("parent row");
    assert!(parent.contains("4 w/101"), "{parent}");
    insta::assert_snapshot!(t);
}

#[test]
fn inside_the_childs_drill_down_every_row_shows_the_child() {
    let mut a = app(fixture::forked());
    typed(&mut a, "/6900");
    key(&mut a, KeyCode::Enter);
    // Rows sort by total: the child (5 sockets) first.
    key(&mut a, KeyCode::Enter);
    let t = text(&a);
    let rows: Vec<&str> = t.lines().filter(|l| l.contains("127.0.0.1:6900")).collect();
    assert_eq!(rows.len(), 5, "{t}");
    for r in &rows {
        assert!(r.contains(" 101 oracle"), "{r}");
    }
    assert_eq!(
        rows.iter().filter(|r| r.contains("oracle +1")).count(),
        4,
        "{t}"
    );
    insta::assert_snapshot!(t);
}

#[test]
fn an_unaccepted_connection_shows_as_the_listeners_queue_with_a_reason() {
    let mut snap = fixture::forked();
    let mut q = fixture::socket(
        Proto::Tcp,
        TcpState::CloseWait,
        "127.0.0.1:6900",
        "127.0.0.1:47000",
        0,
        0,
        &[],
    );
    q.cookie = 5;
    snap.sockets.push(q);
    let mut a = app(snap);
    typed(&mut a, "/6900 cw");
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char('g'));
    key(&mut a, KeyCode::Char('g'));
    key(&mut a, KeyCode::Char('g'));
    let t = text(&a);
    let queued: Vec<&str> = t.lines().filter(|l| l.contains("queue of")).collect();
    assert_eq!(queued.len(), 1, "{t}");
    assert!(queued[0].contains(" 100 queue of oracle"), "{t}");
    assert!(!t.contains("(no owner)"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn the_kill_dialog_offers_each_holder_and_both_with_what_each_frees() {
    let mut a = app(fixture::forked());
    typed(&mut a, "/6900");
    key(&mut a, KeyCode::Enter);
    key(&mut a, KeyCode::Char('k'));
    let Some(Dialog::Kill(d)) = &a.dialog else {
        panic!("no kill dialog")
    };
    assert_eq!(d.owner.pid, 101);
    let choices: Vec<(Vec<u32>, u32, u32)> = d
        .choices
        .iter()
        .map(|c| (c.pids.clone(), c.freed, c.of))
        .collect();
    assert_eq!(
        choices,
        vec![(vec![101], 1, 5), (vec![100], 0, 5), (vec![101, 100], 5, 5)],
        "the child alone frees only its own; the parent alone nothing; both free all"
    );
    let t = text(&a);
    assert!(
        t.contains("101 oracle    frees 1/5 (1 CLOSE_WAIT); 100 holds the rest"),
        "{t}"
    );
    assert!(
        t.contains("100 oracle    frees 0/5 (0 CLOSE_WAIT); 101 holds the rest"),
        "{t}"
    );
    assert!(t.contains("all 2 holders frees 5/5 (4 CLOSE_WAIT)"), "{t}");
    assert!(t.contains("all 2 holders"), "{t}");
    insta::assert_snapshot!(t);
    key(&mut a, KeyCode::Left);
    let Some(Dialog::Kill(d)) = &a.dialog else {
        panic!("no kill dialog")
    };
    assert_eq!(d.choice, 2, "← wraps to all holders");
}

#[test]
fn the_no_owner_rows_detail_says_why_nothing_holds_its_sockets() {
    let mut a = app(fixture::forked());
    key(&mut a, KeyCode::End); // "(no owner)" sorts last on ties
    let t = screen(&render(&a, 120, 40, Theme::mono()));
    assert!(
        t.contains("why     1: TIME_WAIT: the program closed it; the kernel keeps the connection's identity for a while"),
        "{t}"
    );
}
