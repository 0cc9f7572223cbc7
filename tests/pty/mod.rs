//! A pseudo-terminal harness for end-to-end tests: runs the real `sockscope`
//! binary in a pty, feeds everything it writes into a `vt100` screen (and a
//! raw byte log), and types keys at it.
//!
//! Waits are bounded polls (every 50 ms, up to [`WAIT`]); nothing sleeps a
//! fixed time to assert, and nothing asserts on timing.

use portable_pty::{Child, CommandBuilder, ExitStatus, MasterPty, PtySize, native_pty_system};
use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a screen may take to show what a test waits for. Normally it is
/// well under a second; the first sample of a debug build on a machine with
/// ~130k sockets, with several monitors sharing 2 cores, took up to ~7 s.
/// A bound, not a timing assertion: a passing test never waits for it.
pub const WAIT: Duration = Duration::from_secs(20);
/// How long the child may take to exit once told to.
pub const EXIT_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

/// A running `sockscope` in a pty of its own.
pub struct Tui {
    master: Option<Box<dyn MasterPty + Send>>,
    writer: Option<File>,
    child: Box<dyn Child + Send + Sync>,
    pid: u32,
    parser: Arc<Mutex<vt100::Parser>>,
    output: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    initial_modes: Modes,
    _config: tempfile::TempDir,
}

/// The flags of a terminal's modes that raw mode turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    pub icanon: bool,
    pub echo: bool,
    pub isig: bool,
    pub icrnl: bool,
    pub opost: bool,
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("terminal sizes are at least 1x1")
}

fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

/// A second, close-on-exec descriptor for the master, so reads and writes do
/// not depend on portable-pty's handles (its writer types a newline and ^D
/// when dropped).
fn dup_master(master: &dyn MasterPty) -> OwnedFd {
    let fd = master
        .as_raw_fd()
        .expect("a unix pty master has a descriptor");
    // SAFETY: `fd` belongs to `master`, which is borrowed for this whole call,
    // so it stays open while the borrow lives; we only duplicate it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned().expect("dup the pty master")
}

/// Reads everything the child writes until it is gone (EOF or EIO once every
/// slave descriptor is closed) or until `stop` is set. `poll` with a short
/// timeout keeps the read from blocking, so a stop is honoured promptly and
/// the descriptor can really be closed.
fn spawn_reader(
    fd: OwnedFd,
    parser: Arc<Mutex<vt100::Parser>>,
    output: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("pty-reader".into())
        .spawn(move || {
            let mut file = File::from(fd);
            let mut buf = [0u8; 8192];
            while !stop.load(Ordering::SeqCst) {
                let mut pfd = libc::pollfd {
                    fd: file.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: `pfd` is one valid, initialised pollfd that lives
                // across the call, and we pass a count of exactly 1.
                let ready = unsafe { libc::poll(&mut pfd, 1, POLL.as_millis() as libc::c_int) };
                if ready < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    break;
                }
                if ready == 0 {
                    continue;
                }
                match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        // The screen first, then the log: a test that reads
                        // the log after the reader ended sees every byte.
                        lock(&parser).process(&buf[..n]);
                        lock(&output).extend_from_slice(&buf[..n]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // EIO: the last slave descriptor closed (the child exited).
                    Err(_) => break,
                }
            }
        })
        .expect("spawn the pty reader thread")
}

/// A poisoned lock only means another assertion failed; the data is fine.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `sockscope ARGS` in a `cols`x`rows` pty. The environment is the
/// test's, with `TERM=xterm-256color`, `NO_COLOR` unset, and an empty config
/// directory (so a developer's own keymap cannot change the keys), then `env`.
pub fn spawn(args: &[&str], cols: u16, rows: u16, env: &[(&str, &str)]) -> Tui {
    spawn_via(&[], args, cols, rows, env)
}

