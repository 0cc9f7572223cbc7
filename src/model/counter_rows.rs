//! The counters view's rows: the counters that matter for diagnosis, pinned
//! in the order of `assets/counters.toml` with what each one counts, then
//! every other counter that rose during the kept history, fastest first.

use super::counters::{CounterHistory, CounterKind, counter_kind};
use std::sync::OnceLock;
use std::time::Duration;

/// A counter pinned at the top of the view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PinnedCounter {
    pub name: String,
    /// A rise means trouble: the row is highlighted while it rises.
    pub bad: bool,
    pub meaning: String,
}

#[derive(serde::Deserialize)]
struct PinnedFile {
    counter: Vec<PinnedCounter>,
}

const COUNTERS_TOML: &str = include_str!("../../assets/counters.toml");

pub fn pinned() -> &'static [PinnedCounter] {
    static PINNED: OnceLock<Vec<PinnedCounter>> = OnceLock::new();
    PINNED.get_or_init(|| {
        toml::from_str::<PinnedFile>(COUNTERS_TOML)
            .expect("assets/counters.toml is valid (tested)")
            .counter
    })
}

pub fn pinned_info(name: &str) -> Option<&'static PinnedCounter> {
    pinned().iter().find(|p| p.name == name)
}

/// The window of the average column.
pub const AVERAGE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub struct CounterRow {
    pub name: String,
    pub pinned: Option<&'static PinnedCounter>,
    /// Per second, between the last two samples.
    pub rate: Option<f64>,
    /// Per second, over the last [`AVERAGE_WINDOW`].
    pub average: Option<f64>,
    pub total: Option<u64>,
}

impl CounterRow {
    /// A counter whose rise means trouble is rising now.
    pub fn rising_bad(&self) -> bool {
        self.pinned.is_some_and(|p| p.bad) && self.rate.is_some_and(|r| r > 0.0)
    }

    pub fn meaning(&self) -> Option<&'static str> {
        self.pinned.map(|p| p.meaning.as_str())
    }
}

/// The rows of the view: `rows[..pinned_len]` are the pinned counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CounterTable {
    pub rows: Vec<CounterRow>,
    pub pinned_len: usize,
}

fn row(h: &CounterHistory, name: &str) -> CounterRow {
    CounterRow {
        name: name.to_string(),
        pinned: pinned_info(name),
        rate: h.rate(name),
        average: h.rate_over(name, AVERAGE_WINDOW),
        total: h.latest(name),
    }
}

/// Pinned counters (all of them, so a zero is seen to be zero), then the
/// others that rose, by current rate, then by name so rows do not jump.
pub fn table(h: &CounterHistory) -> CounterTable {
    let mut rows: Vec<CounterRow> = pinned().iter().map(|p| row(h, &p.name)).collect();
    let pinned_len = rows.len();
    let mut others: Vec<CounterRow> = h
        .names()
        .iter()
        .filter(|n| pinned_info(n).is_none() && counter_kind(n) == CounterKind::Counter)
        .filter(|n| h.ever_rose(n))
        .map(|n| row(h, n))
        .collect();
    others.sort_by(|a, b| {
        let (ra, rb) = (a.rate.unwrap_or(0.0), b.rate.unwrap_or(0.0));
        rb.total_cmp(&ra).then_with(|| a.name.cmp(&b.name))
    });
    rows.extend(others);
    CounterTable { rows, pinned_len }
}

