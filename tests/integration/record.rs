//! `sockscope record` on real sockets, read back with `snapshot --from`,
//! `diagnose --from` and the library's reader: a growing CLOSE_WAIT leak at
//! two moments, a recorder killed with SIGKILL, a file cut at many points,
//! the same connection in two network namespaces.

use crate::common;

use common::{Holder, output, poll, sockscope};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use sockscope::record::{Cursor, Recording};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};

fn start_recorder(args: &[&str]) -> Child {
    let mut cmd = sockscope(&["record"]);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    common::spawn_locked(&mut cmd)
}

/// Frames in the recording so far (0 while it has none).
fn frames(path: &Path) -> usize {
    Recording::open(path).map_or(0, |r| r.len())
}

/// CLOSE_WAIT sockets on `port` in the recording's last frame.
fn last_close_wait(path: &Path, port: u16) -> usize {
    let Ok(rec) = Recording::open(path) else {
        return 0;
    };
    let snap = Cursor::new().seek(&rec, rec.len() - 1).unwrap();
    snap.sockets
        .iter()
        .filter(|s| s.local.port() == port && s.state == sockscope::model::TcpState::CloseWait)
        .count()
}

fn leak(h: &mut Holder, listener: u32, port: u16, n: usize) {
    for _ in 0..n {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        h.accept(listener);
        drop(client);
    }
}

fn snapshot_from(args: &[&str]) -> Vec<common::Row> {
    common::snapshot_json(args)
}

