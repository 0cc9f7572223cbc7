//! A snapshot and its findings as Prometheus metric families: plain data
//! built by pure functions (tested on fixtures), encoded by the official
//! client library (`prometheus-client`) in the OpenMetrics or the classic
//! Prometheus text format.
//!
//! Every family is named `sockscope_...`. Kernel counters are named after
//! the kernel's `Section.Name`, lower-cased:
//! `sockscope_netstat_tcpext_listenoverflows_total`.

use crate::model::counters::{CounterKind, counter_kind};
use crate::model::findings::{Finding, Kind, Severity};
use crate::model::{Proto, Snapshot, TcpState};
use crate::sanitize;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, UNIX_EPOCH};

/// The prefix of every family.
pub const PREFIX: &str = "sockscope";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// One series: its labels (in order) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

impl Sample {
    fn new(labels: Vec<(&'static str, String)>, value: Value) -> Sample {
        Sample { labels, value }
    }

    /// The value of label `name`, if the series has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One metric family. `name` is without the prefix, the unit and `_total`:
/// the encoder adds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub seconds: bool,
    pub kind: Type,
    pub samples: Vec<Sample>,
}

impl Family {
    fn new(name: impl Into<String>, kind: Type, help: &str) -> Family {
        Family {
            name: name.into(),
            help: help_text(help),
            seconds: false,
            kind,
            samples: Vec::new(),
        }
    }

    fn single(name: &str, kind: Type, help: &str, value: Value) -> Family {
        let mut f = Family::new(name, kind, help);
        f.samples.push(Sample::new(Vec::new(), value));
        f
    }

    fn in_seconds(mut self) -> Family {
        self.seconds = true;
        self
    }
}

/// A HELP line is one line of plain text. OpenMetrics allows `\`, `"` and
/// newlines only escaped, and prometheus-client 0.26 writes its HELP
/// unescaped: keep them out.
fn help_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if sanitize::is_unsafe(c) => ' ',
            c => c,
        })
        .collect()
}

/// What one collection adds to its snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collection {
    /// Wall time of the collection.
    pub took: Duration,
    /// Collections since start, this one included.
    pub collections: u64,
    /// Failed collections since start.
    pub errors: u64,
    /// Whether this snapshot has `tcp_info` (off above
    /// [`crate::collect::TCP_INFO_LIMIT`] sockets).
    pub tcp_info: bool,
}

/// Every family, in a fixed order.
pub fn families(
    snap: &Snapshot,
    findings: &[Finding],
    run: &Collection,
    top: usize,
) -> Vec<Family> {
    let mut out = vec![
        sockets(snap),
        process_sockets(snap, top),
        findings_family(findings),
    ];
    out.extend(kernel_counters(&snap.system.counters));
    out.extend(limit_metrics(snap));
    out.extend(self_metrics(snap, run));
    out
}

fn state_labels(proto: Proto, state: TcpState) -> Vec<(&'static str, String)> {
    vec![
        ("proto", proto.name().to_string()),
        ("state", state.kernel_name().to_string()),
    ]
}

/// `sockscope_sockets{proto,state}`: every TCP state always (a zero is a
/// value, not a gap in a graph), UDP's two (connected ESTABLISHED,
/// unconnected CLOSE) always, anything else when present.
fn sockets(snap: &Snapshot) -> Family {
    let mut counts: BTreeMap<(Proto, TcpState), u64> = BTreeMap::new();
    for state in TcpState::ALL {
        counts.insert((Proto::Tcp, state), 0);
    }
    for state in [TcpState::Established, TcpState::Close] {
        counts.insert((Proto::Udp, state), 0);
    }
    for s in &snap.sockets {
        *counts.entry((s.proto, s.state)).or_default() += 1;
    }
    let mut f = Family::new(
        "sockets",
        Type::Gauge,
        "Sockets on this machine by protocol and state (kernel names; UDP is ESTABLISHED when connected, CLOSE when not).",
    );
    f.samples = counts
        .into_iter()
        .map(|((proto, state), n)| Sample::new(state_labels(proto, state), Value::Int(n)))
        .collect();
    f
}

