//! End to end: the real `sockscope` binary in a pseudo-terminal, driven by
//! keys, read back through a terminal emulator (`vt100`) and the raw bytes it
//! wrote. Each test has its own pty, child and sockets, so they run in
//! parallel without seeing each other.

use crate::pty;

use pty::{EXIT_WAIT, Tui, row_chars, spawn};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const ENTER_ALT: &[u8] = b"\x1b[?1049h";
const LEAVE_ALT: &[u8] = b"\x1b[?1049l";
const SHOW_CURSOR: &[u8] = b"\x1b[?25h";

/// Sockets stuck in CLOSE_WAIT, owned by this test process: the peers closed,
/// we never did. Dropping it closes everything.
struct CloseWaitLeak {
    port: u16,
    _listener: TcpListener,
    _accepted: Vec<TcpStream>,
}

/// A listener on a fresh loopback port, `n` clients connected and accepted,
/// then the client ends closed: the accepted ends are CLOSE_WAIT.
fn close_wait_leak(n: usize) -> CloseWaitLeak {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let port = listener.local_addr().expect("listener address").port();
    let clients: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect to the listener"))
        .collect();
    let accepted: Vec<TcpStream> = (0..n)
        .map(|_| listener.accept().expect("accept a client").0)
        .collect();
    drop(clients);
    CloseWaitLeak {
        port,
        _listener: listener,
        _accepted: accepted,
    }
}

/// This process's name as the kernel (and so sockscope) has it: the test
/// binary's file name, cut to 15 bytes.
fn own_comm() -> String {
    let comm = std::fs::read_to_string("/proc/self/comm").expect("read /proc/self/comm");
    comm.trim_end_matches('\n').to_string()
}

/// The text of row `row` in the column whose header is `title`, in the
/// "by process" table: numeric columns are right-aligned under the end of
/// their title, text columns start under its start.
fn cell_under(
    screen: &vt100::Screen,
    header_row: u16,
    row: u16,
    title: &str,
    width: usize,
) -> String {
    let header = row_chars(screen, header_row);
    let title_chars: Vec<char> = title.chars().collect();
    let start = header
        .windows(title_chars.len())
        .position(|w| w == title_chars.as_slice())
        .unwrap_or_else(|| {
            let text: String = header.iter().collect();
            panic!("no {title} column in {text:?}")
        });
    let end = start + title_chars.len();
    let line = row_chars(screen, row);
    let span = if title == "PROCESS" {
        start..start + width
    } else {
        end.saturating_sub(width)..end
    };
    line[span.start.min(line.len())..span.end.min(line.len())]
        .iter()
        .collect::<String>()
        .trim()
        .to_string()
}

/// The screen row of the "by process" table that shows `pid` named `name`
/// with `close_wait` sockets in CLOSE_WAIT.
fn leak_row(screen: &vt100::Screen, pid: u32, name: &str, close_wait: u32) -> Option<u16> {
    let (rows, _) = screen.size();
    let header_row = (0..rows.get()).find(|&r| {
        let line: String = row_chars(screen, r).into_iter().collect();
        line.contains("PID") && line.contains("PROCESS") && line.contains("CLOSE_WAIT")
    })?;
    (header_row + 1..rows.get()).find(|&r| {
        cell_under(screen, header_row, r, "PID", 7) == pid.to_string()
            && cell_under(screen, header_row, r, "PROCESS", 15) == name
            && cell_under(screen, header_row, r, "CLOSE_WAIT", 10) == close_wait.to_string()
    })
}

fn shows_leak(screen: &vt100::Screen, pid: u32, name: &str, close_wait: u32) -> bool {
    leak_row(screen, pid, name, close_wait).is_some()
}

/// Waits until the monitor shows a real sample, not the empty one it starts
/// with. The caller holds a socket, so a real sample is never empty.
fn wait_for_first_sample(tui: &Tui) {
    tui.wait_for("a first sample", |s| {
        let text = s.contents();
        text.starts_with("sockscope")
            && !text.contains("collecting…")
            && !text.contains(" 0 sockets")
    });
}

