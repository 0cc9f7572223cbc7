//! Times within a recording as people type them: `replay`'s time prompt and
//! `--at`. Pure: the recording's start and end and a time zone in, an instant
//! out.
//!
//! - `90`, `90s`, `1m30s`, `2.5`, `1h`, `500ms`: that long after the start
//!   (a leading `+` is allowed);
//! - `-90s`, `-1m`, `-0`: that long before the end;
//! - `14:05`, `14:05:30`: local wall-clock time, the first such instant in the
//!   recording (a recording over several days has one each day);
//! - `2024-05-01 14:05:30` (or with `T`): a local date and time.
//!
//! A time outside the recording is an error that says how long it is, not a
//! silent jump to one end.

use super::Recording;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use std::time::{Duration, SystemTime};

/// The instant `text` names in `rec`, in the system's time zone.
pub fn parse_at(text: &str, rec: &Recording) -> Result<SystemTime, String> {
    parse_at_between(text, rec.start(), rec.end(), &TimeZone::system())
}

/// The instant `text` names in a recording from `start` to `end`, reading
/// wall-clock times in `tz`.
pub fn parse_at_between(
    text: &str,
    start: SystemTime,
    end: SystemTime,
    tz: &TimeZone,
) -> Result<SystemTime, String> {
    let t = text.trim();
    let span = end.duration_since(start).unwrap_or_default();
    if t.is_empty() {
        return Err(hint(text));
    }
    if let Some(rest) = t.strip_prefix('-') {
        let back = parse_duration(rest).ok_or_else(|| hint(text))?;
        if back > span {
            return Err(format!(
                "`{t}` is before the start: the recording is {} long",
                format_span(span)
            ));
        }
        return Ok(end - back);
    }
    if t.contains(':') {
        return wall_clock(t, start, end, tz);
    }
    let after = parse_duration(t.strip_prefix('+').unwrap_or(t)).ok_or_else(|| hint(text))?;
    if after > span {
        return Err(format!(
            "`{t}` is past the end: the recording is {} long",
            format_span(span)
        ));
    }
    Ok(start + after)
}

fn hint(text: &str) -> String {
    // Short enough for the replay's prompt line at 80 columns.
    format!(
        "`{}` is not a time (try 90s, 1m30s, -30s, 14:05)",
        text.trim()
    )
}

/// `90`, `90s`, `1m30s`, `2.5`, `1h2m`, `500ms`: a bare number is seconds.
/// `90`, `2.5`, `90s`, `1m30s`, `1h`, `500ms`: units largest first, each once.
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut total = 0.0;
    let mut rest = text;
    let mut last_unit = f64::INFINITY;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else {
            match rest.chars().next()? {
                'h' => (3600.0, 1),
                'm' => (60.0, 1),
                's' => (1.0, 1),
                _ => return None,
            }
        };
        // Units from largest to smallest, each once: `1m30s`, not `30s1m`.
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total += value * unit;
        rest = &rest[len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// `14:05`, `14:05:30`, or a date and time, in `tz`: the first such instant
/// in the recording. A time typed to the minute also matches a recording
/// that starts within that minute (and to the second, within that second).
fn wall_clock(
    text: &str,
    start: SystemTime,
    end: SystemTime,
    tz: &TimeZone,
) -> Result<SystemTime, String> {
    let local = |t: SystemTime| {
        jiff::Timestamp::try_from(t)
            .map(|ts| ts.to_zoned_datetime(tz.clone()).datetime())
            .map_err(|e| e.to_string())
    };
    let (first, last) = (local(start)?, local(end)?);
    let (days, time, precision) = if text.len() >= 10 && text.as_bytes()[4] == b'-' {
        let dt: DateTime = text.replacen(' ', "T", 1).parse().map_err(|_| hint(text))?;
        (
            vec![dt.date()],
            dt.time(),
            precision_of(text.get(10..).unwrap_or("")),
        )
    } else {
        let time = clock_time(text).ok_or_else(|| hint(text))?;
        let mut days = vec![first.date()];
        while let Some(&d) = days.last().filter(|&&d| d < last.date()) {
            days.push(d.tomorrow().map_err(|e| e.to_string())?);
        }
        (days, time, precision_of(text))
    };
    for day in days {
        let Some(at) = instant(tz, day, time) else {
            continue;
        };
        if at > end {
            break;
        }
        if at + precision > start {
            return Ok(at.max(start));
        }
    }
    Err(format!(
        "no {} within the recording ({} to {})",
        text.trim(),
        first.strftime("%Y-%m-%d %H:%M:%S"),
        last.strftime(if first.date() == last.date() {
            "%H:%M:%S"
        } else {
            "%Y-%m-%d %H:%M:%S"
        }),
    ))
}

/// `H:MM` or `HH:MM:SS`, each part in range.
fn clock_time(text: &str) -> Option<Time> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
        return None;
    }
    let num = |p: &str| p.parse::<i8>().ok();
    let second = match parts.get(2) {
        Some(s) => num(s)?,
        None => 0,
    };
    Time::new(num(parts[0])?, num(parts[1])?, second, 0).ok()
}

/// How much time a typed clock covers: a minute for `14:05`, a second for `14:05:30`.
fn precision_of(clock: &str) -> Duration {
    if clock.matches(':').count() >= 2 {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(60)
    }
}

/// A local date and time as an instant; in a daylight-saving gap, the time
/// after the gap, in a fold the first of the two.
fn instant(tz: &TimeZone, day: Date, time: Time) -> Option<SystemTime> {
    let ts = tz.to_timestamp(DateTime::from_parts(day, time)).ok()?;
    SystemTime::try_from(ts).ok()
}

