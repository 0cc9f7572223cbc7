//! The monitor's actions: `k` signals the owner of the selected row, `x`
//! destroys the selected sockets, `e`/`E` export the view, `y` copies a row.
//! Dialog state and its keys live here; the side effects are
//! [`ActionEffect`]s the loop performs, and their results come back as
//! [`ActionEvent`]s.

use super::keymap::Action;
use super::{App, Effect, Focus, Mode, STRIP_STATES};
use crate::act::destroy::{self, Outcome, Tuple};
use crate::act::export::Format;
use crate::act::plan::{self, SshSession};
use crate::act::signal::{self, Signal, SignalError, Target};
use crate::model::view::{self, Row};
use crate::model::{Socket, SourceKind, TcpState};
use crate::sanitize::clean;
use crossterm::event::KeyEvent;
use std::path::PathBuf;
use std::sync::Arc;

/// What the loop must do for an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionEffect {
    /// Open a pidfd for `pid` and check it still holds one of `holds`.
    OpenTarget {
        pid: u32,
        holds: Vec<(u32, u64)>,
    },
    Signal(Arc<Target>, Signal),
    /// Destroy these sockets (off the UI thread).
    Destroy(Vec<Tuple>),
    /// Write the current view to a file in the current directory.
    Export(Format),
    /// Put this text on the terminal's clipboard (OSC 52).
    Copy(String),
    /// Collect a new sample now, to show what the action changed.
    RefreshNow,
}

/// Results of [`ActionEffect`]s, back from the loop.
#[derive(Debug)]
pub enum ActionEvent {
    TargetOpened(u32, Result<Arc<Target>, SignalError>),
    Signalled {
        pid: u32,
        name: String,
        signal: Signal,
        result: Result<(), SignalError>,
    },
    Destroyed(Vec<(Tuple, Outcome)>),
    Exported(Result<(PathBuf, usize), String>),
}

