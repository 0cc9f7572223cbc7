//! The live monitor's state and its one entry point, [`App::handle`]: an event
//! in, effects out. No I/O here; the loop in `tui` performs the effects.

pub mod actions;
mod drill;
pub mod keymap;
mod prompt;
pub mod replay;
pub mod rows;
pub mod views;

use crate::engine::{Analysis, Analyzer, Parts};
use crate::model::history::History;
use crate::model::view::{self, Grouping, Row, RowKey, ViewCtx};
use crate::model::{Filter, Snapshot, TcpState};
use crossterm::event::{KeyEvent, KeyEventKind};
pub use drill::Drill;
use keymap::{Action, Keymap};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
pub use views::{View, ViewState};

/// Everything that can happen to the app.
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    /// A sample the engine digested.
    Analysis(Arc<Analysis>),
    /// The engine left a new analysis in its slot: the loop takes it and
    /// hands it in as [`Event::Analysis`].
    Sampled,
    /// Rows the worker built for a very large view.
    Rows(Box<rows::Built>),
    /// A raw sample (fixtures, tests): digested by the app's own analyzer,
    /// the same code the engine runs.
    Snapshot(Arc<Snapshot>, CollectStats),
    CollectFailed(String),
    /// `--record` could not write: recording stopped, the monitor goes on.
    RecordFailed(String),
    Resize(u16, u16),
    Resolved(IpAddr, Option<String>),
    /// SIGTERM, SIGINT, SIGHUP, or the terminal went away.
    Terminate,
    /// The result of an [`Effect::Action`].
    Action(actions::ActionEvent),
    /// Where a replay is, and maybe a frame to show.
    Replay(Box<crate::replay::Update>),
}

pub use crate::engine::CollectStats;

/// What the loop must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    SetInterval(Duration),
    Resolve(Vec<IpAddr>),
    /// Signal, destroy, export, copy: see [`actions`].
    Action(actions::ActionEffect),
    /// Tell the replay driver to move.
    Replay(crate::replay::Command),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Help,
    Detail,
    /// The signal dialog (`k`); state in [`App::dialog`].
    Kill,
    /// The destroy confirmation (`x`).
    Destroy,
    /// The replay's time prompt (`t`).
    Jump,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Table,
    States,
}

/// The states shown in the strip, in order.
pub const STRIP_STATES: [TcpState; 7] = [
    TcpState::Established,
    TcpState::SynRecv,
    TcpState::FinWait2,
    TcpState::TimeWait,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::Listen,
];

/// Refresh intervals `+` and `-` step through.
const INTERVALS_MS: [u64; 9] = [500, 1000, 2000, 3000, 5000, 10_000, 15_000, 30_000, 60_000];

/// The part of the sample the filter shows (see [`App::filtered`]).
#[derive(Debug, Clone, Default)]
pub struct Filtered {
    pub counts: crate::model::group::StateCounts,
    /// Per-state counts of the filtered sockets in the samples since the
    /// filter was set, oldest first (the machine's are in `history`).
    pub series: std::collections::VecDeque<crate::model::group::StateCounts>,
    /// Findings among the filtered sockets, most severe first.
    pub findings: Vec<crate::model::findings::Finding>,
    /// The effective filter these were computed for.
    filter: String,
    /// And the sample (its address): a re-sort or a cursor move recomputes nothing.
    sample: usize,
}

impl Filtered {
    /// The count of `state` in each sample since the filter was set.
    pub fn state_series(&self, state: TcpState) -> Vec<u64> {
        self.series
            .iter()
            .map(|c| u64::from(c.get(state)))
            .collect()
    }

    /// Change of `state` since the previous sample.
    pub fn delta(&self, state: TcpState) -> i64 {
        let n = self.series.len();
        if n < 2 {
            return 0;
        }
        i64::from(self.series[n - 1].get(state)) - i64::from(self.series[n - 2].get(state))
    }
}

/// Where a jump from the findings view came from.
#[derive(Debug, Clone)]
pub struct JumpOrigin {
    pub filter: Filter,
    pub drill: Vec<Drill>,
    pub grouping: Grouping,
    /// The finding's kind, shown in the table's title.
    pub label: String,
}

