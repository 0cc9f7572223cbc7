//! The transitions part of `diagnose`: what the kernel's TCP tracepoints
//! counted over the window, per port, process and remote host. Field names
//! are listed in the README ("diagnose --json: transitions").

use crate::model::findings::transitions::stand_in;
use crate::model::{Filter, Snapshot, TcpState};
use crate::sanitize::clean;
use crate::trace::{PortKey, Stats, Window};
use serde::Serialize;
use std::io::{self, Write};

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    fn of(us: &[u64]) -> Option<Spread> {
        let p = |q| {
            crate::trace::window::percentile(us, q).map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
        };
        Some(Spread {
            count: us.len(),
            p50_ms: p(50.0)?,
            p90_ms: p(90.0)?,
            p99_ms: p(99.0)?,
            max_ms: p(100.0)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClosedBy {
    pub local: u64,
    pub peer: u64,
    pub reset: u64,
    pub failed: u64,
}

/// One group's counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub opened: u64,
    pub closed: u64,
    pub closed_by: ClosedBy,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub retransmits: u64,
    pub close_wait_entered: u64,
    pub close_wait_left: u64,
    /// Lifetimes of the connections whose opening and close were both seen.
    pub lifetime: Option<Spread>,
    /// Time spent in each state (lower-case state name), of the
    /// connections whose entry into and exit from it were both seen.
    pub in_state: std::collections::BTreeMap<String, Spread>,
}

impl Counts {
    fn of(s: &Stats) -> Counts {
        Counts {
            opened: s.opened,
            closed: s.closed,
            closed_by: ClosedBy {
                local: s.closed_local,
                peer: s.closed_peer,
                reset: s.closed_reset,
                failed: s.failed,
            },
            resets_sent: s.resets_sent,
            resets_received: s.resets_received,
            retransmits: s.retransmits,
            close_wait_entered: s.entered(TcpState::CloseWait),
            close_wait_left: s.left(TcpState::CloseWait),
            lifetime: Spread::of(&s.lifetimes_us),
            in_state: s
                .in_state_us
                .iter()
                .filter_map(|(st, us)| {
                    let name = TcpState::from_kernel(*st)?
                        .kernel_name()
                        .to_ascii_lowercase();
                    Some((name, Spread::of(us)?))
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortReport {
    pub port: u16,
    /// `local`: a service here (connections it accepted); `remote`: a port
    /// this host connects to.
    pub side: &'static str,
    pub pid: Option<u32>,
    pub process: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessReport {
    pub pid: u32,
    pub process: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteReport {
    pub addr: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// `diagnose`'s `transitions` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `on`, or `off` with `reason`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub window_s: f64,
    pub events: u64,
    /// Records the kernel dropped (a full ring): when not 0, counts are low.
    pub dropped: u64,
    /// CPU time the event source's thread used (reading and counting).
    pub feed_cpu_s: f64,
    #[serde(flatten)]
    pub total: Counts,
    pub ports: Vec<PortReport>,
    pub processes: Vec<ProcessReport>,
    pub remotes: Vec<RemoteReport>,
}

/// At most this many ports, processes and remote hosts are listed (most
/// opened first).
pub const TOP: usize = 50;

impl Report {
    pub fn off(reason: &str) -> Report {
        Report {
            status: "off",
            reason: Some(clean(reason).into_owned()),
            window_s: 0.0,
            events: 0,
            dropped: 0,
            feed_cpu_s: 0.0,
            total: Counts::of(&Stats::default()),
            ports: Vec::new(),
            processes: Vec::new(),
            remotes: Vec::new(),
        }
    }

    /// The report over `w`, for the groups `filter` selects.
    pub fn build(
        w: &Window,
        snap: &Snapshot,
        filter: &Filter,
        feed_cpu: std::time::Duration,
    ) -> Report {
        let name = |pid: u32| snap.process(pid).map(|p| clean(&p.name).into_owned());
        let mut ports: Vec<(&PortKey, &Stats)> = w.by_port.iter().collect();
        ports.sort_by(|a, b| b.1.opened.cmp(&a.1.opened).then(a.0.cmp(b.0)));
        let mut total = Stats::default();
        let ports: Vec<PortReport> = ports
            .into_iter()
            .filter_map(|(k, s)| {
                let pid = if k.local {
                    snap.holders().listener_holder(k.port)
                } else {
                    None
                };
                let keep = filter.is_empty()
                    || [TcpState::Established, TcpState::CloseWait, TcpState::Close]
                        .into_iter()
                        .any(|st| filter.matches(&stand_in(*k, pid, st), snap));
                if !keep {
                    return None;
                }
                total.add(s);
                Some(PortReport {
                    port: k.port,
                    side: if k.local { "local" } else { "remote" },
                    pid,
                    process: pid.and_then(name),
                    counts: Counts::of(s),
                })
            })
            .take(TOP)
            .collect();
        let total = if filter.is_empty() { &w.total } else { &total };
        let mut procs: Vec<_> = w.by_process.iter().collect();
        procs.sort_by(|a, b| b.1.opened.cmp(&a.1.opened).then(a.0.cmp(b.0)));
        let wanted_pid = |pid: u32| {
            filter.is_empty()
                || ports.iter().any(|p| p.pid == Some(pid))
                || filter.pids().any(|p| p == pid)
        };
        let processes = procs
            .into_iter()
            .filter(|(pid, _)| wanted_pid(**pid))
            .take(TOP)
            .map(|(pid, s)| ProcessReport {
                pid: *pid,
                process: name(*pid),
                counts: Counts::of(s),
            })
            .collect();
        let mut remotes: Vec<_> = w.by_remote.iter().collect();
        remotes.sort_by(|a, b| b.1.opened.cmp(&a.1.opened).then(a.0.cmp(b.0)));
        let remotes = remotes
            .into_iter()
            .filter(|_| filter.is_empty())
            .take(TOP)
            .map(|(ip, s)| RemoteReport {
                addr: ip.to_string(),
                counts: Counts::of(s),
            })
            .collect();
        Report {
            status: "on",
            reason: None,
            window_s: (w.span().as_secs_f64() * 1000.0).round() / 1000.0,
            events: w.events,
            dropped: w.dropped,
            feed_cpu_s: (feed_cpu.as_secs_f64() * 1000.0).round() / 1000.0,
            total: Counts::of(total),
            ports,
            processes,
            remotes,
        }
    }

    /// A few lines for `diagnose`'s text output.
    pub fn write_text<W: Write>(&self, mut out: W) -> io::Result<()> {
        if let Some(why) = &self.reason {
            return writeln!(out, "\nTransitions: not followed ({why}).");
        }
        let t = &self.total;
        writeln!(
            out,
            "\nTransitions over {:.1} s: {} opened, {} closed (this host first {}, peer first {}, reset {}, never established {}), {} resets sent, {} received{}.",
            self.window_s,
            t.opened,
            t.closed,
            t.closed_by.local,
            t.closed_by.peer,
            t.closed_by.reset,
            t.closed_by.failed,
            t.resets_sent,
            t.resets_received,
            if self.dropped > 0 {
                format!(", {} events DROPPED", self.dropped)
            } else {
                String::new()
            }
        )?;
        for p in self.ports.iter().take(5) {
            let who = match (&p.process, p.pid) {
                (Some(n), Some(pid)) => format!(" {n} (pid {pid})"),
                _ => String::new(),
            };
            let life = p
                .counts
                .lifetime
                .as_ref()
                .map(|l| format!(", lifetime p50 {:.1} ms p99 {:.1} ms", l.p50_ms, l.p99_ms))
                .unwrap_or_default();
            writeln!(
                out,
                "  {} port {}{who}: {} opened, {} closed, {} resets sent{life}",
                p.side, p.port, p.counts.opened, p.counts.closed, p.counts.resets_sent
            )?;
        }
        Ok(())
    }
}
