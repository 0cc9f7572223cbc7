//! The socket table's rows: filter, group, sort, and the selected row found
//! again. Views of up to [`ASYNC_ABOVE`] sockets are built in place; larger
//! ones on a worker thread, the newest request winning, while the screen
//! keeps the rows it has together with the sample they were built from (a
//! new sample goes on screen with its rows, never before them).

use super::{App, Filtered, push_counts};
use crate::engine::Analysis;
use crate::model::findings::{self, Finding};
use crate::model::group::StateCounts;
use crate::model::history::History;
use crate::model::view::{self, Grouping, Row, RowKey, ViewCtx};
use crate::model::{Filter, Snapshot};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};

/// Above this many sockets in the sample, rows are built off the UI thread
/// (when the app has a [`Worker`]): at 130k sockets a rebuild takes tens of
/// milliseconds, below this a few.
pub const ASYNC_ABOVE: usize = 20_000;

/// Everything a build needs, owned, so it can cross to the worker.
pub struct Request {
    pub id: u64,
    snapshot: Arc<Snapshot>,
    history: Arc<History>,
    filter: Filter,
    grouping: Grouping,
    sort: (usize, bool),
    names: Option<HashMap<IpAddr, String>>,
    selected: Option<RowKey>,
    /// The filter's counts and findings are wanted (not already known for
    /// this sample and filter).
    filtered: bool,
    /// Rows the screen shows at once: a large connections view hands them
    /// over first, sorted, before it sorts the rest (0: in one step).
    head: usize,
    /// The cursor's row now, which stays where it is when nothing is selected.
    cursor: usize,
}

/// The rows built for a [`Request`].
pub struct Built {
    pub id: u64,
    /// The grouping and sort the rows were built with.
    grouping: Grouping,
    sort: (usize, bool),
    rows: Vec<Row>,
    /// Where the selected row is among them.
    found: Option<usize>,
    /// The filter's counts and findings, when asked for.
    filtered: Option<(StateCounts, Vec<Finding>)>,
    /// Only the first page is in order: the whole sort follows.
    partial: bool,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Built {{ id: {}, rows: {} }}", self.id, self.rows.len())
    }
}

/// Builds the rows (the same code in place and on the worker).
pub fn build(req: &Request) -> Built {
    build_in_steps(req, |_| {})
}

/// Above this many rows a connections view with a [`Request::head`] is
/// sorted in two steps.
const STEPS_ABOVE: usize = 20_000;

/// [`build`], handing the first page of a large connections view to
/// `first`, in order, before the rest is sorted: when the cursor is on that
/// page, what the screen shows is final.
pub fn build_in_steps(req: &Request, first: impl FnMut(Built)) -> Built {
    build_unless(req, first, || false).expect("never given up")
}

/// [`build_in_steps`], given up (None) between two of its steps once
/// `superseded` says a newer request came: its rows would not be shown,
/// and the newer one waits for them. A key pressed while a new sample's
/// rows are built then costs the rest of one step, not of the build.
pub fn build_unless(
    req: &Request,
    mut first: impl FnMut(Built),
    superseded: impl Fn() -> bool,
) -> Option<Built> {
    let snap = &*req.snapshot;
    let indices: Vec<usize> = (0..snap.sockets.len())
        .filter(|&i| req.filter.matches(&snap.sockets[i], snap))
        .collect();
    if superseded() {
        return None;
    }
    let mut filtered = (req.filtered && !req.filter.is_empty()).then(|| {
        let counts = crate::model::group::by_state(indices.iter().map(|&i| &snap.sockets[i]));
        (counts, findings::analyze(snap, &req.history, &req.filter))
    });
    if superseded() {
        return None;
    }
    let mut rows = view::build(req.grouping, snap, &indices);
    if superseded() {
        return None;
    }
    let ctx = ViewCtx {
        snap,
        history: &req.history,
        now: snap.monotonic,
        names: req.names.as_ref(),
        prefer: req.filter.pids().collect(),
    };
    let find = |rows: &[Row]| {
        req.selected
            .as_ref()
            .and_then(|k| rows.iter().position(|r| r.key(snap) == *k))
    };
    let built = |rows, found, filtered, partial| Built {
        id: req.id,
        grouping: req.grouping,
        sort: req.sort,
        rows,
        found,
        filtered,
        partial,
    };
    if req.head > 0 && req.grouping == Grouping::Flat && rows.len() > STEPS_ABOVE {
        let mut steps = view::ConnSort::new(&rows, req.sort.0, req.sort.1, &ctx);
        let head = steps.head(req.head);
        let found = find(&head[..req.head.min(head.len())]);
        let on_head = match &req.selected {
            Some(_) => found.is_some(),
            None => req.cursor < req.head,
        };
        if on_head {
            first(built(head, found, filtered.take(), true));
        }
        if superseded() {
            return None;
        }
        rows = steps.rest(req.head);
    } else {
        view::sort(&mut rows, req.sort.0, req.sort.1, &ctx);
    }
    let found = find(&rows);
    Some(built(rows, found, filtered, false))
}

