//! Collections of some states only, and what `auto` says when netlink is
//! refused and `/proc/net` is read instead.

use crate::common;
use crate::ui_harness;

use common::{Holder, output, poll};
use sockscope::collect::{Collector, Options, Scope, SystemCollector};
use sockscope::model::{Snapshot, TcpState, fixture};
use std::process::Command;
use std::sync::Arc;

/// The holders of our socket on 127.0.0.1:`port` in `state` (another
/// address, or another network namespace, may have a socket on the same
/// port).
fn find(snap: &Snapshot, port: u16, state: TcpState) -> Option<Vec<u32>> {
    let local: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    snap.sockets
        .iter()
        .find(|s| s.local == local && s.state == state && s.netns == sockscope::model::HOST_NETNS)
        .map(|s| s.owners.iter().map(|o| o.pid).collect())
}

#[test]
fn a_trouble_states_collection_has_the_close_wait_with_its_owner_and_not_the_established() {
    let mut holder = Holder::new();
    let pid = holder.pid();
    let leaking = holder.connected_pair("127.0.0.1:0");
    let healthy = holder.connected_pair("127.0.0.1:0");
    // The server end closes; the client end, still open, is CLOSE_WAIT.
    holder.close(leaking.server);
    let mut collector = SystemCollector::new(Options {
        tcp_info: false,
        incremental: true,
        namespaces: true,
        ..Options::default()
    });
    poll("the client end to reach CLOSE_WAIT", || {
        let snap = collector.collect().ok()?;
        find(&snap, leaking.client_port, TcpState::CloseWait)
    });
    for round in 0..2 {
        let trouble = collector.collect_scope(Scope::trouble()).unwrap();
        assert_eq!(
            find(&trouble, leaking.client_port, TcpState::CloseWait),
            Some(vec![pid]),
            "round {round}: the CLOSE_WAIT with its owner"
        );
        assert_eq!(
            find(&trouble, healthy.client_port, TcpState::Established),
            None
        );
        // The host's table is the partial one; other namespaces' tables
        // (small, often reused unchanged) come whole with every refresh.
        assert!(
            trouble
                .sockets
                .iter()
                .filter(|s| s.netns == sockscope::model::HOST_NETNS)
                .all(|s| !matches!(s.state, TcpState::Established | TcpState::Listen)),
            "round {round}: only trouble states"
        );
        // Its ESTABLISHED sockets, outside this dump, are not "closed".
        assert_eq!(trouble.processes[&pid].closed_sockets, 0, "round {round}");
    }
    let full = collector.collect().unwrap();
    assert_eq!(
        find(&full, leaking.client_port, TcpState::CloseWait),
        Some(vec![pid])
    );
    assert_eq!(
        find(&full, healthy.client_port, TcpState::Established),
        Some(vec![pid]),
        "the ESTABLISHED socket is still attributed after partial collections"
    );
    assert_eq!(find(&full, healthy.port, TcpState::Listen), Some(vec![pid]));
    assert_eq!(full.processes[&pid].closed_sockets, 0);
    drop(holder);
}

