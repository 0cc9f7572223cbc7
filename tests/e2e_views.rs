//! End to end: the real binary in a pseudo-terminal switches to the kernel
//! counters view and the TCP state diagram, which show live data.

#[allow(dead_code)] // the harness has more than these tests use
mod pty;

use pty::{EXIT_WAIT, spawn};
use std::net::{TcpListener, TcpStream};

/// The TOTAL column of the `Tcp.RetransSegs` row, if it shows a number.
fn retrans_total(screen: &vt100::Screen) -> Option<u64> {
    screen.contents().lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let name = words.next()?.trim_start_matches('!');
        if name != "Tcp.RetransSegs" {
            return None;
        }
        // NOW/s, 1MIN/s, TOTAL
        words.nth(2)?.parse().ok()
    })
}

/// The count written in the diagram's CLOSE_WAIT box, e.g. `[CLOSE_WAIT    3]`.
fn close_wait_box(screen: &vt100::Screen) -> Option<u64> {
    let text = screen.contents();
    let start = text.find("[CLOSE_WAIT")? + "[CLOSE_WAIT".len();
    let end = start + text[start..].find(']')?;
    text[start..end].trim().parse().ok()
}

#[test]
fn keys_3_and_5_show_live_counters_and_the_state_diagram_then_q_exits_0() {
    // A socket of ours in CLOSE_WAIT: the peer closed, we did not.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let client = TcpStream::connect(listener.local_addr().expect("listener address"))
        .expect("connect to the listener");
    let (_accepted, _) = listener.accept().expect("accept the client");
    drop(client);

    let mut tui = spawn(&[], 80, 24, &[]);
    tui.wait_for_header();
    assert!(
        !tui.contents().contains("RetransSegs"),
        "the socket table does not show counters"
    );
    tui.type_keys("3");
    tui.wait_for("Tcp.RetransSegs with its total in the counters view", |s| {
        retrans_total(s).is_some()
    });
    tui.type_keys("5");
    tui.wait_for("the diagram's CLOSE_WAIT box counting our socket", |s| {
        close_wait_box(s).is_some_and(|n| n >= 1)
    });
    tui.type_keys("q");
    let status = tui
        .wait_exit(EXIT_WAIT)
        .unwrap_or_else(|| panic!("sockscope still running {EXIT_WAIT:?} after q"));
    assert!(status.success(), "q must exit 0, got {status:?}");
}
