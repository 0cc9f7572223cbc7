//! Issue 12: the sockets of every network namespace, on real namespaces
//! each test makes with `ip netns add` (deleted on drop, a panic included)
//! and servers run inside them (`tests/programs/netns_holder.py`). Each
//! test asserts only on its own namespaces, processes and ports: a port
//! number seen in another namespace (the host's included) is not ours.
//! Root only: elsewhere each says it skipped (and fails under CI=true).

use crate::common;
use crate::real_servers::{of_kind, text};
use crate::serve::client::Server;

use common::netns::{NetNs, NsHolder};
use common::{output, sockscope};
use serde::Deserialize;
use serde_json::Value;
use sockscope::collect::{Collector, Options, SystemCollector};
use sockscope::model::TcpState;
use std::process::Command;
use std::time::Instant;

/// One socket of `snapshot --json`, with its namespace fields.
#[derive(Debug, Clone, Deserialize)]
struct NsRow {
    state: String,
    local_port: u16,
    remote_port: u16,
    pid: Option<u32>,
    process: Option<String>,
    owners: Vec<common::OwnerRow>,
    /// Always there: `host`, or the namespace's name.
    netns: String,
    netns_inode: Option<u64>,
}

impl NsRow {
    fn is(&self, state: &str, local_port: u16, remote_port: u16) -> bool {
        self.state == state && self.local_port == local_port && self.remote_port == remote_port
    }
}

/// Root, `ip` and `python3`; otherwise says the test skipped.
fn can_run(test: &str, what: &str) -> bool {
    if !common::root_or_skip(test, what) {
        return false;
    }
    common::netns::tools();
    true
}

/// `sockscope snapshot --json ARGS`: exit 0, the rows and the raw text.
fn snapshot(args: &[&str]) -> (Vec<NsRow>, String) {
    let mut all = vec!["snapshot", "--json"];
    all.extend_from_slice(args);
    let out = output(&mut sockscope(&all));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "sockscope {all:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("sockscope {all:?}: not a JSON array of sockets with netns fields: {e}\n{stdout}")
    });
    (rows, stdout)
}

