//! A process may name itself anything: terminal escapes, bidi overrides,
//! newlines, bytes that are not UTF-8. The table must not pass them to the
//! terminal; the JSON must keep them, escaped.

use crate::common;

use common::{Helper, exe_comm, hex, output, read_proc, sockscope};
use std::ffi::OsStr;

struct Case {
    /// Bytes written to /proc/self/comm.
    written: &'static [u8],
    /// What the kernel keeps: the first 15 bytes.
    kept: &'static [u8],
    /// The name in JSON (invalid UTF-8 decoded lossily).
    json: &'static str,
    /// The name in the table: every control, C1 and bidi character as `?`.
    table: &'static str,
}

const CASES: &[Case] = &[
    // OSC "set window title" ... BEL, then "clear screen", cut at 15 bytes.
    Case {
        written: b"\x1b]0;pwned\x07\x1b[2J(x)tail",
        kept: b"\x1b]0;pwned\x07\x1b[2J(",
        json: "\u{1b}]0;pwned\u{7}\u{1b}[2J(",
        table: "?]0;pwned??[2J(",
    },
    // U+009B (8-bit CSI, in UTF-8), U+202E (right-to-left override), a
    // newline, then a raw 0x9B byte and 0xFF, neither of them UTF-8.
    Case {
        written: b"a\xc2\x9b31m\xe2\x80\xaeb)\n\x9b\xff",
        kept: b"a\xc2\x9b31m\xe2\x80\xaeb)\n\x9b\xff",
        json: "a\u{9b}31m\u{202e}b)\n\u{fffd}\u{fffd}",
        table: "a?31m?b)?\u{fffd}\u{fffd}",
    },
    // The 15-byte cut falls inside U+202E, leaving half a character.
    Case {
        written: b"(0123456789ab\xe2\x80\xae)",
        kept: b"(0123456789ab\xe2\x80",
        json: "(0123456789ab\u{fffd}",
        table: "(0123456789ab\u{fffd}",
    },
];

/// argv of the hostile process: argv[0] and arguments with escapes,
/// newlines, parentheses and bytes that are not UTF-8.
const ARGV0: &[u8] = b"\x1b]0;evil\x07(\xff)\n";
const ARGS: &[&[u8]] = &[b"\x1b[2J\x9b31m", b"\xe2\x80\xaetxt.exe", b"a\nb\tc(d)"];

/// A process named `case.written` holding a listener as its fd 2: (helper, port).
fn start(case: &Case) -> (Helper, u16) {
    let argv: Vec<String> = std::iter::once(ARGV0)
        .chain(ARGS.iter().copied())
        .map(hex)
        .collect();
    let comm = hex(case.written);
    let argv = argv.join(",");
    let mut h = Helper::role(
        "hostile",
        &[
            (common::HOSTILE_COMM_ENV, OsStr::new(&comm)),
            (common::HOSTILE_ARGV_ENV, OsStr::new(&argv)),
        ],
    );
    let port: u16 = h.reply()[0].parse().unwrap();
    assert_eq!(h.reply(), ["ready"]);
    // The kernel keeps what the test expects it to keep.
    let mut comm = read_proc(h.pid, "comm");
    assert_eq!(comm.pop(), Some(b'\n'));
    assert_eq!(comm, case.kept, "comm as the kernel keeps it");
    assert_eq!(String::from_utf8_lossy(&comm), case.json);
    (h, port)
}

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[test]
fn hostile_process_names_are_replaced_in_the_table() {
    for case in CASES {
        let (h, port) = start(case);
        let out = output(&mut sockscope(&[
            "snapshot",
            &format!("lport:{port}"),
            "state:listen",
        ]));
        assert_eq!(out.status.code(), Some(0));
        assert!(!out.stdout.contains(&0x1b), "raw ESC in the table");
        assert!(
            !out.stdout.contains(&0x9b),
            "a 0x9B byte (raw, or in U+009B) in the table"
        );
        let text = String::from_utf8(out.stdout).expect("the table is UTF-8");
        assert!(
            !text.chars().any(|c| c != '\n' && is_dangerous(c)),
            "control or bidi character in the table: {text:?}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "header, one row, summary: {text:?}");
        let row = lines[1];
        assert!(row.starts_with("LISTEN"), "{row:?}");
        assert!(row.contains(&format!("127.0.0.1:{port} ")), "{row:?}");
        assert!(row.contains(&format!(" {} ", h.pid)), "{row:?}");
        assert!(
            row.contains(&format!(" {}  ", case.table)),
            "name shown as {:?} in {row:?}",
            case.table
        );
        assert!(lines[2].starts_with("1 sockets"), "{:?}", lines[2]);
    }
}

#[test]
fn hostile_process_names_are_escaped_in_json_and_parse_back_exactly() {
    for case in CASES {
        let (h, port) = start(case);
        let out = output(&mut sockscope(&[
            "snapshot",
            "--json",
            &format!("lport:{port}"),
            "state:listen",
        ]));
        assert_eq!(out.status.code(), Some(0));
        let raw = &out.stdout;
        assert!(
            !raw.contains(&0x1b) && !raw.contains(&0x07),
            "raw ESC or BEL"
        );
        let text = std::str::from_utf8(raw).expect("JSON is UTF-8");
        assert!(
            !text.chars().any(|c| c != '\n' && is_dangerous(c)),
            "unescaped control or bidi character in {text:?}"
        );
        // One socket per line: a newline in a name must not break the line.
        assert_eq!(text.lines().count(), 3, "[, one socket, ]: {text:?}");

        let rows = common::parse_rows(raw);
        assert_eq!(rows.len(), 1, "{rows:#?}");
        let row = &rows[0];
        assert_eq!((row.state.as_str(), row.local_port), ("LISTEN", port));
        assert_eq!(row.pid, Some(h.pid));
        assert_eq!(row.process.as_deref(), Some(case.json));
        assert_eq!(
            row.owners,
            vec![common::OwnerRow {
                pid: h.pid,
                fd: 2,
                process: Some(case.json.to_string()),
            }]
        );
        // and it is what the kernel has now
        let mut comm = read_proc(h.pid, "comm");
        comm.pop();
        assert_eq!(
            row.process.as_deref(),
            Some(&*String::from_utf8_lossy(&comm))
        );
    }
}

#[test]
fn command_line_that_is_not_utf8_is_read_whole() {
    use sockscope::collect::{Collector, Options, SourceChoice, SystemCollector};

    let (h, _port) = start(&CASES[0]);
    // What the kernel shows: NUL-separated argv.
    let cmdline = read_proc(h.pid, "cmdline");
    let args: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    assert_eq!(args[0], ARGV0);
    assert_eq!(args[1], b"-c");
    assert_eq!(&args[3..], ARGS);
    let expected: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();

    let snap = SystemCollector::new(Options {
        source: SourceChoice::Netlink,
        tcp_info: false,
        owners: true,
        incremental: false,
        namespaces: true,
    })
    .collect()
    .unwrap();
    let p = snap.process(h.pid).expect("the hostile process is listed");
    assert_eq!(p.cmdline, expected.join(" "));
    assert_eq!(p.name, CASES[0].json);
    assert_ne!(p.name, exe_comm());
}
