//! Every holder of a socket, with real processes: a server that forks
//! (parent and child hold the listener and every connection), a prefork
//! pool, and a listener nobody accepts on. Each test looks only at its own
//! ports and pids.

use crate::common;

use common::py_server::PyServer;
use common::{Holder, has_ended, output, poll, snapshot_json, sockscope};
use serde_json::Value;
use std::net::TcpStream;

fn json(args: &[&str]) -> (i32, Value) {
    let out = output(&mut sockscope(args));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn findings_of<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn distinct_pids(row: &common::Row) -> Vec<u32> {
    let mut pids: Vec<u32> = row.owners.iter().map(|o| o.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).expect("connect")
}

#[test]
fn a_forked_servers_parent_and_child_are_both_named_and_both_must_let_go() {
    let mut srv = PyServer::start(&["fork"]);
    let (port, parent) = (srv.port, srv.pid());
    // A busy healthy server beside it.
    let mut healthy = Holder::new();
    let (l, healthy_port) = healthy.listen("127.0.0.1:0");
    healthy.echo(l);
    let busy: Vec<TcpStream> = (0..20).map(|_| connect(healthy_port)).collect();

    let clients: Vec<TcpStream> = (0..10).map(|_| connect(port)).collect();
    assert_eq!(srv.send("accept 10"), "ok");
    let child: u32 = srv
        .send("fork")
        .strip_prefix("child ")
        .and_then(|p| p.parse().ok())
        .expect("child pid");
    drop(clients);

    let filter = format!("lport:{port} netns:host");
    let rows = poll("10 CLOSE_WAIT held by parent and child", || {
        let rows = snapshot_json(&[&filter, "state:close-wait"]);
        (rows.len() == 10
            && rows
                .iter()
                .all(|r| distinct_pids(r) == vec![parent.min(child), parent.max(child)]))
        .then_some(rows)
    });
    assert_eq!(rows.len(), 10);
    let listener = snapshot_json(&[&filter, "state:listen"]);
    assert_eq!(
        distinct_pids(&listener[0]),
        vec![parent.min(child), parent.max(child)]
    );

    // `snapshot pid:CHILD` shows the child on every row, and says another holds them too.
    let pid_term = format!("pid:{child}");
    let out = output(&mut sockscope(&[
        "snapshot",
        &pid_term,
        &filter,
        "state:close-wait",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let data: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("CLOSE_WAIT"))
        .collect();
    assert_eq!(data.len(), 10, "{text}");
    for line in data {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[6], child.to_string(), "{line}");
        assert_eq!(cols[7..9], ["python3", "(+1)"], "{line}");
    }

    // One finding, naming both.
    let (_, doc) = json(&["diagnose", "--for", "0", "--json", &filter]);
    let cw = findings_of(&doc, "close_wait_leak");
    assert_eq!(cw.len(), 1, "{doc:#}");
    let f = cw[0];
    let both = vec![parent.min(child), parent.max(child)];
    assert_eq!(f["pids"], serde_json::json!(both), "{f:#}");
    assert_eq!(
        (f["count"].as_u64(), f["shared"].as_u64()),
        (Some(10), Some(10)),
        "{f:#}"
    );
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("python3 (pids {} and {}) holds 10 sockets in CLOSE_WAIT on port {port}; both hold the same 10", both[0], both[1])),
        "{summary}"
    );
    assert!(
        f["next_step"]
            .as_str()
            .unwrap()
            .contains("Every holder must close them or exit"),
        "{f:#}"
    );
    let text = output(&mut sockscope(&["diagnose", "--for", "0", &filter]));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("pids {} and {}", both[0], both[1])),
        "{text}"
    );

    // Signalling the child alone frees nothing, and sockscope says who still holds them.
    let out = output(&mut sockscope(&[
        "kill",
        "--pid",
        &child.to_string(),
        &filter,
        "state:close-wait",
        "--yes",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "alone, frees 0 of 10 sockets (0 CLOSE_WAIT): {parent} (python3) holds them too"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "10 of 10 matching sockets still held, by pid {parent} (python3) 10"
        )),
        "{stdout}"
    );
    poll("the child to end", || has_ended(child).then_some(()));
    assert!(!has_ended(parent));

    // Every holder: the sockets are freed.
    let out = output(&mut sockscope(&[
        "kill",
        &filter,
        "state:close-wait",
        "--yes",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("all 10 matching sockets freed"), "{stdout}");
    assert!(!has_ended(healthy.pid()), "the healthy server was hit");
    drop(busy);
}

#[test]
fn a_prefork_pool_leaking_in_every_worker_is_one_finding_naming_the_pool() {
    let mut srv = PyServer::start(&["prefork", "3"]);
    let port = srv.port;
    let workers: Vec<u32> = srv
        .send("workers")
        .strip_prefix("workers ")
        .expect("workers")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(workers.len(), 3);
    let filter = format!("lport:{port} netns:host");
    // Connect until at least two workers have accepted some: which worker
    // the kernel wakes is its choice.
    let mut clients = Vec::new();
    let holders = poll("connections accepted by two workers or more", || {
        clients.push(connect(port));
        std::thread::sleep(std::time::Duration::from_millis(30));
        let rows = snapshot_json(&[&filter, "state:established"]);
        let server_side: Vec<&common::Row> = rows.iter().filter(|r| r.local_port == port).collect();
        let mut pids: Vec<u32> = server_side.iter().flat_map(|r| distinct_pids(r)).collect();
        pids.sort_unstable();
        pids.dedup();
        (server_side.len() == clients.len() && pids.len() >= 2).then_some(pids)
    });
    assert!(
        holders.iter().all(|p| workers.contains(p)),
        "{holders:?} not among {workers:?}"
    );
    let n = clients.len();
    drop(clients);
    poll("every connection in CLOSE_WAIT", || {
        (snapshot_json(&[&filter, "state:close-wait"]).len() == n).then_some(())
    });
    let (_, doc) = json(&["diagnose", "--for", "0", "--json", &filter]);
    let cw = findings_of(&doc, "close_wait_leak");
    assert_eq!(cw.len(), 1, "one finding for the pool: {doc:#}");
    assert_eq!(cw[0]["pids"], serde_json::json!(holders), "{doc:#}");
    assert_eq!(cw[0]["count"].as_u64(), Some(n as u64));
    assert_eq!(cw[0]["process"], "python3");
    assert!(
        cw[0]["message"]
            .as_str()
            .unwrap()
            .contains("Each process holds its own"),
        "{doc:#}"
    );
}

#[test]
fn connections_nobody_accepted_belong_to_the_listener_and_make_accept_stalled() {
    let mut h = Holder::new();
    let (_listener, port) = h.listen("127.0.0.1:0");
    let waiting: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    let gave_up: Vec<TcpStream> = (0..4).map(|_| connect(port)).collect();
    drop(gave_up);
    let filter = format!("lport:{port} netns:host");
    poll("4 queued connections in CLOSE_WAIT", || {
        (snapshot_json(&[&filter, "state:close-wait"]).len() == 4).then_some(())
    });

    // JSON: the queued ones name their listener and its holder.
    let (_, rows) = json(&["snapshot", "--json", &filter]);
    let queued: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["local_port"] == port && r["inode"] == 0)
        .collect();
    assert_eq!(queued.len(), 6, "{rows:#}");
    for r in &queued {
        assert_eq!(r["pid"], h.pid(), "{r:#}");
        assert_eq!(
            r["owners"],
            serde_json::json!([]),
            "nobody holds a descriptor: {r:#}"
        );
        assert_eq!(r["accept_queue_of"]["local_port"], port, "{r:#}");
        assert_eq!(r["accept_queue_of"]["holders"][0]["pid"], h.pid(), "{r:#}");
    }
    // The table says so too.
    let out = output(&mut sockscope(&["snapshot", &filter, "state:close-wait"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("(accept queue)").count(), 4, "{text}");

    let (code, doc) = json(&["diagnose", "--for", "0", "--json", &filter]);
    assert_eq!(code, 1, "warning or worse: {doc:#}");
    let first = &doc["findings"][0];
    assert_eq!(first["kind"], "accept_stalled", "ranked first: {doc:#}");
    assert_eq!(first["pid"], h.pid());
    assert_eq!(first["severity"], "critical");
    assert_eq!(
        first["related"],
        serde_json::json!(["close_wait_leak"]),
        "{first:#}"
    );
    assert!(
        first["summary"].as_str().unwrap().ends_with(
            "is not calling accept(): 6 connections waiting, 4 already given up by their clients"
        ),
        "{first:#}"
    );
    let cw = findings_of(&doc, "close_wait_leak");
    assert_eq!(cw.len(), 1, "{doc:#}");
    assert_eq!(
        cw[0]["pid"],
        h.pid(),
        "the listener's holder, not unknown: {doc:#}"
    );
    for f in doc["findings"].as_array().unwrap() {
        let text = format!("{} {} {}", f["summary"], f["message"], f["next_step"]);
        assert!(!text.contains("unknown process"), "{text}");
        assert!(!text.contains("run as root"), "{text}");
    }
    drop(waiting);
}
