use super::*;
use crate::model::{Owner, Snapshot, Socket, Timer, TimerKind, fixture};
use std::time::{Duration, SystemTime};

fn info() -> writer::SessionInfo {
    writer::SessionInfo {
        host: "testhost".into(),
        kernel: "6.1".into(),
        filter: String::new(),
        interval: Duration::from_secs(1),
    }
}

/// Frame `n` of a made-up run: the fixture, one second apart, with sockets
/// appearing, going, changing state and owner, timers counting down towards a
/// fixed deadline, a process renamed, and counters rising.
fn frame(n: u64) -> Snapshot {
    let mut snap = fixture::small();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    snap.taken_at = t0 + Duration::from_millis(n * 1000 + n % 7);
    let now_ms = (n * 1000 + n % 7) as i64;
    // The fixture's connections are idle since the first frame.
    for s in &mut snap.sockets {
        if let Some(t) = &mut s.tcp_info {
            t.last_data_sent_ms = now_ms as u32;
            t.last_data_recv_ms = now_ms as u32;
            t.last_ack_recv_ms = now_ms as u32;
        }
    }
    for i in 0..(n % 13) {
        let mut s = fixture::socket(
            crate::model::Proto::Tcp,
            crate::model::TcpState::CloseWait,
            "127.0.0.1:6800",
            &format!("127.0.0.1:{}", 40000 + i),
            9000 + i,
            0,
            &[(1001, 100 + i as u32)],
        );
        // The deadline is fixed; what is left of it shrinks as time passes.
        let deadline = 100_000 + i as i64 * 1000;
        s.timer = Some(Timer {
            kind: TimerKind::Keepalive,
            expires_ms: Some((deadline - now_ms).max(0) as u64),
        });
        if let Some(t) = &mut s.tcp_info {
            // Busy: data arrived just now, and the byte count moved.
            t.last_data_recv_ms = 0;
            t.last_ack_recv_ms = now_ms as u32;
            t.bytes_received = n * 10;
        }
        snap.sockets.push(s);
    }
    if n.is_multiple_of(5) {
        snap.sockets[0].owners.push(Owner { pid: 7777, fd: 3 });
        snap.processes.insert(
            7777,
            fixture::process(7777, &format!("worker-{n}"), "worker --x", 0, "root"),
        );
    }
    if n % 4 == 1 {
        snap.sockets.remove(2);
    }
    snap.sockets[1].recv_q = (n % 3) as u32;
    *snap
        .system
        .counters
        .entry("TcpExt.ListenOverflows".into())
        .or_default() += n;
    snap.system
        .counters
        .insert("Tcp.OutSegs".into(), 1000 + n * n);
    snap
}

/// Sockets in a canonical order: the reader does not keep the collector's.
fn canon(mut s: Snapshot) -> Snapshot {
    s.sockets.sort_by_key(Socket::key);
    s
}

fn write_frames(path: &std::path::Path, frames: impl Iterator<Item = Snapshot>) -> Vec<bool> {
    let mut rec = Recorder::create(path, info()).unwrap();
    frames.map(|s| rec.write(&s).unwrap().key).collect()
}

#[test]
fn every_frame_reads_back_exactly_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    let keys = write_frames(&path, (0..60).map(frame));
    assert!(keys[0], "the first frame is a key frame");
    assert!(
        keys.iter().skip(1).filter(|k| **k).count() >= 2,
        "deltas add up to a key frame's size within 60 frames here: {keys:?}"
    );
    assert!(keys.iter().filter(|k| !**k).count() >= 30);

    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.len(), 60);
    assert_eq!(rec.ignored_bytes, 0);
    assert_eq!(rec.session(0).host, "testhost");
    let mut cursor = Cursor::new();
    let order: Vec<usize> = (0..60)
        .chain((0..60).rev())
        .chain([7, 42, 3, 59, 0])
        .collect();
    for i in order {
        let got = cursor.seek(&rec, i).unwrap();
        assert_eq!(canon(got), canon(frame(i as u64)), "frame {i}");
        assert_eq!(rec.time(i), frame(i as u64).taken_at);
    }
}

#[test]
fn index_at_finds_the_last_frame_at_or_before_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    write_frames(&path, (0..10).map(frame));
    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.index_at(rec.start()), 0);
    assert_eq!(rec.index_at(rec.start() - Duration::from_secs(5)), 0);
    assert_eq!(rec.index_at(rec.start() + Duration::from_millis(4500)), 4);
    assert_eq!(rec.index_at(rec.end() + Duration::from_secs(99)), 9);
    assert!(rec.span() >= Duration::from_secs(9));
}