/// `sockscope_process_sockets{pid,process,[netns,]proto,state}` (`netns` for
/// a process outside sockscope's own network namespace): for each protocol
/// and state, the `top` processes holding most sockets in it get a series
/// of their own; the others are summed into one `process="other"` series
/// (without a pid), so at most `top + 1` series per state. Ranking per
/// state keeps a process with a few hundred CLOSE_WAIT visible on a machine
/// where others hold far more ESTABLISHED. A socket held by several
/// processes counts for each; sockets no process holds are left out (they
/// are in `sockscope_sockets`).
fn process_sockets(snap: &Snapshot, top: usize) -> Family {
    let mut counts: BTreeMap<(Proto, TcpState), HashMap<u32, u64>> = BTreeMap::new();
    for s in &snap.sockets {
        let mut last = None;
        for o in &s.owners {
            // Owners are sorted: a process holding one socket in two fds counts it once.
            if last != Some(o.pid) {
                *counts
                    .entry((s.proto, s.state))
                    .or_default()
                    .entry(o.pid)
                    .or_default() += 1;
            }
            last = Some(o.pid);
        }
    }
    let mut f = Family::new(
        "process_sockets",
        Type::Gauge,
        "Sockets held by a process, by protocol and state: per state the processes holding most have their own series, the rest are summed under process='other'.",
    );
    for ((proto, state), by_pid) in counts {
        let mut ranked: Vec<(u32, u64)> = by_pid.into_iter().collect();
        ranked.sort_unstable_by_key(|&(pid, n)| (std::cmp::Reverse(n), pid));
        for &(pid, n) in ranked.iter().take(top) {
            let process = snap.process(pid);
            let name = process.map_or("(unknown)", |p| p.name.as_str());
            let mut labels = vec![
                ("pid", pid.to_string()),
                ("process", sanitize::clean(name).into_owned()),
            ];
            // A process in a container: which one (no label on the host's).
            if let Some(p) = process
                && p.netns != crate::model::HOST_NETNS
            {
                labels.push((
                    "netns",
                    sanitize::clean(snap.namespaces.name(p.netns)).into_owned(),
                ));
            }
            labels.extend(state_labels(proto, state));
            f.samples.push(Sample::new(labels, Value::Int(n)));
        }
        if ranked.len() > top {
            let rest = ranked[top..].iter().map(|&(_, n)| n).sum();
            let mut labels = vec![("process", "other".to_string())];
            labels.extend(state_labels(proto, state));
            f.samples.push(Sample::new(labels, Value::Int(rest)));
        }
    }
    f
}

/// Every finding kind, for series that exist (at zero) before the first finding.
pub const KINDS: [Kind; 13] = [
    Kind::CloseWaitLeak,
    Kind::ClosedSocketsHeld,
    Kind::FinWait2,
    Kind::TimeWaitPressure,
    Kind::AcceptStalled,
    Kind::ListenQueueFull,
    Kind::SynFlood,
    Kind::Retransmissions,
    Kind::TopClients,
    Kind::ConnectionStorm,
    Kind::ResetStorm,
    Kind::ShortLived,
    Kind::CloseWaitInflow,
];

pub const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// `sockscope_findings{kind,severity}`: how many findings of each kind and
/// severity the findings engine reports now (a CLOSE_WAIT leak in two
/// processes is two findings). Every combination is always present.
fn findings_family(findings: &[Finding]) -> Family {
    let mut counts: HashMap<(Kind, Severity), u64> = HashMap::new();
    for f in findings {
        *counts.entry((f.kind, f.severity)).or_default() += 1;
    }
    let mut f = Family::new(
        "findings",
        Type::Gauge,
        "Findings of the diagnosis engine (as sockscope diagnose reports them) by kind and severity.",
    );
    for kind in KINDS {
        for severity in SEVERITIES {
            let n = counts.get(&(kind, severity)).copied().unwrap_or(0);
            f.samples.push(Sample::new(
                vec![
                    ("kind", kind.name().to_string()),
                    ("severity", severity_name(severity).to_string()),
                ],
                Value::Int(n),
            ));
        }
    }
    f
}

