//! Small wording helpers shared by the findings.

use std::time::SystemTime;

/// `first_seen` in JSON: RFC 3339 in UTC, to the second.
pub(super) fn serialize_time<S: serde::Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| jiff::Timestamp::try_from(t).ok()) {
        Some(ts) => s.serialize_str(&ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => s.serialize_none(),
    }
}

/// Local wall-clock time, `03:12:04`, for text meant for people.
pub fn format_clock(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%H:%M:%S")
            .to_string(),
        Err(_) => "?".into(),
    }
}

/// A rate for people: `12/s`, `0.5/s`, `3/min`.
pub fn format_rate(per_sec: f64) -> String {
    if per_sec >= 10.0 {
        format!("{per_sec:.0}/s")
    } else if per_sec >= 1.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{:.0}/min", per_sec * 60.0)
    }
}

/// `1 socket`, `3 sockets`.
pub(super) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `6800`, `6800 and 6801`, `6800, 6801, 6802 and 4 more`.
pub(super) fn list<T: std::fmt::Display>(items: &[T], shown: usize) -> String {
    let words: Vec<String> = items.iter().take(shown).map(|i| i.to_string()).collect();
    let more = items.len().saturating_sub(shown);
    match (words.len(), more) {
        (0, _) => String::new(),
        (1, 0) => words[0].clone(),
        (n, 0) => format!("{} and {}", words[..n - 1].join(", "), words[n - 1]),
        (_, m) => format!("{} and {m} more", words.join(", ")),
    }
}

/// `python3 (pid 42)`, or `pid 42` when the name is unknown.
pub(super) fn who(pid: Option<u32>, name: Option<&str>) -> String {
    match (pid, name) {
        (Some(p), Some(n)) => format!("{n} (pid {p})"),
        (Some(p), None) => format!("pid {p}"),
        (None, _) => "an unknown process".into(),
    }
}

/// The holders of a finding's sockets: `python3 (pid 42)`,
/// `oracle (pids 13887 and 13949)`, `nginx (8 processes: pids 100, 101, 102
/// and 5 more)`; `an unknown process` when there are none.
pub(super) fn who_all(name: Option<&str>, holders: &[super::Holding]) -> String {
    let mut pids: Vec<u32> = holders.iter().map(|h| h.pid).collect();
    pids.sort_unstable();
    match pids.len() {
        0 => who(None, name),
        1 => who(Some(pids[0]), name),
        n => {
            let listed = list(&pids, 3);
            let procs = if n > 3 {
                format!("{n} processes: pids {listed}")
            } else {
                format!("pids {listed}")
            };
            match name {
                Some(name) => format!("{name} ({procs})"),
                None => procs,
            }
        }
    }
}

/// What sharing means for freeing them: `; both hold the same 30`,
/// `; all 8 hold the same 30`, `; 12 of them are held by more than one`.
pub(super) fn shared_clause(count: u64, shared: u64, holders: &[super::Holding]) -> String {
    if shared == 0 || holders.len() < 2 {
        return String::new();
    }
    let all_hold_all = shared == count && holders.iter().all(|h| h.count == count);
    match (all_hold_all, holders.len()) {
        (true, 2) => format!("; both hold the same {count}"),
        (true, n) => format!("; all {n} hold the same {count}"),
        (false, _) => format!("; {shared} of them are held by more than one"),
    }
}

/// `13887 holds 30, 13949 holds 30` for the message text.
pub(super) fn holdings(holders: &[super::Holding], shown: usize) -> String {
    let parts: Vec<String> = holders
        .iter()
        .map(|h| {
            format!(
                "{} holds {}",
                who(Some(h.pid), h.process.as_deref()),
                h.count
            )
        })
        .collect();
    list(&parts, shown)
}

/// `127.0.0.1 (134; python3 (pid 5) on this machine, its end in FIN_WAIT2)`.
pub(super) fn describe_peer(p: &super::Peer) -> String {
    let end = match (p.pid, p.state) {
        (pid, Some(state)) if p.queued => format!(
            "; on this machine, not accepted yet: in the accept queue of {}'s listener, its end in {state}",
            who(pid, p.process.as_deref())
        ),
        (Some(pid), Some(state)) => format!(
            "; {} on this machine, its end in {state}",
            who(Some(pid), p.process.as_deref())
        ),
        (None, Some(state)) => format!("; on this machine, its end in {state} with no process"),
        _ => String::new(),
    };
    format!("{} ({}{end})", p.addr, p.count)
}

/// The first letter in upper case, for a clause that starts a sentence.
pub(super) fn capitalize(text: &str) -> String {
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `12,34` for a `pid:` filter term.
pub(super) fn list_pids<'a>(pids: impl IntoIterator<Item = &'a u32>) -> String {
    pids.into_iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `3.4%`, `12%`.
pub(super) fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_naturally() {
        assert_eq!(list(&[6800], 3), "6800");
        assert_eq!(list(&[1, 2], 3), "1 and 2");
        assert_eq!(list(&[1, 2, 3], 3), "1, 2 and 3");
        assert_eq!(list(&[1, 2, 3, 4, 5], 3), "1, 2, 3 and 2 more");
        assert_eq!(list::<u16>(&[], 3), "");
    }

    #[test]
    fn rates_and_plurals() {
        assert_eq!(format_rate(25.2), "25/s");
        assert_eq!(format_rate(2.5), "2.5/s");
        assert_eq!(format_rate(0.5), "30/min");
        assert_eq!(plural(1, "socket"), "1 socket");
        assert_eq!(plural(2, "socket"), "2 sockets");
        assert_eq!(percent(0.034), "3.4%");
        assert_eq!(percent(0.5), "50%");
    }
}
