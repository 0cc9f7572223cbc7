//! Writing the monitor's current view (every row after the filter, not only
//! the visible page) to a CSV or JSON file.
//!
//! The columns are the table's. Numeric columns are numbers (TREND is the
//! change over the history window, AGE is in seconds, IN/s and OUT/s are
//! bytes per second), a missing value is empty (CSV) or `null` (JSON). Process and user names are the exact text,
//! not the sanitized text the table draws:
//!
//! - CSV quotes a field that holds a comma, a quote, CR or LF, as RFC 4180
//!   says. A text field that starts with `=`, `+`, `-`, `@`, TAB or CR gets a
//!   leading `'`, so a spreadsheet does not run a process name such as
//!   `=HYPERLINK(...)` as a formula (OWASP's advice on CSV injection).
//! - JSON escapes control, C1 and bidi characters as `\uXXXX`, as
//!   `snapshot --json` does; it parses back to the exact text.

use crate::model::view::{self, Grouping, Row, SortKey, ViewCtx};
use serde::ser::{SerializeMap, Serializer};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// One exported cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Num(i64),
    Text(String),
    Null,
}

/// The header of a column in the file: the table's title, or a name that
/// says the unit where the file holds something other than what is drawn.
pub fn column_name(title: &str) -> String {
    match title {
        "TREND" => "TREND_CHANGE".into(),
        "AGE" => "AGE_SECONDS".into(),
        "IN/s" => "IN_BYTES_PER_S".into(),
        "OUT/s" => "OUT_BYTES_PER_S".into(),
        t => t.replace([' ', '-', '/'], "_"),
    }
}

/// The exact (unsanitized) name behind a PROCESS or USER cell, where the row
/// stands for one process.
fn raw_text(row: &Row, title: &str, ctx: &ViewCtx) -> Option<String> {
    let snap = ctx.snap;
    let pid = match row {
        Row::Process(g) => g.pid,
        Row::Port(g) if g.pids.len() == 1 => Some(g.pids[0]),
        Row::Conn(i) => ctx.shown_holder(&snap.sockets[*i]).map(|(p, _)| p),
        _ => None,
    }?;
    let p = snap.process(pid)?;
    match (title, row) {
        ("PROCESS", _) => Some(p.name.clone()),
        ("USER", Row::Process(_)) => p.user.clone(),
        _ => None,
    }
}

/// The values of one row, column by column.
pub fn values(row: &Row, grouping: Grouping, ctx: &ViewCtx) -> Vec<Value> {
    let shown = view::cells(row, ctx);
    view::columns(grouping)
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let text = shown.get(i).map(String::as_str).unwrap_or("");
            if col.numeric {
                if text.is_empty() || text == "-" {
                    return Value::Null;
                }
                return match view::sort_key(row, i, ctx) {
                    SortKey::Num(n) => Value::Num(n),
                    SortKey::Text(t) => Value::Text(t),
                };
            }
            match raw_text(row, col.title, ctx) {
                Some(raw) => Value::Text(raw),
                None if text == "-" => Value::Null,
                // A connection nobody holds: no process, whatever the label says.
                None if col.title == "PROCESS" && matches!(row, Row::Conn(_)) => Value::Null,
                None => Value::Text(text.to_string()),
            }
        })
        .collect()
}

/// One CSV field: quoted when needed, a text field that a spreadsheet
/// would take for a formula prefixed with `'`, and what a terminal would act
/// on (another process's ESC, BEL, DCS, bidi and zero-width characters)
/// written as `\u{XXXX}`, so that `cat` of the file is safe.
pub fn csv_field(value: &Value) -> String {
    let text = match value {
        Value::Num(n) => return n.to_string(),
        Value::Null => return String::new(),
        Value::Text(t) => &crate::sanitize::escape(t).into_owned(),
    };
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.clone()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The view as CSV: a header line, then one line per row (CRLF, as RFC 4180).
pub fn write_csv<W: Write>(
    mut out: W,
    rows: &[Row],
    grouping: Grouping,
    ctx: &ViewCtx,
) -> io::Result<()> {
    let header: Vec<String> = view::columns(grouping)
        .iter()
        .map(|c| column_name(c.title))
        .collect();
    write!(out, "{}\r\n", header.join(","))?;
    for row in rows {
        let fields: Vec<String> = values(row, grouping, ctx).iter().map(csv_field).collect();
        write!(out, "{}\r\n", fields.join(","))?;
    }
    out.flush()
}

struct JsonRow<'a> {
    names: &'a [String],
    values: Vec<Value>,
}

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(&self.values) {
            match value {
                Value::Num(n) => map.serialize_entry(name, n)?,
                Value::Text(t) => map.serialize_entry(name, t)?,
                Value::Null => map.serialize_entry(name, &())?,
            }
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct JsonView<'a> {
    view: &'static str,
    filter: &'a str,
    /// Seconds since the epoch of the sample shown.
    taken_at: u64,
    rows: Vec<JsonRow<'a>>,
}

