//! `kill` and `destroy` cannot take everything by accident: a filter that
//! selects the whole table (through a negation or a /0 address) is refused
//! without `--all`, and `--yes` does not skip the own-SSH-session guard.
//! Every command runs inside a network namespace this test creates
//! (`unshare -n`), never on the host's table.

use crate::common;

use common::{Helper, Holder, output};
use std::process::Command;

/// A holder in a network namespace of its own: a listener, a client and the
/// accepted end: (holder, port, client port).
fn namespace() -> Option<(Holder, u16, u16)> {
    if !common::root_or_skip(
        "actions_guard",
        "the guards in a namespace of their own (unshare -n)",
    ) {
        return None;
    }
    for tool in ["unshare", "nsenter", "ip"] {
        common::find_program(tool)
            .unwrap_or_else(|| panic!("{tool} is installed (.ci/run installs it)"));
    }
    let exe = std::env::current_exe().unwrap();
    let mut h = Holder {
        h: Helper::role_via(&exe, "holder", &[], &["unshare", "-n", "--"]),
    };
    h.netns(40000, 40099);
    let (listener, port) = h.listen("127.0.0.1:0");
    let (_, client_port) = h.connect(&format!("127.0.0.1:{port}"));
    h.accept(listener);
    Some((h, port, client_port))
}

/// `sockscope ARGS netns:host` inside the holder's network namespace:
/// sockscope sees (and would act on) every other namespace too, the
/// machine's and other tests' among them; `netns:host` keeps it to its own.
fn inside(h: &Holder, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/proc/{}/ns/net", h.pid()))
        .arg("--")
        .arg(common::bin())
        .args(args)
        .arg("netns:host")
        .env_remove("SSH_CONNECTION");
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

/// The sockets of the holder's own namespace (sockscope sees the others
/// too, the machine's among them).
fn sockets_inside(h: &Holder) -> usize {
    let out = inside(h, &["snapshot", "--json"], &[]);
    assert!(out.status.success());
    common::parse_rows(&out.stdout).len()
}

#[test]
fn filters_that_select_the_whole_table_are_refused_without_all() {
    let Some((h, _, _)) = namespace() else { return };
    let before = sockets_inside(&h);
    assert_eq!(before, 3, "listener, client, accepted end");
    for args in [
        &["destroy", "!pid:999999999", "--yes"][..],
        &["destroy", "addr:0.0.0.0/0", "--yes"],
        &["destroy", "addr:127.0.0.0/8", "--yes"],
        &["kill", "addr:0.0.0.0/0", "--yes"],
        &["kill", "!pid:999999999", "--yes"],
        &["kill", "proto:tcp", "laddr:0.0.0.0/0", "--yes"],
    ] {
        let out = inside(&h, args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("selects every socket"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("--all"), "{stderr}");
        assert_eq!(sockets_inside(&h), before, "{args:?} touched nothing");
    }
    assert!(!common::has_ended(h.pid()), "the holder was not signalled");
    // A filter that narrows is not refused (one socket of three).
    let out = inside(&h, &["destroy", "state:listen", "--yes"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sockets_inside(&h), before - 1);
    // --all says it is meant.
    let out = inside(&h, &["destroy", "!pid:999999999", "--yes", "--all"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sockets_inside(&h), 0);
}

#[test]
fn yes_does_not_skip_the_guard_for_this_ssh_session_own_connection() {
    let Some((h, port, client_port)) = namespace() else {
        return;
    };
    // The accepted end plays this SSH session's connection.
    let ssh = format!("127.0.0.1 {client_port} 127.0.0.1 {port}");
    let env = [("SSH_CONNECTION", ssh.as_str())];
    let filter = format!("lport:{port}");
    let out = inside(&h, &["destroy", &filter, "state:est", "--yes"], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("this SSH session's own connection"),
        "{stderr}"
    );
    assert!(stderr.contains("--own-ssh"), "{stderr}");
    assert_eq!(sockets_inside(&h), 3, "nothing destroyed");
    let out = inside(&h, &["kill", &filter, "state:est", "--yes"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(!common::has_ended(h.pid()));
    // Said explicitly, it is done.
    let out = inside(
        &h,
        &["destroy", &filter, "state:est", "--yes", "--own-ssh"],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The client's end goes too, with the reset: the listener is left.
    assert_eq!(sockets_inside(&h), 1);
}
