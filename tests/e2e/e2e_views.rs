//! End to end: the real binary in a pseudo-terminal switches to the kernel
//! counters view and the TCP state diagram, which show live data.

#[allow(dead_code)] // the harness has more than these tests use
use crate::pty;

use pty::spawn;
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

    // Our own sockets only: the diagram counts what the filter shows.
    let filter = format!("pid:{}", std::process::id());
    let mut tui = spawn(&[&filter], 80, 24, &[]);
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
    tui.wait_for(
        "the diagram's CLOSE_WAIT box counting our one socket",
        |s| close_wait_box(s) == Some(1),
    );
    tui.quit();
}

#[test]
fn a_real_close_wait_leak_is_on_the_finding_line_and_enter_in_view_2_lists_its_sockets() {
    // This test process leaks: 12 connections whose peers closed, and that
    // we never close, growing while the monitor watches.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let port = listener.local_addr().expect("listener address").port();
    let mut held = Vec::new();
    let leak = |held: &mut Vec<TcpStream>| {
        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        drop(client);
        held.push(accepted);
    };
    for _ in 0..12 {
        leak(&mut held);
    }
    let pid = std::process::id();
    let filter = format!("pid:{pid}");
    let mut tui = spawn(&[&filter], 120, 50, &[]);
    tui.wait_for_header();
    // The finding line follows the filter: our leak, whatever else leaks here.
    let expected = format!("(pid {pid}) holds");
    tui.wait_for("our leak on the finding line", |s| {
        s.contents()
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains(&expected))
    });
    tui.type_keys("2");
    tui.wait_for("the findings view", |s| {
        s.contents().contains("[2 findings]")
    });
    // The view lists every finding on the machine: walk down to ours (its
    // detail names its own filter).
    let ours = format!("Enter filters the sockets: pid:{pid} state:close-wait");
    tui.type_keys("\x1b[H");
    for _ in 0..100 {
        if tui.contents().contains(&ours) {
            break;
        }
        tui.type_keys("\x1b[B");
        leak(&mut held);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    tui.wait_for("our finding selected", |s| s.contents().contains(&ours));
    tui.type_keys("\r");
    let port_text = format!("127.0.0.1:{port}");
    tui.wait_for("the leaking sockets, under the finding's own filter", |s| {
        let text = s.contents();
        text.contains("close_wait_leak")
            && text.contains(&format!("filter: pid:{pid} state:close-wait"))
            && text
                .lines()
                .filter(|l| l.contains("CLOSE_WAIT") && l.contains(&port_text))
                .count()
                >= 5
    });
    // Esc: back to the findings view, our finding still selected.
    tui.type_keys("\x1b");
    tui.wait_for("the findings view again, on our finding", |s| {
        let text = s.contents();
        text.contains("[2 findings]") && text.contains(&ours)
    });
    tui.quit();
}
