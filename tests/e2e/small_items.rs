//! The smaller items of issue 18, each seen from outside: errors that say
//! their cause once, `--duration ''`, `pid:0` and `port:+5` refused, a
//! 0-second recording not extrapolated to an hour, an unreadable config
//! file that leaves the defaults (with a note), and a header that claims
//! nothing before the first sample.

use crate::common;
use crate::pty;
use crate::ui_harness;

use common::{output, sockscope};
use sockscope::app::Event;
use sockscope::ui::Theme;

#[test]
fn an_error_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(&mut sockscope(&[
        "snapshot",
        "--from",
        dir.path().to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("directory").count(), 1, "{err}");
    let out = output(&mut sockscope(&[
        "record",
        dir.path().to_str().unwrap(),
        "--duration",
        "0",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("Is a directory").count(), 1, "{err}");
}

#[test]
fn an_empty_duration_pid_0_and_port_plus_5_are_usage_errors() {
    for args in [
        &["record", "x.rec", "--duration", ""][..],
        &["snapshot", "pid:0"],
        &["snapshot", "port:+5"],
        &["snapshot", "lport:+5"],
        &["snapshot", "pid:+7"],
    ] {
        let out = output(&mut sockscope(args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!std::path::Path::new("x.rec").exists());
}

#[test]
fn a_zero_second_recording_is_not_extrapolated_to_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("short.rec");
    let out = output(&mut sockscope(&[
        "record",
        file.to_str().unwrap(),
        "--duration",
        "0",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("too short to estimate a rate per hour"),
        "{err}"
    );
    assert!(!err.contains("/hour)"), "{err}");
}

#[test]
fn an_unreadable_config_file_leaves_the_default_keys_with_a_note() {
    let config = tempfile::tempdir().unwrap();
    // A directory where the file should be: it cannot be read, by anyone.
    std::fs::create_dir_all(config.path().join("sockscope/config.toml")).unwrap();
    let home = config.path().to_str().unwrap();
    let mut tui = pty::spawn(&[], 80, 24, &[("XDG_CONFIG_HOME", home)]);
    tui.wait_for_header();
    tui.quit();
    let out = String::from_utf8_lossy(&tui.output()).into_owned();
    assert!(out.contains("using the default keys"), "{out}");
}

#[test]
fn before_the_first_sample_the_header_claims_no_count_and_no_owners() {
    let mut app = ui_harness::new_app();
    app.handle(Event::CollectFailed("too many open files".into()));
    let screen = ui_harness::screen(&ui_harness::render(&app, 100, 24, Theme::mono()));
    let header = screen.lines().next().unwrap();
    assert!(header.contains("no sample yet"), "{header}");
    assert!(!header.contains("all owners visible"), "{header}");
    assert!(!header.contains("0 sockets"), "{header}");
    assert!(
        screen.contains("collection failed: too many open files"),
        "{screen}"
    );
}