pub struct App {
    pub keymap: Keymap,
    /// What is on screen; frozen while paused.
    pub snapshot: Arc<Snapshot>,
    /// Newer than `snapshot` when paused.
    pub pending: Option<Arc<Analysis>>,
    /// Sockets per state in `snapshot`, for the state strip.
    pub counts: crate::model::group::StateCounts,
    /// The history up to the shown sample (the engine's, shared).
    pub history: Arc<History>,
    /// What the findings engine says about the shown snapshot (the whole
    /// machine, not only what the filter shows), most severe first.
    pub findings: Arc<Vec<crate::model::findings::Finding>>,
    /// How fresh each part of the shown sample is, when the trouble states
    /// are refreshed more often than the rest.
    pub parts: Option<Parts>,
    /// The transitions of the shown sample's interval (None: not followed,
    /// as in a replay of an older recording).
    pub trace: Option<Arc<crate::trace::TraceSample>>,
    /// Set once the status line said why transitions are not followed.
    trace_noted: bool,
    /// Digests raw samples ([`Event::Snapshot`]) and replay frames.
    analyzer: Analyzer,
    /// Row rebuilds so far (one per batch of prompt keys, not one per key).
    pub rebuilds: u64,
    /// Inside a batch of prompt keys: the rebuild waits for its end.
    deferring: bool,
    stale: bool,
    /// Builds the rows of very large views (the live monitor has one).
    worker: Option<rows::Worker>,
    /// The id of the newest rows request the worker has not answered.
    waiting: Option<u64>,
    /// A sample waiting for its rows from the worker.
    incoming: Option<Arc<Analysis>>,
    /// What the table's filter shows: its sockets per state and findings,
    /// for the strip and the finding line. None without a filter (then both
    /// show the whole machine, `counts` and `findings`).
    pub filtered: Option<Filtered>,
    /// The filter, drill and grouping from before a jump from the findings
    /// view (Enter there), restored by Esc, which goes back to that view.
    pub jumped_from: Option<JumpOrigin>,
    pub filter: Filter,
    pub drill: Vec<Drill>,
    pub grouping: Grouping,
    /// The counters of the one network namespace the filter narrows to,
    /// recorded from the samples since it did (the engine's history keeps
    /// the host's only).
    pub netns_counters: Option<(u64, crate::model::counters::CounterHistory)>,
    sorts: HashMap<Grouping, (usize, bool)>,
    selected: HashMap<Grouping, RowKey>,
    /// Rows of the current view, sorted.
    pub rows: Vec<Row>,
    /// The grouping and sort `rows` were built with: the table draws with
    /// these, which differ from `grouping` and `sort()` only while a very
    /// large view is being rebuilt off the UI thread.
    pub shown_grouping: Grouping,
    pub shown_sort: (usize, bool),
    /// Index of the selected row in `rows`.
    pub cursor: usize,
    /// First visible row, kept by the table so the cursor stays on screen.
    pub offset: usize,
    pub mode: Mode,
    pub focus: Focus,
    pub state_cursor: usize,
    pub paused: bool,
    pub interval: Duration,
    pub stats: Option<CollectStats>,
    pub prompt: String,
    /// The prompt's text is selected, as when it opened with the filter in
    /// force: typing replaces it, a cursor key keeps it for editing.
    pub prompt_selected: bool,
    pub prompt_error: Option<String>,
    /// The filter in force when the prompt opened, restored by Esc.
    saved_filter: Option<Filter>,
    pub status: Option<String>,
    pub resolve: bool,
    pub names: HashMap<IpAddr, String>,
    requested: HashSet<IpAddr>,
    pub host: String,
    pub kernel: String,
    /// Rows the table shows at once; set from the terminal size.
    pub page: usize,
    /// Filter terms of the sockets shown, combined with drill terms.
    pub(crate) effective: Filter,
    pub detail_scroll: u16,
    /// Wall-clock time of the draw, for the sample's age; set by the loop.
    pub clock: SystemTime,
    /// `--read-only`: k and x are refused.
    pub read_only: bool,
    /// `--record FILE`: where the samples are being written.
    pub recording: Option<String>,
    /// Never signalled.
    pub own_pid: u32,
    /// The SSH connection this session came in on: acting on it asks twice.
    pub ssh: Option<crate::act::plan::SshSession>,
    /// The open kill or destroy dialog.
    pub dialog: Option<actions::Dialog>,
    /// After `k`: the selection whose holders are checked on the next samples.
    pub after_signal: Option<actions::AfterSignal>,
    /// After `x`: each socket's cookie and the processes that keep its
    /// descriptor once it is destroyed.
    pub after_destroy: Vec<(u64, Vec<u32>)>,
    /// Which view is on screen (keys 1-6), and what the other views remember.
    pub view: View,
    pub views: ViewState,
    /// Set when showing a recording (`sockscope replay`).
    pub replay: Option<replay::Replay>,
    /// [`App::no_holder_reasons`] of one sample under one filter: the
    /// detail pane asks on every draw, and at 130k sockets each answer
    /// reads every socket.
    no_holders: std::cell::RefCell<Option<NoHolders>>,
}