/// The monitor's status line is back to key hints (the prompt closed).
fn prompt_closed(screen: &vt100::Screen) -> bool {
    let contents = screen.contents();
    let last = contents.lines().last().unwrap_or("");
    last.starts_with('?') && last.contains("quit")
}

/// Asserts that the child left the terminal as it found it: the alternate
/// screen left after it was last entered, the cursor shown as the very last
/// thing written, the emulator back on the main screen, and the line
/// discipline out of raw mode.
fn assert_terminal_restored(tui: &Tui) {
    let out = tui.output();
    let entered =
        pty::rfind(&out, ENTER_ALT).expect("the monitor never entered the alternate screen");
    let left = pty::rfind(&out, LEAVE_ALT).unwrap_or_else(|| {
        panic!(
            "the alternate screen was never left; output ends with:\n{}",
            pty::escape_tail(&out, 300)
        )
    });
    assert!(
        left > entered,
        "the last alternate-screen enter comes after the last leave; output ends with:\n{}",
        pty::escape_tail(&out, 300)
    );
    assert!(
        out.ends_with(SHOW_CURSOR),
        "the output does not end with the cursor shown; it ends with:\n{}",
        pty::escape_tail(&out, 300)
    );
    assert!(
        !tui.with_screen(|s| s.alternate_screen()),
        "the emulator is still on the alternate screen"
    );
    assert_eq!(
        tui.modes(),
        tui.initial_modes(),
        "terminal modes not restored (raw mode left on?)"
    );
}

/// The leak flow: open the monitor, type `/PORT`, find this process's row with
/// its CLOSE_WAIT count, Enter, `q`. Returns the harness after a clean exit.
fn find_leak_by_port_and_quit(
    cols: u16,
    rows: u16,
    env: &[(&str, &str)],
    check_screen: impl Fn(&Tui),
) -> Tui {
    const LEAKED: u32 = 5;
    let leak = close_wait_leak(LEAKED as usize);
    let pid = std::process::id();
    let name = own_comm();

    let mut tui = spawn(&[], cols, rows, env);
    tui.wait_for_header();
    tui.type_keys("/");
    tui.type_keys(&leak.port.to_string());
    tui.wait_for(
        &format!(
            "pid {pid} ({name}) with {LEAKED} CLOSE_WAIT after filtering on port {}",
            leak.port
        ),
        |s| shows_leak(s, pid, &name, LEAKED),
    );
    check_screen(&tui);
    tui.type_keys("\r");
    tui.wait_for("the filter prompt to close", prompt_closed);
    assert!(
        tui.with_screen(|s| shows_leak(s, pid, &name, LEAKED)),
        "Enter kept the filter, so the leak stays on screen:\n{}",
        tui.contents()
    );
    tui.quit();
    assert_terminal_restored(&tui);
    tui
}

#[test]
fn close_wait_leak_is_found_by_typing_its_port_then_q_restores_the_terminal() {
    find_leak_by_port_and_quit(120, 40, &[], |_| {});
}

