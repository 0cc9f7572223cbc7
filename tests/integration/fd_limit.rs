//! With only 64 descriptors of its own, sockscope still lists and attributes
//! every socket of a process holding 300.

use crate::common;

use common::{Holder, OwnerRow, Row, exe_comm, find_program, identity, output, parse_rows};
use std::collections::BTreeMap;
use std::process::Command;

const SOCKETS: usize = 300;
const LIMIT: &str = "64";

/// A command that runs `program args` with RLIMIT_NOFILE at `limit` (soft and hard).
fn limited(limit: &str, program: &str, args: &[&str]) -> Command {
    let mut cmd = match find_program("prlimit") {
        Some(prlimit) => {
            let mut c = Command::new(prlimit);
            c.arg(format!("--nofile={limit}")).arg("--");
            c
        }
        // Without util-linux: the shell's ulimit, then exec.
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")]);
            c
        }
    };
    cmd.arg(program).args(args);
    cmd
}

fn run(cmd: &mut Command) -> Vec<Row> {
    let out = output(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::assert_stderr_is_at_most_the_note(&out.stderr);
    parse_rows(&out.stdout)
}

#[test]
fn low_fd_limit_still_lists_and_attributes_all_300_sockets() {
    // The limit really applies to what we run.
    let out = output(&mut limited(LIMIT, "sh", &["-c", "ulimit -n"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LIMIT);

    let mut h = Holder::new();
    let held: BTreeMap<u16, u32> =
        h.h.send(&format!("listen-many {SOCKETS}"))
            .iter()
            .map(|w| {
                let (port, fd) = w.split_once(':').unwrap();
                (port.parse().unwrap(), fd.parse().unwrap())
            })
            .collect();
    assert_eq!(held.len(), SOCKETS);
    let filter = format!("pid:{}", h.pid());

    let check = |rows: &[Row], how: &str| {
        assert_eq!(rows.len(), SOCKETS, "{how}: one row per socket");
        for r in rows {
            let fd = held
                .get(&r.local_port)
                .unwrap_or_else(|| panic!("{how}: a socket we do not hold: {r:#?}"));
            assert_eq!(r.state, "LISTEN");
            assert_eq!(
                r.owners,
                vec![OwnerRow {
                    pid: h.pid(),
                    fd: *fd,
                    process: Some(exe_comm()),
                }],
                "{how}"
            );
        }
    };

    for source in ["netlink", "proc"] {
        let args = ["snapshot", "--json", "--source", source, &filter];
        let unlimited = run(&mut common::sockscope(&args));
        check(&unlimited, &format!("{source}, no limit"));
        let low = run(&mut limited(LIMIT, common::bin(), &args));
        check(&low, &format!("{source}, {LIMIT} fds"));
        let mut a: Vec<_> = unlimited.iter().map(identity).collect();
        let mut b: Vec<_> = low.iter().map(identity).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{source}: the low-limit listing differs");
    }
}

/// Below some limit sockscope cannot do its job; it must then fail (exit 1,
/// naming the cause) rather than print a listing with owners missing.
#[test]
fn fd_limit_too_low_to_scan_fails_loudly_instead_of_dropping_owners() {
    let mut h = Holder::new();
    let held = h.h.send(&format!("listen-many {SOCKETS}"));
    assert_eq!(held.len(), SOCKETS);
    let filter = format!("pid:{}", h.pid());
    let args = ["snapshot", "--json", "--source", "netlink", &filter];
    let complete = run(&mut common::sockscope(&args));
    assert_eq!(complete.len(), SOCKETS);
    let mut complete: Vec<_> = complete.iter().map(identity).collect();
    complete.sort();

    let mut failed = 0;
    for n in 5..=16 {
        let out = output(&mut limited(&n.to_string(), common::bin(), &args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {
                let mut rows: Vec<_> = parse_rows(&out.stdout).iter().map(identity).collect();
                rows.sort();
                assert!(
                    rows == complete,
                    "limit {n}: exit 0 with {} of our {SOCKETS} sockets attributed",
                    rows.len()
                );
            }
            Some(1) => {
                assert!(
                    stderr.contains("Too many open files"),
                    "limit {n}: {stderr}"
                );
                failed += 1;
            }
            other => panic!("limit {n}: exit {other:?}: {stderr}"),
        }
    }
    assert!(failed > 0, "5 descriptors cannot be enough");
}