/// Why sockets have no holder, counted for one sample (held weakly: its
/// address cannot be reused while the cache names it) and one filter.
struct NoHolders {
    sample: std::sync::Weak<Snapshot>,
    filter: Filter,
    reasons: Vec<(crate::model::holders::NoHolder, u32)>,
}

impl App {
    pub fn new(keymap: Keymap, filter: Filter, interval: Duration) -> App {
        let mut app = App {
            keymap,
            snapshot: Arc::new(Snapshot::empty(crate::model::SourceKind::Netlink)),
            pending: None,
            counts: Default::default(),
            history: Default::default(),
            findings: Default::default(),
            parts: None,
            trace: None,
            trace_noted: false,
            analyzer: Analyzer::new(),
            rebuilds: 0,
            deferring: false,
            stale: false,
            worker: None,
            waiting: None,
            incoming: None,
            filtered: None,
            jumped_from: None,
            effective: filter.clone(),
            filter,
            drill: Vec::new(),
            grouping: Grouping::Process,
            netns_counters: None,
            sorts: HashMap::new(),
            selected: HashMap::new(),
            rows: Vec::new(),
            shown_grouping: Grouping::Process,
            shown_sort: view::default_sort(Grouping::Process),
            cursor: 0,
            offset: 0,
            mode: Mode::Normal,
            focus: Focus::Table,
            state_cursor: 4,
            paused: false,
            interval,
            stats: None,
            prompt: String::new(),
            prompt_selected: false,
            prompt_error: None,
            saved_filter: None,
            status: None,
            resolve: false,
            names: HashMap::new(),
            requested: HashSet::new(),
            host: String::new(),
            kernel: String::new(),
            page: 10,
            detail_scroll: 0,
            clock: SystemTime::UNIX_EPOCH,
            read_only: false,
            recording: None,
            own_pid: std::process::id(),
            ssh: None,
            dialog: None,
            after_signal: None,
            after_destroy: Vec::new(),
            view: View::Sockets,
            views: ViewState::default(),
            replay: None,
            no_holders: Default::default(),
        };
        app.rebuild();
        app
    }

    pub fn sort(&self) -> (usize, bool) {
        self.sorts
            .get(&self.grouping)
            .copied()
            .unwrap_or_else(|| view::default_sort(self.grouping))
    }

