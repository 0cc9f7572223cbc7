//! The monitor's views: the socket table (the main screen), findings, kernel
//! counters, sysctls and the TCP state diagram. Keys `1`..`5` switch between
//! them; each view keeps its own cursor and scroll position. Views other
//! than the socket table replace the state strip and the table.

use super::keymap::Action;
use super::{App, Effect};
use crate::model::findings::{Finding, Kind};
use crate::model::group::{self, StateCounts};
use crate::model::{Proto, counter_rows, diagram, view};

/// What identifies a finding from one sample to the next.
pub type FindingKey = (Kind, Option<u32>, Option<u16>);

pub fn finding_key(f: &Finding) -> FindingKey {
    (f.kind, f.pid, f.port)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Sockets,
    Findings,
    Counters,
    Sysctls,
    Diagram,
    Transitions,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Sockets,
        View::Findings,
        View::Counters,
        View::Sysctls,
        View::Diagram,
        View::Transitions,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Sockets => "sockets",
            View::Findings => "findings",
            View::Counters => "counters",
            View::Sysctls => "sysctls",
            View::Diagram => "diagram",
            View::Transitions => "transitions",
        }
    }

    /// The action (and so the key) that selects this view.
    pub fn action(self) -> Action {
        match self {
            View::Sockets => Action::ViewSockets,
            View::Findings => Action::ViewFindings,
            View::Counters => Action::ViewCounters,
            View::Sysctls => Action::ViewSysctls,
            View::Diagram => Action::ViewDiagram,
            View::Transitions => Action::ViewTransitions,
        }
    }
}

/// Cursor and first visible row of a list view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListPos {
    pub cursor: usize,
    pub offset: usize,
}

impl ListPos {
    /// Moves the cursor within `len` rows and scrolls only as far as needed
    /// to keep it on a page of `page` rows.
    fn move_by(&mut self, by: isize, len: usize, page: usize) {
        let last = len.saturating_sub(1) as isize;
        self.cursor = (self.cursor as isize).saturating_add(by).clamp(0, last) as usize;
        self.offset = view::visible_offset(self.offset, self.cursor, page.max(1), len);
    }
}

/// What the views other than the socket table remember.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    /// The findings list, and which finding is selected (kept by identity:
    /// the list is re-ordered at every sample).
    pub findings: ListPos,
    pub finding_key: Option<FindingKey>,
    pub counters: ListPos,
    pub sysctls: ListPos,
    /// First drawing line shown when the diagram is taller than the screen.
    pub diagram_scroll: usize,
    /// First line shown of the transitions view's list.
    pub transitions_scroll: usize,
    /// TCP sockets per state in the sample on screen that the filter shows,
    /// for the diagram (the strip's counts include UDP). Computed only while
    /// the diagram is shown.
    pub tcp_counts: StateCounts,
}

impl App {
    pub fn set_view(&mut self, view: View) {
        self.view = view;
        self.refresh_view();
    }

    /// Recomputes what the active view derives from the sample on screen.
    pub(super) fn refresh_view(&mut self) {
        // The selected finding stays selected when the list re-orders.
        let len = self.findings.len();
        let found = self
            .views
            .finding_key
            .and_then(|k| self.findings.iter().position(|f| finding_key(f) == k));
        let pos = &mut self.views.findings;
        pos.cursor = found.unwrap_or(pos.cursor).min(len.saturating_sub(1));
        pos.offset = view::visible_offset(pos.offset, pos.cursor, self.page.max(1), len);
        if self.view == View::Diagram {
            // The diagram counts what the table's filter shows, as the strip.
            let snap = &self.snapshot;
            let tcp = snap
                .sockets
                .iter()
                .filter(|s| s.proto == Proto::Tcp && self.effective.matches(s, snap));
            self.views.tcp_counts = group::by_state(tcp);
        }
    }

