//! Acting on sockets for real: signalling a child that leaks CLOSE_WAIT
//! sockets (through the library and through `sockscope kill`), destroying
//! its sockets with `sockscope destroy`, a pidfd outliving its process, and
//! what an unprivileged user, an empty filter, `--read-only` and a missing
//! terminal get.

use crate::common;

use common::{
    Holder, as_nobody, close_wait_leaker, close_wait_on, has_ended, output, poll, snapshot_json,
    sockscope,
};
use sockscope::act::plan;
use sockscope::act::signal::{Signal, SignalError, Target};
use sockscope::collect::{Collector, Options, SystemCollector};
use sockscope::model::Filter;
use std::process::Command;

/// A process the tests must not touch: it still answers after the action.
fn assert_alive(h: &mut Holder, what: &str) {
    assert!(!has_ended(h.pid()), "{what} (pid {}) has ended", h.pid());
    h.listen("127.0.0.1:0");
}

#[test]
fn sigterm_through_the_action_code_ends_the_leaking_owner_and_spares_another_process() {
    let (leaker, port) = close_wait_leaker(3);
    let mut bystander = Holder::new();
    bystander.listen("127.0.0.1:0");

    let snap = SystemCollector::new(Options::default()).collect().unwrap();
    let filter = Filter::parse(&format!("lport:{port} state:cw netns:host")).unwrap();
    let sockets = sockscope::cli::select(&snap, &filter);
    let owners = plan::owners(&snap, &sockets);
    assert_eq!(owners.len(), 1, "{owners:#?}");
    let owner = &owners[0];
    assert_eq!(owner.pid, leaker.pid());
    assert_eq!((owner.matching, owner.close_wait, owner.sockets), (3, 3, 4));

    let target = Target::open(owner.pid, &owner.holds).expect("open the leaker");
    assert_eq!(target.name, common::exe_comm());
    assert!(
        target.cmdline.contains("child_process_entry_point"),
        "{}",
        target.cmdline
    );
    assert!(target.alive());
    target
        .send(Signal::Term)
        .expect("SIGTERM through the pidfd");

    poll("the leaker to end after SIGTERM", || {
        has_ended(leaker.pid()).then_some(())
    });
    assert_alive(&mut bystander, "the bystander");
}

#[test]
fn a_pidfd_whose_process_has_exited_sends_nothing_and_says_so() {
    let mut child = common::spawn_locked(Command::new("sleep").arg("600"));
    let pid = child.id();
    let target = Target::open(pid, &[]).expect("open a live child");
    assert!(target.alive());
    child.kill().unwrap();
    child.wait().unwrap();
    // Reaped: the pid is free for the kernel to hand to any new process, and
    // the pidfd still means the old one.
    assert!(!target.alive());
    let err = target.send(Signal::Kill).unwrap_err();
    assert_eq!(err, SignalError::Exited);
    assert_eq!(err.to_string(), "process has exited");
    assert_eq!(Target::open(pid, &[]).unwrap_err(), SignalError::Exited);
}

#[test]
fn a_pid_that_no_longer_holds_the_sampled_sockets_is_not_trusted() {
    let mut h = Holder::new();
    let (id, _) = h.listen("127.0.0.1:0");
    let fd = h.fd(id);
    let err = Target::open(h.pid(), &[(fd, 1)]).unwrap_err();
    assert_eq!(err, SignalError::NotTheSame { pid: h.pid() });
    assert!(err.to_string().contains("nothing sent"), "{err}");
    assert_alive(&mut h, "the holder");
}

#[test]
fn init_and_sockscope_itself_are_refused() {
    assert_eq!(Target::open(1, &[]).unwrap_err(), SignalError::Init(1));
    let own = std::process::id();
    let err = Target::open(own, &[]).unwrap_err();
    assert_eq!(err, SignalError::OwnPid(own));
    assert!(err.to_string().starts_with("refused:"), "{err}");
}

