//! End to end: the monitor in a pseudo-terminal signals a child that leaks
//! CLOSE_WAIT sockets (`/PORT` Enter, `k`, Enter) and destroys them (`x`,
//! Enter); `sockscope destroy` asks on the terminal and does what the
//! answer says.

use crate::common;
#[allow(dead_code)]
use crate::pty;

use common::{Holder, close_wait_leaker, close_wait_on, has_ended, poll};
use pty::{EXIT_WAIT, Tui, spawn};

/// No SSH session as far as the monitor knows, whatever the test runs under:
/// the double confirmation is tested on fixtures.
const ENV: &[(&str, &str)] = &[("SSH_CONNECTION", "")];

const HOME: &str = "\x1b[H";

fn last_line(tui: &Tui) -> String {
    tui.contents().lines().last().unwrap_or("").to_string()
}

/// Opens the monitor filtered to `filter` and puts the cursor on the first
/// row, which must be `pid`'s.
fn monitor_on(filter: &str, pid: u32) -> Tui {
    let mut tui = spawn(&[], 120, 40, ENV);
    tui.wait_for_header();
    tui.type_keys("/");
    tui.type_keys(filter);
    tui.wait_for(&format!("pid {pid} after filtering on {filter}"), |s| {
        s.contents()
            .lines()
            .any(|l| l.trim_start().starts_with(&pid.to_string()))
    });
    tui.type_keys("\r");
    tui.type_keys(HOME);
    tui
}

fn quit(mut tui: Tui) {
    assert!(tui.try_wait().is_none(), "sockscope exited on its own");
    tui.quit();
    assert!(
        !tui.with_screen(|s| s.alternate_screen()),
        "the terminal was left on the alternate screen"
    );
    let out = String::from_utf8_lossy(&tui.output()).into_owned();
    assert!(!out.contains("panicked"), "sockscope panicked:\n{out}");
}

#[test]
fn k_then_enter_in_the_monitor_ends_the_leaking_process_and_nothing_else() {
    let (leaker, port) = close_wait_leaker(3);
    let mut bystander = Holder::new();
    bystander.listen("127.0.0.1:0");
    let pid = leaker.pid();

    let mut tui = monitor_on(&port.to_string(), pid);
    tui.type_keys("k");
    tui.wait_for("the kill dialog, its pidfd open", |s| {
        let t = s.contents();
        t.contains("send a signal") && t.contains("pidfd open")
    });
    let screen = tui.contents();
    assert!(
        screen.contains(&format!("pid       {pid}")),
        "the dialog is not for the leaker (pid {pid}):\n{screen}"
    );
    assert!(screen.contains("4 held, 3 in CLOSE_WAIT"), "{screen}");
    assert!(
        screen.contains("▶ SIGTERM"),
        "SIGTERM is preselected:\n{screen}"
    );
    tui.type_keys("\r");
    // After the signal the monitor looks again and says what it freed.
    tui.wait_for("the result in the status line", |s| {
        s.contents().contains(&format!(
            "SIGTERM sent to {pid}: all 4 selected sockets freed"
        ))
    });
    poll("the leaker to end", || has_ended(pid).then_some(()));
    assert!(!has_ended(bystander.pid()), "the bystander was hit");
    bystander.listen("127.0.0.1:0");
    quit(tui);
}