#[test]
fn no_color_shows_the_leak_without_any_colour_at_80x24() {
    let tui = find_leak_by_port_and_quit(80, 24, &[("NO_COLOR", "1")], |tui| {
        // On the monitor's own screen: every cell in the default colours.
        tui.with_screen(|s| {
            let (rows, cols) = s.size();
            for r in 0..rows.get() {
                for c in 0..cols.get() {
                    let cell = s.cell(r, c).expect("cell inside the screen");
                    assert!(
                        cell.fgcolor() == vt100::Color::Default
                            && cell.bgcolor() == vt100::Color::Default,
                        "cell ({r},{c}) {:?} is coloured fg {:?} bg {:?} under NO_COLOR:\n{}",
                        cell.contents(),
                        cell.fgcolor(),
                        cell.bgcolor(),
                        s.contents()
                    );
                }
            }
            // Without colour, trouble and the selection still show: the
            // leak's row is bold, and one row is in reverse video.
            let row = leak_row(s, std::process::id(), &own_comm(), 5).expect("the leak's row");
            let first = s.cell(row, 2).expect("a cell of the leak's row");
            assert!(
                first.bold(),
                "the CLOSE_WAIT row is not bold under NO_COLOR:\n{}",
                s.contents()
            );
            let reversed = (0..rows.get())
                .any(|r| (0..cols.get()).all(|c| s.cell(r, c).is_some_and(|x| x.inverse())));
            assert!(
                reversed,
                "no row is shown selected (reverse video) under NO_COLOR:\n{}",
                s.contents()
            );
        });
    });
    // And in everything written: no SGR sets a colour. Resets to the default
    // colours (39, 49, 59), bold, reverse, underline and the like are fine.
    for params in pty::sgr_params(&tui.output()) {
        let coloured = params
            .iter()
            .find(|&&p| matches!(p, 30..=38 | 40..=48 | 58 | 90..=97 | 100..=107));
        assert!(
            coloured.is_none(),
            "SGR with a colour under NO_COLOR: ESC[{params:?}m"
        );
    }
}

/// utime + stime of a process (clock ticks), and whether it is a zombie.
fn cpu_ticks_and_zombie(pid: u32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may contain anything: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime, fields[0] == "Z"))
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

#[test]
fn closing_the_pty_master_makes_sockscope_exit_promptly() {
    let mut tui = spawn(&[], 80, 24, &[]);
    tui.wait_for_header();
    let pid = tui.pid();
    let (before, _) = cpu_ticks_and_zombie(pid).expect("sockscope is running");
    tui.close_master();

    // Read the CPU time while the process is alive or a zombie (a zombie
    // keeps its totals); reaping it removes /proc/PID.
    let deadline = Instant::now() + EXIT_WAIT;
    let mut after = before;
    let status = loop {
        if let Some((t, _zombie)) = cpu_ticks_and_zombie(pid) {
            after = t;
        }
        if let Some(status) = tui.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "sockscope (pid {pid}) still running {EXIT_WAIT:?} after its terminal closed; \
             {} ticks of CPU since",
            after - before
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still in /proc after being reaped"
    );
    // Leaving is all it can do: 0 (the hang-up signal) or 1 (a write to the
    // dead terminal failed first) are both fine, a panic (101) or a signal
    // death (abort) is not.
    assert!(
        status.signal().is_none() && status.exit_code() != 101,
        "sockscope did not exit cleanly after its terminal closed: {status:?}"
    );
    // Between the hang-up and the exit there is nothing to do but leave; a
    // loop spinning on the dead terminal would burn CPU until the deadline.
    let ticks = clock_ticks_per_second();
    let spent = Duration::from_millis((after - before) * 1000 / ticks);
    assert!(
        spent < Duration::from_millis(500),
        "sockscope used {spent:?} of CPU after its terminal closed ({status:?})"
    );
}

#[test]
fn a_resize_storm_neither_kills_nor_breaks_the_monitor() {
    let mut tui = spawn(&[], 80, 24, &[]);
    tui.wait_for_header();
    let sizes: [(u16, u16); 12] = [
        (1, 1),
        (20, 5),
        (39, 9),
        (40, 10),
        (80, 24),
        (200, 50),
        (1, 200),
        (300, 1),
        (41, 11),
        (39, 10),
        (40, 9),
        (120, 40),
    ];
    for round in 0..5 {
        for &(cols, rows) in &sizes {
            tui.resize(cols, rows);
        }
        assert!(
            tui.try_wait().is_none(),
            "sockscope exited during resize round {round}"
        );
    }

    tui.resize(20, 5);
    tui.wait_for("the too-small notice at 20x5", |s| {
        let text = s.contents();
        text.contains("terminal too small") && text.contains("(20x5)")
    });
    tui.resize(39, 9);
    tui.wait_for_text("terminal too small (39x9)");
    tui.resize(40, 10);
    tui.wait_for_header();
    tui.resize(80, 24);
    tui.wait_for("the full monitor at 80x24", |s| {
        let text = s.contents();
        text.starts_with("sockscope") && text.contains("PROCESS") && !text.contains("too small")
    });
    assert!(
        tui.try_wait().is_none(),
        "sockscope exited after the resizes"
    );

    tui.type_keys("q");
    let status = tui.wait_exit(EXIT_WAIT).expect("q ends the monitor");
    assert!(status.success(), "{status:?}");
    tui.wait_output_end();
    let out = String::from_utf8_lossy(&tui.output()).into_owned();
    assert!(!out.contains("panicked"), "sockscope panicked:\n{out}");
}