/// Runs `snapshot --json ARGS` until `done` holds for its rows (bounded by
/// [`common::POLL_LIMIT`]); gives up with the last output.
fn snapshot_until(what: &str, args: &[&str], done: impl Fn(&[NsRow]) -> bool) -> Vec<NsRow> {
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (rows, raw) = snapshot(args);
        if done(&rows) {
            return rows;
        }
        assert!(
            attempt < 3 || start.elapsed() < common::POLL_LIMIT,
            "gave up waiting for {what}: `sockscope snapshot --json {}` printed:\n{raw}",
            args.join(" ")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The rows in namespace `inode`.
fn in_ns(rows: &[NsRow], inode: u64) -> Vec<NsRow> {
    rows.iter()
        .filter(|r| r.netns_inode == Some(inode))
        .cloned()
        .collect()
}

/// A server in `ns` with `n` CLOSE_WAIT sockets on its listener's port,
/// once `snapshot` shows them: (server, port).
fn leak_in(ns: &NetNs, n: usize) -> (NsHolder, u16) {
    let mut server = ns.holder();
    let (listener, port) = server.listen(0);
    server.leak(listener, port, n);
    let inode = ns.inode();
    snapshot_until(
        &format!("{n} CLOSE_WAIT on port {port} in netns {}", ns.name),
        &[&format!("lport:{port}"), "state:close-wait"],
        |rows| in_ns(rows, inode).len() == n,
    );
    (server, port)
}

/// A listener on 127.0.0.1:`port` (0: any) in `ns`, one connection to it
/// from `from` (0: any) and its accepted end: (holder, port, client id,
/// client port, server id).
fn connection_in(ns: &NetNs, port: u16, from: u16) -> (NsHolder, u16, u16, u16, u16) {
    let mut h = ns.holder();
    let (listener, port) = h.listen(port);
    let (client, client_port) = h.connect(port, from);
    let (server, peer) = h.accept(listener);
    assert_eq!(peer, client_port);
    (h, port, client, client_port, server)
}

#[test]
fn close_wait_leak_inside_a_namespace_shows_in_snapshot_with_its_namespace_and_process() {
    let test =
        "close_wait_leak_inside_a_namespace_shows_in_snapshot_with_its_namespace_and_process";
    if !can_run(test, "a CLOSE_WAIT leak in an ip netns namespace") {
        return;
    }
    let ns = NetNs::add("closewait");
    let inode = ns.inode();
    let (server, port) = leak_in(&ns, 5);
    let filter = format!("port:{port}");
    let (rows, raw) = snapshot(&[&filter]);
    let ours = in_ns(&rows, inode);

    let close_wait: Vec<&NsRow> = ours.iter().filter(|r| r.state == "CLOSE_WAIT").collect();
    assert_eq!(
        close_wait.len(),
        5,
        "5 CLOSE_WAIT in netns {}:\n{raw}",
        ns.name
    );
    let listen: Vec<&NsRow> = ours.iter().filter(|r| r.state == "LISTEN").collect();
    assert_eq!(listen.len(), 1, "one listener in netns {}:\n{raw}", ns.name);
    for r in close_wait.iter().chain(&listen) {
        assert_eq!(r.local_port, port, "{r:#?}\n{raw}");
        assert_eq!(r.netns, ns.name, "the namespace's name: {r:#?}\n{raw}");
        assert_eq!(r.pid, Some(server.pid), "the server's pid: {r:#?}\n{raw}");
        assert_eq!(r.process.as_deref(), Some("python3"), "{r:#?}\n{raw}");
        assert!(
            r.owners.iter().any(|o| o.pid == server.pid),
            "the server holds it: {r:#?}"
        );
    }
    // The rest are the clients' ends, orphaned in FIN_WAIT2 in the same namespace.
    for r in ours
        .iter()
        .filter(|r| r.state != "CLOSE_WAIT" && r.state != "LISTEN")
    {
        assert!(
            r.state == "FIN_WAIT2" && r.remote_port == port && r.owners.is_empty(),
            "only the clients' orphaned ends besides: {r:#?}\n{raw}"
        );
        assert_eq!(r.netns, ns.name, "{r:#?}");
    }
    // A row named after our namespace is in it.
    for r in rows.iter().filter(|r| r.netns == ns.name) {
        assert_eq!(r.netns_inode, Some(inode), "{r:#?}\n{raw}");
    }

    // The table: a NETNS column, last, with the name on every row.
    let out = output(&mut sockscope(&["snapshot", &format!("netns:{}", ns.name)]));
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header.last(),
        Some(&"NETNS"),
        "NETNS is the last column:\n{table}"
    );
    let body: Vec<Vec<&str>> = lines
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()) && !l.contains(" sockets ("))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let local = format!("127.0.0.1:{port}");
    let leak_rows: Vec<&Vec<&str>> = body
        .iter()
        .filter(|w| w[0] == "CLOSE_WAIT" && w.get(2) == Some(&local.as_str()))
        .collect();
    assert_eq!(leak_rows.len(), 5, "5 CLOSE_WAIT rows:\n{table}");
    for w in &leak_rows {
        assert!(
            w.contains(&server.pid.to_string().as_str()) && w.contains(&"python3"),
            "pid {} and python3 on the row {w:?}:\n{table}",
            server.pid
        );
    }
    for w in &body {
        assert_eq!(
            w.last(),
            Some(&ns.name.as_str()),
            "netns:{} lists only its sockets, named:\n{table}",
            ns.name
        );
    }
}