/// `-`, `0`, `0.5`, `42`, `1234`, `12k`, `3.4M`: at most five characters.
pub fn format_rate(rate: Option<f64>) -> String {
    match rate {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(r) if r < 9.95 => format!("{r:.1}"),
        Some(r) if r < 99_999.5 => format!("{r:.0}"),
        Some(r) if r < 9_950_000.0 => format!("{:.0}k", r / 1e3),
        Some(r) => format!("{:.1}M", r / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    fn record(h: &mut CounterHistory, secs: u64, pairs: &[(&str, u64)]) {
        let map: BTreeMap<String, u64> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        h.record(SystemTime::UNIX_EPOCH + Duration::from_secs(secs), &map);
    }

    #[test]
    fn every_pinned_counter_is_unique_and_explained() {
        let names: std::collections::HashSet<&str> =
            pinned().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), pinned().len(), "a counter is pinned twice");
        for p in pinned() {
            assert!(p.name.contains('.'), "{}: Section.Name", p.name);
            assert!(p.meaning.len() > 30, "{}: meaning too short", p.name);
        }
        assert!(pinned_info("TcpExt.ListenOverflows").is_some_and(|p| p.bad));
        assert!(pinned_info("Tcp.InSegs").is_some_and(|p| !p.bad));
    }

    #[test]
    fn pinned_counters_exist_on_this_kernel() {
        let ctx = crate::collect::system::read();
        if ctx.counters.is_empty() {
            return; // no /proc/net here (a sandbox): nothing to check against
        }
        for p in pinned() {
            assert!(
                ctx.counters.contains_key(&p.name),
                "{} is not in /proc/net/snmp or netstat",
                p.name
            );
        }
    }

    #[test]
    fn pinned_come_first_then_others_that_rose_by_rate() {
        let mut h = CounterHistory::default();
        record(
            &mut h,
            100,
            &[
                ("TcpExt.ListenOverflows", 5),
                ("X.Slow", 1),
                ("X.Fast", 1),
                ("X.Flat", 7),
                ("Tcp.CurrEstab", 3),
            ],
        );
        record(
            &mut h,
            102,
            &[
                ("TcpExt.ListenOverflows", 9),
                ("X.Slow", 3),
                ("X.Fast", 41),
                ("X.Flat", 7),
                ("Tcp.CurrEstab", 9),
            ],
        );
        let t = table(&h);
        assert_eq!(t.pinned_len, pinned().len());
        assert_eq!(t.rows[0].name, pinned()[0].name);
        let others: Vec<&str> = t.rows[t.pinned_len..]
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            others,
            ["X.Fast", "X.Slow"],
            "flat counters and gauges are left out"
        );
        let lo = t
            .rows
            .iter()
            .find(|r| r.name == "TcpExt.ListenOverflows")
            .unwrap();
        assert_eq!(
            (lo.rate, lo.average, lo.total),
            (Some(2.0), Some(2.0), Some(9))
        );
        assert!(lo.rising_bad());
        let absent = t.rows.iter().find(|r| r.name == "Udp.NoPorts").unwrap();
        assert_eq!((absent.rate, absent.total), (None, None));
        assert!(!absent.rising_bad());
    }

    #[test]
    fn equal_rates_sort_by_name_so_rows_do_not_jump() {
        let mut h = CounterHistory::default();
        record(&mut h, 1, &[("B.b", 0), ("A.a", 0), ("C.c", 0)]);
        record(&mut h, 2, &[("B.b", 1), ("A.a", 1), ("C.c", 0)]);
        record(&mut h, 3, &[("B.b", 1), ("A.a", 1), ("C.c", 0)]);
        let t = table(&h);
        let others: Vec<&str> = t.rows[t.pinned_len..]
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            others,
            ["A.a", "B.b"],
            "rose earlier, now 0/s: still listed"
        );
    }

    #[test]
    fn rates_are_short() {
        assert_eq!(format_rate(None), "-");
        assert_eq!(format_rate(Some(0.0)), "0");
        assert_eq!(format_rate(Some(0.26)), "0.3");
        assert_eq!(format_rate(Some(42.4)), "42");
        assert_eq!(format_rate(Some(12_345.0)), "12345");
        assert_eq!(format_rate(Some(123_456.0)), "123k");
        assert_eq!(format_rate(Some(12_345_678.0)), "12.3M");
    }
}