/// The thread that builds large views. Requests queued behind the one it
/// is building are skipped but for the newest.
pub struct Worker {
    tx: Sender<Request>,
    next: u64,
    /// The id of the newest request sent: a build for an older one is
    /// given up between two steps.
    newest: Arc<AtomicU64>,
}

impl Worker {
    /// `deliver` hands a result to the UI loop; false once it is gone.
    pub fn spawn(deliver: impl Fn(Built) -> bool + Send + 'static) -> Worker {
        let (tx, rx) = mpsc::channel::<Request>();
        let newest = Arc::new(AtomicU64::new(0));
        let sent = Arc::clone(&newest);
        std::thread::Builder::new()
            .name("rows".into())
            .spawn(move || {
                while let Ok(mut req) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        req = newer;
                    }
                    let mut open = true;
                    let superseded = || sent.load(Ordering::Relaxed) != req.id;
                    let built = build_unless(&req, |head| open = open && deliver(head), superseded);
                    if !open {
                        return;
                    }
                    if let Some(built) = built
                        && !deliver(built)
                    {
                        return;
                    }
                }
            })
            .expect("spawn the rows thread");
        Worker {
            tx,
            next: 0,
            newest,
        }
    }

    /// Hands a request to the thread under the next id; false once the
    /// thread is gone.
    fn send(&mut self, mut req: Request) -> bool {
        self.next += 1;
        req.id = self.next;
        self.newest.store(self.next, Ordering::Relaxed);
        self.tx.send(req).is_ok()
    }
}

impl App {
    /// Builds very large views on `worker` from now on.
    pub fn use_rows_worker(&mut self, worker: Worker) {
        self.worker = Some(worker);
    }

    /// True while a very large view is being built off the UI thread.
    pub fn building(&self) -> bool {
        self.waiting.is_some()
    }

    fn goes_async(&self, snap: &Snapshot) -> bool {
        self.worker.is_some() && snap.sockets.len() > ASYNC_ABOVE
    }

    /// Puts an analysed sample on screen, with its rows.
    pub(super) fn show(&mut self, analysis: Arc<Analysis>) {
        if self.goes_async(&analysis.snapshot) {
            // Shown when its rows are built: a newer sample replaces it.
            self.incoming = Some(analysis);
            self.rebuild();
            return;
        }
        self.incoming = None;
        self.present(analysis);
        self.rebuild();
        self.after_sample();
    }

    fn present(&mut self, analysis: Arc<Analysis>) {
        // The header's figures are the shown sample's: not those of one
        // still waiting for its rows.
        self.stats = analysis.stats;
        self.counts = analysis.counts;
        self.findings = Arc::clone(&analysis.findings);
        self.history = Arc::clone(&analysis.history);
        self.parts = analysis.parts;
        self.trace = analysis.trace.clone();
        if let Some(t) = &self.trace
            && let crate::trace::Status::Off(why) = &t.status
            && !self.trace_noted
        {
            // Once: the transitions view says it again for whoever looks.
            self.trace_noted = true;
            self.status = Some(format!("transitions not followed: {why}"));
        }
        self.snapshot = Arc::clone(&analysis.snapshot);
        self.record_netns_counters();
    }

    /// One more sample of the counters of the namespace the filter narrows
    /// to (a new namespace starts a new history).
    pub(super) fn record_netns_counters(&mut self) {
        let Some(ns) = self.effective.namespace(&self.snapshot) else {
            self.netns_counters = None;
            return;
        };
        let Some(info) = self.snapshot.namespaces.get(ns) else {
            return;
        };
        if self.netns_counters.as_ref().is_none_or(|(n, _)| *n != ns) {
            self.netns_counters = Some((ns, Default::default()));
        }
        if let Some((_, h)) = &mut self.netns_counters {
            let at = std::time::SystemTime::UNIX_EPOCH + self.snapshot.monotonic;
            h.record(at, &info.system.counters);
        }
    }

    /// The counters the counters view shows: the filtered namespace's, or
    /// the host's; with the namespace's name when it is one.
    pub fn counters_in_view(&self) -> (&crate::model::counters::CounterHistory, Option<&str>) {
        match &self.netns_counters {
            Some((ns, h)) => (h, Some(self.snapshot.namespaces.name(*ns))),
            None => (&self.history.counters, None),
        }
    }

    fn after_sample(&mut self) {
        if let Some(f) = &mut self.filtered {
            // A new sample: one more point for the strip's filtered trend.
            push_counts(&mut f.series, f.counts);
        }
        self.refresh_view();
        self.check_after_signal();
    }