    pub fn ctx(&self) -> ViewCtx<'_> {
        ViewCtx {
            snap: &self.snapshot,
            history: &self.history,
            now: self.snapshot.monotonic,
            names: self.resolve.then_some(&self.names),
            prefer: self.effective.pids().collect(),
        }
    }

    /// Why the sockets under the filter that no process holds have none,
    /// with how many each (for the `(no owner)` row's detail).
    pub fn no_holder_reasons(&self) -> Vec<(crate::model::holders::NoHolder, u32)> {
        if let Some(c) = &*self.no_holders.borrow()
            && c.sample.ptr_eq(&Arc::downgrade(&self.snapshot))
            && c.filter == self.effective
        {
            return c.reasons.clone();
        }
        let reasons = self.count_no_holder_reasons();
        *self.no_holders.borrow_mut() = Some(NoHolders {
            sample: Arc::downgrade(&self.snapshot),
            filter: self.effective.clone(),
            reasons: reasons.clone(),
        });
        reasons
    }

    fn count_no_holder_reasons(&self) -> Vec<(crate::model::holders::NoHolder, u32)> {
        let snap = &self.snapshot;
        let mut counts: Vec<(crate::model::holders::NoHolder, u32)> = Vec::new();
        for s in &snap.sockets {
            if !s.owners.is_empty() {
                continue; // held: the cheap test first
            }
            if let Some(why) = crate::model::holders::why_none(snap, s)
                && self.effective.matches(s, snap)
            {
                match counts.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((why, 1)),
                }
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts
    }

    /// The connection under the cursor, in the flat view.
    pub fn selected_socket(&self) -> Option<&crate::model::Socket> {
        self.rows.get(self.cursor)?.socket(&self.snapshot)
    }

    pub fn selected_key(&self) -> Option<&RowKey> {
        self.selected.get(&self.grouping)
    }

    fn matching(&self) -> Vec<usize> {
        let snap = &self.snapshot;
        (0..snap.sockets.len())
            .filter(|&i| self.effective.matches(&snap.sockets[i], snap))
            .collect()
    }

    /// Sockets per state for the strip: the filter's, or the machine's.
    pub fn strip_counts(&self) -> &crate::model::group::StateCounts {
        self.filtered.as_ref().map_or(&self.counts, |f| &f.counts)
    }

    /// The findings the finding line shows: the filter's, or the machine's.
    pub fn line_findings(&self) -> &[crate::model::findings::Finding] {
        self.filtered
            .as_ref()
            .map_or(&self.findings, |f| &f.findings)
    }

    /// Findings outside the filter at least as severe as the finding line's
    /// (all of them, when the filter has none): what "+N more elsewhere"
    /// counts.
    pub fn findings_elsewhere(&self) -> usize {
        let Some(f) = &self.filtered else {
            return 0;
        };
        let floor = f
            .findings
            .first()
            .map_or(crate::model::findings::Severity::Info, |t| t.severity);
        let inside: HashSet<_> = f.findings.iter().map(views::finding_key).collect();
        self.findings
            .iter()
            .filter(|m| m.severity >= floor && !inside.contains(&views::finding_key(m)))
            .count()
    }

    /// A new filter: the cursor goes to the first row (the old selection is
    /// rarely among the new rows, and the first row is what the user looks at).
    fn filter_changed(&mut self) {
        self.set_effective_filter();
        self.cursor = 0;
        self.offset = 0;
        self.selected.remove(&self.grouping);
        self.rebuild();
    }

    /// Scrolls only as far as needed to keep the cursor on the page.
    fn follow_cursor(&mut self) {
        self.offset = view::visible_offset(self.offset, self.cursor, self.page, self.rows.len());
    }

    fn remember_selection(&mut self) {
        if let Some(row) = self.rows.get(self.cursor) {
            let key = row.key(&self.snapshot);
            self.selected.insert(self.grouping, key);
        }
    }

    fn set_effective_filter(&mut self) {
        let mut text = self.filter.text().to_string();
        for d in &self.drill {
            text.push(' ');
            text.push_str(&d.term);
        }
        // Drill terms are built by us from valid values; they always parse.
        self.effective = Filter::parse(&text).unwrap_or_else(|_| self.filter.clone());
    }

    /// Handles what arrived together (what the loop found queued) and
    /// rebuilds the rows once for a run of prompt keys: a paste of 20
    /// characters filters once, not 20 times. Other events see the rows as
    /// they are after every event before them.
    pub fn handle_batch(&mut self, events: impl IntoIterator<Item = Event>) -> Vec<Effect> {
        let mut effects = Vec::new();
        for event in events {
            let typing = self.mode == Mode::Filter && matches!(event, Event::Key(_));
            if !typing {
                self.settle();
            }
            self.deferring = typing;
            effects.extend(self.handle_one(event));
            self.deferring = false;
            if effects.contains(&Effect::Quit) {
                break;
            }
        }
        self.settle();
        effects
    }

    /// Rebuilds the rows if a batch left them behind.
    fn settle(&mut self) {
        if self.stale {
            self.rebuild();
        }
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        self.handle_batch(std::iter::once(event))
    }

    fn take_analysis(&mut self, analysis: Arc<Analysis>) -> Vec<Effect> {
        if self.paused {
            self.pending = Some(analysis);
        } else {
            self.show(analysis);
        }
        self.resolve_effects()
    }

    fn handle_one(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) if key.kind == KeyEventKind::Press => self.on_key(key),
            Event::Key(_) => Vec::new(),
            Event::Analysis(analysis) => self.take_analysis(analysis),
            Event::Sampled => Vec::new(),
            Event::Rows(built) => self.on_rows(*built),
            Event::Snapshot(snap, stats) => {
                let analysis = self.analyzer.digest(snap, Some(stats), None);
                self.take_analysis(analysis)
            }
            Event::CollectFailed(msg) => {
                self.status = Some(format!("collection failed: {msg}"));
                Vec::new()
            }
            Event::RecordFailed(msg) => {
                self.recording = None;
                self.status = Some(format!("recording stopped: {msg}"));
                Vec::new()
            }
            // The loop sets `page` from the screen layout; a resize only redraws.
            Event::Resize(..) => Vec::new(),
            Event::Resolved(ip, name) => {
                if let Some(n) = name {
                    self.names.insert(ip, n);
                }
                Vec::new()
            }
            Event::Terminate => vec![Effect::Quit],
            Event::Action(ev) => self.on_action_event(ev),
            Event::Replay(update) => self.on_replay_update(*update),
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.mode {
            Mode::Filter => return self.on_prompt_key(key),
            Mode::Jump => return self.on_jump_key(key),
            _ => {}
        }
        if matches!(self.mode, Mode::Kill | Mode::Destroy) {
            return self.on_dialog_key(key);
        }
        let action = self.keymap.action(&key);
        if self.mode == Mode::Help {
            // Any key closes the help, as its title says, and does nothing
            // else: not even quit (Ctrl-C still does).
            self.mode = Mode::Normal;
            return if is_ctrl_c(&key) {
                vec![Effect::Quit]
            } else {
                Vec::new()
            };
        }
        let Some(action) = action else {
            let help = self.keymap.label(Action::Help);
            self.status = Some(format!(
                "{}: no action bound to this key ({help}: the keys)",
                keymap::Key::from_event(&key).label()
            ));
            return Vec::new();
        };
        self.status = None;
        if self.mode == Mode::Detail {
            match action {
                Action::Quit => return vec![Effect::Quit],
                Action::Back | Action::Enter => {
                    self.mode = Mode::Normal;
                    return Vec::new();
                }
                Action::Up => {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1);
                    return Vec::new();
                }
                Action::Down => {
                    self.detail_scroll = self.detail_scroll.saturating_add(1);
                    return Vec::new();
                }
                _ => {}
            }
        }
        self.on_action(action)
    }

    pub fn on_action(&mut self, action: Action) -> Vec<Effect> {
        if let Some(effects) = self.on_replay_action(action) {
            return effects;
        }
        if self.view != View::Sockets
            && let Some(effects) = self.on_view_action(action)
        {
            return effects;
        }
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Help => self.mode = Mode::Help,
            Action::Filter => {
                self.mode = Mode::Filter;
                // As a browser's address bar: the filter in force, selected.
                self.prompt = self.filter.text().to_string();
                self.prompt_selected = !self.prompt.is_empty();
                self.prompt_error = None;
                self.saved_filter = Some(self.filter.clone());
            }
            Action::Back => self.back(),
            Action::Enter => self.enter(),
            Action::Focus => {
                self.focus = match self.focus {
                    Focus::Table => Focus::States,
                    Focus::States => Focus::Table,
                }
            }
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::Left if self.focus == Focus::States => {
                self.state_cursor =
                    (self.state_cursor + STRIP_STATES.len() - 1) % STRIP_STATES.len()
            }
            Action::Right if self.focus == Focus::States => {
                self.state_cursor = (self.state_cursor + 1) % STRIP_STATES.len()
            }
            Action::Left => self.cycle_sort(-1),
            Action::Right => self.cycle_sort(1),
            Action::PageUp => self.move_cursor(-(self.page as isize)),
            Action::PageDown => self.move_cursor(self.page as isize),
            Action::Home => self.move_cursor(isize::MIN / 2),
            Action::End => self.move_cursor(isize::MAX / 2),
            Action::SortNext => self.cycle_sort(1),
            Action::SortPrev => self.cycle_sort(-1),
            Action::SortReverse => {
                let (col, desc) = self.sort();
                self.sorts.insert(self.grouping, (col, !desc));
                self.rebuild();
            }
            Action::Group => {
                self.grouping = self.grouping.next(!self.snapshot.namespaces.is_empty());
                self.offset = 0;
                self.rebuild();
                return self.resolve_effects();
            }
            Action::Pause => {
                self.paused = !self.paused;
                if !self.paused
                    && let Some(snap) = self.pending.take()
                {
                    self.show(snap);
                }
            }
            Action::Slower | Action::Faster => {
                let ms = self.interval.as_millis() as u64;
                let next = if action == Action::Slower {
                    INTERVALS_MS.iter().copied().find(|&i| i > ms).unwrap_or(ms)
                } else {
                    INTERVALS_MS
                        .iter()
                        .rev()
                        .copied()
                        .find(|&i| i < ms)
                        .unwrap_or(ms)
                };
                self.interval = Duration::from_millis(next);
                self.status = Some(format!("refresh every {}", format_interval(self.interval)));
                return vec![Effect::SetInterval(self.interval)];
            }
            Action::Resolve => {
                self.resolve = !self.resolve;
                self.status = Some(if self.resolve {
                    "reverse DNS on (names appear as they resolve)".into()
                } else {
                    "reverse DNS off".into()
                });
                self.rebuild();
                return self.resolve_effects();
            }
            Action::Kill
            | Action::Destroy
            | Action::ExportCsv
            | Action::ExportJson
            | Action::Copy => return self.on_act(action),
            Action::ViewSockets => self.set_view(View::Sockets),
            Action::ViewFindings => self.set_view(View::Findings),
            Action::ViewCounters => self.set_view(View::Counters),
            Action::ViewSysctls => self.set_view(View::Sysctls),
            Action::ViewDiagram => self.set_view(View::Diagram),
            Action::ViewTransitions => self.set_view(View::Transitions),
            // Handled by on_replay_action, in a replay or not.
            Action::StepBack
            | Action::StepForward
            | Action::PlaySlower
            | Action::PlayFaster
            | Action::ReplayStart
            | Action::ReplayEnd
            | Action::JumpTo => {}
        }
        Vec::new()
    }

    fn move_cursor(&mut self, by: isize) {
        if self.rows.is_empty() {
            return;
        }
        let last = self.rows.len() as isize - 1;
        self.cursor = (self.cursor as isize).saturating_add(by).clamp(0, last) as usize;
        self.follow_cursor();
        self.remember_selection();
    }

    fn cycle_sort(&mut self, by: isize) {
        let n = view::columns(self.grouping).len() as isize;
        let (col, _) = self.sort();
        let next = ((col as isize + by).rem_euclid(n)) as usize;
        let numeric = view::columns(self.grouping)[next].numeric;
        // Numbers sort largest first, text A to Z.
        self.sorts.insert(self.grouping, (next, numeric));
        self.rebuild();
    }

    /// Asks for names of the remote hosts in view that are not known yet.
    fn resolve_effects(&mut self) -> Vec<Effect> {
        if !self.resolve {
            return Vec::new();
        }
        let snap = &self.snapshot;
        let mut ips = Vec::new();
        let visible = self.rows.iter().skip(self.offset).take(self.page.max(50));
        for row in visible {
            let ip = match row {
                Row::Remote(g) => Some(g.host),
                Row::Conn(i) => {
                    let s = &snap.sockets[*i];
                    (!s.remote_is_unspecified()).then(|| s.remote.ip().to_canonical())
                }
                _ => None,
            };
            if let Some(ip) = ip
                && self.requested.insert(ip)
            {
                ips.push(ip);
            }
        }
        if ips.is_empty() {
            Vec::new()
        } else {
            vec![Effect::Resolve(ips)]
        }
    }
}

/// Keeps as many samples of filtered counts as the trend window.
fn push_counts(
    series: &mut std::collections::VecDeque<crate::model::group::StateCounts>,
    counts: crate::model::group::StateCounts,
) {
    if series.len() == crate::model::history::TREND_SAMPLES {
        series.pop_front();
    }
    series.push_back(counts);
}

fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.code == crossterm::event::KeyCode::Char('c')
        && key
            .modifiers
            .contains(crossterm::event::KeyModifiers::CONTROL)
}

pub fn format_interval(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
