//! Small readers of what `/proc` says about a process and about itself:
//! the real uid in `status`, the name in `stat`, and whether `/proc` is
//! mounted with `hidepid=` so that processes vanish from the scan.

/// The real uid: the first number of `status`'s `Uid:` line. `fstat` of
/// `/proc/PID` gives the effective uid (root for a set-uid-root program
/// that another user started; such a process is not dumpable, and the files
/// under `/proc/PID` then belong to root), which is why the owner scan does
/// not use it.
pub fn status_uid(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The name in `stat`: between the first `(` and the last `)` (a name may
/// hold spaces and parentheses of its own).
pub fn stat_comm(stat: &[u8]) -> Option<&[u8]> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    (open < close).then(|| &stat[open + 1..close])
}

/// `/proc`'s `hidepid=` and `gid=` options, from a `mountinfo` text: the
/// last proc mount on `/proc` is the one a path lookup sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcMount {
    /// Other users' processes are left out of the listing (`hidepid=2`,
    /// `invisible`, or `ptraceable`: only those this process may ptrace).
    pub hides: bool,
    /// The group whose members see every process anyway.
    pub gid: Option<u32>,
}

pub fn proc_mount(mountinfo: &str) -> Option<ProcMount> {
    let mut found = None;
    for line in mountinfo.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4) else {
            continue;
        };
        if mount_point != "/proc" {
            continue;
        }
        let Some((_, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut after = after.split(' ');
        if after.next() != Some("proc") {
            continue;
        }
        let options = after.nth(1).unwrap_or("");
        let mut mount = ProcMount {
            hides: false,
            gid: None,
        };
        for option in options.split(',') {
            match option.split_once('=') {
                Some(("hidepid", v)) => {
                    mount.hides = matches!(v, "2" | "4" | "invisible" | "ptraceable")
                }
                Some(("gid", v)) => mount.gid = v.parse().ok(),
                _ => {}
            }
        }
        found = Some(mount);
    }
    found
}

/// Whether `/proc` hides processes from this process: `hidepid=` hides,
/// and this process is neither root (root may ptrace anyone) nor in the
/// `gid=` group. The mount table is read again only when it changed (see
/// [`super::mounts`]): this is asked at every owner scan.
pub fn pids_hidden_from_me() -> bool {
    static PROC: std::sync::Mutex<Option<(super::mounts::MountTable, Option<ProcMount>)>> =
        std::sync::Mutex::new(None);
    let mut guard = PROC.lock().unwrap_or_else(|e| e.into_inner());
    let (table, mount) = guard.get_or_insert_with(|| (super::mounts::MountTable::default(), None));
    if let Some(text) = table.changed() {
        *mount = proc_mount(&text);
    }
    let Some(mount) = *mount else {
        return false;
    };
    drop(guard);
    if !mount.hides || rustix::process::geteuid().is_root() {
        return false;
    }
    let Some(gid) = mount.gid else {
        return true;
    };
    let in_group = rustix::process::getegid().as_raw() == gid
        || rustix::process::getgroups()
            .map(|gs| gs.iter().any(|g| g.as_raw() == gid))
            .unwrap_or(false);
    !in_group
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_uid_is_the_first_of_status_uid_line() {
        let status = b"Name:\tsshd\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t65534\t0\t0\t0\nGid:\t65534\t65534\t65534\t65534\n";
        assert_eq!(status_uid(status), Some(65534));
        assert_eq!(status_uid(b"Name:\tx\n"), None);
    }

    #[test]
    fn the_name_in_stat_may_hold_parentheses_and_spaces() {
        assert_eq!(
            stat_comm(b"42 (a) b (c) S 1 42 42 0"),
            Some(&b"a) b (c"[..])
        );
        assert_eq!(stat_comm(b"42 (python3) S 1"), Some(&b"python3"[..]));
        assert_eq!(stat_comm(b"garbage"), None);
    }

    // Recorded from machines with and without hidepid (the second proc
    // mount on /proc is the one that counts).
    const PLAIN: &str = "22 28 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
        25 28 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n";
    const HIDDEN: &str = "22 28 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
        25 28 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n\
        640 22 0:59 / /proc rw,relatime - proc proc rw,gid=27,hidepid=invisible\n";
    const OLD_KERNEL: &str =
        "19 25 0:4 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw,hidepid=2\n";
    const NOACCESS: &str = "19 25 0:4 / /proc rw,relatime - proc proc rw,hidepid=1\n";

    #[test]
    fn hidepid_is_read_from_the_proc_mount_on_top() {
        assert_eq!(
            proc_mount(PLAIN),
            Some(ProcMount {
                hides: false,
                gid: None
            })
        );
        assert_eq!(
            proc_mount(HIDDEN),
            Some(ProcMount {
                hides: true,
                gid: Some(27)
            })
        );
        assert_eq!(proc_mount(OLD_KERNEL).map(|m| m.hides), Some(true));
        // hidepid=1 lists every pid and refuses their fd tables: those are
        // counted as unreadable already.
        assert_eq!(proc_mount(NOACCESS).map(|m| m.hides), Some(false));
        assert_eq!(proc_mount("25 28 0:23 / /sys rw - sysfs sysfs rw\n"), None);
    }
}
