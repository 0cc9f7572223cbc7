//! Drill-downs: Enter on a group shows its connections (a filter term is
//! added), Esc goes back to where it came from, or clears the filter.

use super::{App, Focus, Mode, STRIP_STATES};
use crate::model::Filter;
use crate::model::view::{Grouping, Row, RowKey};

/// A step into a group: the filter term it added and where we came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drill {
    pub label: String,
    pub term: String,
    pub from: Grouping,
    pub selected: Option<RowKey>,
}

impl App {
    pub(super) fn back(&mut self) {
        if let Some(d) = self.drill.pop() {
            self.grouping = d.from;
            if let Some(sel) = d.selected {
                self.selected.insert(d.from, sel);
            }
            self.set_effective_filter();
            self.rebuild();
        } else if let Some(origin) = self.jumped_from.take() {
            // Back from a finding's sockets to the findings view, as it was.
            self.filter = origin.filter;
            self.drill = origin.drill;
            self.grouping = origin.grouping;
            self.set_effective_filter();
            self.rebuild();
            self.set_view(super::View::Findings);
        } else if !self.filter.is_empty() {
            self.filter = Filter::default();
            self.filter_changed();
            self.status = Some("filter cleared".into());
        }
    }

    pub(super) fn enter(&mut self) {
        if self.focus == Focus::States {
            let state = STRIP_STATES[self.state_cursor];
            self.push_drill(
                state.kernel_name().to_string(),
                format!("state:{}", state.kernel_name()),
                self.grouping,
            );
            return;
        }
        let Some(row) = self.rows.get(self.cursor) else {
            return;
        };
        let (label, term) = match row {
            Row::Process(g) => match g.pid {
                Some(pid) => (format!("pid {pid}"), format!("pid:{pid}")),
                None => ("no owner".to_string(), "pid:none".to_string()),
            },
            Row::Port(g) => (
                format!("{} port {}", g.proto.name(), g.port),
                format!("proto:{} lport:{}", g.proto.name(), g.port),
            ),
            Row::Remote(g) => (format!("host {}", g.host), format!("raddr:{}", g.host)),
            // By inode: a name may be anything a container runtime allowed.
            Row::Netns(g) => (
                format!(
                    "netns {}",
                    crate::sanitize::clean(self.snapshot.namespaces.name(g.netns))
                ),
                if g.netns == crate::model::HOST_NETNS {
                    "netns:host".to_string()
                } else {
                    format!("netns:{}", g.netns)
                },
            ),
            Row::Conn(_) => {
                self.mode = Mode::Detail;
                self.detail_scroll = 0;
                return;
            }
        };
        self.push_drill(label, term, Grouping::Flat);
    }

    pub(super) fn push_drill(&mut self, label: String, term: String, to: Grouping) {
        self.drill.push(Drill {
            label,
            term,
            from: self.grouping,
            selected: self.selected.get(&self.grouping).cloned(),
        });
        self.grouping = to;
        self.cursor = 0;
        self.offset = 0;
        self.selected.remove(&to);
        self.focus = Focus::Table;
        self.set_effective_filter();
        self.rebuild();
    }
}