/// `TcpExt.ListenOverflows` → `netstat_tcpext_listenoverflows`: the
/// kernel's name lower-cased, the dot an underscore. Mechanical, so the
/// name can be derived from `nstat` or /proc/net/netstat without guessing
/// where words break (TCPSACKReneging), and snake_case as Prometheus' lint
/// wants. Anything not alphanumeric becomes `_` so the name stays valid.
pub fn kernel_metric_name(key: &str) -> String {
    let body: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("netstat_{body}")
}

/// `/proc/net/snmp` and `/proc/net/netstat`: counters as counters (the
/// encoder adds `_total`), the two connection gauges as gauges, and the
/// settings (RTO bounds, default TTL, forwarding) left out.
fn kernel_counters(counters: &BTreeMap<String, u64>) -> Vec<Family> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (key, &value) in counters {
        let kind = match counter_kind(key) {
            CounterKind::Counter => Type::Counter,
            CounterKind::Gauge => Type::Gauge,
            CounterKind::Setting => continue,
        };
        let name = kernel_metric_name(key);
        if !seen.insert(name.clone()) {
            continue;
        }
        let section = key.split('.').next().unwrap_or("");
        let file = if section.ends_with("Ext") {
            "/proc/net/netstat"
        } else {
            "/proc/net/snmp"
        };
        let help = match crate::model::counter_rows::pinned_info(key) {
            Some(p) => format!("{key} in {file}: {}", p.meaning),
            None if kind == Type::Gauge => format!(
                "{key} in {file}: connections open now, ESTABLISHED (and CLOSE_WAIT since Linux 6.10); a gauge."
            ),
            None => format!("{key} in {file}."),
        };
        out.push(Family::single(&name, kind, &help, Value::Int(value)));
    }
    out
}

/// Tables the kernel bounds, with their bounds, so that alerts can say
/// "near the limit" (a rule cannot read a sysctl). A gauge whose sysctl
/// could not be read is left out rather than exported as 0.
fn limit_metrics(snap: &Snapshot) -> Vec<Family> {
    let system = &snap.system;
    let mut out = Vec::new();
    // sockstat's TCP.tw counts what the bucket limit applies to (orphaned
    // FIN_WAIT2 too); the socket list is the fallback, as in the finding.
    let tw = system.sockstat.get("TCP.tw").copied().unwrap_or_else(|| {
        snap.sockets
            .iter()
            .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::TimeWait)
            .count() as u64
    });
    out.push(Family::single(
        "time_wait_buckets",
        Type::Gauge,
        "TIME_WAIT buckets in use (sockstat TCP.tw), against sockscope_time_wait_buckets_max.",
        Value::Int(tw),
    ));
    if let Some(max) = system.sysctl_u64("net.ipv4.tcp_max_tw_buckets") {
        out.push(Family::single(
            "time_wait_buckets_max",
            Type::Gauge,
            "net.ipv4.tcp_max_tw_buckets: beyond it the kernel destroys TIME_WAIT sockets early (TcpExt.TCPTimeWaitOverflow).",
            Value::Int(max),
        ));
    }
    if let Some((lo, hi)) = system.local_port_range() {
        let in_range = |port: u16| (lo..=hi).contains(&port);
        let listening: HashSet<u16> = snap
            .sockets
            .iter()
            .filter(|s| s.proto == Proto::Tcp && s.state == TcpState::Listen)
            .map(|s| s.local.port())
            .collect();
        // Ports run out per destination: a connect() needs a local port not
        // yet used towards that remote address and port.
        let mut towards: HashMap<std::net::SocketAddr, u64> = HashMap::new();
        for s in &snap.sockets {
            let port = s.local.port();
            if s.proto == Proto::Tcp
                && !s.remote_is_unspecified()
                && in_range(port)
                && !listening.contains(&port)
            {
                let remote =
                    std::net::SocketAddr::new(s.remote.ip().to_canonical(), s.remote.port());
                *towards.entry(remote).or_default() += 1;
            }
        }
        out.push(Family::single(
            "ephemeral_ports",
            Type::Gauge,
            "Ports in net.ipv4.ip_local_port_range, the ones connect() picks from.",
            Value::Int(u64::from(hi.saturating_sub(lo)) + 1),
        ));
        out.push(Family::single(
            "ephemeral_ports_busiest_destination",
            Type::Gauge,
            "Ephemeral ports in use (TIME_WAIT included) towards the one remote address and port that uses most; connect() to it fails with EADDRNOTAVAIL when this reaches sockscope_ephemeral_ports.",
            Value::Int(towards.values().copied().max().unwrap_or(0)),
        ));
    }
    out
}

