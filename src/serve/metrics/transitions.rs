//! The transitions as Prometheus counters, summed over the exporter's life:
//! connections opened and closed (and by whom), resets, retransmissions,
//! per port. A port keeps its series once it has one; at most `top` ports
//! get one, the rest are summed into `port="other"`, so every series only
//! grows and their number stays bounded.

use super::{Family, Sample, Type, Value};
use crate::trace::{PortKey, Stats, TraceSample};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sum {
    opened: u64,
    closed_local: u64,
    closed_peer: u64,
    closed_reset: u64,
    failed: u64,
    resets_sent: u64,
    resets_received: u64,
    retransmits: u64,
}

impl Sum {
    fn add(&mut self, s: &Stats) {
        self.opened += s.opened;
        self.closed_local += s.closed_local;
        self.closed_peer += s.closed_peer;
        self.closed_reset += s.closed_reset;
        self.failed += s.failed;
        self.resets_sent += s.resets_sent;
        self.resets_received += s.resets_received;
        self.retransmits += s.retransmits;
    }
}

/// Where a port's counts go: its own series, or "other".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Port(PortKey),
    Other(bool),
}

/// The sums since the exporter started.
#[derive(Debug, Default)]
pub struct Totals {
    on: bool,
    reason: Option<String>,
    dropped: u64,
    by: BTreeMap<Slot, Sum>,
    ports: usize,
}

impl Totals {
    /// Adds one sample's window; `top` bounds the ports with a series.
    pub fn add(&mut self, t: &TraceSample, top: usize) {
        self.on = t.status.is_on();
        self.reason = match &t.status {
            crate::trace::Status::Off(why) => Some(why.clone()),
            crate::trace::Status::On => None,
        };
        self.dropped += t.window.dropped;
        let mut keys: Vec<(&PortKey, &Stats)> = t.window.by_port.iter().collect();
        // The busiest new ports first get the free series.
        keys.sort_by(|a, b| b.1.opened.cmp(&a.1.opened).then(a.0.cmp(b.0)));
        for (k, s) in keys {
            let own = Slot::Port(*k);
            let slot = if self.by.contains_key(&own) {
                own
            } else if self.ports < top {
                self.ports += 1;
                own
            } else {
                Slot::Other(k.local)
            };
            self.by.entry(slot).or_default().add(s);
        }
    }

    pub fn families(&self) -> Vec<Family> {
        let mut up = Family::single(
            "transitions_up",
            Type::Gauge,
            "1 when the TCP tracepoints are followed (connections between two scrapes are counted), 0 when not (no privilege, no tracepoints).",
            Value::Int(u64::from(self.on)),
        );
        if !self.on {
            up.samples[0]
                .labels
                .push(("reason", self.reason.clone().unwrap_or_default()));
        }
        let dropped = Family::single(
            "transitions_dropped_events",
            Type::Counter,
            "Tracepoint records the kernel dropped because sockscope did not read them in time: when it grows, the transition counts are low.",
            Value::Int(self.dropped),
        );
        let mut opened = Family::new(
            "connections_opened",
            Type::Counter,
            "TCP connections opened, by service port: side local for connections accepted on a local port, remote for connections this host opened to that port.",
        );
        let mut closed = Family::new(
            "connections_closed",
            Type::Counter,
            "TCP connections ended, by service port and by who closed first: local (this host), peer, reset, failed (never established).",
        );
        let mut rst_sent = Family::new(
            "resets_sent",
            Type::Counter,
            "TCP resets this host sent, by port.",
        );
        let mut rst_recv = Family::new(
            "resets_received",
            Type::Counter,
            "TCP resets this host received, by port.",
        );
        let mut retrans = Family::new(
            "transition_retransmits",
            Type::Counter,
            "TCP segments retransmitted, by port (from the tcp_retransmit_skb tracepoint).",
        );
        for (slot, s) in &self.by {
            let (port, side) = match slot {
                Slot::Port(k) => (k.port.to_string(), k.local),
                Slot::Other(local) => ("other".to_string(), *local),
            };
            let side = if side { "local" } else { "remote" };
            let labels = || vec![("port", port.clone()), ("side", side.to_string())];
            opened
                .samples
                .push(Sample::new(labels(), Value::Int(s.opened)));
            for (by, n) in [
                ("local", s.closed_local),
                ("peer", s.closed_peer),
                ("reset", s.closed_reset),
                ("failed", s.failed),
            ] {
                let mut l = labels();
                l.push(("closed_by", by.to_string()));
                closed.samples.push(Sample::new(l, Value::Int(n)));
            }
            rst_sent
                .samples
                .push(Sample::new(labels(), Value::Int(s.resets_sent)));
            rst_recv
                .samples
                .push(Sample::new(labels(), Value::Int(s.resets_received)));
            retrans
                .samples
                .push(Sample::new(labels(), Value::Int(s.retransmits)));
        }
        vec![up, dropped, opened, closed, rst_sent, rst_recv, retrans]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Window;
    use std::sync::Arc;

    fn sample(ports: &[(u16, u64)]) -> TraceSample {
        let mut w = Window::default();
        for &(p, n) in ports {
            let s = w
                .by_port
                .entry(PortKey {
                    port: p,
                    local: true,
                })
                .or_default();
            s.opened = n;
            s.closed_peer = n;
        }
        TraceSample {
            window: w,
            ..TraceSample::off("x")
        }
        .with_status_on()
    }

    impl TraceSample {
        fn with_status_on(mut self) -> TraceSample {
            self.status = crate::trace::Status::On;
            self.recent = Arc::default();
            self
        }
    }

    fn value(fams: &[Family], name: &str, port: &str) -> Option<u64> {
        let f = fams.iter().find(|f| f.name == name)?;
        f.samples
            .iter()
            .find(|s| s.label("port") == Some(port))
            .map(|s| s.value.as_f64() as u64)
    }

    #[test]
    fn counters_sum_over_scrapes_and_series_stay_bounded_and_monotonic() {
        let mut t = Totals::default();
        t.add(&sample(&[(80, 10), (443, 5)]), 2);
        t.add(&sample(&[(80, 1), (8080, 7)]), 2);
        let fams = t.families();
        assert_eq!(value(&fams, "connections_opened", "80"), Some(11));
        assert_eq!(value(&fams, "connections_opened", "443"), Some(5));
        assert_eq!(
            value(&fams, "connections_opened", "8080"),
            None,
            "no third series"
        );
        assert_eq!(value(&fams, "connections_opened", "other"), Some(7));
        // 443 quiet now keeps its series (a counter does not vanish).
        t.add(&sample(&[(9000, 3)]), 2);
        let fams = t.families();
        assert_eq!(value(&fams, "connections_opened", "443"), Some(5));
        assert_eq!(value(&fams, "connections_opened", "other"), Some(10));
        let up = fams.iter().find(|f| f.name == "transitions_up").unwrap();
        assert_eq!(up.samples[0].value.as_f64(), 1.0);
    }

    #[test]
    fn off_says_why_in_a_label() {
        let mut t = Totals::default();
        t.add(&TraceSample::off("perf_event_open was refused"), 5);
        let fams = t.families();
        let up = fams.iter().find(|f| f.name == "transitions_up").unwrap();
        assert_eq!(up.samples[0].value.as_f64(), 0.0);
        assert_eq!(
            up.samples[0].label("reason"),
            Some("perf_event_open was refused")
        );
    }
}
