//! `snapshot` for people: an aligned table and a per-state summary line.

use crate::model::{Snapshot, Socket, TcpState, group, holders, socket::format_addr};
use crate::sanitize::clean;
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

/// NETNS, the last, only when a socket shown is in another network
/// namespace than sockscope's own.
const HEADERS: [&str; 10] = [
    "STATE", "PROTO", "LOCAL", "REMOTE", "RECV-Q", "SEND-Q", "PID", "PROCESS", "USER", "NETNS",
];
/// Right-aligned columns (numbers).
const RIGHT: [bool; 10] = [
    false, false, false, false, true, true, true, false, false, false,
];

fn row(s: &Socket, snap: &Snapshot, prefer: &[u32]) -> [String; 10] {
    let owners = holders::effective(snap, s);
    let pids: Vec<u32> = holders::pids(owners).collect();
    // The pid the filter asked for (`snapshot pid:B`) is shown first.
    let pid = pids
        .iter()
        .copied()
        .find(|p| prefer.contains(p))
        .or(pids.first().copied());
    let process = pid.and_then(|p| snap.process(p));
    let mut name = match (process, holders::why_none(snap, s)) {
        (Some(p), _) => clean(&p.name).into_owned(),
        (None, Some(why)) => why.label().to_string(),
        (None, None) => "-".into(),
    };
    if pids.len() > 1 {
        name.push_str(&format!(" (+{})", pids.len() - 1));
    }
    if s.owners.is_empty() && pid.is_some() {
        name.push_str(" (accept queue)");
    }
    let user = process
        .and_then(|p| p.user.clone())
        .or_else(|| snap.user_name(s.uid).map(str::to_string))
        .unwrap_or_else(|| s.uid.to_string());
    [
        s.state.kernel_name().to_string(),
        s.proto.name().to_string(),
        format_addr(&s.local),
        format_addr(&s.remote),
        s.recv_q.to_string(),
        s.send_q.to_string(),
        pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        name,
        clean(&user).into_owned(),
        clean(snap.namespaces.name(s.netns)).into_owned(),
    ]
}

/// Writes the table, then the summary line. `color` adds ANSI colour to
/// trouble states; pass false whenever the output is not a terminal.
pub fn write_table<W: Write>(
    out: W,
    snap: &Snapshot,
    sockets: &[&Socket],
    prefer: &[u32],
    color: bool,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let rows: Vec<[String; 10]> = sockets.iter().map(|s| row(s, snap, prefer)).collect();
    let columns = if sockets.iter().any(|s| s.netns != crate::model::HOST_NETNS) {
        10
    } else {
        9
    };
    let mut widths = HEADERS.map(|h| h.len());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.width());
        }
    }
    write_row(
        &mut out,
        &HEADERS.map(String::from)[..columns],
        &widths,
        None,
    )?;
    for (r, s) in rows.iter().zip(sockets) {
        let colour = (color && s.state.is_trouble()).then_some(if s.state == TcpState::CloseWait {
            "\x1b[1;31m"
        } else {
            "\x1b[33m"
        });
        write_row(&mut out, &r[..columns], &widths, colour)?;
    }
    writeln!(out, "{}", group::summary_line(snap, sockets))?;
    out.flush()
}

fn write_row<W: Write>(
    out: &mut W,
    cells: &[String],
    widths: &[usize; 10],
    colour: Option<&str>,
) -> io::Result<()> {
    let mut line = String::with_capacity(128);
    for (i, cell) in cells.iter().enumerate() {
        let pad = widths[i].saturating_sub(cell.width());
        let last = i == cells.len() - 1;
        if RIGHT[i] {
            line.extend(std::iter::repeat_n(' ', pad));
        }
        match (i, colour) {
            (0, Some(c)) => {
                line.push_str(c);
                line.push_str(cell);
                line.push_str("\x1b[0m");
            }
            _ => line.push_str(cell),
        }
        if !RIGHT[i] && !last {
            line.extend(std::iter::repeat_n(' ', pad));
        }
        if !last {
            line.push_str("  ");
        }
    }
    writeln!(out, "{}", line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;

    fn render(snap: &Snapshot) -> String {
        let all: Vec<&Socket> = snap.sockets.iter().collect();
        let mut buf = Vec::new();
        write_table(&mut buf, snap, &all, &[], false).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn table_is_aligned_with_a_summary() {
        let text = render(&fixture::small());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("STATE"));
        let col = lines[0].find("LOCAL").unwrap();
        assert_eq!(&lines[2][col..col + 14], "127.0.0.1:6800");
        assert!(
            lines[2].contains("1000")
                && lines[2].contains("redis-server")
                && lines[2].contains("redis")
        );
        assert!(lines.last().unwrap().starts_with("8 sockets"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn hostile_names_show_with_controls_replaced() {
        let mut snap = fixture::small();
        snap.processes.get_mut(&1000).unwrap().name = "a\x1b[2J\u{9b}b\nc".into();
        let text = render(&snap);
        assert!(text.contains("a?[2J?b?c"));
        assert!(
            !text
                .chars()
                .any(|c| crate::sanitize::is_unsafe(c) && c != '\n')
        );
        assert_eq!(
            text.lines().count(),
            10,
            "one line per socket, no injected breaks"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let snap = fixture::small();
        let all: Vec<&Socket> = snap.sockets.iter().collect();
        let mut buf = Vec::new();
        write_table(&mut buf, &snap, &all, &[], true).unwrap();
        assert!(
            String::from_utf8(buf)
                .unwrap()
                .contains("\x1b[1;31mCLOSE_WAIT")
        );
    }
}
