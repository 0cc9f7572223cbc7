//! Where samples come from: the live system, or a script (tests). The engine
//! is fed through this trait only, so the whole pipeline runs in tests.

use crate::collect::{Collector, Options, Scope, SourceChoice, SystemCollector, netlink};
use crate::model::{Snapshot, Socket, TcpState};

/// Which part of the socket table a sample covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refresh {
    /// Everything.
    Full,
    /// TCP sockets in every state but ESTABLISHED (the trouble states and the
    /// listeners) and the kernel counters: usually a small part of a large
    /// table, so it can be refreshed every second. Their owners are the last
    /// full sample's (the engine attaches them by inode): a socket newer
    /// than that shows its holder from the next full sample on. Other
    /// network namespaces' tables, small and mostly reused unchanged, come
    /// whole.
    Trouble,
}

/// Why a sample could not be taken, as the user should read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

pub trait Source: Send {
    fn sample(&mut self, refresh: Refresh) -> Result<Snapshot, SourceError>;

    /// True when [`Refresh::Trouble`] samples are really partial; a source
    /// that cannot do them is always asked for full ones.
    fn partial(&self) -> bool {
        false
    }

    /// Whether the next samples carry `tcp_info` (it costs kernel time on
    /// large tables).
    fn set_tcp_info(&mut self, _on: bool) {}

    /// One socket's current state and `tcp_info`, asked of the source
    /// directly (the focused connection, when the dumps leave `tcp_info` out).
    fn query_one(&mut self, _socket: &Socket) -> Option<Socket> {
        None
    }
}

/// This machine.
pub struct SystemSource {
    collector: SystemCollector,
    /// netlink can dump by state; `/proc/net` cannot.
    partial: bool,
}

impl SystemSource {
    pub fn new(options: Options) -> SystemSource {
        SystemSource {
            collector: SystemCollector::new(options),
            partial: options.source != SourceChoice::Proc,
        }
    }
}

/// [`Refresh::Trouble`] as the collector's scope: every TCP state but
/// ESTABLISHED (the listeners too, so accept queues are as fresh as the
/// trouble states), no UDP.
pub fn trouble_scope() -> Scope {
    let states: Vec<TcpState> = TcpState::ALL
        .iter()
        .copied()
        .filter(|s| *s != TcpState::Established)
        .collect();
    Scope {
        tcp_states: netlink::state_mask(&states),
        udp: false,
    }
}

impl Source for SystemSource {
    fn sample(&mut self, refresh: Refresh) -> Result<Snapshot, SourceError> {
        let result = match refresh {
            Refresh::Full => self.collector.collect(),
            // The collector takes the owners of a partial collection from the
            // last full one, checked with one readlink each; new sockets send
            // it back to the fd scan. The engine's merge fills in by inode
            // whatever is still missing.
            Refresh::Trouble => self.collector.collect_scope(trouble_scope()),
        };
        let snap = result.map_err(|e| SourceError(e.to_string()))?;
        // A fallback to /proc/net (auto) reads everything every time.
        self.partial = snap.source == crate::model::SourceKind::Netlink;
        Ok(snap)
    }

    fn partial(&self) -> bool {
        self.partial
    }

    fn set_tcp_info(&mut self, on: bool) {
        self.collector.set_tcp_info(on);
    }

    fn query_one(&mut self, socket: &Socket) -> Option<Socket> {
        self.collector.query_one(socket)
    }
}

/// A source that plays a script: each call gets the refresh asked for and
/// the call's number (0 first). For tests of the engine and the sinks.
pub struct Scripted<F> {
    script: F,
    calls: usize,
    partial: bool,
}

impl<F> Scripted<F>
where
    F: FnMut(Refresh, usize) -> Result<Snapshot, SourceError> + Send,
{
    pub fn new(script: F) -> Scripted<F> {
        Scripted {
            script,
            calls: 0,
            partial: false,
        }
    }

    /// Answers trouble-state refreshes (the script sees which is asked).
    pub fn with_partial(mut self) -> Scripted<F> {
        self.partial = true;
        self
    }
}

impl<F> Source for Scripted<F>
where
    F: FnMut(Refresh, usize) -> Result<Snapshot, SourceError> + Send,
{
    fn sample(&mut self, refresh: Refresh) -> Result<Snapshot, SourceError> {
        let n = self.calls;
        self.calls += 1;
        (self.script)(refresh, n)
    }

    fn partial(&self) -> bool {
        self.partial
    }
}