#[test]
fn same_four_tuple_in_two_namespaces_is_two_sockets() {
    let test = "same_four_tuple_in_two_namespaces_is_two_sockets";
    if !can_run(test, "the same 4-tuple in two ip netns namespaces") {
        return;
    }
    let a = NetNs::add("tuple-a");
    let b = NetNs::add("tuple-b");
    let (ha, port, _, client_port, _) = connection_in(&a, 0, 0);
    // The same addresses and ports in B.
    let (hb, port_b, _, client_port_b, _) = connection_in(&b, port, client_port);
    assert_eq!((port_b, client_port_b), (port, client_port));
    let (inode_a, inode_b) = (a.inode(), b.inode());

    let filter = format!("port:{port}");
    let rows = snapshot_until("three sockets in each namespace", &[&filter], |rows| {
        in_ns(rows, inode_a).len() == 3 && in_ns(rows, inode_b).len() == 3
    });
    let raw = format!("{rows:#?}");
    for (ns, inode, pid) in [(&a, inode_a, ha.pid), (&b, inode_b, hb.pid)] {
        let ours = in_ns(&rows, inode);
        for (state, local, remote) in [
            ("LISTEN", port, 0),
            ("ESTABLISHED", port, client_port),
            ("ESTABLISHED", client_port, port),
        ] {
            let found: Vec<&NsRow> = ours.iter().filter(|r| r.is(state, local, remote)).collect();
            assert_eq!(
                found.len(),
                1,
                "one {state} {local}->{remote} in netns {}:\n{raw}",
                ns.name
            );
            assert_eq!(found[0].netns, ns.name, "{raw}");
            assert_eq!(found[0].pid, Some(pid), "{raw}");
        }
    }
    let listeners: Vec<&NsRow> = rows
        .iter()
        .filter(|r| r.is("LISTEN", port, 0) && (r.netns == a.name || r.netns == b.name))
        .collect();
    assert_eq!(listeners.len(), 2, "{raw}");
    assert_ne!(
        listeners[0].netns_inode, listeners[1].netns_inode,
        "two namespaces, two inodes: {raw}"
    );

    // netns:A (by name) and netns:INODE of B select only their own.
    for (term, inode) in [
        (format!("netns:{}", a.name), inode_a),
        (format!("netns:{inode_b}"), inode_b),
    ] {
        let (only, raw) = snapshot(&[&term, &filter]);
        assert_eq!(
            only.len(),
            3,
            "`{term} {filter}`: its three sockets:\n{raw}"
        );
        assert!(
            only.iter().all(|r| r.netns_inode == Some(inode)),
            "`{term} {filter}` selects only that namespace:\n{raw}"
        );
    }
}

#[test]
fn a_namespace_kept_only_by_a_bind_mount_is_found() {
    let test = "a_namespace_kept_only_by_a_bind_mount_is_found";
    if !can_run(test, "a TIME_WAIT in an ip netns namespace with no process") {
        return;
    }
    let ns = NetNs::add("bindonly");
    let inode = ns.inode();
    let mut h = ns.holder();
    let (listener, port) = h.listen(0);
    let client_port = h.time_wait(listener, port);
    h.exit();
    ns.wait_empty();
    // Nothing but the /run/netns bind mount keeps the namespace now; its
    // TIME_WAIT lasts 60 s with no process.
    let filter = format!("port:{port}");
    let rows = snapshot_until(
        &format!("the TIME_WAIT from :{client_port} in netns {}", ns.name),
        &[&filter],
        |rows| {
            in_ns(rows, inode)
                .iter()
                .any(|r| r.is("TIME_WAIT", client_port, port))
        },
    );
    let tw: Vec<NsRow> = in_ns(&rows, inode);
    assert_eq!(
        tw.len(),
        1,
        "the TIME_WAIT only (the listener closed): {tw:#?}"
    );
    assert_eq!(tw[0].netns, ns.name, "named by its bind mount: {tw:#?}");
    assert_eq!(tw[0].pid, None, "{tw:#?}");

    let name_filter = format!("netns:{}", ns.name);
    let (by_name, raw) = snapshot(&[&name_filter]);
    assert_eq!(by_name.len(), 1, "`{name_filter}`:\n{raw}");
    assert!(
        by_name[0].is("TIME_WAIT", client_port, port) && by_name[0].netns_inode == Some(inode),
        "`{name_filter}`:\n{raw}"
    );
}