    /// An action in a view other than the socket table, or None when the
    /// socket table's handling applies.
    pub(super) fn on_view_action(&mut self, action: Action) -> Option<Vec<Effect>> {
        let page = self.page as isize;
        match action {
            Action::Enter if self.view == View::Findings => self.open_finding(),
            Action::Back => self.set_view(View::Sockets),
            Action::Up => self.scroll_view(-1),
            Action::Down => self.scroll_view(1),
            Action::PageUp => self.scroll_view(-page),
            Action::PageDown => self.scroll_view(page),
            Action::Home => self.scroll_view(isize::MIN / 2),
            Action::End => self.scroll_view(isize::MAX / 2),
            // The filter applies to the socket table: show it while typing.
            Action::Filter => {
                self.set_view(View::Sockets);
                return None;
            }
            // Acting on sockets needs the table on screen, to see what is selected.
            Action::Kill
            | Action::Destroy
            | Action::ExportCsv
            | Action::ExportJson
            | Action::Copy => {
                let key = self
                    .keymap
                    .keys(Action::ViewSockets)
                    .first()
                    .map(|k| k.label())
                    .unwrap_or_default();
                self.status = Some(format!(
                    "press {key} for the socket table to act on sockets"
                ));
            }
            // Table keys do nothing here rather than change a hidden table.
            Action::Enter
            | Action::Focus
            | Action::Left
            | Action::Right
            | Action::SortNext
            | Action::SortPrev
            | Action::SortReverse
            | Action::Group => {}
            _ => return None,
        }
        Some(Vec::new())
    }

    /// The selected finding, in the findings view.
    pub fn selected_finding(&self) -> Option<&Finding> {
        self.findings.get(self.views.findings.cursor)
    }

    /// Jumps to the socket table showing the selected finding's sockets.
    fn open_finding(&mut self) {
        let Some(f) = self.selected_finding() else {
            return;
        };
        if f.filter.is_empty() {
            self.status = Some(format!(
                "{}: a machine-wide counter, no sockets to show",
                f.kind.name()
            ));
            return;
        }
        // The finding's own filter replaces the one in force (which may not
        // even show its sockets); Esc comes back here with both restored.
        let (label, term) = (f.kind.name().to_string(), f.filter.clone());
        let Ok(filter) = crate::model::Filter::parse(&term) else {
            self.status = Some(format!("{label}: cannot show its sockets ({term})"));
            return;
        };
        if self.jumped_from.is_none() {
            self.jumped_from = Some(super::JumpOrigin {
                filter: std::mem::replace(&mut self.filter, filter),
                drill: std::mem::take(&mut self.drill),
                grouping: self.grouping,
                label,
            });
        } else {
            // A second jump without going back: Esc still returns to where
            // the first one started.
            self.filter = filter;
            self.drill.clear();
            if let Some(o) = &mut self.jumped_from {
                o.label = label;
            }
        }
        self.view = View::Sockets;
        self.grouping = view::Grouping::Flat;
        self.focus = super::Focus::Table;
        self.filter_changed();
    }

    fn scroll_view(&mut self, by: isize) {
        // The table's page is close to what a view shows; the renderer keeps
        // the cursor visible whatever the exact height.
        let page = self.page;
        match self.view {
            View::Sockets => {}
            View::Findings => {
                self.views.findings.move_by(by, self.findings.len(), page);
                self.views.finding_key = self
                    .findings
                    .get(self.views.findings.cursor)
                    .map(finding_key);
            }
            View::Counters => {
                let len = counter_rows::table(self.counters_in_view().0).rows.len();
                self.views.counters.move_by(by, len, page);
            }
            View::Sysctls => {
                let len = match &self.netns_counters {
                    Some((ns, _)) => self
                        .snapshot
                        .namespaces
                        .get(*ns)
                        .map_or(0, |n| n.system.sysctls.len()),
                    None => self.snapshot.system.sysctls.len(),
                };
                self.views.sysctls.move_by(by, len, page);
            }
            View::Diagram => {
                // The drawing gets the strip's 3 rows and the table's header
                // and title, less the view's title and a one-line legend:
                // page + 3. The renderer clamps to what it really shows.
                let max = diagram::drawing().len().saturating_sub(page + 3);
                let scroll = (self.views.diagram_scroll as isize).saturating_add(by);
                self.views.diagram_scroll = scroll.clamp(0, max as isize) as usize;
            }
            View::Transitions => {
                let len = self.trace.as_ref().map_or(0, |t| t.recent.len());
                let scroll = (self.views.transitions_scroll as isize).saturating_add(by);
                self.views.transitions_scroll =
                    scroll.clamp(0, len.saturating_sub(1) as isize) as usize;
            }
        }
    }
}
