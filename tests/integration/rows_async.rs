//! Very large views are built off the UI thread: the app keeps showing the
//! rows it has (with their sample) until the worker answers, and only the
//! answer to the newest request is shown.

use crate::ui_harness::{STATS, new_app, press};
use crossterm::event::KeyCode;
use sockscope::app::rows::{ASYNC_ABOVE, Worker};
use sockscope::app::{App, Event};
use sockscope::model::fixture::{self, socket};
use sockscope::model::view::Row;
use sockscope::model::{Proto, Snapshot, TcpState};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// The small fixture plus `n` ESTABLISHED connections of pid 1000 to port 7000.
fn big(n: usize) -> Snapshot {
    let mut snap = fixture::small();
    for i in 0..n {
        snap.sockets.push(socket(
            Proto::Tcp,
            TcpState::Established,
            "127.0.0.1:7000",
            &format!(
                "127.0.{}.{}:{}",
                1 + i / 50_000,
                1 + i % 200,
                10_000 + i % 50_000
            ),
            2_000_000 + i as u64,
            0,
            &[(1000, 100 + i as u32)],
        ));
    }
    snap
}

fn with_worker() -> (App, Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let mut app = new_app();
    app.use_rows_worker(Worker::spawn(move |b| {
        tx.send(Event::Rows(Box::new(b))).is_ok()
    }));
    (app, rx)
}

/// Hands the worker's answers to the app until it has shown the newest.
fn settle(app: &mut App, rx: &Receiver<Event>) -> usize {
    let mut answers = 0;
    while app.building() {
        let ev = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the worker answers");
        answers += 1;
        app.handle(ev);
    }
    answers
}

#[test]
fn a_very_large_sample_goes_on_screen_with_its_rows_built_off_the_ui_thread() {
    let (mut app, rx) = with_worker();
    app.handle(Event::Snapshot(Arc::new(fixture::small()), STATS));
    assert!(!app.building(), "a small view is built in place");
    let small_rows = app.rows.len();
    let sockets = ASYNC_ABOVE + 5_000;
    app.handle(Event::Snapshot(Arc::new(big(sockets)), STATS));
    assert!(app.building());
    // Until the worker answers: the old sample and its rows, together.
    assert_eq!(app.snapshot.sockets.len(), fixture::small().sockets.len());
    assert_eq!(app.rows.len(), small_rows);
    settle(&mut app, &rx);
    assert_eq!(
        app.snapshot.sockets.len(),
        fixture::small().sockets.len() + sockets
    );
    let Some(Row::Process(top)) = app.rows.first() else {
        panic!("by process: {:?}", app.rows.first().map(|_| "another row"));
    };
    assert_eq!(
        top.pid,
        Some(1000),
        "the process holding 25k connections first"
    );
}

#[test]
fn only_the_newest_request_is_shown_when_keys_overtake_the_worker() {
    let (mut app, rx) = with_worker();
    app.handle(Event::Snapshot(Arc::new(big(ASYNC_ABOVE + 5_000)), STATS));
    settle(&mut app, &rx);
    // Three groupings in a row, faster than the worker builds them: by
    // local port, by remote host, then connections.
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char('g'));
    settle(&mut app, &rx);
    assert!(
        app.rows.iter().all(|r| matches!(r, Row::Conn(_))),
        "the connections view, not an older answer"
    );
    assert_eq!(app.rows.len(), app.snapshot.sockets.len());
    // A filter typed meanwhile narrows the newest rows.
    press(&mut app, KeyCode::Char('/'));
    for c in "port:6800".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    settle(&mut app, &rx);
    assert!(!app.rows.is_empty());
    assert!(app.rows.iter().all(|r| match r {
        Row::Conn(i) => {
            let s = &app.snapshot.sockets[*i];
            s.local.port() == 6800 || s.remote.port() == 6800
        }
        _ => false,
    }));
}

#[test]
fn a_large_connections_view_shows_its_first_page_before_the_rest_is_sorted() {
    let (mut app, rx) = with_worker();
    app.handle(Event::Resize(120, 40));
    app.handle(Event::Snapshot(Arc::new(fixture::small()), STATS));
    // By process, by local port, by remote host, connections.
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('g'));
    }
    assert!(app.rows.iter().all(|r| matches!(r, Row::Conn(_))));
    let page = app.page;
    assert!(page > 1, "a 40-line terminal shows more than a row");

    let sockets = ASYNC_ABOVE + 5_000;
    app.handle(Event::Snapshot(Arc::new(big(sockets)), STATS));
    assert!(app.building());
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the worker answers");
    app.handle(first);
    // The new sample is on screen with its first page in order, and the
    // rest is still being sorted.
    assert!(app.building(), "the whole sort is still to come");
    assert_eq!(
        app.snapshot.sockets.len(),
        fixture::small().sockets.len() + sockets
    );
    assert_eq!(app.rows.len(), app.snapshot.sockets.len());
    let head = app.rows[..page].to_vec();
    let cursor = app.cursor;
    assert_eq!(settle(&mut app, &rx), 1, "one answer more: the whole sort");
    assert_eq!(app.rows[..page], head[..], "the first page was final");
    assert_eq!(app.cursor, cursor);
    // And the whole table is in order (sorting it again moves nothing).
    let (col, descending) = app.sort();
    let mut again = app.rows.clone();
    sockscope::model::view::sort(&mut again, col, descending, &app.ctx());
    assert!(again == app.rows, "the rows as the view's sort orders them");
}
