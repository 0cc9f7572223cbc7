//! Without root, sockscope still lists every socket; it cannot name the owners
//! of other users' sockets, says so once on stderr, and succeeds.

use crate::common;

use common::{
    Holder, as_nobody, copies_for_nobody, exe_comm, output, parse_attribution_note, parse_rows,
};
use std::process::Command;

#[test]
fn unprivileged_run_lists_root_sockets_without_owners_and_says_so_once() {
    let wrapper = as_nobody();
    let copies = wrapper.as_ref().map(|_| copies_for_nobody(true));

    // A listener held by a process of ours (root, when the test runs as root).
    let mut root_holder = Holder::new();
    let (_, root_port) = root_holder.listen("127.0.0.1:0");

    // A listener held by a process of the same user as the unprivileged sockscope.
    let mut own = match (&wrapper, &copies) {
        (Some(w), Some(c)) => Holder {
            h: common::Helper::role_via(c.test.as_ref().expect("test copy"), "holder", &[], w),
        },
        _ => Holder::new(),
    };
    let (own_id, own_port) = own.listen("127.0.0.1:0");
    let own_fd = own.fd(own_id);
    if wrapper.is_some() {
        let uid = std::fs::metadata(format!("/proc/{}", own.pid())).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_ne!(uid.uid(), 0, "the second holder runs as nobody");
    }

    let mut cmd = match (&wrapper, &copies) {
        (Some(w), Some(c)) => {
            let mut cmd = Command::new(w[0]);
            cmd.args(&w[1..]).arg(&c.sockscope);
            cmd
        }
        _ => Command::new(common::bin()),
    };
    cmd.args([
        "snapshot",
        "--json",
        "proto:tcp",
        "state:listen",
        "addr:127.0.0.1",
    ]);
    let out = output(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let rows = parse_rows(&out.stdout);

    let own_row = rows
        .iter()
        .find(|r| r.local_port == own_port)
        .expect("the unprivileged user's own listener is listed");
    assert_eq!(own_row.pid, Some(own.pid()), "own sockets are attributed");
    assert_eq!(own_row.owners[0].fd, own_fd);
    assert_eq!(own_row.process.as_deref(), Some(exe_comm().as_str()));

    let root_row = rows
        .iter()
        .find(|r| r.local_port == root_port)
        .expect("root's listener is listed");
    // Other network namespaces on this machine (not ours to know) get a
    // note of their own; the attribution note is said once.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("network namespace"))
        .collect();
    if wrapper.is_none() {
        // Not root: both holders are ours, and whether some other user's
        // process exists here is not ours to know.
        assert_eq!(root_row.pid, Some(root_holder.pid()));
        assert!(lines.len() <= 1 && lines.iter().all(|l| parse_attribution_note(l).is_some()));
        common::skipped(
            "unprivileged_run_lists_root_sockets_without_owners_and_says_so_once",
            "root's sockets seen by nobody",
            "not root (ran sockscope as this user instead)",
            "run it as root, as .ci/run does",
        );
        return;
    }
    assert_eq!(root_row.uid, 0);
    assert_eq!(root_row.pid, None, "{root_row:#?}");
    assert_eq!(root_row.process, None);
    assert!(root_row.owners.is_empty());

    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr:?}");
    // Its counts are the whole machine's (at least root's listener and our
    // root holder, but any other root process too): nothing this test can
    // pin down beyond the note's form.
    parse_attribution_note(lines[0])
        .unwrap_or_else(|| panic!("not the attribution note: {:?}", lines[0]));
}

/// The live tracker (here `record`'s) reads a table it may not read once,
/// not at every sample: it still counts that process, at every sample, as
/// one whose owners it cannot name.
#[test]
fn an_unprivileged_recording_counts_other_users_processes_at_every_sample() {
    let test = "an_unprivileged_recording_counts_other_users_processes_at_every_sample";
    if !common::root_or_skip(test, "root's processes as seen by nobody") {
        return;
    }
    let wrapper = as_nobody().expect("root");
    let copies = copies_for_nobody(false);
    let mut root_holder = Holder::new();
    let (_, port) = root_holder.listen("127.0.0.1:0");

    // A directory nobody may write to for the recording.
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = dir.path().join("unreadable.rec");
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg(&copies.sockscope).args([
        "record",
        file.to_str().unwrap(),
        "--interval",
        "200ms",
        "--duration",
        "2s",
        &format!("lport:{port}"),
    ]);
    let out = output(&mut cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rec = sockscope::record::Recording::open(&file).unwrap();
    assert!(rec.len() >= 5, "only {} frames in 2 s", rec.len());
    let mut cursor = sockscope::record::Cursor::new();
    for i in 0..rec.len() {
        let snap = cursor.seek(&rec, i).unwrap();
        // At least our root holder; how many others is the machine's.
        assert!(
            snap.attribution.unreadable_processes >= 1,
            "frame {i}: {:?}",
            snap.attribution
        );
        let listener = snap
            .sockets
            .iter()
            .find(|s| s.local.port() == port)
            .unwrap_or_else(|| panic!("frame {i}: root's listener is recorded"));
        assert!(listener.owners.is_empty(), "frame {i}: {listener:?}");
    }
}