/// The view as one JSON object: `{view, filter, taken_at, rows: [{column: value}]}`,
/// column names in lower case.
pub fn write_json<W: Write>(
    mut out: W,
    rows: &[Row],
    grouping: Grouping,
    filter: &str,
    ctx: &ViewCtx,
) -> io::Result<()> {
    let names: Vec<String> = view::columns(grouping)
        .iter()
        .map(|c| column_name(c.title).to_lowercase())
        .collect();
    let doc = JsonView {
        view: grouping.title(),
        filter,
        taken_at: ctx
            .snap
            .taken_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        rows: rows
            .iter()
            .map(|r| JsonRow {
                names: &names,
                values: values(r, grouping, ctx),
            })
            .collect(),
    };
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, crate::output::json::SafeFormatter);
    serde::Serialize::serialize(&doc, &mut ser).map_err(io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `sockscope-20260428-031500.csv`: the time in UTC.
pub fn file_name(now: SystemTime, format: Format) -> String {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "sockscope-{y:04}{m:02}{d:02}-{:02}{:02}{:02}.{}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        format.extension()
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Creates `name` in `dir` without ever replacing a file: a second export
/// in the same second becomes `...-2.csv`.
pub fn create(dir: &Path, name: &str) -> io::Result<(PathBuf, std::fs::File)> {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    for n in 1..100 {
        let candidate = if n == 1 {
            name.to_string()
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(candidate);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("too many exports named {name}")))
}

/// Creates a new export in `dir` (see [`create`]) and fills it with
/// `write`; a write that fails removes the file, so no 0-byte or
/// half-written export is left behind.
pub fn write_new(
    dir: &Path,
    name: &str,
    write: impl FnOnce(io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> Result<PathBuf, WriteError> {
    let (path, file) = create(dir, name).map_err(WriteError::Create)?;
    match write(io::BufWriter::new(file)) {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(WriteError::Write(path, e))
        }
    }
}

/// Why [`write_new`] failed.
#[derive(Debug)]
pub enum WriteError {
    /// No file was made.
    Create(io::Error),
    /// The file was made, and removed again.
    Write(PathBuf, io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture;
    use crate::model::history::History;
    use std::time::Duration;

    fn ctx<'a>(snap: &'a crate::model::Snapshot, h: &'a History) -> ViewCtx<'a> {
        ViewCtx {
            snap,
            history: h,
            now: snap.monotonic,
            names: None,
            prefer: Vec::new(),
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
        let t = |s: &str| csv_field(&Value::Text(s.into()));
        assert_eq!(t("nginx"), "nginx");
        assert_eq!(t("a,b"), "\"a,b\"");
        assert_eq!(t("say \"hi\""), "\"say \"\"hi\"\"\"");
        // Control bytes are escaped, not written: `cat` of the file is safe.
        assert_eq!(t("line\nbreak"), "line\\u{000a}break");
        assert_eq!(t("a\x1b]0;pwned\x07"), "a\\u{001b}]0;pwned\\u{0007}");
        assert_eq!(t("x\u{90}q"), "x\\u{0090}q", "8-bit DCS");
        assert_eq!(t("nginx\u{200b}"), "nginx\\u{200b}");
        assert_eq!(
            t("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(t("+1"), "'+1");
        assert_eq!(t("-cmd"), "'-cmd");
        assert_eq!(t("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(t("\tx"), "\\u{0009}x");
        assert_eq!(t("\rx"), "\\u{000d}x");
        assert_eq!(t("a=b"), "a=b", "only a leading sign is a formula");
        assert_eq!(
            csv_field(&Value::Num(-3)),
            "-3",
            "numbers are ours, not formulas"
        );
        assert_eq!(csv_field(&Value::Null), "");
    }

    #[test]
    fn csv_of_the_process_view_has_the_tables_columns_and_exact_names() {
        let mut snap = fixture::small();
        snap.processes.get_mut(&1000).unwrap().name = "=evil\x1b,x".into();
        let h = History::default();
        let all: Vec<usize> = (0..snap.sockets.len()).collect();
        let mut rows = view::build(Grouping::Process, &snap, &all);
        view::sort(&mut rows, 3, true, &ctx(&snap, &h));
        let mut buf = Vec::new();
        write_csv(&mut buf, &rows, Grouping::Process, &ctx(&snap, &h)).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "PID,PROCESS,USER,TOTAL,ESTAB,CLOSE_WAIT,FIN_WAIT2,TIME_WAIT,LISTEN,OTHER,IN_BYTES_PER_S,OUT_BYTES_PER_S,TREND_CHANGE,SHARED,CLOSED,NETNS"
        );
        // No history yet, so no rates and no trend: empty.
        // The exact name, its ESC written as an escape.
        assert_eq!(
            lines[1],
            "1000,\"'=evil\\u{001b},x\",redis,3,0,2,0,0,1,0,,,,,,"
        );
        assert!(
            text.contains("\r\n,(no owner),,1,0,0,0,1,0,0,,,,,,\r\n"),
            "{text}"
        );
        assert_eq!(
            lines.len(),
            rows.len() + 2,
            "header, rows, empty after the last CRLF"
        );
    }

    #[test]
    fn json_of_the_flat_view_parses_back_to_exact_text_and_numbers() {
        let mut snap = fixture::small();
        let evil = "py\x1b]0;x\x07\u{202e}";
        snap.processes.get_mut(&5000).unwrap().name = evil.into();
        let h = History::default();
        let all: Vec<usize> = (0..snap.sockets.len()).collect();
        let rows = view::build(Grouping::Flat, &snap, &all);
        let mut buf = Vec::new();
        write_json(&mut buf, &rows, Grouping::Flat, "6800", &ctx(&snap, &h)).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["view"], "connections");
        assert_eq!(v["filter"], "6800");
        assert_eq!(v["taken_at"], 1_800_000_000);
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 8);
        let client = rows.iter().find(|r| r["pid"] == 5000).unwrap();
        assert_eq!(client["process"], evil);
        assert_eq!(client["state"], "FIN_WAIT2");
        assert_eq!(client["local"], "127.0.0.1:51000");
        assert_eq!(client["recv_q"], 0);
        let tw = rows.iter().find(|r| r["state"] == "TIME_WAIT").unwrap();
        assert!(tw["pid"].is_null() && tw["process"].is_null(), "{tw}");
    }

    #[test]
    fn file_names_carry_the_utc_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(file_name(t, Format::Csv), "sockscope-20270115-080000.csv");
        assert_eq!(
            file_name(
                SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661),
                Format::Json
            ),
            "sockscope-20000229-010101.json",
            "a leap day"
        );
    }

    #[test]
    fn a_failed_export_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_new(dir.path(), "sockscope-x.csv", |mut out| {
            out.write_all(b"PID,")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        let WriteError::Write(path, e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.to_string(), "disk full");
        assert!(!path.exists(), "{} left behind", path.display());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let ok = write_new(dir.path(), "sockscope-x.csv", |mut out| out.write_all(b"x")).unwrap();
        assert_eq!(std::fs::read(ok).unwrap(), b"x");
    }

    #[test]
    fn a_second_export_in_the_same_second_does_not_replace_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = create(dir.path(), "sockscope-x.csv").unwrap();
        let (b, _) = create(dir.path(), "sockscope-x.csv").unwrap();
        assert_eq!(a.file_name().unwrap(), "sockscope-x.csv");
        assert_eq!(b.file_name().unwrap(), "sockscope-x-2.csv");
    }
}