/// `45s`, `2m05s`, `1h02m05s`, `3d04h05m`: a position or a length in a
/// recording, to the second.
pub fn format_span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60),
        _ => format!("{}d{:02}h{:02}m", s / 86_400, s / 3600 % 24, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-01 13:58:20 UTC, and a recording of one hour from there.
    fn start() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_571_900)
    }

    fn end() -> SystemTime {
        start() + Duration::from_secs(3600)
    }

    fn at(text: &str) -> Result<Duration, String> {
        parse_at_between(text, start(), end(), &TimeZone::UTC)
            .map(|t| t.duration_since(start()).unwrap())
    }

    fn secs(s: f64) -> Result<Duration, String> {
        Ok(Duration::from_secs_f64(s))
    }

    #[test]
    fn numbers_and_units_count_from_the_start() {
        assert_eq!(at("90"), secs(90.0));
        assert_eq!(at("90s"), secs(90.0));
        assert_eq!(at("+90s"), secs(90.0));
        assert_eq!(at("1m30s"), secs(90.0));
        assert_eq!(at("2.5"), secs(2.5));
        assert_eq!(at("1h"), secs(3600.0));
        assert_eq!(at("500ms"), secs(0.5));
        assert_eq!(at("0"), secs(0.0));
        assert_eq!(at(" 2m "), secs(120.0), "spaces around are ignored");
    }

    #[test]
    fn a_minus_counts_back_from_the_end() {
        assert_eq!(at("-90s"), secs(3510.0));
        assert_eq!(at("-90"), secs(3510.0));
        assert_eq!(at("-0"), secs(3600.0));
        assert_eq!(at("-1h"), secs(0.0));
    }

    #[test]
    fn times_outside_the_recording_are_errors_that_give_its_length() {
        let e = at("2h").unwrap_err();
        assert!(e.contains("past the end") && e.contains("1h00m00s"), "{e}");
        let e = at("-61m").unwrap_err();
        assert!(e.contains("before the start"), "{e}");
        let e = at("18:00").unwrap_err();
        assert!(
            e.contains("no 18:00 within the recording (2024-05-01 13:58:20 to 14:58:20)"),
            "{e}"
        );
    }

    #[test]
    fn nonsense_is_an_error_that_shows_the_forms() {
        for bad in [
            "",
            "soon",
            "1x",
            "30s1m",
            "1:2:3:4",
            "25:00",
            "14:60",
            "--5",
            "1e3s",
            "1e300",
            "nan",
            "2024-05-01 14:0é",
        ] {
            let e = at(bad).unwrap_err();
            assert!(
                e.contains("is not a time") || e.contains("no "),
                "{bad}: {e}"
            );
        }
        assert!(at("soon").unwrap_err().contains("14:05"));
    }

    #[test]
    fn wall_clock_times_are_local_and_the_first_match_in_the_recording() {
        assert_eq!(at("14:00"), secs(100.0));
        assert_eq!(at("14:00:30"), secs(130.0));
        assert_eq!(at("14:58:20"), secs(3600.0), "the end itself");
        // 13:58 is before the first frame, but the recording starts within
        // that minute: the start.
        assert_eq!(at("13:58"), secs(0.0));
        assert!(at("13:57").is_err());
        assert!(at("13:58:19").is_err(), "to the second, no slack");
        assert_eq!(at("2024-05-01 14:05"), secs(400.0));
        assert_eq!(at("2024-05-01T14:05:30"), secs(430.0));
        assert!(at("2024-05-02 14:05").is_err());
        // In UTC+2 the same recording runs from 15:58:20 to 16:58:20.
        let plus2 = TimeZone::fixed(jiff::tz::Offset::constant(2));
        let t = parse_at_between("16:00", start(), end(), &plus2).unwrap();
        assert_eq!(t.duration_since(start()).unwrap(), Duration::from_secs(100));
    }

    #[test]
    fn a_recording_over_midnight_finds_a_time_on_the_next_day() {
        // 23:30 to 01:30 UTC.
        let s = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_606_200);
        let e = s + Duration::from_secs(7200);
        let got = parse_at_between("00:15", s, e, &TimeZone::UTC).unwrap();
        assert_eq!(got.duration_since(s).unwrap(), Duration::from_secs(2700));
        let got = parse_at_between("23:45", s, e, &TimeZone::UTC).unwrap();
        assert_eq!(got.duration_since(s).unwrap(), Duration::from_secs(900));
    }

    #[test]
    fn a_clock_time_in_a_daylight_saving_gap_is_the_time_after_it() {
        // Europe/Berlin skipped 02:00-03:00 on 2024-03-31 (01:00 UTC).
        let tz = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let s = SystemTime::UNIX_EPOCH + Duration::from_secs(1_711_843_200); // 00:00 UTC = 01:00 CET
        let e = s + Duration::from_secs(4 * 3600);
        let got = parse_at_between("02:30", s, e, &tz).unwrap();
        // 02:30 does not exist; 03:30 CEST is 01:30 UTC.
        assert_eq!(got.duration_since(s).unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn spans_are_written_to_the_second() {
        assert_eq!(format_span(Duration::from_secs(45)), "45s");
        assert_eq!(format_span(Duration::from_secs(125)), "2m05s");
        assert_eq!(format_span(Duration::from_secs(3600)), "1h00m00s");
        assert_eq!(format_span(Duration::from_secs(3725)), "1h02m05s");
        assert_eq!(
            format_span(Duration::from_secs(2 * 86_400 + 3700)),
            "2d01h01m"
        );
    }
}
