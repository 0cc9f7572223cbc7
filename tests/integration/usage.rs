//! Exit codes and messages for bad usage, and a reader that stops early.

use crate::common;

use common::{Holder, assert_stderr_is_at_most_the_note, bin, output, sockscope};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn bad_filter_term_exits_2_and_names_the_term() {
    for (args, bad) in [
        (&["port:abc"][..], "port:abc"),
        (&["6800", "state:nope"][..], "state:nope"),
        (&["colour:red"][..], "colour:red"),
        (&["proto:sctp"][..], "proto:sctp"),
        (&["addr:10.0.0.300"][..], "addr:10.0.0.300"),
    ] {
        for json in [false, true] {
            let mut all = vec!["snapshot"];
            if json {
                all.push("--json");
            }
            all.extend_from_slice(args);
            let out = output(&mut sockscope(&all));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{all:?} printed a listing");
            assert!(
                stderr.contains(&format!("`{bad}`")),
                "{all:?}: the message does not name {bad}: {stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
}

#[test]
fn unknown_flag_or_bad_flag_value_exits_2() {
    for (args, named) in [
        (&["snapshot", "--bogus"][..], "--bogus"),
        (&["--bogus"][..], "--bogus"),
        (&["snapshot", "--source", "nowhere"][..], "nowhere"),
        // A bare word is a filter for the monitor, so `sockscope frobnicate`
        // is not a usage error; a bad interval is.
        (&["--interval", "soon"][..], "soon"),
    ] {
        let out = output(&mut sockscope(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

/// Sockets enough that the listing is far larger than a pipe holds, so the
/// reader leaving really breaks the pipe under the writer.
const SOCKETS: usize = 4000;

#[test]
fn snapshot_piped_into_head_prints_no_error() {
    let mut h = Holder::new();
    let n: usize = h.h.send_nums(&format!("udp-many {SOCKETS}"))[0];
    assert_eq!(n, SOCKETS);
    let filter = format!("pid:{}", h.pid());

    for json in [false, true] {
        let mut args = vec!["snapshot"];
        if json {
            args.push("--json");
        }
        args.push(&filter);

        // The whole listing, for its size.
        let full = output(&mut sockscope(&args));
        assert_eq!(full.status.code(), Some(0));
        assert_eq!(
            full.stdout.iter().filter(|b| **b == b'\n').count(),
            SOCKETS + 2,
            "{args:?}: header or [, one line per socket, summary or ]"
        );
        assert!(full.stdout.len() > 200_000, "{} bytes", full.stdout.len());

        // `sockscope snapshot | head -1`, with its exit status.
        let mut cmd = sockscope(&args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = common::spawn_locked(&mut cmd);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        drop(stdout);
        let status = child.wait().unwrap();
        let mut stderr = Vec::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut stderr)
            .unwrap();
        if json {
            assert_eq!(first, "[\n");
        } else {
            assert!(first.starts_with("STATE "), "{first:?}");
        }
        assert_eq!(
            status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&stderr)
        );
        assert_stderr_is_at_most_the_note(&stderr);

        // The same through a shell, literally.
        let line = format!("'{}' {} | head -1", bin(), args.join(" "));
        let out = output(Command::new("sh").args(["-c", &line]));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 1);
        assert_stderr_is_at_most_the_note(&out.stderr);
    }
}