#[test]
fn a_file_cut_anywhere_reads_back_up_to_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    let mut rec = Recorder::create(&path, info()).unwrap();
    // Where each frame's block ends.
    let mut ends = Vec::new();
    for n in 0..25 {
        rec.write(&frame(n)).unwrap();
        ends.push(rec.bytes);
    }
    drop(rec);
    let whole = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.rec");
    // Not every byte length (a debug build took seconds for that): each of
    // the first 64 (the file header and the first frame's start), a few
    // bytes either side of each frame's end, and a stride through the rest.
    let mut lengths: Vec<usize> = (0..=64.min(whole.len())).collect();
    for &end in &ends {
        let end = end as usize;
        lengths.extend(end.saturating_sub(3)..=(end + 3).min(whole.len()));
    }
    lengths.extend((0..whole.len()).step_by(97));
    lengths.push(whole.len());
    lengths.sort_unstable();
    lengths.dedup();
    for len in lengths {
        std::fs::write(&cut, &whole[..len]).unwrap();
        let complete = ends.iter().filter(|&&e| e <= len as u64).count();
        match Recording::open(&cut) {
            Ok(r) => {
                assert_eq!(r.len(), complete, "cut at {len}");
                assert_eq!(r.ignored_bytes, len as u64 - ends[complete - 1]);
                let last = Cursor::new().seek(&r, complete - 1).unwrap();
                assert_eq!(
                    canon(last),
                    canon(frame(complete as u64 - 1)),
                    "cut at {len}"
                );
            }
            Err(RecordError::Empty { .. }) => assert_eq!(complete, 0, "cut at {len}"),
            Err(e) => panic!("cut at {len}: {e}"),
        }
    }
}

#[test]
fn a_new_run_cuts_a_torn_tail_and_appends_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    write_frames(&path, (0..5).map(frame));
    let len = std::fs::metadata(&path).unwrap().len();
    // A crash in the middle of the fifth frame's write.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    write_frames(&path, (10..13).map(frame));
    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.len(), 4 + 3);
    assert_eq!(rec.ignored_bytes, 0);
    let mut cursor = Cursor::new();
    for (i, n) in [0, 1, 2, 3, 10, 11, 12].into_iter().enumerate() {
        assert_eq!(canon(cursor.seek(&rec, i).unwrap()), canon(frame(n)));
    }
}

#[test]
fn garbage_after_the_last_frame_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    write_frames(&path, (0..3).map(frame));
    let mut bytes = std::fs::read(&path).unwrap();
    // A file system that extended the file with zeros before a power cut.
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&path, &bytes).unwrap();
    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.len(), 3);
    assert_eq!(rec.ignored_bytes, 4096);
}

#[test]
fn other_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "important notes\n").unwrap();
    let err = Recorder::create(&path, info()).err().expect("refused");
    assert!(matches!(err, RecordError::NotARecording { .. }), "{err}");
    assert!(err.to_string().contains("not a sockscope recording"));
    assert_eq!(std::fs::read(&path).unwrap(), b"important notes\n");
    assert!(matches!(
        Recording::open(&path),
        Err(RecordError::NotARecording { .. })
    ));
    let missing = dir.path().join("missing.rec");
    let err = Recording::open(&missing).err().expect("no file");
    assert!(err.to_string().contains("missing.rec"), "{err}");
}

#[test]
fn a_newer_format_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.rec");
    let mut bytes = MAGIC.to_vec();
    bytes[15] = 9;
    std::fs::write(&path, &bytes).unwrap();
    let err = Recording::open(&path).err().expect("refused");
    assert!(err.to_string().contains("newer sockscope"), "{err}");
}

#[test]
fn an_unchanged_table_costs_little_per_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    let mut rec = Recorder::create(&path, info()).unwrap();
    let snap = frame(12);
    let first = rec.write(&snap).unwrap();
    let mut again = snap.clone();
    again.taken_at += Duration::from_secs(1);
    let second = rec.write(&again).unwrap();
    assert!(first.key && !second.key);
    assert_eq!(second.sockets, 0, "nothing changed");
    assert!(second.bytes < first.bytes / 4, "{second:?} vs {first:?}");
}