/// Where the kill dialog's pidfd is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    Pending,
    Ready(Arc<Target>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillDialog {
    pub owner: plan::Owner,
    pub target: Opening,
    pub signal: Signal,
    /// The process holds the socket of this SSH session.
    pub ssh: Option<SshSession>,
    /// Enter was pressed once on a process holding the SSH session.
    pub asked_again: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestroyDialog {
    /// What was selected: `held by pid 1000 (redis-server)`, `on tcp port 6800`, ...
    /// May hold a process name: sanitize to show.
    pub what: String,
    pub tuples: Vec<Tuple>,
    pub states: Vec<(TcpState, u32)>,
    /// First tuple shown.
    pub scroll: usize,
    /// One of the sockets is this SSH session's.
    pub ssh: Option<SshSession>,
    pub asked_again: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    Kill(KillDialog),
    Destroy(DestroyDialog),
}

const READ_ONLY: &str = "read-only: k and x are off (started with --read-only)";

impl App {
    /// `k`, `x`, `e`, `E`, `y` in the normal view.
    pub(super) fn on_act(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Kill => self.open_kill(),
            Action::Destroy => self.open_destroy(),
            Action::ExportCsv => vec![Effect::Action(ActionEffect::Export(Format::Csv))],
            Action::ExportJson => vec![Effect::Action(ActionEffect::Export(Format::Json))],
            Action::Copy => self.copy_row(),
            _ => Vec::new(),
        }
    }

    /// The filter behind the rows on screen, drill-downs included.
    pub fn view_filter(&self) -> &str {
        self.effective.text()
    }

    fn close_dialog(&mut self, status: impl Into<String>) {
        self.dialog = None;
        self.mode = Mode::Normal;
        self.status = Some(status.into());
    }

    fn open_kill(&mut self) -> Vec<Effect> {
        if self.read_only {
            self.status = Some(READ_ONLY.into());
            return Vec::new();
        }
        let pid = match self.rows.get(self.cursor) {
            Some(Row::Process(g)) => g.pid,
            Some(Row::Conn(i)) => self.snapshot.sockets[*i].first_owner().map(|o| o.pid),
            Some(Row::Port(g)) if g.pids.len() == 1 => Some(g.pids[0]),
            Some(Row::Port(g)) if g.pids.len() > 1 => {
                self.status = Some(format!(
                    "{} processes share this port: pick one in the process or connection view",
                    g.pids.len()
                ));
                return Vec::new();
            }
            Some(Row::Port(_)) => None,
            Some(_) => {
                self.status = Some("k signals the owner of a process or connection row".into());
                return Vec::new();
            }
            None => {
                self.status = Some("nothing selected".into());
                return Vec::new();
            }
        };
        let Some(pid) = pid else {
            self.status = Some("no visible process holds this: nothing to signal".into());
            return Vec::new();
        };
        if let Some(refused) = signal::refusal(pid, self.own_pid) {
            self.status = Some(refused.to_string());
            return Vec::new();
        }
        let owner = plan::owner(&self.snapshot, pid, 0);
        let holds = owner.holds.clone();
        self.dialog = Some(Dialog::Kill(KillDialog {
            owner,
            target: Opening::Pending,
            signal: Signal::Term,
            ssh: self.ssh.filter(|s| s.held_by(&self.snapshot, pid)),
            asked_again: false,
        }));
        self.mode = Mode::Kill;
        vec![Effect::Action(ActionEffect::OpenTarget { pid, holds })]
    }

    /// The sockets `x` would destroy: the selected connection, every socket
    /// of the selected group that the filter shows, or (state strip) every
    /// socket in that state that the filter shows.
    fn destroy_selection(&self) -> Result<(String, Vec<&Socket>), String> {
        let snap = &self.snapshot;
        let shown = || self.matching().into_iter().map(|i| &snap.sockets[i]);
        if self.focus == Focus::States {
            let state = STRIP_STATES[self.state_cursor];
            let what = if self.effective.is_empty() {
                format!("every {state} socket")
            } else {
                format!("{state} sockets matching {}", self.effective.text())
            };
            return Ok((what, shown().filter(|s| s.state == state).collect()));
        }
        Ok(match self.rows.get(self.cursor) {
            Some(Row::Conn(i)) => ("one connection".into(), vec![&snap.sockets[*i]]),
            Some(Row::Process(g)) => {
                let what = match g.pid {
                    Some(pid) => format!(
                        "held by pid {pid} ({})",
                        snap.process(pid).map_or("?", |p| p.name.as_str())
                    ),
                    None => "held by no process".into(),
                };
                let of = |s: &Socket| match g.pid {
                    Some(pid) => s.owners.iter().any(|o| o.pid == pid),
                    None => s.owners.is_empty(),
                };
                (what, shown().filter(|s| of(s)).collect())
            }
            Some(Row::Port(g)) => (
                format!("on {} port {}", g.proto.name(), g.port),
                shown()
                    .filter(|s| s.proto == g.proto && s.local.port() == g.port)
                    .collect(),
            ),
            Some(Row::Remote(g)) => (
                format!("to or from {}", g.host),
                shown()
                    .filter(|s| {
                        !s.remote_is_unspecified() && s.remote.ip().to_canonical() == g.host
                    })
                    .collect(),
            ),
            None => return Err("nothing selected".into()),
        })
    }

    fn open_destroy(&mut self) -> Vec<Effect> {
        if self.read_only {
            self.status = Some(READ_ONLY.into());
            return Vec::new();
        }
        if self.snapshot.source == SourceKind::Proc {
            self.status = Some(
                "destroying needs the kernel's socket cookies, which only netlink gives (this table came from /proc/net)"
                    .into(),
            );
            return Vec::new();
        }
        let (what, sockets) = match self.destroy_selection() {
            Ok(sel) => sel,
            Err(msg) => {
                self.status = Some(msg);
                return Vec::new();
            }
        };
        if sockets.is_empty() {
            self.status = Some("no sockets there: nothing to destroy".into());
            return Vec::new();
        }
        let counts = crate::model::group::by_state(sockets.iter().copied());
        let ssh = self.ssh.filter(|s| sockets.iter().any(|k| s.is(k)));
        let mut tuples: Vec<Tuple> = sockets.iter().map(|s| Tuple::from(*s)).collect();
        tuples.sort_by_key(|t| (t.state != TcpState::CloseWait, *t));
        self.dialog = Some(Dialog::Destroy(DestroyDialog {
            what,
            tuples,
            states: counts.nonzero().collect(),
            scroll: 0,
            ssh,
            asked_again: false,
        }));
        self.mode = Mode::Destroy;
        Vec::new()
    }

    fn copy_row(&mut self) -> Vec<Effect> {
        let Some(row) = self.rows.get(self.cursor) else {
            self.status = Some("nothing selected".into());
            return Vec::new();
        };
        // The cells as shown, each after its column's title so the paste
        // reads on its own; not the sparkline, which means nothing pasted.
        let text = view::cells(row, &self.ctx())
            .iter()
            .zip(view::columns(self.grouping))
            .filter(|(cell, col)| col.title != "TREND" && !cell.trim().is_empty())
            .map(|(cell, col)| format!("{}={}", col.title, cell.trim()))
            .collect::<Vec<_>>()
            .join(" ");
        self.status =
            Some("row copied with OSC 52 (if the terminal allows clipboard writes)".into());
        vec![Effect::Action(ActionEffect::Copy(text))]
    }

    /// Keys while a dialog is open: Enter confirms, Esc cancels, arrows
    /// choose the signal or scroll the list; q and Ctrl-C still quit.
    pub(super) fn on_dialog_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(action) = self.keymap.action(&key) else {
            return Vec::new();
        };
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Back => {
                let what = match self.dialog {
                    Some(Dialog::Kill(_)) => "cancelled: no signal sent",
                    _ => "cancelled: nothing destroyed",
                };
                self.close_dialog(what);
                return Vec::new();
            }
            Action::Enter => return self.confirm(),
            _ => {}
        }
        let page = self.page.max(1) as isize;
        let rows = self.page.max(1);
        match &mut self.dialog {
            Some(Dialog::Kill(d)) => {
                let step = match action {
                    Action::Up | Action::Left | Action::SortPrev => -1,
                    Action::Down | Action::Right | Action::SortNext | Action::Focus => 1,
                    _ => 0,
                };
                let n = Signal::ALL.len() as isize;
                let at = Signal::ALL.iter().position(|s| *s == d.signal).unwrap_or(0) as isize;
                d.signal = Signal::ALL[(at + step).rem_euclid(n) as usize];
                if step != 0 {
                    d.asked_again = false;
                }
            }
            Some(Dialog::Destroy(d)) => {
                let by = match action {
                    Action::Up => -1,
                    Action::Down => 1,
                    Action::PageUp => -page,
                    Action::PageDown => page,
                    Action::Home => isize::MIN / 2,
                    Action::End => isize::MAX / 2,
                    _ => 0,
                };
                // The dialog shows about a table's page of tuples.
                let last = d.tuples.len().saturating_sub(rows) as isize;
                d.scroll = (d.scroll as isize).saturating_add(by).clamp(0, last) as usize;
            }
            None => self.mode = Mode::Normal,
        }
        Vec::new()
    }

    fn confirm(&mut self) -> Vec<Effect> {
        match self.dialog.take() {
            Some(Dialog::Kill(mut d)) => {
                let Opening::Ready(target) = &d.target else {
                    // Still opening: Enter waits for the pidfd.
                    self.dialog = Some(Dialog::Kill(d));
                    return Vec::new();
                };
                if d.ssh.is_some() && !d.asked_again {
                    d.asked_again = true;
                    self.dialog = Some(Dialog::Kill(d));
                    return Vec::new();
                }
                let effect = ActionEffect::Signal(target.clone(), d.signal);
                self.close_dialog(format!(
                    "sending {} to pid {} ({})…",
                    d.signal,
                    target.pid,
                    clean(&target.name)
                ));
                vec![Effect::Action(effect)]
            }
            Some(Dialog::Destroy(mut d)) => {
                if d.ssh.is_some() && !d.asked_again {
                    d.asked_again = true;
                    self.dialog = Some(Dialog::Destroy(d));
                    return Vec::new();
                }
                let n = d.tuples.len();
                self.close_dialog(format!(
                    "destroying {n} socket{}…",
                    if n == 1 { "" } else { "s" }
                ));
                vec![Effect::Action(ActionEffect::Destroy(d.tuples))]
            }
            None => {
                self.mode = Mode::Normal;
                Vec::new()
            }
        }
    }

    pub(super) fn on_action_event(&mut self, event: ActionEvent) -> Vec<Effect> {
        match event {
            ActionEvent::TargetOpened(pid, result) => {
                let Some(Dialog::Kill(d)) = &mut self.dialog else {
                    // Cancelled meanwhile: the pidfd closes as it drops.
                    return Vec::new();
                };
                if d.owner.pid != pid || d.target != Opening::Pending {
                    return Vec::new();
                }
                match result {
                    Ok(t) => d.target = Opening::Ready(t),
                    Err(e) => {
                        let name = clean(&d.owner.name).into_owned();
                        self.close_dialog(format!("pid {pid} ({name}): {e}"));
                    }
                }
                Vec::new()
            }
            ActionEvent::Signalled {
                pid,
                name,
                signal,
                result,
            } => {
                let name = clean(&name);
                self.status = Some(match result {
                    Ok(()) => format!("sent {signal} to pid {pid} ({name})"),
                    Err(e) => format!("pid {pid} ({name}): {e}; {signal} not sent"),
                });
                vec![Effect::Action(ActionEffect::RefreshNow)]
            }
            ActionEvent::Destroyed(results) => {
                self.status = Some(destroy::summary(&results));
                vec![Effect::Action(ActionEffect::RefreshNow)]
            }
            ActionEvent::Exported(result) => {
                self.status = Some(match result {
                    Ok((path, rows)) => format!(
                        "wrote {rows} row{} to {}",
                        if rows == 1 { "" } else { "s" },
                        clean(&path.display().to_string())
                    ),
                    Err(e) => format!("export failed: {}", clean(&e)),
                });
                Vec::new()
            }
        }
    }
}