#[test]
fn diagnose_names_the_namespace_and_the_process_of_a_leak() {
    let test = "diagnose_names_the_namespace_and_the_process_of_a_leak";
    if !can_run(test, "diagnose on a leak in an ip netns namespace") {
        return;
    }
    let ns = NetNs::add("diagnose");
    let (server, port) = leak_in(&ns, 30);
    let (_, doc) = crate::diagnose::diagnose_via(&[], &["--for", "0", &format!("port:{port}")]);
    let leaks: Vec<&Value> = of_kind(&doc, "close_wait_leak")
        .into_iter()
        .filter(|f| f["pid"] == server.pid)
        .collect();
    assert_eq!(leaks.len(), 1, "one leak of pid {}: {doc:#}", server.pid);
    let f = leaks[0];
    assert_eq!(f["count"], 30, "{f:#}");
    assert_eq!(f["port"], port, "{f:#}");
    assert_eq!(f["process"], "python3", "{f:#}");
    let words = format!("{}\n{}", text(f, "summary"), text(f, "message"));
    assert!(
        words.contains(&format!("(pid {})", server.pid)),
        "the text names the process: {f:#}"
    );
    assert!(
        text(f, "message").starts_with(&format!("In network namespace {}: ", ns.name))
            && text(f, "summary").starts_with(&format!("[{}] ", ns.name)),
        "the text names the namespace (\"[{0}] ...\", \"In network namespace {0}: ...\"): {f:#}",
        ns.name
    );
    // Its filter lists what it counts.
    let filter = text(f, "filter");
    let args: Vec<&str> = filter.split_whitespace().collect();
    let (rows, raw) = snapshot(&args);
    assert_eq!(
        rows.iter().filter(|r| r.state == "CLOSE_WAIT").count(),
        30,
        "the finding's filter `{filter}`:\n{raw}"
    );
    assert!(
        rows.iter().all(|r| r.netns == ns.name),
        "`{filter}`:\n{raw}"
    );
}

#[test]
fn serve_exports_a_namespace_leak_with_its_netns_label() {
    let test = "serve_exports_a_namespace_leak_with_its_netns_label";
    if !can_run(test, "serve on a leak in an ip netns namespace") {
        return;
    }
    let ns = NetNs::add("serve");
    let (server, _port) = leak_in(&ns, 5);
    let exporter = Server::start(&["--top", "10000"]);
    let m = exporter.scrape();
    let pid = server.pid.to_string();
    let mine = m.find(
        "sockscope_process_sockets",
        &[("pid", &pid), ("state", "CLOSE_WAIT")],
    );
    assert_eq!(
        mine.len(),
        1,
        "one CLOSE_WAIT series for pid {pid}: {mine:#?}"
    );
    assert_eq!(mine[0].value, 5.0, "{mine:#?}");
    assert_eq!(mine[0].labels["process"], "python3", "{mine:#?}");
    assert_eq!(
        mine[0].labels.get("netns").map(String::as_str),
        Some(ns.name.as_str()),
        "the series carries netns=\"{}\": {mine:#?}",
        ns.name
    );
    let listen = m.find(
        "sockscope_process_sockets",
        &[("pid", &pid), ("state", "LISTEN"), ("netns", &ns.name)],
    );
    assert_eq!(listen.len(), 1, "the listener's series too: {listen:#?}");
}

