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
    snap.set_taken_at(t0 + Duration::from_millis(n * 1000 + n % 7));
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
    again.advance(Duration::from_secs(1));
    let second = rec.write(&again).unwrap();
    assert!(first.key && !second.key);
    assert_eq!(second.sockets, 0, "nothing changed");
    assert!(second.bytes < first.bytes / 4, "{second:?} vs {first:?}");
}

/// Writes frames 0..n and returns, for each, whether it is a key frame and
/// where its block starts and ends.
fn write_with_bounds(path: &std::path::Path, n: u64) -> Vec<(bool, u64, u64)> {
    let mut rec = Recorder::create(path, info()).unwrap();
    (0..n)
        .map(|i| {
            let start = rec.bytes;
            let key = rec.write(&frame(i)).unwrap().key;
            (key, start, rec.bytes)
        })
        .collect()
}

/// Which frame of [`frame`] a recorded one is, by its time.
fn frame_number(rec: &Recording, i: usize) -> u64 {
    (0..200u64)
        .find(|&n| frame(n).taken_at == rec.time(i))
        .expect("a time frame() makes")
}

#[test]
fn a_flipped_bit_costs_the_frames_that_depend_on_it_and_later_key_frames_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    let bounds = write_with_bounds(&path, 60);
    let whole = std::fs::read(&path).unwrap();
    let keys: Vec<usize> = (0..60).filter(|&i| bounds[i].0).collect();
    assert!(keys.len() >= 3, "{keys:?}");
    let flipped = dir.path().join("flipped.rec");
    // Inside a key frame's payload, inside a delta's, in a header's length,
    // in a header's kind, and in the first session block.
    let targets = [
        (keys[1], (bounds[keys[1]].1 + bounds[keys[1]].2) / 2),
        (
            keys[1] + 2,
            (bounds[keys[1] + 2].1 + bounds[keys[1] + 2].2) / 2,
        ),
        (5, bounds[5].1 + 1),
        (30, bounds[30].1 + 4),
        (usize::MAX, MAGIC.len() as u64 + 20),
    ];
    for (hit, at) in targets {
        for bit in [0, 3, 7] {
            let mut bytes = whole.clone();
            bytes[at as usize] ^= 1 << bit;
            std::fs::write(&flipped, &bytes).unwrap();
            let rec = match Recording::open(&flipped) {
                Ok(r) => r,
                // The session block is gone: so is every frame of its run.
                Err(e) if hit == usize::MAX => {
                    assert!(e.to_string().contains("offset 16"), "{e}");
                    continue;
                }
                Err(e) => panic!("flip at {at}: {e}"),
            };
            assert_eq!(rec.damage.len(), 1, "flip at {at}: {:?}", rec.damage);
            let d = rec.damage[0];
            assert!(d.offset <= at && at < d.offset + d.bytes, "{d:?} vs {at}");
            assert!(rec.notes()[0].contains(&format!("at offset {}", d.offset)));
            // Every frame from the first key frame after the hit is there.
            let next_key = keys.iter().copied().find(|&k| k > hit).unwrap();
            let mut cursor = Cursor::new();
            let mut seen = Vec::new();
            for i in 0..rec.len() {
                let n = frame_number(&rec, i);
                assert_eq!(
                    canon(cursor.seek(&rec, i).unwrap()),
                    canon(frame(n)),
                    "flip at {at}: frame {n}"
                );
                seen.push(n as usize);
            }
            for n in (0..hit).chain(next_key..60) {
                assert!(seen.contains(&n), "flip at {at} bit {bit}: frame {n} lost");
            }
            assert!(!seen.contains(&hit), "the damaged frame is not read");
        }
    }
}

