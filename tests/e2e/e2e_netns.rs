//! End to end in a pseudo-terminal: the monitor finds a socket inside an
//! `ip netns` namespace the test makes (`/PORT` Enter), names the namespace
//! on the process's row and, after Enter, on the listener's row. Root only.

use crate::common;
#[allow(dead_code)]
use crate::pty;

use common::netns::NetNs;
use pty::spawn;

/// No SSH session as far as the monitor knows, whatever the test runs under.
const ENV: &[(&str, &str)] = &[("SSH_CONNECTION", "")];

/// The process view's row of the python3 holder `pid`.
fn process_row(s: &vt100::Screen, pid: &str) -> Option<String> {
    s.contents()
        .lines()
        .find(|l| l.trim_start().starts_with(pid) && l.contains("python3"))
        .map(str::to_string)
}

#[test]
fn monitor_filter_finds_a_socket_inside_a_namespace() {
    let test = "monitor_filter_finds_a_socket_inside_a_namespace";
    if !common::root_or_skip(test, "the monitor on an ip netns namespace") {
        return;
    }
    common::netns::tools();
    let ns = NetNs::add("monitor");
    let mut h = ns.holder();
    let (_, port) = h.listen(0);
    let pid = h.pid.to_string();

    // Wide enough for every column, NETNS included.
    let mut tui = spawn(&[], 200, 40, ENV);
    tui.wait_for_header();
    tui.type_keys("/");
    tui.type_keys(&port.to_string());
    tui.type_keys("\r");
    let row_of = |s: &vt100::Screen| process_row(s, &pid);
    tui.wait_for(
        &format!(
            "the row of pid {pid} (python3, listening on :{port} in netns {})",
            ns.name
        ),
        |s| row_of(s).is_some(),
    );
    tui.wait_for(
        &format!("a NETNS column with {} on pid {pid}'s row", ns.name),
        |s| {
            s.contents().lines().any(|l| l.contains("NETNS"))
                && row_of(s).is_some_and(|l| l.contains(&ns.name))
        },
    );
    // Enter on the process: its listener's own row, in the namespace.
    tui.type_keys("\r");
    let local = format!("127.0.0.1:{port}");
    tui.wait_for(
        &format!(
            "the LISTEN row of {local} with pid {pid} and netns {}",
            ns.name
        ),
        |s| {
            s.contents().lines().any(|l| {
                l.starts_with("LISTEN")
                    && l.contains(&local)
                    && l.contains(&pid)
                    && l.trim_end().ends_with(&ns.name)
            })
        },
    );
    assert!(tui.try_wait().is_none(), "sockscope exited on its own");
    tui.quit();
    let out = String::from_utf8_lossy(&tui.output()).into_owned();
    assert!(!out.contains("panicked"), "sockscope panicked:\n{out}");
}

#[test]
fn a_namespace_made_and_removed_while_the_monitor_runs_appears_and_goes() {
    let test = "a_namespace_made_and_removed_while_the_monitor_runs_appears_and_goes";
    if !common::root_or_skip(
        test,
        "the monitor following a namespace that comes and goes",
    ) {
        return;
    }
    common::netns::tools();
    let mut tui = spawn(&[], 200, 40, ENV);
    tui.wait_for_header();
    // Made after the monitor's first samples.
    let ns = NetNs::add("comes");
    let mut h = ns.holder();
    let (_, port) = h.listen(0);
    let pid = h.pid.to_string();
    tui.type_keys("/");
    tui.type_keys(&format!("{port} netns:{}", ns.name));
    tui.type_keys("\r");
    let row_of = |s: &vt100::Screen| process_row(s, &pid);
    tui.wait_for(
        &format!(
            "pid {pid}'s row in netns {} (made after the start)",
            ns.name
        ),
        |s| row_of(s).is_some_and(|l| l.contains(&ns.name)),
    );
    // Gone: its process exits and the namespace is deleted.
    h.exit();
    ns.wait_empty();
    ns.delete();
    tui.wait_for("the namespace's row gone", |s| {
        row_of(s).is_none() && s.contents().contains(" 0 rows")
    });
    assert!(tui.try_wait().is_none(), "sockscope exited on its own");
    tui.quit();
    let out = String::from_utf8_lossy(&tui.output()).into_owned();
    assert!(!out.contains("panicked"), "sockscope panicked:\n{out}");
}