#[test]
fn namespace_created_and_removed_while_collecting_appears_and_goes() {
    let test = "namespace_created_and_removed_while_collecting_appears_and_goes";
    if !can_run(test, "a namespace coming and going between collections") {
        return;
    }
    let mut collector = SystemCollector::new(Options {
        incremental: true,
        namespaces: true,
        ..Options::default()
    });
    let first = collector.collect().expect("the first collection");
    let ns = NetNs::add("appear");
    let inode = ns.inode();
    assert!(
        !first.namespaces.list.values().any(|n| n.name == ns.name),
        "not made yet: {:#?}",
        first.namespaces.list
    );

    let mut h = ns.holder();
    let (_, port) = h.listen(0);
    let snap = collector.collect().expect("the second collection");
    let info = snap.namespaces.list.get(&inode).unwrap_or_else(|| {
        panic!(
            "netns {} (inode {inode}) is not in the list: {:#?}",
            ns.name, snap.namespaces.list
        )
    });
    assert_eq!(info.name, ns.name, "{info:#?}");
    assert_eq!(info.inode, inode);
    assert!(info.pids.contains(&h.pid), "its process: {info:#?}");
    assert!(info.error.is_none(), "{info:#?}");
    assert!(
        info.mount.as_deref().is_some_and(|m| m.ends_with(&ns.name)),
        "its /run/netns mount: {info:#?}"
    );
    let listener: Vec<_> = snap
        .sockets
        .iter()
        .filter(|s| s.netns == inode && s.local.port() == port)
        .collect();
    assert_eq!(listener.len(), 1, "{listener:#?}");
    assert_eq!(listener[0].state, TcpState::Listen);
    assert!(
        listener[0].owners.iter().any(|o| o.pid == h.pid),
        "{listener:#?}"
    );
    assert_eq!(
        snap.processes.get(&h.pid).map(|p| p.netns),
        Some(inode),
        "the process carries its namespace"
    );

    h.exit();
    ns.wait_empty();
    ns.delete();
    let after = collector.collect().expect("the third collection");
    assert!(
        !after.namespaces.list.contains_key(&inode),
        "the deleted namespace is still listed: {:#?}",
        after.namespaces.list
    );
    let left: Vec<_> = after.sockets.iter().filter(|s| s.netns == inode).collect();
    assert!(left.is_empty(), "its sockets remain: {left:#?}");
}

