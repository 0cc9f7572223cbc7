//! Recordings written as root into paths other users can touch, and read
//! back from damaged or hostile files: a symlink swapped in while `record`
//! opens the file, two recorders on one file, FIFOs, flipped bits, and
//! blocks made to exhaust memory (under `prlimit --as`).

use crate::common;

use common::{output, sockscope};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The attacker role: swaps `ATTACK_DIR/rec` between a recording and a
/// symlink to the victim as fast as it can, until its stdin closes.
const ATTACK_ENV: &str = "SOCKSCOPE_TEST_SWAP_ATTACK";

/// The attacker's entry point, run as `--exact` [`ATTACK_ENTRY`]; returns
/// at once in a normal test run.
#[test]
fn swap_attack_entry_point() {
    if let Ok(spec) = std::env::var(ATTACK_ENV) {
        swap_forever(&spec);
    }
}

const ATTACK_ENTRY: &str = "record_hostile::swap_attack_entry_point";

fn swap_forever(spec: &str) -> ! {
    let (dir, victim) = spec.split_once('\n').expect("dir\\nvictim");
    let dir = Path::new(dir);
    let good = std::fs::read(dir.join("good.rec")).expect("the good recording");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        // Ends when the test closes our stdin.
        let _ = std::io::stdin().lock().read_line(&mut String::new());
        s.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    println!("@@ swapping");
    let (rec, link, copy) = (dir.join("rec"), dir.join("link"), dir.join("copy"));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(victim, &link);
        let _ = std::fs::rename(&link, &rec);
        let _ = std::fs::write(&copy, &good);
        let _ = std::fs::rename(&copy, &rec);
    }
    std::process::exit(0)
}

/// `sockscope record ARGS`: as root, in an empty network namespace of its
/// own, so that a recorder costs the same on a machine with 100k sockets
/// (what is tested is the file, not the table).
fn recorder(args: &[&str]) -> Command {
    let mut cmd = if common::is_root() {
        common::find_program("unshare").expect("unshare (util-linux) is installed");
        let mut c = Command::new("unshare");
        c.args(["-n", "--"]).arg(common::bin());
        c
    } else {
        Command::new(common::bin())
    };
    cmd.arg("record").args(args);
    cmd
}

fn record_once(path: &Path) -> std::process::Output {
    output(&mut recorder(&[path.to_str().unwrap(), "--duration", "0"]))
}

#[test]
fn a_symlink_swapped_in_by_another_user_never_lets_record_touch_the_victim() {
    let Some(nobody) = common::as_nobody() else {
        common::skipped(
            "a_symlink_swapped_in_by_another_user_never_lets_record_touch_the_victim",
            "the symlink swap race with the attacker as nobody",
            "not root",
            "run it as root, as .ci/run does",
        );
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let copies = common::copies_for_nobody(true);
    let root_dir = tempfile::tempdir().unwrap();
    // A root-only file the attacker would like cut: 1 MB.
    let victim = root_dir.path().join("victim");
    let precious: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&victim, &precious).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The attacker's directory, where root records.
    let attack = tempfile::Builder::new()
        .prefix("sockscope-attack-")
        .tempdir()
        .unwrap();
    let nobody_uid = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
    std::os::unix::fs::chown(attack.path(), Some(nobody_uid.as_raw()), None).unwrap();
    std::fs::set_permissions(attack.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let good = attack.path().join("good.rec");
    assert!(record_once(&good).status.success());
    std::os::unix::fs::chown(&good, Some(nobody_uid.as_raw()), None).unwrap();

    let mut cmd = Command::new(nobody[0]);
    cmd.args(&nobody[1..])
        .arg(copies.test.as_ref().unwrap())
        .args(["--exact", ATTACK_ENTRY, "--nocapture", "--test-threads=1"])
        .env(
            ATTACK_ENV,
            format!("{}\n{}", attack.path().display(), victim.display()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut attacker = common::spawn_locked(&mut cmd);
    let mut lines = std::io::BufReader::new(attacker.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains("@@ swapping")),
        "the attacker started"
    );
    let rec = attack.path().join("rec");
    let (mut recorded, mut refused) = (0, 0);
    let attempts = 200;
    for _ in 0..attempts {
        let out = record_once(&rec);
        if out.status.success() {
            recorded += 1;
        } else {
            refused += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("symbolic link")
                    || err.contains("No such file")
                    || err.contains("being recorded into")
                    || err.contains("not a sockscope recording"),
                "{err}"
            );
        }
        assert_eq!(
            std::fs::metadata(&victim).unwrap().len(),
            precious.len() as u64
        );
    }
    drop(attacker.stdin.take());
    attacker.wait().unwrap();
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        precious,
        "the victim is intact"
    );
    eprintln!("{attempts} attempts: {recorded} recorded, {refused} refused");
    assert_eq!(recorded + refused, attempts);
}

#[test]
fn record_refuses_planted_symlinks_and_creates_nothing_through_them() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let link = dir.path().join("planted.rec");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = record_once(&link);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert!(!target.exists());
}