#[test]
fn x_then_enter_in_the_monitor_destroys_the_close_wait_sockets_and_e_exports() {
    let (mut leaker, port) = close_wait_leaker(3);
    let pid = leaker.pid();
    let mut tui = monitor_on(&format!("{port} cw"), pid);
    tui.type_keys("x");
    tui.wait_for_text("destroy 3 sockets");
    let screen = tui.contents();
    assert!(
        screen.contains(&format!("tcp 127.0.0.1:{port} 127.0.0.1:")),
        "the tuples are listed:\n{screen}"
    );
    assert!(
        !screen.contains("*:* LISTEN"),
        "the filter left the listener out:\n{screen}"
    );
    tui.type_keys("\r");
    tui.wait_for("the summary in the status line", |s| {
        s.contents().lines().last().is_some_and(|l| {
            l.starts_with(&format!("destroyed 3; pid {pid} ("))
                && l.trim_end()
                    .ends_with("still holds their 3 descriptors: only close() or exit frees them")
        })
    });
    assert_eq!(close_wait_on(port), 0);
    assert!(!has_ended(pid), "the owner must keep running");
    leaker.listen("127.0.0.1:0");

    // The export of what is on screen now: the filter, no CLOSE_WAIT left.
    tui.type_keys("/");
    tui.type_keys("\x15"); // Ctrl-U: clear
    tui.type_keys(&format!("lport:{port}\r"));
    tui.type_keys("e");
    tui.wait_for("the export's path", |s| {
        s.contents()
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("wrote 1 row to "))
    });
    let path = last_line(&tui)["wrote 1 row to ".len()..]
        .trim()
        .to_string();
    let csv = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("PID,PROCESS,USER,TOTAL,"), "{csv}");
    assert!(
        lines[1].starts_with(&format!("{pid},{},", common::exe_comm())),
        "{csv}"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    quit(tui);
}

#[test]
fn destroy_asks_on_the_terminal_and_no_keeps_the_sockets_yes_destroys_them() {
    let (mut leaker, port) = close_wait_leaker(2);
    let filter = format!("lport:{port} netns:host");
    for (answer, code) in [("n", 1), ("y", 0)] {
        let mut tui = spawn(&["destroy", &filter, "state:cw"], 100, 30, ENV);
        tui.wait_for_text("Destroy 2 sockets? [y/N]");
        let screen = tui.contents();
        assert!(
            screen.contains("2 matching sockets: 2 CLOSE_WAIT"),
            "{screen}"
        );
        assert_eq!(close_wait_on(port), 2, "nothing happens before the answer");
        tui.type_keys(&format!("{answer}\r"));
        let status = tui
            .wait_exit(EXIT_WAIT)
            .expect("destroy exits after the answer");
        tui.wait_output_end();
        assert_eq!(
            status.exit_code(),
            code,
            "answer {answer}:\n{}",
            tui.contents()
        );
        if answer == "n" {
            assert!(tui.contents().contains("not confirmed; nothing done"));
            assert_eq!(close_wait_on(port), 2);
        } else {
            assert!(tui.contents().contains("destroyed 2"), "{}", tui.contents());
            assert_eq!(close_wait_on(port), 0);
        }
    }
    leaker.listen("127.0.0.1:0");
}

#[test]
fn read_only_monitor_says_so_in_the_header_and_refuses_k_and_x() {
    let (mut leaker, port) = close_wait_leaker(1);
    let mut tui = spawn(&["--read-only", &port.to_string()], 100, 30, ENV);
    tui.wait_for("READ-ONLY in the header", |s| {
        s.contents()
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("sockscope │ READ-ONLY │"))
    });
    for key in ["k", "x"] {
        tui.type_keys(HOME);
        tui.type_keys(key);
        tui.wait_for(&format!("the refusal of {key}"), |s| {
            s.contents()
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("read-only: k and x are off"))
        });
        let screen = tui.contents();
        assert!(
            !screen.contains("send a signal") && !screen.contains("destroy 1 socket"),
            "a dialog opened in read-only mode:\n{screen}"
        );
        // Any other key clears the status line: wait for that, so the next
        // refusal is not the old one still on screen.
        tui.type_keys("r");
        tui.wait_for("the key hints back", |s| {
            s.contents()
                .lines()
                .last()
                .is_some_and(|l| l.starts_with('?'))
        });
    }
    assert_eq!(close_wait_on(port), 1);
    assert!(!has_ended(leaker.pid()));
    leaker.listen("127.0.0.1:0");
    quit(tui);
}