#[test]
fn destroy_works_inside_a_namespace() {
    let test = "destroy_works_inside_a_namespace";
    if !can_run(test, "SOCK_DESTROY inside an ip netns namespace") {
        return;
    }
    // The same connection in A and B: destroying A's leaves B's.
    let a = NetNs::add("destroy-a");
    let b = NetNs::add("destroy-b");
    let (mut ha, port, _, client_port, server_a) = connection_in(&a, 0, 0);
    let (mut hb, _, _, _, server_b) = connection_in(&b, port, client_port);
    let (inode_a, inode_b) = (a.inode(), b.inode());

    let out = output(&mut sockscope(&[
        "destroy",
        &format!("netns:{}", a.name),
        &format!("lport:{client_port}"),
        "state:established",
        "--yes",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("1 matching socket"), "{stdout}{stderr}");
    assert!(
        stdout.lines().any(|l| l == "destroyed 1"),
        "{stdout}{stderr}"
    );

    // The peer in A sees a reset; B's peer sees nothing.
    assert_eq!(ha.recv(server_a, 5000), "reset", "A's server end");
    assert_eq!(hb.recv(server_b, 200), "timeout", "B's server end");
    let filter = format!("port:{client_port}");
    let rows = snapshot_until(
        &format!("the connection gone from netns {}", a.name),
        &[&filter],
        |rows| in_ns(rows, inode_a).is_empty(),
    );
    let in_b = in_ns(&rows, inode_b);
    assert_eq!(
        in_b.iter().filter(|r| r.state == "ESTABLISHED").count(),
        2,
        "B's connection stays: {rows:#?}"
    );
}

#[test]
fn without_root_other_namespaces_are_counted_not_hidden() {
    let test = "without_root_other_namespaces_are_counted_not_hidden";
    if !can_run(test, "sockscope as nobody beside an ip netns namespace") {
        return;
    }
    let wrapper = common::as_nobody().expect("root can drop to nobody");
    let ns = NetNs::add("nobody");
    let inode = ns.inode();
    let mut h = ns.holder();
    let (_, port) = h.listen(0);
    let copy = common::sockscope_for_nobody();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(&copy.sockscope).args(args);
        let out = output(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "sockscope {args:?} as nobody: {stdout}{stderr}"
        );
        (stdout, stderr)
    };

    let (_, stderr) = run(&["snapshot"]);
    let note = stderr
        .lines()
        .find(|l| l.starts_with("sockscope: ") && l.contains("network namespace"))
        .unwrap_or_else(|| panic!("no note about unread network namespaces: {stderr:?}"));
    let (count, why) = unread_namespaces(note)
        .unwrap_or_else(|| panic!("the note says neither how many nor why: {note:?}"));
    assert!(count >= 1, "our namespace at least: {note:?}");
    assert!(
        why.contains("root") || why.contains("CAP_SYS_ADMIN"),
        "the reason says what would help: {note:?}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("network namespace"))
            .count(),
        1,
        "said once: {stderr:?}"
    );

    // Never shown as the host's: either in its namespace (read some other
    // way), or not at all and counted above.
    let (stdout, _) = run(&["snapshot", "--json", &format!("lport:{port}")]);
    let rows: Vec<NsRow> = serde_json::from_str(&stdout).expect("JSON rows");
    for r in rows.iter().filter(|r| r.pid == Some(h.pid)) {
        assert_eq!(r.netns_inode, Some(inode), "{stdout}");
    }
    h.listen(0);
}

/// From a namespace note, how many could not be read and why: `N network
/// namespace(s) could not be read (WHY)...` or `the network namespace of N
/// process(es) could not be told (WHY)`.
fn unread_namespaces(note: &str) -> Option<(usize, String)> {
    let why = |rest: &str| -> Option<String> {
        let open = rest.find('(')?;
        let close = open + rest[open..].find(')')?;
        Some(rest[open + 1..close].to_string())
    };
    if let Some(at) = note.find(" network namespace") {
        let before = note[..at].rsplit(' ').next()?;
        if let Ok(n) = before.parse() {
            return Some((n, why(&note[at..])?));
        }
    }
    let at = note.find("the network namespace of ")?;
    let rest = &note[at + "the network namespace of ".len()..];
    let n = rest.split(' ').next()?.parse().ok()?;
    Some((n, why(rest)?))
}

#[test]
fn netns_option_narrows_snapshot_to_one_namespace_by_name_or_pid() {
    let test = "netns_option_narrows_snapshot_to_one_namespace_by_name_or_pid";
    if !can_run(test, "--netns on an ip netns namespace") {
        return;
    }
    let ns = NetNs::add("option");
    let inode = ns.inode();
    let (h, port, ..) = connection_in(&ns, 0, 0);
    for by in [ns.name.clone(), h.pid.to_string()] {
        let (rows, raw) = snapshot(&["--netns", &by]);
        assert_eq!(
            rows.len(),
            3,
            "--netns {by}: the namespace's 3 sockets:\n{raw}"
        );
        assert!(
            rows.iter()
                .all(|r| r.netns_inode == Some(inode) && r.netns == ns.name),
            "--netns {by}:\n{raw}"
        );
        assert!(rows.iter().any(|r| r.is("LISTEN", port, 0)), "{raw}");
    }
}

/// In `ns`: a listener on 127.0.0.1:`port` and `n` connections to it that
/// the client closes first, so each client end stays in TIME_WAIT on an
/// ephemeral port of the namespace's own range.
fn time_waits_in(ns: &NetNs, port: u16, n: usize) {
    let script = format!(
        "import socket\n\
         l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         l.bind(('127.0.0.1', {port})); l.listen(128)\n\
         for _ in range({n}):\n\
         \x20   c = socket.create_connection(('127.0.0.1', {port})); a, _ = l.accept()\n\
         \x20   c.close(); a.recv(1); a.close()\n"
    );
    let out =
        output(Command::new("ip").args(["netns", "exec", &ns.name, "python3", "-c", &script]));
    assert!(
        out.status.success(),
        "the TIME_WAIT maker in {}: {}",
        ns.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_namespace_with_a_narrow_port_range_gets_its_own_time_wait_verdict() {
    let test = "a_namespace_with_a_narrow_port_range_gets_its_own_time_wait_verdict";
    if !can_run(test, "per-namespace sysctls in ip netns namespaces") {
        return;
    }
    // The same traffic in two namespaces; only one has 100 ephemeral ports.
    let narrow = NetNs::add("narrow");
    let wide = NetNs::add("wide");
    // Written inside the namespace: its /proc/sys/net is its own.
    let set = output(Command::new("ip").args([
        "netns",
        "exec",
        &narrow.name,
        "sh",
        "-c",
        "echo '40000 40099' > /proc/sys/net/ipv4/ip_local_port_range",
    ]));
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let port = 19471;
    time_waits_in(&narrow, port, 60);
    time_waits_in(&wide, port, 60);

    let (_, doc) = crate::diagnose::diagnose_via(&[], &["--for", "0", &format!("rport:{port}")]);
    let pressure: Vec<&Value> = of_kind(&doc, "time_wait_pressure")
        .into_iter()
        .filter(|f| f["port"] == port)
        .collect();
    let in_ns = |name: &str| {
        pressure
            .iter()
            .filter(|f| f["netns"].as_str() == Some(name))
            .count()
    };
    assert_eq!(
        in_ns(&narrow.name),
        1,
        "60 of 100 ports in TIME_WAIT in {}: {doc:#}",
        narrow.name
    );
    let f = pressure
        .iter()
        .find(|f| f["netns"].as_str() == Some(narrow.name.as_str()))
        .expect("counted above");
    assert_eq!(f["count"], 60, "{f:#}");
    assert!(
        text(f, "message").contains("100"),
        "the verdict is against the namespace's 100 ports: {f:#}"
    );
    assert_eq!(
        in_ns(&wide.name),
        0,
        "60 of 28,232 ports in {} is no pressure: {doc:#}",
        wide.name
    );
}

#[test]
fn a_connection_accepted_in_a_quiet_namespace_gets_its_holder_at_the_next_collection() {
    let test = "a_connection_accepted_in_a_quiet_namespace_gets_its_holder_at_the_next_collection";
    if !can_run(
        test,
        "accept() in an ip netns namespace between collections",
    ) {
        return;
    }
    let ns = NetNs::add("accept");
    let inode = ns.inode();
    let mut h = ns.holder();
    let (listener, port) = h.listen(0);
    let (_, client_port) = h.connect(port, 0);
    let mut collector = SystemCollector::new(Options {
        incremental: true,
        namespaces: true,
        ..Options::default()
    });
    // Twice: the second reuses the namespace's table (nothing moved).
    let queued = |snap: &sockscope::model::Snapshot| {
        snap.sockets
            .iter()
            .find(|s| s.netns == inode && s.local.port() == port && s.remote.port() == client_port)
            .cloned()
    };
    for _ in 0..2 {
        let snap = collector.collect().expect("a collection");
        let s = queued(&snap).expect("the queued connection");
        assert_eq!(s.inode, 0, "not accepted yet: {s:#?}");
    }
    // accept() sends no segment and opens no socket: no counter moves.
    h.accept(listener);
    let snap = collector.collect().expect("the collection after accept()");
    let s = queued(&snap).expect("the accepted connection");
    assert_ne!(s.inode, 0, "the reused table was dumped again: {s:#?}");
    assert!(s.owners.iter().any(|o| o.pid == h.pid), "{s:#?}");
}