    /// Recomputes rows after the snapshot, filter, grouping or sort changed,
    /// and puts the cursor back on the selected row.
    pub(super) fn rebuild(&mut self) {
        if self.deferring {
            self.stale = true;
            return;
        }
        self.stale = false;
        self.rebuilds += 1;
        let (snapshot, history) = match &self.incoming {
            Some(a) => (Arc::clone(&a.snapshot), Arc::clone(&a.history)),
            None => (Arc::clone(&self.snapshot), Arc::clone(&self.history)),
        };
        let text = self.effective.text();
        let known = self
            .filtered
            .as_ref()
            .is_some_and(|f| f.filter == text && f.sample == Arc::as_ptr(&snapshot) as usize);
        let async_build = self.goes_async(&snapshot);
        let req = Request {
            id: 0,
            snapshot,
            history,
            filter: self.effective.clone(),
            grouping: self.grouping,
            sort: self.sort(),
            names: self.resolve.then(|| self.names.clone()),
            selected: self.selected.get(&self.grouping).cloned(),
            filtered: !known,
            head: if async_build { self.page.max(1) } else { 0 },
            cursor: self.cursor,
        };
        if async_build && let Some(w) = &mut self.worker {
            if w.send(req) {
                self.waiting = Some(w.next);
                return;
            }
            // The worker is gone: build here.
            self.worker = None;
            return self.rebuild();
        }
        self.waiting = None;
        let built = build(&req);
        self.apply(built, req.snapshot);
    }

    /// Rows from the worker: shown if they answer the newest request.
    pub(super) fn on_rows(&mut self, built: Built) -> Vec<super::Effect> {
        if self.waiting != Some(built.id) {
            return Vec::new(); // overtaken by a newer request
        }
        if !built.partial {
            self.waiting = None;
        }
        let incoming = self.incoming.take();
        let snapshot = incoming
            .as_ref()
            .map_or_else(|| Arc::clone(&self.snapshot), |a| Arc::clone(&a.snapshot));
        let new_sample = incoming.is_some();
        if let Some(a) = incoming {
            self.present(a);
        }
        self.apply(built, snapshot);
        if new_sample {
            self.after_sample();
        }
        self.resolve_effects()
    }

    fn apply(&mut self, built: Built, snapshot: Arc<Snapshot>) {
        self.apply_filtered(built.filtered, &snapshot);
        self.shown_grouping = built.grouping;
        self.shown_sort = built.sort;
        self.rows = built.rows;
        self.cursor = match built.found {
            Some(i) => i,
            None => self.cursor.min(self.rows.len().saturating_sub(1)),
        };
        self.follow_cursor();
        self.remember_selection();
    }

    /// What the strip and the finding line show for the filter.
    fn apply_filtered(&mut self, fresh: Option<(StateCounts, Vec<Finding>)>, snap: &Arc<Snapshot>) {
        if self.effective.is_empty() {
            self.filtered = None;
            return;
        }
        let Some((counts, found)) = fresh else {
            return; // known for this sample and filter
        };
        let text = self.effective.text();
        let f = self.filtered.get_or_insert_with(Filtered::default);
        f.sample = Arc::as_ptr(snap) as usize;
        if f.filter != text {
            // Another filter: its trend starts now.
            f.series.clear();
            f.filter = text.to_string();
            push_counts(&mut f.series, counts);
        } else if let Some(last) = f.series.back_mut() {
            *last = counts;
        }
        f.counts = counts;
        f.findings = found;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn request(grouping: Grouping, head: usize) -> Request {
        Request {
            id: 1,
            snapshot: Arc::new(crate::model::fixture::small()),
            history: Arc::new(History::default()),
            filter: Filter::default(),
            grouping,
            sort: (0, false),
            names: None,
            selected: None,
            filtered: true,
            head,
            cursor: 0,
        }
    }

    #[test]
    fn a_build_overtaken_by_a_newer_request_is_given_up_between_its_steps() {
        for grouping in [Grouping::Process, Grouping::Port, Grouping::Flat] {
            let req = request(grouping, 0);
            let whole = build(&req);
            assert!(!whole.rows.is_empty());
            // Never overtaken: the same rows as an uninterrupted build.
            let kept = build_unless(&req, |_| {}, || false).expect("not given up");
            assert_eq!(kept.rows.len(), whole.rows.len());
            // Overtaken after each number of steps: given up there, and the
            // steps after it are not asked about.
            for after in 0..3 {
                let asked = Cell::new(0);
                let built = build_unless(
                    &req,
                    |_| panic!("no head for a small view"),
                    || {
                        asked.set(asked.get() + 1);
                        asked.get() > after
                    },
                );
                assert!(built.is_none(), "{grouping:?} after {after} steps");
                assert_eq!(asked.get(), after + 1);
            }
        }
    }
}
