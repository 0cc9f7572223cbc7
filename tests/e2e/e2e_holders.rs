//! End to end in a pseudo-terminal, on a real forking server whose parent
//! and child hold the same listener and CLOSE_WAIT connections: `/PORT`,
//! `k`: the dialog names both and offers both; a signal to one says the rest
//! is still held by the other; a signal to all of them frees the sockets.

use crate::common;
use crate::pty;

use common::py_server::PyServer;
use common::{Holder, has_ended, poll, snapshot_json};
use pty::{Tui, spawn};
use std::net::TcpStream;

const ENV: &[(&str, &str)] = &[("SSH_CONNECTION", "")];
const HOME: &str = "\x1b[H";
const DOWN: &str = "\x1b[B";
const LEFT: &str = "\x1b[D";

/// A forked server on its port with `n` connections its clients closed.
fn forked_leak(n: usize) -> (PyServer, u32) {
    let mut srv = PyServer::start(&["fork"]);
    let clients: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", srv.port)).unwrap())
        .collect();
    let child = srv.accept_and_fork(n);
    drop(clients);
    let filter = format!("lport:{}", srv.port);
    poll("CLOSE_WAIT held by parent and child", || {
        let rows = snapshot_json(&[&filter, "state:close-wait"]);
        (rows.len() == n && rows.iter().all(|r| r.owners.iter().any(|o| o.pid == child)))
            .then_some(())
    });
    (srv, child)
}

fn status(tui: &Tui) -> String {
    tui.contents()
        .lines()
        .last()
        .unwrap_or("")
        .trim_end()
        .to_string()
}

fn filter_to(tui: &mut Tui, port: u16, first_pid: u32) {
    tui.type_keys("/");
    tui.type_keys("\x15");
    tui.type_keys(&port.to_string());
    tui.wait_for(&format!("pid {first_pid} listed"), |s| {
        s.contents()
            .lines()
            .any(|l| l.trim_start().starts_with(&first_pid.to_string()))
    });
    tui.type_keys("\r");
    tui.type_keys(HOME);
}

#[test]
fn k_on_a_forked_server_offers_both_holders_and_says_what_is_still_held() {
    let mut bystander = Holder::new();
    bystander.listen("127.0.0.1:0");
    let (a, a_child) = forked_leak(6);
    let a_parent = a.pid();
    let mut tui = spawn(&[], 120, 40, ENV);
    tui.wait_for_header();

    // Parent and child hold the same 7 sockets: the tie goes to the lower pid.
    let (first, second) = (a_parent.min(a_child), a_parent.max(a_child));
    filter_to(&mut tui, a.port, first);
    if second == a_child {
        tui.type_keys(DOWN);
    }
    tui.type_keys("k");
    tui.wait_for("the kill dialog with both holders", |s| {
        let t = s.contents();
        t.contains("send a signal") && t.contains("all 2 holders") && t.contains("pidfds open")
    });
    let screen = tui.contents();
    assert!(screen.contains(&format!("pid       {a_child}")), "{screen}");
    assert!(
        screen.contains(&format!(
            "▶ {:<13} frees 0/7 (0 CLOSE_WAIT); {a_parent} holds the rest",
            format!("{a_child} python3")
        )),
        "{screen}"
    );
    assert!(
        screen.contains("all 2 holders frees 7/7 (6 CLOSE_WAIT)"),
        "{screen}"
    );

    // The child alone: nothing is freed, and the status line says who holds them.
    tui.type_keys("\r");
    tui.wait_for("what is still held", |s| {
        s.contents().contains(&format!(
            "SIGTERM sent to {a_child}: 7 of 7 still held, by {a_parent} python3 (7)"
        ))
    });
    poll("the child to end", || has_ended(a_child).then_some(()));
    assert!(!has_ended(a_parent));

    // A second server: both at once (← picks "all holders") frees everything.
    let (b, b_child) = forked_leak(4);
    let b_parent = b.pid();
    filter_to(&mut tui, b.port, b_parent.min(b_child));
    tui.type_keys("k");
    tui.wait_for("the kill dialog with both holders", |s| {
        let t = s.contents();
        t.contains("all 2 holders") && t.contains("pidfds open")
    });
    tui.type_keys(LEFT);
    tui.wait_for("all holders chosen", |s| {
        s.contents().contains("▶ all 2 holders")
    });
    tui.type_keys("\r");
    let (lo, hi) = (b_parent.min(b_child), b_parent.max(b_child));
    tui.wait_for("all freed", |s| {
        let t = s.contents();
        t.contains("SIGTERM sent to ") && t.contains("all 5 selected sockets freed")
    });
    let last = status(&tui);
    assert!(
        last.contains(&format!("{lo}, {hi}")) || last.contains(&format!("{hi}, {lo}")),
        "{last}"
    );
    poll("both to end", || {
        (has_ended(b_parent) && has_ended(b_child)).then_some(())
    });
    assert!(!has_ended(bystander.pid()), "the bystander was hit");
    assert!(!has_ended(a_parent), "server A's parent was not chosen");
    tui.quit();
    drop(a);
}
