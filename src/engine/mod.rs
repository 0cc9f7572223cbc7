//! One sampling engine for every sink.
//!
//! ```text
//!   Source (system | recording | scripted)
//!      │ Snapshot (full, or the trouble states only, merged into the last full)
//!      ▼
//!   Analyzer: History::record + findings::analyze      ── the one place
//!      │ Arc<Analysis>
//!      ├──▶ monitor   (live::spawn: own thread, latest-only Slot, no queue)
//!      ├──▶ serve     (Engine::step on a scrape)
//!      ├──▶ diagnose  (Engine::step once a second over its window)
//!      └──▶ replay    (frames from the recording through an Analyzer)
//! ```
//!
//! The engine owns the source, the cadence, the history and the findings;
//! the sinks only read what it publishes, so no sink records history or
//! analyses findings of its own.

pub mod cadence;
pub mod live;
pub mod merge;
pub mod slot;
pub mod source;

use crate::model::findings::{self, Finding};
use crate::model::group::StateCounts;
use crate::model::history::History;
use crate::model::{Filter, Snapshot};
use std::sync::Arc;
use std::time::Duration;

pub use source::{Refresh, Source, SourceError};

/// How long the last collection took and the interval now in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectStats {
    pub took: Duration,
    pub interval: Duration,
}

/// How fresh each part of a sample is, when the trouble states are
/// refreshed more often than the rest (see [`cadence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// The sample's ESTABLISHED connections and UDP sockets come from a full
    /// dump this much older than the sample (the trouble states and the
    /// listeners are from the sample's own time).
    pub established_age: Duration,
    /// How often the full dump runs now.
    pub full_interval: Duration,
}

/// One analysed sample: what every sink reads.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub snapshot: Arc<Snapshot>,
    /// The history including this sample.
    pub history: Arc<History>,
    /// The machine's findings (no filter), most severe first.
    pub findings: Arc<Vec<Finding>>,
    /// Sockets per state.
    pub counts: StateCounts,
    pub stats: Option<CollectStats>,
    /// Set when part of the sample is older than the rest.
    pub parts: Option<Parts>,
    /// Counts the samples digested (1 for the first).
    pub generation: u64,
    /// The transitions since the previous sample, when the engine follows
    /// them (`Status::Off` says why not).
    pub trace: Option<Arc<crate::trace::TraceSample>>,
}

impl Analysis {
    /// The findings among the sockets `filter` selects (the machine's when
    /// it is empty, computed once by the engine).
    pub fn findings_for(&self, filter: &Filter) -> Arc<Vec<Finding>> {
        if filter.is_empty() {
            return Arc::clone(&self.findings);
        }
        let mut found = findings::analyze(&self.snapshot, &self.history, filter);
        if let Some(t) = &self.trace {
            findings::transitions::analyze(&self.snapshot, &t.minute, filter, &mut found);
        }
        Arc::new(found)
    }
}

/// History and findings: the digestion every sample goes through, whichever
/// sink it is for.
#[derive(Debug, Clone, Default)]
pub struct Analyzer {
    history: Arc<History>,
    generation: u64,
}

impl Analyzer {
    pub fn new() -> Analyzer {
        Analyzer::default()
    }