#[test]
fn kill_command_with_yes_signals_the_owner_of_matching_sockets_only() {
    let (leaker, port) = close_wait_leaker(2);
    let mut bystander = Holder::new();
    bystander.listen("127.0.0.1:0");
    let filter = format!("lport:{port} netns:host");
    let out = output(&mut sockscope(&["kill", &filter, "state:cw", "--yes"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("pid {} (", leaker.pid())) && stdout.contains("sent SIGTERM"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 matching sockets (3 held, 2 CLOSE_WAIT)"),
        "{stdout}"
    );
    poll("the leaker to end", || {
        has_ended(leaker.pid()).then_some(())
    });
    assert_alive(&mut bystander, "the bystander");
}

#[test]
fn destroy_command_removes_the_close_wait_sockets_and_leaves_their_owner_running() {
    let (mut leaker, port) = close_wait_leaker(4);
    let filter = format!("lport:{port} netns:host");
    let out = output(&mut sockscope(&[
        "destroy",
        &filter,
        "state:close-wait",
        "--yes",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("4 matching sockets: 4 CLOSE_WAIT"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[lines.len() - 2], "destroyed 4", "{stdout}");
    assert_eq!(
        lines[lines.len() - 1],
        format!(
            "pid {} ({}) still holds their 4 descriptors: only close() or exit frees them",
            leaker.pid(),
            common::exe_comm()
        ),
        "{stdout}"
    );
    assert_eq!(close_wait_on(port), 0, "CLOSE_WAIT sockets left on {port}");
    // ss no longer shows them, but the leaker still holds 4 descriptors of
    // closed TCP sockets, and diagnose counts them.
    let pid_filter = format!("pid:{}", leaker.pid());
    let out = output(&mut sockscope(&["diagnose", &pid_filter, "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("diagnose JSON");
    let held: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "closed_sockets_held")
        .collect();
    assert_eq!(held.len(), 1, "{report:#}");
    assert_eq!(held[0]["count"], 4, "{report:#}");
    assert_eq!(
        held[0]["pids"],
        serde_json::json!([leaker.pid()]),
        "{report:#}"
    );
    let listener = snapshot_json(&[&filter, "state:listen"]);
    assert_eq!(
        listener.len(),
        1,
        "the listener was not matched, so it stays"
    );
    assert_eq!(listener[0].pid, Some(leaker.pid()));
    assert_alive(&mut leaker, "the owner of the destroyed sockets");

    // Again: nothing matches now, and that is not success.
    let again = output(&mut sockscope(&[
        "destroy",
        &filter,
        "state:close-wait",
        "--yes",
    ]));
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("nothing to destroy"),
        "{again:?}"
    );
}

#[test]
fn an_empty_filter_is_refused_and_nothing_is_touched() {
    let (_leaker, port) = close_wait_leaker(1);
    for cmd in ["destroy", "kill"] {
        for args in [vec![cmd, "--yes"], vec![cmd, "", "--yes"]] {
            let out = output(&mut sockscope(&args));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains("needs a filter"), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    assert_eq!(close_wait_on(port), 1);
}

#[test]
fn read_only_refuses_kill_and_destroy() {
    let (mut leaker, port) = close_wait_leaker(1);
    let filter = format!("lport:{port} netns:host");
    for args in [
        vec!["--read-only", "destroy", &filter, "--yes"],
        vec!["destroy", &filter, "--yes", "--read-only"],
        vec!["--read-only", "kill", &filter, "--yes"],
    ] {
        let out = output(&mut sockscope(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("turned off by --read-only"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(close_wait_on(port), 1);
    assert_alive(&mut leaker, "the leaker");
}

#[test]
fn without_yes_and_without_a_terminal_nothing_is_done() {
    let setsid = common::find_program("setsid").expect("setsid (util-linux) is installed");
    let (mut leaker, port) = close_wait_leaker(2);
    let filter = format!("lport:{port} netns:host");
    for cmd in ["destroy", "kill"] {
        // A new session has no controlling terminal: /dev/tty cannot open.
        let out = output(Command::new(&setsid).args(["-w", common::bin(), cmd, &filter]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stdout}{stderr}");
        assert!(stderr.contains("add --yes"), "{cmd}: {stderr}");
        // What would have been touched is listed all the same.
        assert!(
            stdout.contains(&format!("127.0.0.1:{port}"))
                || stdout.contains(&format!("pid {}", leaker.pid())),
            "{cmd}: {stdout}"
        );
    }
    assert_eq!(close_wait_on(port), 2);
    assert_alive(&mut leaker, "the leaker");
}

#[test]
fn as_nobody_destroy_is_not_permitted_and_says_why() {
    if !common::root_or_skip(
        "as_nobody_destroy_is_not_permitted_and_says_why",
        "acting as another user",
    ) {
        return;
    }
    let nobody = as_nobody().expect("root can run as nobody");
    let copy = common::sockscope_for_nobody();
    let (_leaker, port) = close_wait_leaker(2);
    let filter = format!("lport:{port} netns:host");
    let mut cmd = Command::new(nobody[0]);
    cmd.args(&nobody[1..])
        .arg(&copy.sockscope)
        .args(["destroy", &filter, "state:cw", "--yes"]);
    let out = output(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("tcp 127.0.0.1:{port} 127.0.0.1:"))
            && stdout.contains("CLOSE_WAIT: not permitted (needs CAP_NET_ADMIN)"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("not permitted (needs CAP_NET_ADMIN) 2"),
        "{stdout}"
    );
    assert!(stderr.contains("2 of 2 sockets not destroyed"), "{stderr}");
    assert_eq!(close_wait_on(port), 2);
}

#[test]
fn as_nobody_kill_of_a_root_process_is_not_permitted_and_says_why() {
    if !common::root_or_skip(
        "as_nobody_kill_of_a_root_process_is_not_permitted_and_says_why",
        "acting as another user",
    ) {
        return;
    }
    let nobody = as_nobody().expect("root can run as nobody");
    let copy = common::sockscope_for_nobody();
    let (mut leaker, port) = close_wait_leaker(1);
    let filter = format!("lport:{port} netns:host");

    // Plain nobody cannot even see who holds root's sockets.
    let mut cmd = Command::new(nobody[0]);
    cmd.args(&nobody[1..])
        .arg(&copy.sockscope)
        .args(["kill", &filter, "--yes"]);
    let out = output(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no process holding them is visible") && stderr.contains("run as root"),
        "{stderr}"
    );

    // With the capabilities to see owners (as the README allows) but not
    // CAP_KILL, the kernel refuses the signal.
    let mut cmd = Command::new(nobody[0]);
    cmd.args(&nobody[1..])
        .args([
            "--inh-caps=+sys_ptrace,+dac_read_search",
            "--ambient-caps=+sys_ptrace,+dac_read_search",
        ])
        .arg(&copy.sockscope)
        .args(["kill", &filter, "--signal", "KILL", "--yes"]);
    let out = output(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "pid {} ({}): not permitted: run as root or as the process owner",
            leaker.pid(),
            common::exe_comm()
        )),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 1 process not signalled"), "{stderr}");
    assert_alive(&mut leaker, "the root-owned leaker");
}

#[test]
fn destroy_reports_what_the_socket_table_says_afterwards_not_the_kernels_ack() {
    // The kernel acknowledges SOCK_DESTROY on a UDP socket bound to an
    // explicit port but, as of Linux 6.x, leaves it bound: sockscope must
    // say what is true afterwards, whichever way the kernel goes.
    let mut h = Holder::new();
    let (_, port) = h.udp("127.0.0.1:0");
    let filter = format!("lport:{port} netns:host");
    let out = output(&mut sockscope(&["destroy", &filter, "proto:udp", "--yes"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let after = snapshot_json(&[&filter, "proto:udp"]);
    if after.is_empty() {
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("\ndestroyed 1\n"), "{stdout}");
    } else {
        assert_eq!(after[0].pid, Some(h.pid()));
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!(
                "udp 127.0.0.1:{port} *:* CLOSE: still present (CLOSE) after the kernel's ack"
            )),
            "{stdout}"
        );
        assert!(stderr.contains("1 of 1 socket not destroyed"), "{stderr}");
    }
}