#[test]
fn a_recorded_growing_close_wait_leak_reads_back_at_two_moments_with_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leak.rec");
    let path = file.to_str().unwrap();
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    leak(&mut h, listener, port, 4);
    poll("4 CLOSE_WAIT before recording", || {
        (common::close_wait_on(port) == 4).then_some(())
    });

    let lport = format!("lport:{port}");
    let mut recorder = start_recorder(&[path, "--interval", "200ms", &lport]);
    poll("two frames recorded", || (frames(&file) >= 2).then_some(()));
    // Growth is a fit over 15 s or more of samples: leak steadily for that
    // long (11 more, one every 1.5 s), not all at once.
    for _ in 0..11 {
        leak(&mut h, listener, port, 1);
        std::thread::sleep(std::time::Duration::from_millis(1500));
    }
    poll("15 CLOSE_WAIT recorded", || {
        (last_close_wait(&file, port) == 15).then_some(())
    });
    poll("sixteen seconds recorded", || {
        Recording::open(&file)
            .is_ok_and(|r| r.span() >= std::time::Duration::from_secs(16))
            .then_some(())
    });
    kill(Pid::from_raw(recorder.id() as i32), Signal::SIGTERM).unwrap();
    let status = recorder.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM stops the recorder cleanly: {status}"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(recorder.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("recorded"),
        "a summary at the end: {stderr}"
    );

    let pid = h.pid();
    let early = snapshot_from(&["--from", path, "--at", "0", "state:cw"]);
    let late = snapshot_from(&["--from", path, "state:cw"]);
    assert_eq!(early.len(), 4, "at the start: {early:#?}");
    assert_eq!(late.len(), 15, "at the end");
    for r in early.iter().chain(&late) {
        assert_eq!(r.local_port, port);
        assert_eq!(r.pid, Some(pid), "owned by the leaking child: {r:?}");
        assert_eq!(r.process.as_deref(), Some(common::exe_comm().as_str()));
    }
    let out = output(&mut sockscope(&[
        "snapshot", "--from", path, "--at", "soon",
    ]));
    assert_eq!(out.status.code(), Some(2), "not a time: a usage error");
    // A moment outside the recording is an error, not a silent jump to one end.
    let out = output(&mut sockscope(&["snapshot", "--from", path, "--at", "-1h"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("before the start"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = output(&mut sockscope(&["diagnose", "--json", "--from", path]));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(
        out.status.code(),
        Some(1),
        "a growing leak is a warning: {doc:#}"
    );
    assert!(doc["samples"].as_u64().unwrap() >= 3, "{doc:#}");
    let leak = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "close_wait_leak")
        .unwrap_or_else(|| panic!("no close_wait_leak finding: {doc:#}"));
    assert_eq!(leak["pid"], pid);
    assert_eq!(leak["port"], port);
    assert_eq!(leak["count"], 15);
    assert!(
        leak["growth_per_min"].as_f64().is_some_and(|g| g > 0.0),
        "the recording shows it growing: {leak:#}"
    );
    assert!(
        leak["growth_window_s"].as_f64().is_some_and(|w| w >= 15.0),
        "fitted over 15 s or more: {leak:#}"
    );

    // At the start of the recording, the same question gets the earlier answer.
    let out = output(&mut sockscope(&[
        "diagnose", "--json", "--from", path, "--at", "0", "--for", "0",
    ]));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let at_start = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "close_wait_leak")
        .unwrap_or_else(|| panic!("the first frame's 4 CLOSE_WAIT are a finding too: {doc:#}"));
    assert_eq!(at_start["count"], 4, "{at_start:#}");
    assert_eq!(doc["samples"], 1);
}

#[test]
fn a_recorder_killed_with_sigkill_leaves_a_file_that_reads_back_at_every_cut() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash.rec");
    let path = file.to_str().unwrap();
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    let mut recorder = start_recorder(&[path, "--interval", "100ms"]);
    for round in 1..=6 {
        leak(&mut h, listener, port, 2);
        poll("a frame with the new leak", || {
            (last_close_wait(&file, port) == 2 * round).then_some(())
        });
    }
    recorder.kill().unwrap();
    recorder.wait().unwrap();

    let whole = std::fs::read(&file).unwrap();
    let rec = Recording::open(&file).unwrap();
    let total = rec.len();
    assert!(total >= 6);
    // Cut at 300 points spread over the file, and around the very start.
    let cuts: Vec<usize> = (0..300)
        .map(|i| i * whole.len() / 300 + i % 17)
        .chain(0..40)
        .chain([whole.len()])
        .filter(|&c| c <= whole.len())
        .collect();
    let cut = dir.path().join("cut.rec");
    let mut by_len: Vec<(usize, usize)> = Vec::new();
    for len in cuts {
        std::fs::write(&cut, &whole[..len]).unwrap();
        let n = match Recording::open(&cut) {
            Ok(r) => {
                // Everything before the cut reads back.
                let mut c = Cursor::new();
                for i in 0..r.len() {
                    c.seek(&r, i)
                        .unwrap_or_else(|e| panic!("cut at {len}, frame {i}: {e}"));
                }
                assert_eq!(r.bytes() + r.ignored_bytes, len as u64);
                r.len()
            }
            Err(sockscope::record::RecordError::Empty { .. }) => 0,
            Err(e) => panic!("cut at {len}: {e}"),
        };
        by_len.push((len, n));
    }
    by_len.sort();
    assert!(by_len.windows(2).all(|w| w[0].1 <= w[1].1), "{by_len:?}");
    assert_eq!(by_len.last().unwrap().1, total);

    // The command line reads a cut file too, and says a tail was left out.
    std::fs::write(&cut, &whole[..whole.len() - 5]).unwrap();
    let out = output(&mut sockscope(&[
        "snapshot",
        "--from",
        cut.to_str().unwrap(),
        &format!("lport:{port}"),
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cut short"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Recording again into the killed run's file continues it.
    let out = output(&mut sockscope(&[
        "record",
        path,
        "--interval",
        "100ms",
        "--duration",
        "0.3",
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = Recording::open(&file).unwrap();
    assert!(again.len() > total, "{} then {}", total, again.len());
    assert_eq!(again.ignored_bytes, 0);
}

#[test]
fn bad_recordings_and_flags_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "keep me\n").unwrap();
    let notes = notes.to_str().unwrap();

    let out = output(&mut sockscope(&["record", notes, "--duration", "1"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a sockscope recording"));
    assert_eq!(std::fs::read(notes).unwrap(), b"keep me\n");

    let out = output(&mut sockscope(&["snapshot", "--from", notes]));
    assert_eq!(out.status.code(), Some(1));
    let out = output(&mut sockscope(&["diagnose", "--from", notes]));
    assert_eq!(out.status.code(), Some(2), "diagnose's errors are 2");
    let missing = dir.path().join("missing.rec");
    let out = output(&mut sockscope(&[
        "snapshot",
        "--from",
        missing.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.rec"));

    for bad in [
        &["snapshot", "--at", "5"][..],
        &["snapshot", "--from", notes, "--at"],
        &["record", "x.rec", "--duration", "forever"],
        &["record"],
    ] {
        let out = output(&mut sockscope(bad));
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn a_recording_keeps_each_sockets_namespace_so_a_replay_names_it() {
    let test = "a_recording_keeps_each_sockets_namespace_so_a_replay_names_it";
    if !common::root_or_skip(
        test,
        "sockets in ip netns namespaces, recorded and read back",
    ) {
        return;
    }
    common::netns::tools();
    let a = common::netns::NetNs::add("rec-a");
    let b = common::netns::NetNs::add("rec-b");
    // One connection in A, the same 4-tuple in B, and a leak in A.
    let mut ha = a.holder();
    let (listener_a, port) = ha.listen(0);
    let (_, client_port) = ha.connect(port, 0);
    ha.accept(listener_a);
    let mut hb = b.holder();
    let (listener_b, _) = hb.listen(port);
    let (_, from) = hb.connect(port, client_port);
    assert_eq!(from, client_port, "the same 4-tuple in B");
    hb.accept(listener_b);
    ha.leak(listener_a, port, 20);
    let (inode_a, inode_b) = (a.inode(), b.inode());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("netns.rec");
    let path = file.to_str().unwrap();
    let filter = format!("port:{port}");
    let out = output(&mut sockscope(&[
        "record",
        path,
        "--interval",
        "500ms",
        "--duration",
        "2s",
        &filter,
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The command line's replay of the last frame.
    let out = output(&mut sockscope(&[
        "snapshot", "--json", "--from", path, &filter,
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let raw = String::from_utf8_lossy(&out.stdout);
    for (ns, inode, pid) in [(&a, inode_a, ha.pid), (&b, inode_b, hb.pid)] {
        for (state, local, remote) in [
            ("LISTEN", port, 0),
            ("ESTABLISHED", port, client_port),
            ("ESTABLISHED", client_port, port),
        ] {
            let found: Vec<&Value> = rows
                .iter()
                .filter(|r| {
                    r["netns_inode"] == inode
                        && r["state"] == state
                        && r["local_port"] == local
                        && r["remote_port"] == remote
                })
                .collect();
            assert_eq!(
                found.len(),
                1,
                "one {state} {local}->{remote} in netns {} (inode {inode}):\n{raw}",
                ns.name
            );
            assert_eq!(found[0]["netns"], ns.name.as_str(), "{raw}");
            assert_eq!(found[0]["pid"], pid, "{raw}");
        }
    }
    let leaked = rows
        .iter()
        .filter(|r| r["netns_inode"] == inode_a && r["state"] == "CLOSE_WAIT")
        .count();
    assert_eq!(leaked, 20, "A's leak, in A:\n{raw}");

    // The library's reader: two sockets, two keys, two namespaces.
    let rec = Recording::open(&file).unwrap();
    let snap = Cursor::new().seek(&rec, rec.len() - 1).unwrap();
    let twins: Vec<&sockscope::model::Socket> = snap
        .sockets
        .iter()
        .filter(|s| {
            s.local.port() == client_port
                && s.remote.port() == port
                && (s.netns == inode_a || s.netns == inode_b)
        })
        .collect();
    assert_eq!(twins.len(), 2, "{twins:#?}");
    assert_eq!(
        (twins[0].local, twins[0].remote),
        (twins[1].local, twins[1].remote)
    );
    assert_ne!(twins[0].key(), twins[1].key());
    let mut names: Vec<&str> = twins
        .iter()
        .map(|s| snap.namespaces.name(s.netns))
        .collect();
    names.sort_unstable();
    let mut want = [a.name.as_str(), b.name.as_str()];
    want.sort_unstable();
    assert_eq!(names, want);
    let ns_a = snap.namespaces.get(inode_a).expect("A in the table");
    assert_eq!(
        ns_a.mount.as_deref(),
        Some(format!("/run/netns/{}", a.name).as_str())
    );
    assert!(ns_a.pids.contains(&ha.pid), "{ns_a:#?}");

    // diagnose reads the leak from the recording, in its namespace.
    let out = output(&mut sockscope(&[
        "diagnose", "--json", "--from", path, "--for", "0", &filter,
    ]));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let leaks: Vec<&Value> = crate::real_servers::of_kind(&doc, "close_wait_leak")
        .into_iter()
        .filter(|f| f["pid"] == ha.pid)
        .collect();
    assert_eq!(leaks.len(), 1, "one leak of pid {}: {doc:#}", ha.pid);
    assert_eq!(leaks[0]["count"], 20, "{doc:#}");
    let words = crate::real_servers::text(leaks[0], "message");
    assert!(
        words.contains(&a.name),
        "the finding names the namespace {}: {doc:#}",
        a.name
    );
}
