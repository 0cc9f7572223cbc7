//! History of the kernel's snmp/netstat counters, for per-second rates the way
//! `nstat` shows them: how fast ListenOverflows or RetransSegs are rising now.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

/// What a value in `/proc/net/snmp` or `/proc/net/netstat` is. Nearly all
/// are counters that only rise; a few are settings or gauges, whose rate
/// means nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// Only rises (until the namespace or the machine goes away).
    Counter,
    /// Goes up and down: connections open now.
    Gauge,
    /// A constant or a setting, printed among the counters for RFC 2011/2012's
    /// sake: `Ip.Forwarding` and `Ip.DefaultTTL` come from sysctls
    /// (net/ipv4/proc.c), `Tcp.RtoAlgorithm`, `RtoMin`, `RtoMax` and `MaxConn`
    /// are set once by `tcp_mib_init`.
    Setting,
}

/// `Tcp.CurrEstab` (and MPTCP's `MPCurrEstab`) count connections open now,
/// ESTABLISHED (and CLOSE_WAIT since Linux 6.10): the kernel adds and
/// subtracts as sockets enter and leave those states.
pub fn counter_kind(name: &str) -> CounterKind {
    match name {
        "Tcp.CurrEstab" | "MPTcpExt.MPCurrEstab" => CounterKind::Gauge,
        "Ip.Forwarding" | "Ip.DefaultTTL" | "Tcp.RtoAlgorithm" | "Tcp.RtoMin" | "Tcp.RtoMax"
        | "Tcp.MaxConn" => CounterKind::Setting,
        _ => CounterKind::Counter,
    }
}

/// Samples kept: ten minutes at a 1 s interval, a few MiB at most.
pub const COUNTER_SAMPLES: usize = 600;

#[derive(Debug, Clone)]
struct CounterSample {
    at: SystemTime,
    /// Indexed like `CounterHistory::names`; shorter when names were added later.
    /// `u64::MAX` marks a counter missing from this sample.
    values: Vec<u64>,
}

/// Counter values over time. Names are interned once; each sample is one
/// `Vec<u64>`, so ten minutes of ~350 counters cost under 2 MiB.
#[derive(Debug, Clone, Default)]
pub struct CounterHistory {
    names: Vec<String>,
    index: HashMap<String, usize>,
    samples: VecDeque<CounterSample>,
}

const MISSING: u64 = u64::MAX;

impl CounterHistory {
    pub fn record(&mut self, at: SystemTime, counters: &BTreeMap<String, u64>) {
        let mut values = vec![MISSING; self.names.len()];
        for (name, &value) in counters {
            let i = match self.index.get(name) {
                Some(&i) => i,
                None => {
                    self.names.push(name.clone());
                    self.index.insert(name.clone(), self.names.len() - 1);
                    values.push(MISSING);
                    self.names.len() - 1
                }
            };
            values[i] = value;
        }
        if self.samples.len() == COUNTER_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(CounterSample { at, values });
    }

    /// Every counter name seen, in the order first seen (kernel file order).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The newest value of a counter.
    pub fn latest(&self, name: &str) -> Option<u64> {
        let i = *self.index.get(name)?;
        value(self.samples.back()?, i)
    }

    /// Increase of a counter between two samples; None when either lacks it
    /// or it went backwards (a counter reset, e.g. a network namespace change).
    fn increase_between(&self, i: usize, old: &CounterSample, new: &CounterSample) -> Option<u64> {
        let (a, b) = (value(old, i)?, value(new, i)?);
        b.checked_sub(a)
    }

    /// Per-second rate between the last two samples.
    pub fn rate(&self, name: &str) -> Option<f64> {
        let n = self.samples.len();
        if n < 2 {
            return None;
        }
        self.rate_between(name, n - 2, n - 1)
    }

    /// How much a counter rose over the last `window` (from the oldest sample
    /// inside it to the newest), and the time that actually covers.
    pub fn increase_over(&self, name: &str, window: Duration) -> Option<(u64, Duration)> {
        let i = *self.index.get(name)?;
        let newest = self.samples.back()?;
        let oldest = self
            .samples
            .iter()
            .find(|s| newest.at.duration_since(s.at).unwrap_or_default() <= window)?;
        let span = newest.at.duration_since(oldest.at).unwrap_or_default();
        if span.is_zero() {
            return None;
        }
        Some((self.increase_between(i, oldest, newest)?, span))
    }

    /// Average per-second rate over the last `window`.
    pub fn rate_over(&self, name: &str, window: Duration) -> Option<f64> {
        let (inc, span) = self.increase_over(name, window)?;
        Some(inc as f64 / span.as_secs_f64())
    }

