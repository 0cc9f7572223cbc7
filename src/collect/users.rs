//! uid → user name through NSS (`getpwuid_r`), as `ls` and `ps` resolve
//! them: `/etc/passwd`, and LDAP, SSSD or systemd's dynamic users where
//! `nsswitch.conf` says so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A uid with no name is asked again after this long: a directory server
/// that was down, or a user added since.
pub const RETRY_MISSING: Duration = Duration::from_secs(60);

/// Names looked up once per uid; uids without one are remembered, and
/// retried after [`RETRY_MISSING`].
#[derive(Default)]
pub struct UserNames {
    names: HashMap<u32, String>,
    missing: HashMap<u32, Instant>,
}

impl UserNames {
    pub fn name(&mut self, uid: u32) -> Option<String> {
        if let Some(n) = self.names.get(&uid) {
            return Some(n.clone());
        }
        if self
            .missing
            .get(&uid)
            .is_some_and(|at| at.elapsed() < RETRY_MISSING)
        {
            return None;
        }
        match lookup(uid) {
            Some(name) => {
                self.missing.remove(&uid);
                self.names.insert(uid, name.clone());
                Some(name)
            }
            None => {
                self.missing.insert(uid, Instant::now());
                None
            }
        }
    }
}

/// One `getpwuid_r` call. None when NSS knows no such uid, or fails (an
/// unreachable directory leaves names out, never fails the snapshot).
pub fn lookup(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `passwd` is plain data that getpwuid_r fills; `buf` is a
        // writable buffer of the length passed, and outlives every use of
        // the pointers getpwuid_r stores in `passwd` (pw_name is copied out
        // below before `buf` is dropped or reused). `result` is written
        // before the call returns.
        let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut passwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || passwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points at a NUL-terminated string in `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(passwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn getent(uid: u32) -> Option<String> {
        let out = std::process::Command::new("getent")
            .args(["passwd", &uid.to_string()])
            .output()
            .expect("getent is part of libc-bin");
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string()
        })
    }

    #[test]
    fn this_processs_uid_resolves_to_the_name_getent_gives() {
        let uid = rustix::process::getuid().as_raw();
        let expected = getent(uid).expect("getent knows the test's own uid");
        assert_eq!(lookup(uid), Some(expected.clone()));
        let mut names = UserNames::default();
        assert_eq!(names.name(uid), Some(expected));
    }

    #[test]
    fn a_uid_with_no_entry_has_no_name_and_is_remembered() {
        // The highest uids below the kernel's "no uid" are not anyone's.
        let uid = (4_000_000_000u32..4_000_000_100)
            .find(|&u| getent(u).is_none())
            .expect("a free uid");
        let mut names = UserNames::default();
        assert_eq!(names.name(uid), None);
        assert!(names.missing.contains_key(&uid), "negative cache");
        assert_eq!(names.name(uid), None);
    }
}
