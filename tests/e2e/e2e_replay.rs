//! End to end: a real recording of a real, growing CLOSE_WAIT leak (a child
//! process that never closes what its peers closed), replayed by the real
//! binary in a pseudo-terminal and driven with keys. Also the command's
//! errors for files that are not recordings and for bad flags.

use crate::common;
#[allow(dead_code)] // the harness has more than these tests use
use crate::pty;

use common::{Holder, output, poll, sockscope};
use pty::{EXIT_WAIT, Tui, spawn};
use sockscope::collect::{Collector, Options, SourceChoice, SystemCollector};
use sockscope::record::{Recorder, SessionInfo};
use std::path::Path;
use std::time::Duration;

/// CLOSE_WAIT sockets in each recorded frame.
const FRAMES: [usize; 5] = [3, 6, 9, 12, 15];

/// Records the whole machine once per step of a leak in a child process that
/// grows to each count of [`FRAMES`]. Returns the child (its sockets must
/// outlive nothing: the recording is made) and the port.
fn record_a_growing_leak(path: &Path) -> (Holder, u16) {
    let mut h = Holder::new();
    let (listener, port) = h.listen("127.0.0.1:0");
    let mut collector = SystemCollector::new(Options {
        source: SourceChoice::Auto,
        tcp_info: true,
        owners: true,
        incremental: true,
        namespaces: true,
    });
    let mut recorder = Recorder::create(
        path,
        SessionInfo {
            host: "e2e-host".into(),
            kernel: "test".into(),
            filter: String::new(),
            interval: Duration::from_secs(1),
        },
    )
    .expect("create the recording");
    let mut leaked = 0;
    for &want in &FRAMES {
        while leaked < want {
            let (client, _) = h.connect(&format!("127.0.0.1:{port}"));
            h.accept(listener);
            h.close(client);
            leaked += 1;
        }
        // The kernel has them all in CLOSE_WAIT before the frame is taken.
        poll(&format!("{want} CLOSE_WAIT on port {port}"), || {
            (common::close_wait_on(port) == want).then_some(())
        });
        let snap = collector.collect().expect("collect a snapshot");
        recorder.write(&snap).expect("write a frame");
    }
    (h, port)
}

/// The CLOSE_WAIT column of `pid`'s row in the "by process" table.
fn close_wait_of(screen: &vt100::Screen, pid: u32) -> Option<u64> {
    let text = screen.contents();
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .by_ref()
        .find(|l| l.contains("PID") && l.contains("CLOSE_WAIT"))?
        .split_whitespace()
        .collect();
    let column = header.iter().position(|w| *w == "CLOSE_WAIT")?;
    let row: Vec<&str> = lines
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))?
        .split_whitespace()
        .collect();
    row.get(column)?.parse().ok()
}

fn header(screen: &vt100::Screen) -> String {
    screen.contents().lines().next().unwrap_or("").to_string()
}

/// Waits for `pid`'s row to show `n` CLOSE_WAIT on frame `frame` of 5.
fn wait_for_frame(tui: &Tui, pid: u32, frame: usize, n: u64) {
    let label = format!("frame {frame}/{}", FRAMES.len());
    tui.wait_for(&format!("{label} with {n} CLOSE_WAIT for pid {pid}"), |s| {
        header(s).contains(&label) && close_wait_of(s, pid) == Some(n)
    });
}