#[test]
fn a_new_run_keeps_damage_in_the_middle_and_appends_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    let bounds = write_with_bounds(&path, 30);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = ((bounds[3].1 + bounds[3].2) / 2) as usize;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let before = Recording::open(&path).unwrap().len();
    let mut again = Recorder::create(&path, info()).unwrap();
    assert_eq!(
        again.kept_damage,
        bounds[3].2 - bounds[3].1,
        "the damaged block"
    );
    for n in 100..103 {
        again.write(&frame(n)).unwrap();
    }
    drop(again);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(&after[..bytes.len()], &bytes[..], "nothing before was cut");
    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.len(), before + 3);
    assert_eq!(frame_number(&rec, rec.len() - 1), 102);
    assert_eq!(rec.damage.len(), 1);
}

#[test]
fn a_file_that_merely_starts_with_the_magic_is_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.rec");
    let mut bytes = MAGIC.to_vec();
    bytes.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(&path, &bytes).unwrap();
    let err = Recorder::create(&path, info()).err().expect("refused");
    assert!(matches!(err, RecordError::NoBlocks { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_second_recorder_on_the_same_file_is_refused_while_the_first_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.rec");
    let mut first = Recorder::create(&path, info()).unwrap();
    first.write(&frame(0)).unwrap();
    let err = Recorder::create(&path, info()).err().expect("refused");
    assert!(matches!(err, RecordError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another sockscope"), "{err}");
    first.write(&frame(1)).unwrap();
    drop(first);
    assert_eq!(Recording::open(&path).unwrap().len(), 2);
    // Once the first has stopped, the file can be continued.
    write_frames(&path, (2..3).map(frame));
    assert_eq!(Recording::open(&path).unwrap().len(), 3);
}

#[test]
fn symlinks_fifos_and_hard_links_are_refused_for_recording() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.path().join("link.rec");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = Recorder::create(&link, info()).err().expect("refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    let dangling = dir.path().join("dangling.rec");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    assert!(Recorder::create(&dangling, info()).is_err());
    assert!(
        !dir.path().join("nowhere").exists(),
        "not created through the link"
    );
    let hard = dir.path().join("hard.rec");
    std::fs::hard_link(&victim, &hard).unwrap();
    let err = Recorder::create(&hard, info()).err().expect("refused");
    assert!(err.to_string().contains("hard links"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    let fifo = dir.path().join("fifo.rec");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let err = Recorder::create(&fifo, info()).err().expect("refused");
    assert!(err.to_string().contains("a FIFO"), "{err}");
    let err = Recording::open(&fifo).err().expect("refused");
    assert!(err.to_string().contains("a FIFO"), "{err}");
}

#[test]
fn a_block_declaring_more_than_the_file_holds_is_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.rec");
    let mut bytes = MAGIC.to_vec();
    let now = to_ms(SystemTime::now());
    bytes.extend_from_slice(&encode_header(Kind::Session, now, &[]));
    bytes[16..20].copy_from_slice(&(1u32 << 30).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(bytes.len(), 33);
    // A session cut short after its header: a torn tail, not a 1 GiB read.
    let err = Recording::open(&path).err().expect("no frame");
    assert!(matches!(err, RecordError::Empty { .. }), "{err}");
}

#[test]
fn a_file_of_headers_that_each_claim_the_rest_is_read_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crafted.rec");
    write_frames(&path, (0..2).map(frame));
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len();
    // 8 MB of fake headers, each declaring nearly all that follows it.
    let n = 8_000_000 / HEADER_LEN;
    for i in 0..n {
        let left = ((n - i - 1) * HEADER_LEN) as u32;
        bytes.extend_from_slice(&left.to_le_bytes());
        bytes.push(Kind::Key as u8);
        bytes.extend_from_slice(&0i64.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
    }
    std::fs::write(&path, &bytes).unwrap();
    let start = std::time::Instant::now();
    let rec = Recording::open(&path).unwrap();
    // Generous: without the budget this is ~n^2/2 bytes of checksums (days).
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(rec.len(), 2);
    assert_eq!(rec.ignored_bytes, (bytes.len() - whole) as u64);
}

#[test]
fn decompression_is_bounded_by_the_declared_size_and_the_ratio() {
    let big = vec![0u8; 64 << 20];
    let bomb = zstd::bulk::compress(&big, 3).unwrap();
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let err = reader::decompress(&bomb).unwrap_err();
    assert!(err.contains("more than the"), "{err}");
    let fine = zstd::bulk::compress(b"hello hello hello", 3).unwrap();
    assert_eq!(reader::decompress(&fine).unwrap(), b"hello hello hello");
    assert!(reader::decompress(b"not zstd at all").is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn recording() -> &'static Vec<u8> {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("run.rec");
            write_frames(&path, (0..12).map(frame));
            std::fs::read(&path).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever is flipped, cut or appended, the reader returns frames
        /// or an error, never panics, and every frame it returns is one
        /// that was written.
        #[test]
        fn damaged_recordings_read_back_only_frames_that_were_written(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..6),
            cut in any::<prop::sample::Index>(),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = recording().clone();
            for (at, bit) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend(junk);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.rec");
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(rec) = Recording::open(&path) {
                let mut cursor = Cursor::new();
                for i in 0..rec.len() {
                    if let Ok(got) = cursor.seek(&rec, i) {
                        let n = frame_number(&rec, i);
                        prop_assert_eq!(canon(got), canon(frame(n)));
                    }
                }
            }
        }
    }
}

mod namespaces {
    use super::*;
    use crate::model::fixture::{BLUE_NETNS, WEB_NETNS};
    use crate::model::{ConnKey, HOST_NETNS, Proto, TcpState};

    /// Frame `n` of a run on a host with two other namespaces (the
    /// `containers` fixture) and a TIME_WAIT with the same 4-tuple and
    /// inode (0) in each of the three; the namespaces change from frame to
    /// frame.
    fn ns_frame(n: u64) -> Snapshot {
        let mut snap = fixture::containers();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        snap.set_taken_at(t0 + Duration::from_secs(n));
        for netns in [HOST_NETNS, WEB_NETNS, BLUE_NETNS] {
            let mut s = fixture::socket(
                Proto::Tcp,
                TcpState::TimeWait,
                "127.0.0.1:40000",
                "127.0.0.1:8080",
                0,
                0,
                &[],
            );
            s.netns = netns;
            snap.sockets.push(s);
        }
        // Idle since the first frame, as in [`frame`].
        for s in &mut snap.sockets {
            if let Some(t) = &mut s.tcp_info {
                t.last_data_sent_ms = n as u32 * 1000;
                t.last_data_recv_ms = n as u32 * 1000;
                t.last_ack_recv_ms = n as u32 * 1000;
            }
        }
        let mut list = (*snap.namespaces.list).clone();
        if n >= 1 {
            // web's TIME_WAIT is over; blue's connection has bytes queued
            // and its sysctl was changed.
            snap.sockets
                .retain(|s| !(s.state == TcpState::TimeWait && s.netns == WEB_NETNS));
            for s in &mut snap.sockets {
                if s.netns == BLUE_NETNS && s.state == TcpState::Established {
                    s.recv_q = 10 * n as u32;
                }
            }
            let web = list.get_mut(&WEB_NETNS).unwrap();
            web.sockets = 300;
            let blue = list.get_mut(&BLUE_NETNS).unwrap();
            std::sync::Arc::make_mut(&mut blue.system)
                .sysctls
                .insert("net.ipv4.tcp_fin_timeout".into(), "5".into());
        }
        if n >= 3 {
            // blue is deleted; one namespace cannot be read.
            snap.sockets.retain(|s| s.netns != BLUE_NETNS);
            snap.processes.remove(&4300);
            list.remove(&BLUE_NETNS);
            snap.namespaces.unreadable = 1;
        }
        snap.namespaces.list = std::sync::Arc::new(list);
        snap
    }

    fn twins(snap: &Snapshot) -> Vec<&Socket> {
        snap.sockets
            .iter()
            .filter(|s| s.state == TcpState::TimeWait && s.local.port() == 40000)
            .collect()
    }

    #[test]
    fn sockets_with_one_four_tuple_in_three_namespaces_stay_three_through_record_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.rec");
        let keys = write_frames(&path, (0..5).map(ns_frame));
        assert_eq!(keys, [true, false, false, false, false]);
        let rec = Recording::open(&path).unwrap();
        assert_eq!(rec.len(), 5);
        let mut cursor = Cursor::new();
        // Forward through the deltas, back to the key frame, and again.
        for i in [0, 1, 2, 3, 4, 0, 4, 2] {
            let got = cursor.seek(&rec, i).unwrap();
            assert_eq!(canon(got), canon(ns_frame(i as u64)), "frame {i}");
        }

        let first = cursor.seek(&rec, 0).unwrap();
        let tw = twins(&first);
        assert_eq!(tw.len(), 3, "one TIME_WAIT per namespace: {tw:#?}");
        let mut names: Vec<&str> = tw.iter().map(|s| first.namespaces.name(s.netns)).collect();
        names.sort_unstable();
        assert_eq!(names, ["blue", "host", "web-7f9c"]);
        let keys: std::collections::BTreeSet<ConnKey> = tw.iter().map(|s| s.key()).collect();
        assert_eq!(keys.len(), 3, "three keys, told apart by netns: {keys:#?}");
        assert_eq!(first.processes[&4242].netns, WEB_NETNS);
        assert_eq!(first.processes[&4300].netns, BLUE_NETNS);
        let web = first.namespaces.get(WEB_NETNS).unwrap();
        assert_eq!(web.pod.as_deref(), Some("shop/web-7f9c"));
        assert_eq!(web.runtime.as_deref(), Some("containerd"));
        assert_eq!(web.sockets, 301);
        assert_eq!(
            cursor
                .seek(&rec, 1)
                .unwrap()
                .namespaces
                .get(WEB_NETNS)
                .unwrap()
                .sockets,
            300
        );

        let later = cursor.seek(&rec, 2).unwrap();
        let mut left: Vec<u64> = twins(&later).iter().map(|s| s.netns).collect();
        left.sort_unstable();
        assert_eq!(left, [HOST_NETNS, BLUE_NETNS], "only web's went");
        let blue = later.namespaces.get(BLUE_NETNS).unwrap();
        assert_eq!(
            blue.system
                .sysctls
                .get("net.ipv4.tcp_fin_timeout")
                .map(String::as_str),
            Some("5")
        );

        let last = cursor.seek(&rec, 4).unwrap();
        assert!(
            last.namespaces.get(BLUE_NETNS).is_none(),
            "blue was deleted"
        );
        assert_eq!(last.namespaces.unreadable, 1);
        assert!(last.sockets.iter().all(|s| s.netns != BLUE_NETNS));
    }

    #[test]
    fn a_later_run_of_the_host_alone_reads_without_the_earlier_runs_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.rec");
        write_frames(&path, (0..2).map(ns_frame));
        write_frames(&path, (10..12).map(frame));
        let rec = Recording::open(&path).unwrap();
        assert_eq!(rec.len(), 4);
        let mut cursor = Cursor::new();
        for (i, want) in [ns_frame(0), ns_frame(1), frame(10), frame(11)]
            .into_iter()
            .enumerate()
        {
            assert_eq!(
                canon(cursor.seek(&rec, i).unwrap()),
                canon(want),
                "frame {i}"
            );
        }
        assert!(cursor.seek(&rec, 3).unwrap().namespaces.is_empty());
    }

    /// Decodes a frame as the reader before namespaces did: the frame,
    /// then, when bytes follow, the transitions with anything after them
    /// ignored.
    fn as_read_before_namespaces<T: serde::de::DeserializeOwned>(raw: &[u8]) -> T {
        let (value, rest): (T, _) = postcard::take_from_bytes(raw).unwrap();
        if !rest.is_empty() {
            let t: Option<crate::trace::Window> = postcard::from_bytes(rest).unwrap();
            assert!(t.is_none(), "no transitions were recorded");
        }
        value
    }

    #[test]
    fn a_reader_from_before_namespaces_reads_every_frame_in_the_host_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.rec");
        write_frames(&path, (0..5).map(ns_frame));
        let rec = Recording::open(&path).unwrap();
        let blocks = rec.raw_blocks();
        assert_eq!(blocks.len(), 6, "a session and five frames");
        for (kind, raw) in &blocks {
            match kind {
                Kind::Session => {
                    let _: wire::Session = as_read_before_namespaces(raw);
                }
                Kind::Key => {
                    let full: wire::Full = as_read_before_namespaces(raw);
                    assert_eq!(full.sockets.len(), ns_frame(0).sockets.len());
                    assert!(full.sockets.iter().all(|w| w.key.netns == HOST_NETNS));
                }
                Kind::Delta => {
                    let _: wire::Delta = as_read_before_namespaces(raw);
                }
            }
        }
    }

    /// The bytes after the frame itself in each frame block.
    fn tails(path: &std::path::Path) -> Vec<(Kind, usize)> {
        let rec = Recording::open(path).unwrap();
        rec.raw_blocks()
            .into_iter()
            .filter_map(|(kind, raw)| {
                let rest = match kind {
                    Kind::Session => return None,
                    Kind::Key => postcard::take_from_bytes::<wire::Full>(&raw).unwrap().1,
                    Kind::Delta => postcard::take_from_bytes::<wire::Delta>(&raw).unwrap().1,
                };
                Some((kind, rest.len()))
            })
            .collect()
    }

    #[test]
    fn a_recording_of_the_host_alone_has_no_tail_so_old_readers_see_the_old_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.rec");
        write_frames(&path, (0..30).map(frame));
        let tails = tails(&path);
        assert_eq!(tails.len(), 30);
        assert!(tails.iter().all(|&(_, n)| n == 0), "{tails:?}");
    }

    #[test]
    fn unchanged_namespaces_cost_nothing_in_a_delta() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.rec");
        let mut rec = Recorder::create(&path, info()).unwrap();
        let snap = ns_frame(1);
        let first = rec.write(&snap).unwrap();
        let mut again = snap.clone();
        again.advance(Duration::from_secs(1));
        // A table equal to the last, though not the same allocation.
        again.namespaces.list = std::sync::Arc::new((*snap.namespaces.list).clone());
        let second = rec.write(&again).unwrap();
        assert!(first.key && !second.key);
        assert_eq!(second.sockets, 0, "nothing changed");
        drop(rec);
        let tails = tails(&path);
        assert!(tails[0].1 > 0, "the key frame says where things are");
        assert_eq!(tails[1], (Kind::Delta, 0), "the delta has nothing to add");
    }

    #[test]
    fn a_tail_that_does_not_cover_its_frame_is_damage_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns.rec");
        let mut rec = Recorder::create(&path, info()).unwrap();
        let snap = ns_frame(0);
        let sockets: Vec<wire::WireSocket> =
            snap.sockets.iter().map(|s| wire::to_wire(s, 0)).collect();
        let full = wire::Full {
            source: 0,
            attribution: Default::default(),
            sockets: sockets.iter().collect::<Vec<_>>(),
            processes: Vec::new(),
            users: Vec::new(),
            counters: Vec::new(),
            sockstat: Vec::new(),
            sysctls: Vec::new(),
        };
        let tail = netns::NamespaceTail {
            // One socket short.
            sockets: vec![(sockets.len() as u32 - 1, WEB_NETNS)],
            ..Default::default()
        };
        let payload = writer::encode_with(&full, None, Some(&tail), 3).unwrap();
        rec.append(Kind::Key, to_ms(snap.taken_at), &payload)
            .unwrap();
        drop(rec);
        let rec = Recording::open(&path).unwrap();
        let err = Cursor::new().seek(&rec, 0).expect_err("damaged");
        assert!(err.to_string().contains("namespaces cover"), "{err}");
    }
}
