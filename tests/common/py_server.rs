//! `tests/programs/fork_server.py`: a real forking server, prefork pool or
//! stalled listener, driven over its stdin.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// `tests/programs/fork_server.py` in a mode; killed with its children on drop.
pub struct PyServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
}

impl PyServer {
    pub fn start(args: &[&str]) -> PyServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/programs/fork_server.py");
        let mut child = super::spawn_locked(
            Command::new("python3")
                .arg(script)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut srv = PyServer {
            child,
            stdin,
            stdout,
            port: 0,
        };
        let first = srv.line();
        srv.port = first
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("fork_server.py said {first:?}"));
        srv
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from fork_server.py");
        line.trim_end().to_string()
    }

    pub fn send(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write to fork_server.py");
        stdin.flush().expect("flush");
        self.line()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // its children exit once it is gone
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PyServer {
    /// In `fork` mode: accepts `n` connections, then forks the child that
    /// inherits them; returns the child's pid.
    pub fn accept_and_fork(&mut self, n: usize) -> u32 {
        assert_eq!(self.send(&format!("accept {n}")), "ok");
        self.send("fork")
            .strip_prefix("child ")
            .and_then(|p| p.parse().ok())
            .expect("child pid")
    }
}