    fn rate_between(&self, name: &str, a: usize, b: usize) -> Option<f64> {
        let i = *self.index.get(name)?;
        let (old, new) = (&self.samples[a], &self.samples[b]);
        let secs = new.at.duration_since(old.at).ok()?.as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        Some(self.increase_between(i, old, new)? as f64 / secs)
    }

    /// Per-second rates between consecutive samples, oldest first, rounded up
    /// so that any activity shows in a sparkline. Gaps (missing, reset) are 0.
    pub fn rate_series(&self, name: &str) -> Vec<u64> {
        (1..self.samples.len())
            .map(|b| {
                self.rate_between(name, b - 1, b)
                    .map_or(0, |r| r.ceil() as u64)
            })
            .collect()
    }

    /// True when the counter rose at any time in the kept history.
    pub fn ever_rose(&self, name: &str) -> bool {
        let Some(&i) = self.index.get(name) else {
            return false;
        };
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return false;
        };
        self.increase_between(i, first, last).is_some_and(|d| d > 0)
    }
}

fn value(sample: &CounterSample, i: usize) -> Option<u64> {
    sample.values.get(i).copied().filter(|&v| v != MISSING)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn counters(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn rates_are_per_second_between_samples() {
        let mut h = CounterHistory::default();
        h.record(at(10), &counters(&[("Tcp.RetransSegs", 100)]));
        assert_eq!(h.rate("Tcp.RetransSegs"), None, "one sample has no rate");
        h.record(at(12), &counters(&[("Tcp.RetransSegs", 140)]));
        assert_eq!(h.rate("Tcp.RetransSegs"), Some(20.0));
        h.record(at(13), &counters(&[("Tcp.RetransSegs", 141)]));
        assert_eq!(h.rate("Tcp.RetransSegs"), Some(1.0));
        assert_eq!(h.rate_series("Tcp.RetransSegs"), vec![20, 1]);
        assert_eq!(
            h.increase_over("Tcp.RetransSegs", Duration::from_secs(60)),
            Some((41, Duration::from_secs(3)))
        );
        assert_eq!(
            h.rate_over("Tcp.RetransSegs", Duration::from_secs(1)),
            Some(1.0)
        );
        assert_eq!(h.latest("Tcp.RetransSegs"), Some(141));
        assert!(h.ever_rose("Tcp.RetransSegs"));
    }

    #[test]
    fn a_counter_that_goes_backwards_has_no_rate() {
        let mut h = CounterHistory::default();
        h.record(at(1), &counters(&[("TcpExt.ListenDrops", 50)]));
        h.record(at(2), &counters(&[("TcpExt.ListenDrops", 3)]));
        assert_eq!(h.rate("TcpExt.ListenDrops"), None);
        assert_eq!(h.rate_series("TcpExt.ListenDrops"), vec![0]);
    }

    #[test]
    fn counters_that_appear_later_or_vanish_are_handled() {
        let mut h = CounterHistory::default();
        h.record(at(1), &counters(&[("A", 1)]));
        h.record(at(2), &counters(&[("A", 2), ("B", 10)]));
        h.record(at(3), &counters(&[("B", 13)]));
        assert_eq!(h.rate("B"), Some(3.0));
        assert_eq!(h.rate("A"), None, "missing from the newest sample");
        assert_eq!(h.rate("C"), None);
        assert_eq!(h.names(), ["A".to_string(), "B".to_string()]);
    }

    #[test]
    fn settings_and_gauges_are_told_from_counters() {
        assert_eq!(counter_kind("Tcp.RetransSegs"), CounterKind::Counter);
        assert_eq!(counter_kind("TcpExt.ListenOverflows"), CounterKind::Counter);
        assert_eq!(counter_kind("Tcp.CurrEstab"), CounterKind::Gauge);
        assert_eq!(counter_kind("MPTcpExt.MPCurrEstab"), CounterKind::Gauge);
        for setting in [
            "Ip.Forwarding",
            "Ip.DefaultTTL",
            "Tcp.RtoMin",
            "Tcp.MaxConn",
        ] {
            assert_eq!(counter_kind(setting), CounterKind::Setting, "{setting}");
        }
    }

    #[test]
    fn history_is_bounded() {
        let mut h = CounterHistory::default();
        for i in 0..COUNTER_SAMPLES as u64 + 10 {
            h.record(at(i), &counters(&[("A", i)]));
        }
        assert_eq!(h.len(), COUNTER_SAMPLES);
        assert_eq!(h.rate_series("A").len(), COUNTER_SAMPLES - 1);
    }
}