/// [`spawn`] under `wrapper` (e.g. `nsenter --net=... --`).
pub fn spawn_via(
    wrapper: &[&str],
    args: &[&str],
    cols: u16,
    rows: u16,
    env: &[(&str, &str)],
) -> Tui {
    let config = tempfile::tempdir().expect("temporary config directory");
    let pair = native_pty_system()
        .openpty(pty_size(cols, rows))
        .expect("open a pty");
    let bin = env!("CARGO_BIN_EXE_sockscope");
    let mut cmd = match wrapper {
        [program, rest @ ..] => {
            let mut c = CommandBuilder::new(program);
            c.args(rest);
            c.arg(bin);
            c
        }
        [] => CommandBuilder::new(bin),
    };
    cmd.args(args);
    cmd.cwd(config.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    cmd.env("XDG_CONFIG_HOME", config.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let parser = Arc::new(Mutex::new(vt100::Parser::new(nz(rows), nz(cols), 0)));
    let output = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = spawn_reader(
        dup_master(&*pair.master),
        parser.clone(),
        output.clone(),
        stop.clone(),
    );
    let writer = File::from(dup_master(&*pair.master));
    let initial_modes = modes_of(&*pair.master);
    let child = pair
        .slave
        .spawn_command(cmd)
        .expect("spawn sockscope in the pty");
    // Our copy of the slave must go, or the master never sees the child leave.
    drop(pair.slave);
    let pid = child.process_id().expect("the child has a pid");
    Tui {
        master: Some(pair.master),
        writer: Some(writer),
        child,
        pid,
        parser,
        output,
        stop,
        reader: Some(reader),
        initial_modes,
        _config: config,
    }
}

impl Tui {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The screen as text, rows joined by newlines.
    pub fn contents(&self) -> String {
        lock(&self.parser).screen().contents()
    }

    /// Runs `f` on the current screen.
    pub fn with_screen<R>(&self, f: impl FnOnce(&vt100::Screen) -> R) -> R {
        f(lock(&self.parser).screen())
    }

    /// Every byte the child wrote so far.
    pub fn output(&self) -> Vec<u8> {
        lock(&self.output).clone()
    }

    /// Waits until `pred` holds for the screen; panics with the screen and
    /// the end of the raw output if it does not within [`WAIT`].
    pub fn wait_for(&self, what: &str, pred: impl Fn(&vt100::Screen) -> bool) {
        self.wait_for_within(what, WAIT, pred)
    }

    /// [`Tui::wait_for`] with another bound, for what the product promises
    /// within a stated time (a growth verdict within two windows).
    pub fn wait_for_within(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&vt100::Screen) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            if self.with_screen(&pred) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for {what}\n--- screen ---\n{}\n--- last output bytes ---\n{}",
                    self.contents(),
                    escape_tail(&self.output(), 600)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the screen contains `text`.
    pub fn wait_for_text(&self, text: &str) {
        self.wait_for(&format!("{text:?} on screen"), |s| {
            s.contents().contains(text)
        });
    }

    /// Waits for the monitor's header line (the first row starts with `sockscope`).
    pub fn wait_for_header(&self) {
        self.wait_for("the header line", |s| s.contents().starts_with("sockscope"));
    }

    /// Types `keys` as a user would (raw bytes into the terminal).
    pub fn type_keys(&mut self, keys: &str) {
        let w = self.writer.as_mut().expect("the terminal is still open");
        w.write_all(keys.as_bytes()).expect("type into the pty");
        w.flush().expect("flush the pty");
    }

    /// Resizes the terminal (the kernel sends the child SIGWINCH) and the
    /// emulated screen together, under the screen's lock, so no byte drawn
    /// for the new size is parsed at the old one.
    pub fn resize(&self, cols: u16, rows: u16) {
        let mut parser = lock(&self.parser);
        self.master
            .as_ref()
            .expect("the terminal is still open")
            .resize(pty_size(cols, rows))
            .expect("resize the pty");
        parser.screen_mut().set_size(nz(rows), nz(cols));
    }

    /// `None` while the child runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("query the child's status")
    }

    /// The exit status, or `None` if the child is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `q`, checks that sockscope exits 0 within [`EXIT_WAIT`], and waits
    /// for the end of its output.
    pub fn quit(&mut self) {
        self.type_keys("q");
        let status = self
            .wait_exit(EXIT_WAIT)
            .unwrap_or_else(|| panic!("sockscope still running {EXIT_WAIT:?} after q"));
        assert!(status.success(), "q must exit 0, got {status:?}");
        self.wait_output_end();
    }

    /// After the child exited: waits until the reader has seen the end of its
    /// output, so [`Tui::output`] and the screen are complete.
    pub fn wait_output_end(&mut self) {
        let deadline = Instant::now() + EXIT_WAIT;
        let handle = self.reader.as_ref().expect("the reader was not stopped");
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the pty still had no end of output {EXIT_WAIT:?} after the child exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(h) = self.reader.take() {
            h.join().expect("the pty reader thread panicked");
        }
    }

    /// Closes the terminal as an emulator window closing would: every
    /// descriptor of the master goes, and the kernel hangs the slave up.
    pub fn close_master(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.reader.take() {
            h.join().expect("the pty reader thread panicked");
        }
        self.writer = None;
        self.master = None;
    }

    /// The terminal's modes now.
    pub fn modes(&self) -> Modes {
        modes_of(&**self.master.as_ref().expect("the terminal is still open"))
    }

    /// The terminal's modes before the child started.
    pub fn initial_modes(&self) -> Modes {
        self.initial_modes
    }
}

/// A terminal's modes as the kernel has them (for a pty master, Linux reports
/// the slave's termios).
fn modes_of(master: &dyn MasterPty) -> Modes {
    let fd: RawFd = master
        .as_raw_fd()
        .expect("a unix pty master has a descriptor");
    // SAFETY: termios is plain old data; all-zero is a valid value that
    // tcgetattr then overwrites.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is the master's, open while `master` is borrowed, and `t`
    // is a valid, writable termios.
    let rc = unsafe { libc::tcgetattr(fd, &mut t) };
    assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
    Modes {
        icanon: t.c_lflag & libc::ICANON != 0,
        echo: t.c_lflag & libc::ECHO != 0,
        isig: t.c_lflag & libc::ISIG != 0,
        icrnl: t.c_iflag & libc::ICRNL != 0,
        opost: t.c_oflag & libc::OPOST != 0,
    }
}

impl Drop for Tui {
    /// A failed test must not leave a monitor running: kill and reap it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// The screen's row `row` as one char per column (blank cells are spaces),
/// so a char's index is its column.
pub fn row_chars(screen: &vt100::Screen, row: u16) -> Vec<char> {
    let (_, cols) = screen.size();
    (0..cols.get())
        .map(|c| {
            screen
                .cell(row, c)
                .and_then(|cell| cell.contents().chars().next())
                .unwrap_or(' ')
        })
        .collect()
}

/// The last `n` bytes of `bytes`, escapes made visible.
pub fn escape_tail(bytes: &[u8], n: usize) -> String {
    let tail = &bytes[bytes.len().saturating_sub(n)..];
    tail.escape_ascii().to_string()
}

/// Position of the last occurrence of `needle` in `haystack`.
pub fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// The parameters of every SGR sequence (`ESC [ ... m`) in `bytes`.
pub fn sgr_params(bytes: &[u8]) -> Vec<Vec<u16>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == 0x1b && bytes[i + 1] == b'[' {
            let start = i + 2;
            let mut j = start;
            // Parameter and intermediate bytes, then the final byte.
            while j < bytes.len() && (0x20..=0x3f).contains(&bytes[j]) {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'm' {
                let params = String::from_utf8_lossy(&bytes[start..j]);
                out.push(
                    params
                        .split([';', ':'])
                        .map(|p| {
                            if p.is_empty() {
                                0
                            } else {
                                p.parse().unwrap_or(u16::MAX)
                            }
                        })
                        .collect(),
                );
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}
