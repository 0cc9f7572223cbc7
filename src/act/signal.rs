//! Signalling a socket's owner through a pidfd, so that a pid reused between
//! the look and the signal is never hit.
//!
//! [`Target::open`] takes a pidfd first and only then reads what the dialog
//! shows (name, user, command line, start time) and checks that the process
//! still holds one of the sockets it held in the sample; afterwards it checks
//! that the pidfd's process is still alive, so everything read belongs to it.
//! [`Target::send`] signals through the pidfd: a process that has exited since
//! gives ESRCH ("process has exited"), never a stranger with its old pid.

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::process::{Pid, PidfdFlags};
use std::fmt;
use std::io;

/// The signals sockscope offers, SIGTERM first (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Signal {
    #[default]
    Term,
    Kill,
    Hup,
    Int,
}

impl Signal {
    pub const ALL: [Signal; 4] = [Signal::Term, Signal::Kill, Signal::Hup, Signal::Int];

    /// Without the `SIG` prefix: `TERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Int => "INT",
        }
    }

    pub fn number(self) -> i32 {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Hup => libc::SIGHUP,
            Signal::Int => libc::SIGINT,
        }
    }

    /// What the signal usually does, for the dialog.
    pub fn describe(self) -> &'static str {
        match self {
            Signal::Term => "ask it to exit (it may clean up)",
            Signal::Kill => "end it at once; it cannot clean up",
            Signal::Hup => "hang up; many daemons reload",
            Signal::Int => "interrupt, as Ctrl-C",
        }
    }

    /// `TERM`, `SIGTERM`, `sigterm` or `15`.
    pub fn parse(text: &str) -> Option<Signal> {
        let t = text.trim().to_ascii_uppercase();
        let bare = t.strip_prefix("SIG").unwrap_or(&t);
        Signal::ALL
            .into_iter()
            .find(|s| s.name() == bare || s.number().to_string() == bare)
    }

    fn rustix(self) -> rustix::process::Signal {
        match self {
            Signal::Term => rustix::process::Signal::TERM,
            Signal::Kill => rustix::process::Signal::KILL,
            Signal::Hup => rustix::process::Signal::HUP,
            Signal::Int => rustix::process::Signal::INT,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

impl std::str::FromStr for Signal {
    type Err = String;
    fn from_str(s: &str) -> Result<Signal, String> {
        Signal::parse(s).ok_or_else(|| format!("`{s}` is not one of TERM, KILL, HUP, INT"))
    }
}

/// Why a process cannot be opened or signalled. The messages say what
/// happened and, where there is one, what the user can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("refused: pid {0} is init (pid 1) or the kernel")]
    Init(u32),
    #[error("refused: pid {0} is sockscope itself (use q to quit)")]
    OwnPid(u32),
    #[error("process has exited")]
    Exited,
    #[error(
        "pid {pid} no longer holds any socket it held in the sample (closed, or the process exited and its pid was reused); nothing sent: try again on the next sample"
    )]
    NotTheSame { pid: u32 },
    #[error("not permitted: run as root or as the process owner")]
    NotPermitted,
    #[error("{0}")]
    Other(String),
}

/// Refuses pid 0 and 1 and `own` (sockscope's own pid). Pure, so the
/// monitor can refuse before asking the loop to open anything.
pub fn refusal(pid: u32, own: u32) -> Option<SignalError> {
    if pid <= 1 {
        Some(SignalError::Init(pid))
    } else if pid == own {
        Some(SignalError::OwnPid(pid))
    } else {
        None
    }
}

/// A process held by a pidfd, with what was read about it after the pidfd
/// was taken.
pub struct Target {
    pub pid: u32,
    /// `comm`, as the kernel keeps it; may hold any byte (sanitize to show).
    pub name: String,
    /// Real uid.
    pub uid: u32,
    /// Arguments joined by spaces.
    pub cmdline: String,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    pidfd: OwnedFd,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("pid", &self.pid)
            .field("name", &self.name)
            .field("uid", &self.uid)
            .field("start_time", &self.start_time)
            .finish_non_exhaustive()
    }
}

/// Two targets are the same process when pid and start time agree.
impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        self.pid == other.pid && self.start_time == other.start_time
    }
}

impl Eq for Target {}

impl Target {
    /// Opens `pid`. `holds` are (fd, socket inode) pairs the process held in
    /// the sample; when not empty, the process must still hold one of them,
    /// which tells a reused pid from the process that was shown.
    pub fn open(pid: u32, holds: &[(u32, u64)]) -> Result<Target, SignalError> {
        if let Some(refused) = refusal(pid, std::process::id()) {
            return Err(refused);
        }
        let raw = i32::try_from(pid).map_err(|_| SignalError::Exited)?;
        let rpid = Pid::from_raw(raw).ok_or(SignalError::Init(pid))?;
        let pidfd =
            rustix::process::pidfd_open(rpid, PidfdFlags::empty()).map_err(|e| match e {
                rustix::io::Errno::SRCH => SignalError::Exited,
                e => SignalError::Other(format!("cannot open pid {pid}: {e}")),
            })?;
        // Read only now: the pid cannot be reused while we hold the pidfd and
        // the process is alive, which `alive` checks after the reads.
        let stat = std::fs::read(format!("/proc/{pid}/stat")).map_err(|_| SignalError::Exited)?;
        let (name, start_time) = parse_stat(&stat)
            .ok_or_else(|| SignalError::Other(format!("cannot read /proc/{pid}/stat")))?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(u32::MAX);
        if !holds.is_empty() {
            match still_holds(pid, holds) {
                Holds::Yes => {}
                Holds::No => return Err(SignalError::NotTheSame { pid }),
                Holds::Unreadable => return Err(SignalError::NotPermitted),
            }
        }
        let target = Target {
            pid,
            name,
            uid,
            cmdline,
            start_time,
            pidfd,
        };
        if !target.alive() {
            return Err(SignalError::Exited);
        }
        Ok(target)
    }

