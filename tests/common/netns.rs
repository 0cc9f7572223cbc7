//! Network namespaces a test makes with `ip netns add` (each deleted on
//! drop, a panic included), and `tests/programs/netns_holder.py` run inside
//! one to hold sockets there. Root only.

use super::{Helper, find_program, poll};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

/// An `ip netns add` namespace with loopback up, named `ssc-TAG-PID`.
/// On drop every process still in it is killed and it is deleted.
pub struct NetNs {
    pub name: String,
}

/// Checks that `ip` and `python3` are installed (a root test needs them).
pub fn tools() {
    for tool in ["ip", "python3"] {
        assert!(
            find_program(tool).is_some(),
            "{tool} is needed by the namespace tests (.ci/run installs it)"
        );
    }
}

/// Runs `ip ARGS`, failing the test with its stderr when it fails.
fn ip(args: &[&str]) -> String {
    let out = super::output(Command::new("ip").args(args));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl NetNs {
    /// `ip netns add ssc-TAG-PID` (PID: this test process), loopback up.
    pub fn add(tag: &str) -> NetNs {
        let name = format!("ssc-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        // From here on the guard deletes it, whatever fails next.
        let ns = NetNs { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Its inode, as `snapshot --json` has it in `netns_inode`.
    pub fn inode(&self) -> u64 {
        let path = format!("/run/netns/{}", self.name);
        std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("stat {path}: {e}"))
            .ino()
    }

    /// The processes in it (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        ip(&["netns", "pids", &self.name])
            .split_whitespace()
            .map(|p| p.parse().expect("a pid from ip netns pids"))
            .collect()
    }

    /// Waits until no process is left in it.
    pub fn wait_empty(&self) {
        poll(&format!("no process left in netns {}", self.name), || {
            self.pids().is_empty().then_some(())
        });
    }

    /// A `netns_holder.py` running in it.
    pub fn holder(&self) -> NsHolder {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/programs/netns_holder.py"
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "python3", script]);
        let mut h = Helper::start(&mut cmd);
        let ready = h.reply();
        assert_eq!(ready[0], "ready", "netns_holder.py said {ready:?}");
        let pid = ready[1].parse().expect("netns_holder.py's pid");
        NsHolder { h, pid }
    }

    /// Kills what is left in it and deletes it now (drop does the same,
    /// quietly).
    pub fn delete(mut self) {
        self.kill_all();
        ip(&["netns", "del", &self.name]);
        self.name.clear();
    }

    fn kill_all(&self) {
        let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        else {
            return;
        };
        // Only this test's processes are in a namespace this test made.
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        self.kill_all();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// `tests/programs/netns_holder.py` in a namespace; its stdin closes on
/// drop (it exits), and it is killed if it has not.
pub struct NsHolder {
    pub h: Helper,
    /// The python process's own pid (what sockscope shows as the owner).
    pub pid: u32,
}

impl NsHolder {
    fn nums(&mut self, command: &str) -> Vec<u16> {
        self.h
            .send(command)
            .iter()
            .map(|w| {
                w.parse()
                    .unwrap_or_else(|_| panic!("{command}: not a number: {w:?}"))
            })
            .collect()
    }

    /// A listener on 127.0.0.1:`port` (0: any): (id, port).
    pub fn listen(&mut self, port: u16) -> (u16, u16) {
        let r = self.nums(&format!("listen {port}"));
        (r[0], r[1])
    }

    /// A connection to 127.0.0.1:`port`, from port `from` (0: any): (id, local port).
    pub fn connect(&mut self, port: u16, from: u16) -> (u16, u16) {
        let r = self.nums(&format!("connect {port} {from}"));
        (r[0], r[1])
    }

    /// Accepts on `listener`: (id, peer port).
    pub fn accept(&mut self, listener: u16) -> (u16, u16) {
        let r = self.nums(&format!("accept {listener}"));
        (r[0], r[1])
    }

    /// `n` connections to `port` accepted on `listener` and kept, their
    /// clients closed: `n` sockets in CLOSE_WAIT (and `n` orphaned FIN_WAIT2).
    pub fn leak(&mut self, listener: u16, port: u16, n: usize) {
        self.h.send(&format!("leak {listener} {port} {n}"));
    }

    /// One connection to `port` that its client closes first: the client
    /// end stays in TIME_WAIT. Its client port.
    pub fn time_wait(&mut self, listener: u16, port: u16) -> u16 {
        self.nums(&format!("time-wait {listener} {port}"))[0]
    }

    /// Reads one byte from socket `id`, waiting up to `ms`: `data`, `eof`,
    /// `reset`, `aborted`, `timeout` or `error NAME`.
    pub fn recv(&mut self, id: u16, ms: u64) -> String {
        self.h.send(&format!("recv {id} {ms}")).join(" ")
    }

    /// Closes its stdin and waits for it to exit (its sockets close).
    pub fn exit(self) {
        let pid = self.pid;
        drop(self.h);
        poll(&format!("netns_holder.py (pid {pid}) to exit"), || {
            super::has_ended(pid).then_some(())
        });
    }
}
