//! The owner scan on the processes it used to get wrong: a leader that
//! exited while its threads run, a rename, a process that is not dumpable,
//! and `/proc` mounted with `hidepid=`.

use crate::common;

use common::{Helper, Holder, as_nobody, copies_for_nobody, output, poll};
use sockscope::collect::{Collector, Options, SystemCollector};
use sockscope::model::{Snapshot, TcpState};
use std::process::Command;

const CHILD: &str = include_str!("../programs/owner_child.py");

/// `owner_child.py` in `modes`, through `wrapper` (which execs in place):
/// the helper and its listener's port.
fn child(wrapper: &[&str], modes: &[&str]) -> (Helper, u16) {
    let mut cmd = match wrapper {
        [program, args @ ..] => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        [] => Command::new("python3"),
    };
    if !wrapper.is_empty() {
        // Another user cannot use root's pyenv shims.
        cmd.arg("/usr/bin/python3");
    }
    cmd.arg("-c").arg(CHILD).args(modes);
    let mut h = Helper::start(&mut cmd);
    let port = h.reply()[0].parse().expect("a port");
    (h, port)
}

fn collector(incremental: bool) -> SystemCollector {
    SystemCollector::new(Options {
        tcp_info: false,
        incremental,
        ..Options::default()
    })
}

/// The pids holding the listener on `port`.
fn holders_of(snap: &Snapshot, port: u16) -> Vec<u32> {
    snap.sockets
        .iter()
        .find(|s| {
            s.state == TcpState::Listen
                && s.local == std::net::SocketAddr::from(([127, 0, 0, 1], port))
        })
        .unwrap_or_else(|| panic!("listener on {port} in the snapshot"))
        .owners
        .iter()
        .map(|o| o.pid)
        .collect()
}

fn fd_count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_process_whose_main_thread_exited_is_found_through_its_threads_fd_tables() {
    let (h, port) = child(&[], &["leaderless"]);
    let pid = h.pid;
    // The leader's own table empties once it has exited.
    poll("the leader's fd table to empty", || {
        (fd_count(&format!("/proc/{pid}/fd")) == 0).then_some(())
    });
    let thread_fds: usize = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| fd_count(&format!("{}/fd", t.unwrap().path().display())))
        .sum();
    assert!(thread_fds > 0, "a thread still holds the descriptors");
    for incremental in [false, true] {
        let snap = collector(incremental).collect().unwrap();
        assert_eq!(
            holders_of(&snap, port),
            vec![pid],
            "incremental: {incremental}"
        );
    }
    drop(h);
}

#[test]
fn a_renamed_process_shows_its_new_name_at_the_next_collection() {
    let (mut h, port) = child(&[], &[]);
    let mut collector = collector(true);
    let before = collector.collect().unwrap();
    assert_eq!(holders_of(&before, port), vec![h.pid]);
    assert_eq!(before.processes[&h.pid].name, "python3");
    h.send("comm renamed-child");
    let after = collector.collect().unwrap();
    assert_eq!(after.processes[&h.pid].name, "renamed-child");
    drop(h);
}

#[test]
fn a_process_whose_effective_uid_is_root_shows_its_real_uid() {
    if !common::root_or_skip(
        "a_process_whose_effective_uid_is_root_shows_its_real_uid",
        "the uid of a process with real uid nobody and effective uid root",
    ) {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    // A set-uid-root program run by nobody, as far as the kernel can tell;
    // not dumpable, as such a process is.
    let (h, port) = child(
        &["setpriv", "--ruid=nobody", "--euid=root"],
        &["nondumpable"],
    );
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(format!("/proc/{}", h.pid)).unwrap().uid();
    assert_eq!(owner, 0, "fstat(/proc/PID) says root");
    for incremental in [false, true] {
        let snap = collector(incremental).collect().unwrap();
        assert_eq!(holders_of(&snap, port), vec![h.pid]);
        let p = &snap.processes[&h.pid];
        assert_eq!(
            p.uid,
            Some(nobody.uid.as_raw()),
            "incremental: {incremental}"
        );
        assert_eq!(p.user.as_deref(), Some("nobody"));
    }
    drop(h);
}

#[test]
fn processes_hidden_by_hidepid_are_noted_as_such() {
    if !common::root_or_skip(
        "processes_hidden_by_hidepid_are_noted_as_such",
        "a /proc mounted with hidepid=invisible in a private mount namespace",
    ) {
        return;
    }
    let wrapper = as_nobody().expect("root");
    let copies = copies_for_nobody(false);
    // A listener of root's that nobody cannot see the owner of.
    let mut holder = Holder::new();
    let (_, port) = holder.listen("127.0.0.1:0");
    let script = format!(
        "mount -t proc -o hidepid=invisible proc /proc && exec {} {} snapshot --json proto:tcp state:listen",
        wrapper.join(" "),
        copies.sockscope.display()
    );
    let out = output(Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let rows = common::parse_rows(&out.stdout);
    let row = rows
        .iter()
        .find(|r| r.local_port == port && r.local_addr == "127.0.0.1")
        .expect("root's listener is listed");
    assert_eq!(row.pid, None, "its owner is hidden");
    assert!(
        stderr.contains("no known owner; /proc is mounted with hidepid="),
        "stderr: {stderr}"
    );
    drop(holder);
}