/// The exporter's own state.
fn self_metrics(snap: &Snapshot, run: &Collection) -> Vec<Family> {
    let taken = snap
        .taken_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    vec![
        Family::single(
            "collection_duration",
            Type::Gauge,
            "How long the collection behind this scrape took (socket dump, owner scan, counters).",
            Value::Float(run.took.as_secs_f64()),
        )
        .in_seconds(),
        Family::single(
            "snapshot_timestamp",
            Type::Gauge,
            "When the snapshot behind this scrape was taken, in seconds since the Unix epoch.",
            Value::Float(taken),
        )
        .in_seconds(),
        Family::single(
            "collections",
            Type::Counter,
            "Collections made since start; scrapes within one --interval share one.",
            Value::Int(run.collections),
        ),
        Family::single(
            "collection_errors",
            Type::Counter,
            "Collections that failed since start (the scrape got HTTP 500).",
            Value::Int(run.errors),
        ),
        Family::single(
            "tcp_info_collected",
            Type::Gauge,
            "1 when this snapshot has tcp_info (retransmission findings need it); 0 above 20000 sockets, where asking for it costs too much.",
            Value::Int(u64::from(run.tcp_info)),
        ),
        Family::single(
            "unreadable_processes",
            Type::Gauge,
            "Processes whose fd table could not be read: their sockets have no owner (run as root to see them).",
            Value::Int(snap.attribution.unreadable_processes as u64),
        ),
        Family {
            samples: vec![Sample::new(
                vec![("version", env!("CARGO_PKG_VERSION").to_string())],
                Value::Int(1),
            )],
            ..Family::new(
                "build_info",
                Type::Gauge,
                "The sockscope version, as a label.",
            )
        },
    ]
}

/// The families as a `prometheus-client` collector: encoded by the crate,
/// which adds the prefix, units and `_total`, and escapes label values.
#[derive(Debug)]
struct Exposition(Vec<Family>);

fn encode_value(m: &mut MetricEncoder, kind: Type, value: Value) -> std::fmt::Result {
    match (kind, value) {
        (Type::Counter, Value::Int(v)) => m.encode_counter::<NoLabelSet, _, u64>(&v, None),
        (Type::Counter, Value::Float(v)) => m.encode_counter::<NoLabelSet, _, f64>(&v, None),
        (Type::Gauge, Value::Int(v)) => m.encode_gauge(&v),
        (Type::Gauge, Value::Float(v)) => m.encode_gauge(&v),
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let seconds = Unit::Seconds;
        for f in &self.0 {
            let metric_type = match f.kind {
                Type::Counter => MetricType::Counter,
                Type::Gauge => MetricType::Gauge,
            };
            let unit = f.seconds.then_some(&seconds);
            let mut m = encoder.encode_descriptor(&f.name, &f.help, unit, metric_type)?;
            for s in &f.samples {
                if s.labels.is_empty() {
                    encode_value(&mut m, f.kind, s.value)?;
                } else {
                    let mut series = m.encode_family(&s.labels)?;
                    encode_value(&mut series, f.kind, s.value)?;
                }
            }
        }
        Ok(())
    }
}

/// One scrape's answer in both formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Bodies {
    /// `application/openmetrics-text; version=1.0.0` (what Prometheus asks for first).
    pub openmetrics: String,
    /// `text/plain; version=0.0.4` (everything else: curl, promtool, older scrapers).
    pub text: String,
}

pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

pub fn encode(families: Vec<Family>) -> Result<Bodies, std::fmt::Error> {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(Exposition(families)));
    let mut openmetrics = String::new();
    prometheus_client::encoding::text::encode(&mut openmetrics, &registry)?;
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(Bodies { openmetrics, text })
}

pub mod transitions;

#[cfg(test)]
mod tests;