#[test]
fn a_bad_filter_exits_2_naming_the_term_without_touching_the_terminal() {
    let mut tui = spawn(&["port:abc"], 80, 24, &[]);
    let status = tui
        .wait_exit(EXIT_WAIT)
        .expect("a usage error exits at once");
    assert_eq!(status.exit_code(), 2, "{status:?}");
    tui.wait_output_end();
    let out = tui.output();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("port:abc"),
        "the error does not name the term: {text:?}"
    );
    assert!(
        !text.contains("\x1b[?1049h"),
        "entered the alternate screen: {text:?}"
    );
    assert!(!out.contains(&0x1b), "wrote escape sequences: {text:?}");
    assert!(!tui.with_screen(|s| s.alternate_screen()));
    assert_eq!(tui.modes(), tui.initial_modes(), "terminal modes changed");
}

#[test]
fn sigterm_ends_the_monitor_and_restores_the_terminal() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let _held = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let mut tui = spawn(&[], 80, 24, &[]);
    tui.wait_for_header();
    // Wait for a first sample too, so the monitor is in its steady loop.
    wait_for_first_sample(&tui);
    let pid = i32::try_from(tui.pid()).expect("pid fits in i32");
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("send SIGTERM");
    let status = tui
        .wait_exit(EXIT_WAIT)
        .unwrap_or_else(|| panic!("sockscope still running {EXIT_WAIT:?} after SIGTERM"));
    tui.wait_output_end();
    // It handled the signal (a death by SIGTERM would skip the restore) and
    // did not panic on the way out.
    assert!(
        status.signal().is_none() && status.exit_code() != 101,
        "sockscope did not handle SIGTERM cleanly: {status:?}"
    );
    assert_terminal_restored(&tui);
}

#[test]
fn ctrl_c_in_the_filter_prompt_quits_and_restores_the_terminal() {
    let mut tui = spawn(&[], 80, 24, &[]);
    tui.wait_for_header();
    tui.type_keys("/est");
    tui.wait_for("the prompt with what was typed", |s| {
        s.contents()
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("/est"))
    });
    tui.type_keys("\x03");
    let status = tui
        .wait_exit(EXIT_WAIT)
        .unwrap_or_else(|| panic!("sockscope still running {EXIT_WAIT:?} after Ctrl-C"));
    assert!(status.success(), "Ctrl-C is a normal quit: {status:?}");
    tui.wait_output_end();
    assert_terminal_restored(&tui);
}

#[test]
fn a_paused_view_says_so_at_80x24() {
    let _held = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let mut tui = spawn(&[], 80, 24, &[]);
    wait_for_first_sample(&tui);
    tui.type_keys("p");
    tui.wait_for("PAUSED in the header", |s| {
        s.contents()
            .lines()
            .next()
            .is_some_and(|l| l.contains("PAUSED"))
    });
    tui.type_keys("q");
    let status = tui.wait_exit(EXIT_WAIT).expect("q ends the monitor");
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_help_overlay_closes_on_any_key_as_its_title_says() {
    let mut tui = spawn(&[], 120, 40, &[]);
    tui.wait_for_header();
    tui.type_keys("?");
    tui.wait_for_text("any key closes");
    // `z` is bound to nothing.
    tui.type_keys("z");
    tui.wait_for("the help overlay to close after `z`", |s| {
        !s.contents().contains("any key closes")
    });
}