/// A python wrapper that refuses `socket(AF_NETLINK, ...)` with EPERM
/// through a seccomp filter and execs its arguments: netlink as a
/// locked-down container has it. None off x86_64.
fn without_netlink() -> Option<Vec<String>> {
    if std::env::consts::ARCH != "x86_64" {
        common::skipped(
            "without_netlink",
            "a seccomp filter refusing netlink",
            "the filter is written for x86_64",
            "run on x86_64",
        );
        return None;
    }
    const WRAPPER: &str = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def ins(code, jt, jf, k): return struct.pack("HBBI", code, jt, jf, k)
prog = b"".join([
    ins(0x20, 0, 0, 4),            # A = arch
    ins(0x15, 0, 5, 0xC000003E),   # x86_64, else allow
    ins(0x20, 0, 0, 0),            # A = syscall number
    ins(0x15, 0, 3, 41),           # socket(), else allow
    ins(0x20, 0, 0, 16),           # A = first argument
    ins(0x15, 0, 1, 16),           # AF_NETLINK, else allow
    ins(0x06, 0, 0, 0x00050000 | 1),  # fail with EPERM
    ins(0x06, 0, 0, 0x7FFF0000),   # allow
])
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
assert libc.prctl(38, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS"
assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0, ctypes.get_errno()
os.execv(sys.argv[1], sys.argv[1:])
"#;
    Some(vec!["python3".into(), "-c".into(), WRAPPER.into()])
}

fn sockscope_without_netlink(args: &[&str]) -> Option<std::process::Output> {
    let wrapper = without_netlink()?;
    let mut cmd = Command::new(&wrapper[0]);
    cmd.args(&wrapper[1..]).arg(common::bin()).args(args);
    Some(output(&mut cmd))
}

#[test]
fn auto_reads_proc_net_when_netlink_is_refused_and_says_why_on_stderr() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some(out) = sockscope_without_netlink(&["snapshot", "--json", "proto:tcp"]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let rows = common::parse_rows(&out.stdout);
    let row = rows
        .iter()
        .find(|r| r.local_port == port && r.local_addr == "127.0.0.1")
        .expect("the listener, from /proc/net");
    assert!(
        row.cookie.is_empty() || row.cookie.trim_start_matches('0').is_empty(),
        "no cookie from /proc/net: {}",
        row.cookie
    );
    let note = stderr
        .lines()
        .find(|l| l.starts_with("sockscope: netlink sock_diag failed ("))
        .unwrap_or_else(|| panic!("a note on stderr: {stderr}"));
    assert!(note.contains("Operation not permitted"), "{note}");
    assert!(note.contains("read /proc/net instead"), "{note}");
    assert!(note.contains("no cookies (destroy refused)"), "{note}");
    drop(listener);
}

#[test]
fn source_netlink_fails_with_the_reason_when_netlink_is_refused() {
    let Some(out) = sockscope_without_netlink(&["snapshot", "--source", "netlink"]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "no table from another source");
    assert!(
        stderr.contains("cannot open a NETLINK_SOCK_DIAG socket: Operation not permitted"),
        "stderr: {stderr}"
    );
}

#[test]
fn the_header_says_when_netlink_failed_and_proc_net_was_read() {
    let mut snap = fixture::small();
    snap.source = sockscope::model::SourceKind::Proc;
    snap.source_note = Some("netlink sock_diag failed (EBUSY): read /proc/net instead".into());
    let mut app = ui_harness::new_app();
    app.handle(sockscope::app::Event::Snapshot(
        Arc::new(snap),
        ui_harness::STATS,
    ));
    let term = ui_harness::render(&app, 120, 30, sockscope::ui::Theme::mono());
    let screen = ui_harness::screen(&term);
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.contains("netlink failed: /proc/net, no cookies"),
        "{header}"
    );
    // And not when netlink worked.
    let mut app = ui_harness::new_app();
    app.handle(sockscope::app::Event::Snapshot(
        Arc::new(fixture::small()),
        ui_harness::STATS,
    ));
    let term = ui_harness::render(&app, 120, 30, sockscope::ui::Theme::mono());
    assert!(!ui_harness::screen(&term).contains("netlink failed"));
}

#[test]
fn the_header_does_not_say_all_owners_visible_when_hidepid_hides_processes() {
    let mut snap = fixture::small();
    snap.attribution.hidden_pids = true;
    snap.attribution.unattributed_sockets = 3;
    let mut app = ui_harness::new_app();
    app.handle(sockscope::app::Event::Snapshot(
        Arc::new(snap),
        ui_harness::STATS,
    ));
    let term = ui_harness::render(&app, 120, 30, sockscope::ui::Theme::mono());
    let screen = ui_harness::screen(&term);
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.contains("3 sockets unattributed: /proc hidepid="),
        "{header}"
    );
    assert!(!header.contains("all owners visible"), "{header}");
}