#[test]
fn a_recorded_leak_replays_frame_by_frame_with_its_findings_and_filter() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("leak.rec");
    let (holder, port) = record_a_growing_leak(&file);
    let pid = holder.pid();
    // The child goes: what follows is only in the recording.
    drop(holder);

    let mut tui = spawn(&["replay", file.to_str().unwrap()], 120, 40, &[]);
    tui.wait_for("REPLAY, paused on the last frame", |s| {
        let h = header(s);
        h.contains("REPLAY paused 1x") && h.contains("frame 5/5")
    });
    tui.type_keys(&format!("/{port} cw\r"));
    wait_for_frame(&tui, pid, 5, 15);

    // The start has fewer than the end; steps move one frame.
    tui.type_keys("{");
    wait_for_frame(&tui, pid, 1, 3);
    tui.type_keys(".");
    wait_for_frame(&tui, pid, 2, 6);
    tui.type_keys(".");
    wait_for_frame(&tui, pid, 3, 9);
    tui.type_keys(",");
    wait_for_frame(&tui, pid, 2, 6);
    tui.type_keys("}");
    wait_for_frame(&tui, pid, 5, 15);

    // The time prompt: 0 is the start, -0 the end; nonsense keeps it open.
    tui.type_keys("tsoon\r");
    tui.wait_for_text("`soon` is not a time");
    tui.type_keys("\x15"); // Ctrl-U
    tui.type_keys("0\r");
    wait_for_frame(&tui, pid, 1, 3);

    // Play fast from there to the end, where it stops.
    tui.type_keys("]]]]]]");
    tui.wait_for("64x", |s| header(s).contains("REPLAY paused 64x"));
    tui.type_keys("p");
    wait_for_frame(&tui, pid, 5, 15);
    tui.wait_for("paused at the end", |s| header(s).contains("REPLAY paused"));

    // The findings view works on the recording: the leak, its pid and port.
    tui.type_keys("2");
    let holds = format!("(pid {pid}) holds 15 sockets in CLOSE_WAIT");
    tui.wait_for("the leak in the findings view", |s| {
        let text = s.contents();
        text.contains("close_wait_leak") && text.contains(&holds)
    });
    // Nothing in a replay is live: k is refused, in any view.
    tui.type_keys("k");
    tui.wait_for_text("k and x are off");
    tui.type_keys("{");
    tui.wait_for("the findings of the first frame", |s| {
        s.contents()
            .contains(&format!("(pid {pid}) holds 3 sockets in CLOSE_WAIT"))
    });

    tui.quit();
    assert!(!tui.with_screen(|s| s.alternate_screen()));
    assert_eq!(tui.modes(), tui.initial_modes(), "terminal modes restored");
}

#[test]
fn a_torn_tail_is_replayed_up_to_the_last_whole_frame_and_said_at_80x24() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("torn.rec");
    let (holder, _) = record_a_growing_leak(&file);
    drop(holder);
    // A recorder killed in the middle of a write leaves part of a block: its
    // header (a delta of 1000 bytes, just after the last frame) and 83 bytes.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = sockscope::record::Recording::open(&file).unwrap().end();
    let at_ms = last
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1000;
    bytes.extend_from_slice(&1000u32.to_le_bytes());
    bytes.push(2);
    bytes.extend_from_slice(&at_ms.to_le_bytes());
    bytes.extend_from_slice(&[0x55; 4 + 83]);
    std::fs::write(&file, &bytes).unwrap();

    let mut tui = spawn(
        &["replay", file.to_str().unwrap(), "--at", "-0"],
        80,
        24,
        &[("NO_COLOR", "1")],
    );
    tui.wait_for("the torn tail on the status line", |s| {
        let text = s.contents();
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("ignored 100 bytes of a torn tail"))
            && header(s).contains("REPLAY paused")
    });
    tui.type_keys("q");
    let status = tui.wait_exit(EXIT_WAIT).expect("q ends the replay");
    assert!(status.success(), "{status:?}");
}

#[test]
fn files_that_are_not_recordings_exit_1_and_bad_flags_exit_2() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a recording\n").unwrap();
    let empty = dir.path().join("empty.rec");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.rec");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    for (file, says) in [
        (path(&missing), "missing.rec"),
        (path(&notes), "is not a sockscope recording"),
        (path(&empty), "holds no complete frame"),
    ] {
        let out = output(&mut sockscope(&["replay", &file]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains(says), "{file}: {stderr}");
        assert!(out.stdout.is_empty());
    }

    let file = dir.path().join("run.rec");
    let (holder, _) = record_a_growing_leak(&file);
    drop(holder);
    let file = path(&file);
    for (args, says) in [
        (vec!["--at", "soon"], "`soon` is not a time"),
        (vec!["--at", "2h"], "past the end"),
        (vec!["--at", "-5h"], "before the start"),
        (vec!["--speed", "100"], "between 0.25 and 64"),
        (vec!["port:abc"], "port:abc"),
    ] {
        let mut all = vec!["replay", file.as_str()];
        all.extend_from_slice(&args);
        let out = output(&mut sockscope(&all));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(stderr.contains(says), "{all:?}: {stderr}");
    }
    // Without a terminal it says what to use instead.
    let out = output(&mut sockscope(&["replay", &file]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a terminal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
