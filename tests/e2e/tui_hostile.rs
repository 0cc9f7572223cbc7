//! The terminal is always restored: a terminal that says it is 65535x65535
//! (two buffers of that many cells would be 206 GB) is drawn clamped, and
//! SIGQUIT ends the monitor with the screen and modes put back.

use crate::pty;

use pty::{EXIT_WAIT, Tui, spawn};

fn assert_restored(tui: &Tui) {
    assert!(
        !tui.with_screen(|s| s.alternate_screen()),
        "back on the main screen"
    );
    assert_eq!(tui.modes(), tui.initial_modes(), "terminal modes restored");
}

/// The pty's slave, as the child has it on stdin.
fn slave_of(pid: u32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/fd/0")).expect("the child's terminal")
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_65535_by_65535_terminal_is_drawn_clamped_and_quits_cleanly() {
    let mut tui = spawn(&[], 80, 24, &[]);
    tui.wait_for_header();
    let before = rss_kb(tui.pid());
    // The size goes to the pty only (stty, which also sends SIGWINCH): the
    // test's own screen model stays 80x24.
    let slave = slave_of(tui.pid());
    let out = std::process::Command::new("stty")
        .arg("-F")
        .arg(&slave)
        .args(["rows", "65535", "cols", "65535"])
        .output()
        .expect("run stty");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let it draw a few frames at that size.
    let drawn = tui.output().len();
    let deadline = std::time::Instant::now() + pty::WAIT;
    while tui.output().len() < drawn + 10_000 && tui.try_wait().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing drawn after the resize"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(tui.try_wait().is_none(), "still running at 65535x65535");
    let after = rss_kb(tui.pid());
    eprintln!("RSS at 80x24: {before} kB; at 65535x65535: {after} kB");
    assert!(after < before + 200_000, "{before} kB -> {after} kB");
    tui.quit();
    assert_restored(&tui);
}

#[test]
fn sigquit_ends_the_monitor_with_the_terminal_restored() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use portable_pty::ExitStatus;
    let mut tui = spawn(&[], 80, 24, &[]);
    tui.wait_for_header();
    kill(Pid::from_raw(tui.pid() as i32), Signal::SIGQUIT).unwrap();
    let status: ExitStatus = tui
        .wait_exit(EXIT_WAIT)
        .unwrap_or_else(|| panic!("still running {EXIT_WAIT:?} after SIGQUIT"));
    tui.wait_output_end();
    assert!(
        status.signal().is_none() && status.exit_code() != 101,
        "SIGQUIT was not handled: {status:?}"
    );
    assert_restored(&tui);
}