#[test]
fn a_close_wait_newer_than_the_last_full_collection_still_gets_its_owner() {
    let mut holder = Holder::new();
    let pid = holder.pid();
    let mut collector = SystemCollector::new(Options {
        tcp_info: false,
        incremental: true,
        namespaces: true,
        ..Options::default()
    });
    collector.collect().unwrap();
    // Made after the full collection: not among its remembered owners.
    let leaking = holder.connected_pair("127.0.0.1:0");
    holder.close(leaking.server);
    let owners = poll("the new CLOSE_WAIT in a trouble collection", || {
        let snap = collector.collect_scope(Scope::trouble()).ok()?;
        find(&snap, leaking.client_port, TcpState::CloseWait)
    });
    assert_eq!(owners, vec![pid]);
    drop(holder);
}

/// The owners of our socket from 127.0.0.1:`port` to 127.0.0.1:`peer`,
/// None when it is not in the table.
fn held(snap: &Snapshot, port: u16, peer: u16) -> Option<Vec<u32>> {
    let local: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let remote: std::net::SocketAddr = ([127, 0, 0, 1], peer).into();
    snap.sockets
        .iter()
        .find(|s| s.local == local && s.remote == remote && s.netns == sockscope::model::HOST_NETNS)
        .map(|s| s.owners.iter().map(|o| o.pid).collect())
}

/// With counters that never move (copies of the machine's, read from a
/// directory of our own), the live collector reuses the host's table; an
/// accept(), which moves no counter, hands a descriptor for a socket the
/// reused table has with no inode: the collector sees that descriptor's
/// socket in no table and dumps again, so the accepted end has its owner.
#[test]
fn a_reused_table_is_dumped_again_when_a_process_accepts_a_connection() {
    // A table is reused only after an owner scan that could read every
    // process: as root.
    if !common::root_or_skip(
        "a_reused_table_is_dumped_again_when_a_process_accepts_a_connection",
        "a reused socket table",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for f in sockscope::collect::counters::FILES {
        std::fs::copy(format!("/proc/net/{f}"), dir.path().join(f)).unwrap();
    }
    let mut holder = Holder::new();
    let pid = holder.pid();
    let (listener, port) = holder.listen("127.0.0.1:0");
    let (_client, client_port) = holder.connect(&format!("127.0.0.1:{port}"));
    let mut collector = SystemCollector::new(Options {
        tcp_info: false,
        incremental: true,
        namespaces: false,
        ..Options::default()
    });
    collector.counters_from(dir.path().to_str().unwrap());
    // Not accepted yet: in the table, held by no descriptor.
    let first = collector.collect().unwrap();
    assert_eq!(first.reused_table, None, "the first collection dumps");
    assert_eq!(held(&first, port, client_port), Some(vec![]));
    // Nothing moved in these counters: the table stands, unless a socket
    // made meanwhile anywhere on this busy machine (another test's) was
    // seen held outside it; then it was dumped again, and so on.
    let again = poll("a collection that reuses the table", || {
        let snap = collector.collect().ok()?;
        snap.reused_table.is_some().then_some(snap)
    });
    assert_eq!(held(&again, port, client_port), Some(vec![]));
    assert_eq!(
        held(&again, client_port, port),
        Some(vec![pid]),
        "a reused table's sockets get their owners as a dumped one's"
    );
    let stale = collector.stale_tables();
    holder.accept(listener);
    let after = collector.collect().unwrap();
    assert_eq!(
        after.reused_table, None,
        "the accepted descriptor is in no reused table"
    );
    assert_eq!(held(&after, port, client_port), Some(vec![pid]));
    assert_eq!(
        collector.stale_tables(),
        stale + 1,
        "dumped again for being stale (not for its age: {:?} since the reuse)",
        after.monotonic.saturating_sub(again.monotonic)
    );
}