#[test]
fn a_second_recorder_is_refused_with_a_clear_message_and_the_file_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.rec");
    let path = file.to_str().unwrap();
    let mut first = recorder(&[path, "--interval", "200ms"]);
    first.stdout(Stdio::null()).stderr(Stdio::null());
    let mut first = common::spawn_locked(&mut first);
    common::poll("the first frame", || {
        sockscope::record::Recording::open(&file).ok()
    });
    let second = record_once(&file);
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("being recorded into by another sockscope"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(first.wait().unwrap().success());
    let rec = sockscope::record::Recording::open(&file).unwrap();
    assert!(rec.len() >= 2, "{} frames", rec.len());
    assert!(rec.notes().is_empty(), "{:?}", rec.notes());
    let out = output(&mut sockscope(&["snapshot", "--from", path]));
    assert!(out.status.success());
}

#[test]
fn fifos_are_refused_at_once_by_record_and_by_snapshot_from() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.rec");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
    )
    .unwrap();
    for args in [
        vec!["record", fifo.to_str().unwrap(), "--duration", "0"],
        vec!["snapshot", "--from", fifo.to_str().unwrap()],
        vec!["diagnose", "--from", fifo.to_str().unwrap()],
    ] {
        let start = Instant::now();
        let out = output(&mut sockscope(&args));
        // Generous: a hang would be for ever.
        assert!(start.elapsed() < Duration::from_secs(10), "{args:?} hung");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is a FIFO, not a regular file"),
            "{args:?}: {err}"
        );
    }
}

/// A valid recording with one key frame made of `payload` appended.
fn with_key_block(dir: &Path, payload: &[u8]) -> PathBuf {
    let path = dir.join("bomb.rec");
    assert!(record_once(&path).status.success());
    let mut bytes = std::fs::read(&path).unwrap();
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[1]);
    crc.update(&at_ms.to_le_bytes());
    crc.update(payload);
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.push(1);
    bytes.extend_from_slice(&at_ms.to_le_bytes());
    bytes.extend_from_slice(&crc.finalize().to_le_bytes());
    bytes.extend_from_slice(payload);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// zstd of `len` zero bytes, the size declared in its header or not.
fn zeros(len: u64, declared: bool) -> Vec<u8> {
    use std::io::Write;
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_contentsize(declared).unwrap();
    if declared {
        enc.set_pledged_src_size(Some(len)).unwrap();
    }
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..len / chunk.len() as u64 {
        enc.write_all(&chunk).unwrap();
    }
    enc.finish().unwrap()
}

fn under_4gib(args: &[&str]) -> std::process::Output {
    common::find_program("prlimit").expect("prlimit (util-linux) is installed");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--as=4294967296")
        .arg("--")
        .arg(common::bin())
        .args(args);
    output(&mut cmd)
}

#[test]
fn memory_bombs_in_a_recording_get_a_clear_error_and_no_abort_under_a_4gib_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 33 bytes that declare a 1 GiB session block.
    let small = dir.path().join("small.rec");
    let mut bytes = b"sockscope-rec\x00\x00\x01".to_vec();
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&[0u8; 12]);
    assert_eq!(bytes.len(), 33);
    std::fs::write(&small, &bytes).unwrap();
    let out = under_4gib(&["snapshot", "--from", small.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds no complete frame"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (len, declared) in [(1u64 << 30, true), (1 << 30, false), (8 << 30, true)] {
        let payload = zeros(len, declared);
        let path = with_key_block(dir.path(), &payload);
        let out = under_4gib(&["snapshot", "--from", path.to_str().unwrap(), "--json"]);
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("{} kB expanding to {len}: {err}", payload.len() / 1000);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("is damaged"), "{err}");
        assert!(err.contains("offset"), "{err}");
        assert!(err.contains("allowed"), "{err}");
    }
}

#[test]
fn bit_flips_reported_by_snapshot_from_with_later_frames_readable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.rec");
    let path = file.to_str().unwrap();
    let out = output(&mut recorder(&[
        path,
        "--interval",
        "100ms",
        "--duration",
        "1",
    ]));
    assert!(out.status.success());
    let whole = std::fs::read(&file).unwrap();
    // A bit near the start: what depends on the damaged block is lost; a
    // new run into the file goes after the damage and reads back.
    let mut bytes = whole.clone();
    bytes[16 + 17 + 60] ^= 0x04;
    std::fs::write(&file, &bytes).unwrap();
    let second_run = std::time::SystemTime::now();
    let again = output(&mut recorder(&[path, "--duration", "0"]));
    assert!(again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("damaged bytes; they are kept as they are"),
        "{said}"
    );
    let after = std::fs::read(&file).unwrap();
    assert_eq!(
        &after[..bytes.len()],
        &bytes[..],
        "the damage was not cut off"
    );
    let out = output(&mut sockscope(&["snapshot", "--from", path, "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged bytes at offset"), "{err}");
    // The frame after the damage, from the second run, reads back.
    let rec = sockscope::record::Recording::open(&file).unwrap();
    assert!(rec.end() >= second_run, "the last frame is the new run's");
    assert_eq!(rec.damage.len(), 1, "{:?}", rec.damage);
}