    /// Goes on from a history built elsewhere (a replay's jump).
    pub fn with_history(history: History) -> Analyzer {
        Analyzer {
            history: Arc::new(history),
            generation: 0,
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Records a sample in the history without analysing it (the samples
    /// before the one a one-shot command reports on).
    pub fn record(&mut self, snapshot: &Snapshot) {
        Arc::make_mut(&mut self.history).record(snapshot);
    }

    /// Analyses a sample the history already holds (a replay's jump
    /// target, recorded by the rebuild).
    pub fn analyze(
        &mut self,
        snapshot: Arc<Snapshot>,
        stats: Option<CollectStats>,
        parts: Option<Parts>,
    ) -> Arc<Analysis> {
        self.analyze_traced(snapshot, stats, parts, None, None)
    }

    /// `counts` are the sample's state counts when known already.
    fn analyze_traced(
        &mut self,
        snapshot: Arc<Snapshot>,
        stats: Option<CollectStats>,
        parts: Option<Parts>,
        trace: Option<Arc<crate::trace::TraceSample>>,
        counts: Option<StateCounts>,
    ) -> Arc<Analysis> {
        // A replayed frame brings its recorded window.
        let trace = trace.or_else(|| {
            let w = snapshot.transitions.as_ref()?;
            Some(Arc::new(crate::trace::TraceSample::recorded(w)))
        });
        let mut found = findings::analyze(&snapshot, &self.history, &Filter::default());
        if let Some(t) = &trace {
            findings::transitions::analyze(&snapshot, &t.minute, &Filter::default(), &mut found);
        }
        self.generation += 1;
        let counts = counts.unwrap_or_else(|| crate::model::group::by_state(&snapshot.sockets));
        Arc::new(Analysis {
            counts,
            snapshot,
            history: Arc::clone(&self.history),
            findings: Arc::new(found),
            stats,
            parts,
            generation: self.generation,
            trace,
        })
    }

    /// Records the sample and analyses it. The history is shared with the
    /// sinks that still show the previous analysis: copying it for the next
    /// sample copies its small series, not its per-connection maps (those
    /// are rebuilt, not changed, by each record).
    pub fn digest(
        &mut self,
        snapshot: Arc<Snapshot>,
        stats: Option<CollectStats>,
        parts: Option<Parts>,
    ) -> Arc<Analysis> {
        self.digest_traced(snapshot, stats, parts, None)
    }

    /// [`Analyzer::digest`] with the transitions of the same interval: their
    /// exact state entries go into the history, their findings into the list.
    pub fn digest_traced(
        &mut self,
        snapshot: Arc<Snapshot>,
        stats: Option<CollectStats>,
        parts: Option<Parts>,
        trace: Option<Arc<crate::trace::TraceSample>>,
    ) -> Arc<Analysis> {
        let history = Arc::make_mut(&mut self.history);
        if let Some(t) = &trace {
            history.set_exact(Arc::clone(&t.exact));
        }
        match parts {
            // A trouble-state refresh: only its fresh part is new.
            Some(_) => history.record_partial(&snapshot),
            None => history.record(&snapshot),
        }
        // The history has just counted the sample's states: one pass over
        // the table saved (130k sockets at each refresh).
        let counts = history
            .samples()
            .back()
            .filter(|s| s.mono == snapshot.monotonic)
            .map(|s| s.counts);
        self.analyze_traced(snapshot, stats, parts, trace, counts)
    }
}

/// A source, its cadence and an analyzer: the engine the sinks drive, each
/// at its own pace ([`live`] runs it on a thread for the monitor).
pub struct Engine {
    source: Box<dyn Source>,
    analyzer: Analyzer,
    cadence: cadence::Cadence,
    /// The last full dump, which trouble-state refreshes are merged into.
    full: Option<Arc<Snapshot>>,
    /// Its index for the trouble refreshes merged into it.
    full_index: merge::Index,
    /// The connection the user looks at: its `tcp_info` is asked for on its
    /// own when the dumps leave `tcp_info` out.
    focus: Option<Box<crate::model::Socket>>,
    /// The transitions between samples, when followed.
    trace: Option<crate::trace::Transitions>,
    /// The transitions of the last sample, for its digestion.
    pending_trace: Option<Arc<crate::trace::TraceSample>>,
    /// The source was last told to dump `tcp_info` (as it is at first).
    tcp_info: bool,
    /// When the heap was last trimmed ([`crate::trim_malloc`]).
    trimmed: Option<std::time::Instant>,
}

/// How often, at most, the heap is trimmed after a large full dump.
const TRIM_EVERY: Duration = Duration::from_secs(50);

impl Engine {
    pub fn new(source: Box<dyn Source>, interval: Duration) -> Engine {
        Engine {
            source,
            analyzer: Analyzer::new(),
            cadence: cadence::Cadence::new(interval),
            full: None,
            full_index: Default::default(),
            focus: None,
            trace: None,
            pending_trace: None,
            tcp_info: true,
            trimmed: None,
        }
    }

    /// Follows the transitions between samples too (or says, in each
    /// analysis, why it cannot).
    pub fn follow_transitions(&mut self, trace: crate::trace::Transitions) {
        self.trace = Some(trace);
    }

    pub fn history(&self) -> &History {
        self.analyzer.history()
    }

    pub fn cadence(&self) -> &cadence::Cadence {
        &self.cadence
    }

    pub fn cadence_mut(&mut self) -> &mut cadence::Cadence {
        &mut self.cadence
    }

    pub fn set_focus(&mut self, focus: Option<Box<crate::model::Socket>>) {
        self.focus = focus;
    }

    /// Takes one sample of the kind the cadence says is due (a full one on
    /// `force_full`), merges it into the last full dump when it is partial,
    /// and digests it.
    pub fn step(&mut self, force_full: bool) -> Result<Arc<Analysis>, SourceError> {
        let refresh = self.due(force_full);
        self.step_as(refresh)
    }

    /// True when the sample due now is a full dump of a table whose trouble
    /// states are refreshed on their own: the live loop then refreshes and
    /// shows the trouble states first ([`Engine::tick`]), since the
    /// full dump with its owner scan takes long enough (0.6 s at 130k
    /// sockets) for them to go stale meanwhile.
    /// (A source that cannot refresh the trouble states on their own, as
    /// `/proc/net`, has nothing to show first.)
    fn full_due_on_split(&self) -> bool {
        self.partial_possible() && self.cadence.split() && self.cadence.due() == Refresh::Full
    }

    /// A trouble-state refresh is possible: the source can do one, and there
    /// is a full dump to merge it into.
    fn partial_possible(&self) -> bool {
        self.full.is_some() && self.source.partial()
    }

    /// One tick of the live loop: the sample due, preceded by a fresh
    /// trouble-state refresh when it is a full dump of a split table (see
    /// [`Engine::full_due_on_split`]). Each goes to `publish`, which returns
    /// false to stop: then so does this.
    pub fn tick(
        &mut self,
        force_full: bool,
        mut publish: impl FnMut(Result<Arc<Analysis>, SourceError>) -> bool,
    ) -> bool {
        if !force_full && self.full_due_on_split() && !publish(self.step_as(Refresh::Trouble)) {
            return false;
        }
        publish(self.step(force_full))
    }

    fn step_as(&mut self, refresh: Refresh) -> Result<Arc<Analysis>, SourceError> {
        let (snap, stats, parts) = self.sample_as(refresh)?;
        let trace = self.pending_trace.take();
        let sockets = snap.sockets.len();
        let mut analysis = self.analyzer.digest_traced(snap, Some(stats), parts, trace);
        // Charged once digested: a sample's cost is its collection and its
        // digestion (and the drawing of the one before). Charged before
        // it, a full dump's digestion of 130k sockets went to the trouble
        // refresh after it, whose interval then stretched by a fifth for
        // the next ten refreshes, once a minute.
        let charged = self.charge(refresh, sockets, stats, parts);
        if let Some(a) = Arc::get_mut(&mut analysis) {
            (a.stats, a.parts) = (Some(charged.0), charged.1);
        }
        Ok(analysis)
    }

    /// Charges a sample's CPU to the cadence; returns its figures as the
    /// cadence stands after the charge (the interval it set).
    fn charge(
        &mut self,
        refresh: Refresh,
        sockets: usize,
        stats: CollectStats,
        parts: Option<Parts>,
    ) -> (CollectStats, Option<Parts>) {
        self.cadence.sampled(refresh, sockets);
        let parts = parts.map(|p| Parts {
            full_interval: self.cadence.full_interval(),
            ..p
        });
        (self.stats(stats.took), parts)
    }

    /// The figures shown for a collection that took `took`.
    fn stats(&self, took: Duration) -> CollectStats {
        CollectStats {
            took,
            interval: self.cadence.interval(),
        }
    }

    /// Which sample the cadence wants now (a full one on `force_full`, or
    /// before any full one, or from a source that cannot do partial ones).
    fn due(&self, force_full: bool) -> Refresh {
        if force_full || !self.partial_possible() {
            Refresh::Full
        } else {
            self.cadence.due()
        }
    }

    /// [`Engine::step`] without the digestion: the sample as the cadence
    /// wants it, merged, for a sink that keeps no history (`record`).
    pub fn sample(
        &mut self,
        force_full: bool,
    ) -> Result<(Arc<Snapshot>, CollectStats, Option<Parts>), SourceError> {
        let refresh = self.due(force_full);
        let (snap, stats, parts) = self.sample_as(refresh)?;
        let (stats, parts) = self.charge(refresh, snap.sockets.len(), stats, parts);
        Ok((snap, stats, parts))
    }

    /// A sample as the cadence wants it, merged, not yet charged to it: the
    /// caller charges it once done with it ([`Engine::charge`]).
    fn sample_as(
        &mut self,
        refresh: Refresh,
    ) -> Result<(Arc<Snapshot>, CollectStats, Option<Parts>), SourceError> {
        if refresh == Refresh::Full {
            // Replaced by this dump: let go of it and its index first, so
            // that they and the new one are not held at once (31 MiB at
            // 130k sockets: the screen shows a trouble refresh's merged
            // copy by then, unless every sample is a full dump). Should the
            // dump fail, the next sample is a full one either way
            // (`Cadence::failed`).
            self.full = None;
            self.full_index = Default::default();
        }
        let wall = std::time::Instant::now();
        let sampled = self.source.sample(refresh);
        let took = wall.elapsed();
        let mut snap = match sampled {
            Ok(s) => s,
            Err(e) => {
                self.cadence.failed();
                return Err(e);
            }
        };
        if self.tcp_info
            && self.source.partial()
            && snap.sockets.len() > crate::collect::TCP_INFO_LIMIT
        {
            // The first dump of a large table asks for tcp_info (the size is
            // not known before): left out, as the next dumps leave it out, so
            // that the minute of samples merged from this one does not carry
            // 100 bytes more per socket in each copy (12 MiB at 120k).
            for s in &mut snap.sockets {
                s.tcp_info = None;
            }
        }
        let (mut snap, parts) = match (refresh, &self.full) {
            (Refresh::Trouble, Some(full)) => {
                let age = snap.monotonic.saturating_sub(full.monotonic);
                let parts = Parts {
                    established_age: age,
                    full_interval: self.cadence.full_interval(),
                };
                (
                    merge::trouble_into(full, &self.full_index, snap),
                    Some(parts),
                )
            }
            _ => (snap, None),
        };
        // On the merged sample: a focused ESTABLISHED connection is fresh
        // every refresh, not only at full dumps.
        self.add_focus_tcp_info(&mut snap);
        // The transitions of the same interval travel with the sample (so a
        // recording keeps them too).
        self.pending_trace = self
            .trace
            .as_mut()
            .map(|t| t.sample(&snap, parts.is_none()));
        if let Some(t) = &self.pending_trace
            && t.status.is_on()
        {
            snap.transitions = Some(Arc::new(t.window.clone()));
        }
        let snap = Arc::new(snap);
        if parts.is_none() && self.source.partial() {
            self.full_index = merge::index(&snap);
            self.full = Some(Arc::clone(&snap));
            // The last full dump and its index are free now.
            if snap.sockets.len() > crate::collect::TCP_INFO_LIMIT
                && self.trimmed.is_none_or(|t| t.elapsed() >= TRIM_EVERY)
            {
                crate::trim_malloc();
                self.trimmed = Some(std::time::Instant::now());
            }
        }
        // Above the limit, the next dumps leave tcp_info out (the focused
        // connection's is asked for on its own).
        self.tcp_info = snap.sockets.len() <= crate::collect::TCP_INFO_LIMIT;
        self.source.set_tcp_info(self.tcp_info);
        Ok((snap, self.stats(took), parts))
    }

    /// Fills in `tcp_info` for the focused connection when the dump left it out.
    fn add_focus_tcp_info(&mut self, snap: &mut Snapshot) {
        let Some(focus) = &self.focus else { return };
        if focus.proto != crate::model::Proto::Tcp {
            return;
        }
        let key = focus.key();
        let Some(sock) = snap.sockets.iter_mut().find(|s| s.key() == key) else {
            return;
        };
        if sock.tcp_info.is_some() {
            return;
        }
        if let Some(fresh) = self.source.query_one(sock)
            && fresh.state == sock.state
        {
            sock.tcp_info = fresh.tcp_info;
        }
    }
}

#[cfg(test)]
mod tests;