    /// True while the pidfd's process exists (a zombie counts; a reaped
    /// process does not). From the `Pid:` line of the pidfd's fdinfo, which
    /// the kernel writes as -1 once the process is gone.
    pub fn alive(&self) -> bool {
        let path = format!("/proc/self/fdinfo/{}", self.pidfd.as_raw_fd());
        let Ok(info) = std::fs::read_to_string(path) else {
            return false;
        };
        info.lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .is_some_and(|p| p == i64::from(self.pid))
    }

    /// Sends `signal` through the pidfd.
    pub fn send(&self, signal: Signal) -> Result<(), SignalError> {
        match rustix::process::pidfd_send_signal(self.pidfd.as_fd(), signal.rustix()) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::SRCH) => Err(SignalError::Exited),
            Err(rustix::io::Errno::PERM) => Err(SignalError::NotPermitted),
            Err(e) => Err(SignalError::Other(format!(
                "cannot send {signal} to pid {}: {}",
                self.pid,
                io::Error::from(e)
            ))),
        }
    }
}

enum Holds {
    Yes,
    No,
    /// The fd table cannot be read: not root and not the owner.
    Unreadable,
}

/// Whether `pid` still has one of the (fd, inode) pairs open. One is enough
/// to know it is the same process; callers put long-lived sockets
/// (listeners) first, and at most [`HOLDS_CHECKED`] are looked at.
fn still_holds(pid: u32, holds: &[(u32, u64)]) -> Holds {
    let mut denied = 0;
    let mut looked = 0;
    for &(fd, inode) in holds.iter().take(HOLDS_CHECKED) {
        looked += 1;
        match std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
            Ok(link)
                if link.as_os_str().as_encoded_bytes()
                    == format!("socket:[{inode}]").as_bytes() =>
            {
                return Holds::Yes;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => denied += 1,
            Err(_) => {}
        }
    }
    if denied == looked {
        Holds::Unreadable
    } else {
        Holds::No
    }
}

/// How many of a process's sockets [`Target::open`] looks for at most.
pub const HOLDS_CHECKED: usize = 64;

/// `comm` and the start time from `/proc/PID/stat`. The name is in
/// parentheses and may contain anything, so fields are counted from the last `)`.
fn parse_stat(stat: &[u8]) -> Option<(String, u64)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let name = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    // rest starts at field 3 (state); starttime is field 22.
    let start = rest.split(' ').nth(19)?.parse().ok()?;
    Some((name, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_with_or_without_sig_and_by_number() {
        for text in ["TERM", "term", "SIGTERM", "sigterm", "15", " Term "] {
            assert_eq!(Signal::parse(text), Some(Signal::Term), "{text}");
        }
        assert_eq!(Signal::parse("KILL"), Some(Signal::Kill));
        assert_eq!(Signal::parse("9"), Some(Signal::Kill));
        assert_eq!(Signal::parse("SigHup"), Some(Signal::Hup));
        assert_eq!(Signal::parse("1"), Some(Signal::Hup));
        assert_eq!(Signal::parse("int"), Some(Signal::Int));
        assert_eq!(Signal::parse("2"), Some(Signal::Int));
        for bad in ["", "SIG", "STOP", "USR1", "0", "99", "SIGSIGTERM"] {
            assert_eq!(Signal::parse(bad), None, "{bad}");
        }
        assert!("nope".parse::<Signal>().unwrap_err().contains("`nope`"));
    }

    #[test]
    fn signals_display_with_the_sig_prefix_and_term_is_the_default() {
        assert_eq!(Signal::Term.to_string(), "SIGTERM");
        assert_eq!(Signal::Kill.to_string(), "SIGKILL");
        assert_eq!(Signal::default(), Signal::Term);
        for s in Signal::ALL {
            assert_eq!(Signal::parse(&s.to_string()), Some(s));
        }
    }

    #[test]
    fn init_the_kernel_and_ourselves_are_refused() {
        assert_eq!(refusal(0, 500), Some(SignalError::Init(0)));
        assert_eq!(refusal(1, 500), Some(SignalError::Init(1)));
        assert_eq!(refusal(500, 500), Some(SignalError::OwnPid(500)));
        assert_eq!(refusal(2, 500), None);
        let own = std::process::id();
        assert_eq!(
            Target::open(own, &[]).unwrap_err(),
            SignalError::OwnPid(own)
        );
        assert_eq!(Target::open(1, &[]).unwrap_err(), SignalError::Init(1));
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = b"42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 100";
        assert_eq!(parse_stat(stat), Some(("a) b) c".to_string(), 12345)));
        assert_eq!(parse_stat(b"42 (x"), None);
    }

    #[test]
    fn messages_say_what_to_do() {
        assert_eq!(
            SignalError::NotPermitted.to_string(),
            "not permitted: run as root or as the process owner"
        );
        assert_eq!(SignalError::Exited.to_string(), "process has exited");
    }
}
