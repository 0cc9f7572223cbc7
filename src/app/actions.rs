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
use crate::model::{ConnKey, Socket, SourceKind, TcpState, holders};
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

/// After a signal: the selected sockets, checked on the next samples to say
/// what is still held and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterSignal {
    pub selection: std::collections::HashSet<ConnKey>,
    pub pids: Vec<u32>,
    pub signal: Signal,
    /// Samples still to check.
    pub checks: u8,
}

/// Where the kill dialog's pidfd is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    Pending,
    Ready(Arc<Target>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillDialog {
    /// The process the row names (the first choice).
    pub owner: plan::Owner,
    pub target: Opening,
    /// The other processes holding the selected sockets, with their pidfds.
    pub others: Vec<(plan::Owner, Opening)>,
    /// Who to signal: one entry per holder (the row's first), then all of
    /// them together when there are several; with what each frees.
    pub choices: Vec<plan::Frees>,
    pub choice: usize,
    /// The selected sockets, to tell afterwards what is still held.
    pub selection: std::collections::HashSet<ConnKey>,
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
    /// Listeners of the selection left out (asked for only by state).
    pub spared_listeners: usize,
    /// What would hurt: the service's listener, live connections.
    pub warnings: Vec<String>,
    /// Each socket's cookie and the processes that keep a descriptor of it
    /// after the destroy.
    pub held: Vec<(u64, Vec<u32>)>,
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
            Some(Row::Conn(i)) => self
                .ctx()
                .shown_holder(&self.snapshot.sockets[*i])
                .map(|(p, _)| p),
            Some(Row::Port(g)) => g.pids.first().copied(),
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
        let selection = match self.destroy_selection() {
            Ok((_, sockets)) => sockets,
            Err(msg) => {
                self.status = Some(msg);
                return Vec::new();
            }
        };
        let snap = &self.snapshot;
        // Everyone holding the selection, the row's process first; pid 1 and
        // sockscope itself are never offered.
        let mut pids: Vec<u32> = vec![pid];
        for s in &selection {
            for p in holders::pids(holders::effective(snap, s)) {
                if !pids.contains(&p) && signal::refusal(p, self.own_pid).is_none() {
                    pids.push(p);
                }
            }
        }
        pids[1..].sort_unstable();
        let mut choices: Vec<plan::Frees> = pids
            .iter()
            .map(|&p| plan::frees(snap, &selection, &[p]))
            .collect();
        if pids.len() > 1 {
            choices.push(plan::frees(snap, &selection, &pids));
        }
        let keys = selection.iter().map(|s| s.key()).collect();
        let owner = plan::owner(snap, pid, 0);
        let others: Vec<(plan::Owner, Opening)> = pids[1..]
            .iter()
            .map(|&p| (plan::owner(snap, p, 0), Opening::Pending))
            .collect();
        let mut effects = vec![Effect::Action(ActionEffect::OpenTarget {
            pid,
            holds: owner.holds.clone(),
        })];
        effects.extend(others.iter().map(|(o, _)| {
            Effect::Action(ActionEffect::OpenTarget {
                pid: o.pid,
                holds: o.holds.clone(),
            })
        }));
        self.dialog = Some(Dialog::Kill(KillDialog {
            ssh: self.ssh.filter(|s| s.held_by(snap, pid)),
            owner,
            target: Opening::Pending,
            others,
            choices,
            choice: 0,
            selection: keys,
            signal: Signal::Term,
            asked_again: false,
        }));
        self.mode = Mode::Kill;
        effects
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
                let of = |s: &Socket| {
                    let held = holders::effective(snap, s);
                    match g.pid {
                        Some(pid) => held.iter().any(|o| o.pid == pid),
                        None => held.is_empty(),
                    }
                };
                (what, shown().filter(|s| of(s)).collect())
            }
            Some(Row::Port(g)) => (
                format!("on {} port {}", g.proto.name(), g.port),
                shown()
                    .filter(|s| s.proto == g.proto && s.local.port() == g.port)
                    .collect(),
            ),
            Some(Row::Netns(g)) => (
                format!("in network namespace {}", snap.namespaces.name(g.netns)),
                shown().filter(|s| s.netns == g.netns).collect(),
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
        // A row's destroy spares its listeners unless the user asked for
        // them by state (the filter, or the LISTEN entry of the strip).
        let asked = self.effective.names_state(TcpState::Listen)
            || (self.focus == Focus::States && STRIP_STATES[self.state_cursor] == TcpState::Listen)
            || matches!(self.rows.get(self.cursor), Some(Row::Conn(_)));
        let history = &self.history;
        let plan = plan::destroy_plan(sockets, asked, |s| {
            history.conn_rate(&s.key()).is_some_and(|r| r.total() > 0)
        });
        let sockets = plan.sockets;
        if sockets.is_empty() {
            self.status = Some(format!(
                "only {} listener{} there, spared: name LISTEN (state:listen) to destroy listeners",
                plan.spared_listeners,
                if plan.spared_listeners == 1 { "" } else { "s" }
            ));
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
            spared_listeners: plan.spared_listeners,
            warnings: plan.warnings,
            held: plan.held,
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
            Some(Dialog::Kill(d))
                if d.choices.len() > 1
                    && matches!(action, Action::Left | Action::Right | Action::Focus) =>
            {
                let n = d.choices.len();
                d.choice = match action {
                    Action::Left => (d.choice + n - 1) % n,
                    _ => (d.choice + 1) % n,
                };
                d.asked_again = false;
            }
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
                let chosen = d
                    .choices
                    .get(d.choice)
                    .map_or_else(|| vec![d.owner.pid], |c| c.pids.clone());
                let mut targets = Vec::new();
                for pid in &chosen {
                    let opening = if *pid == d.owner.pid {
                        &d.target
                    } else {
                        match d.others.iter().find(|(o, _)| o.pid == *pid) {
                            Some((_, t)) => t,
                            None => continue,
                        }
                    };
                    match opening {
                        Opening::Ready(t) => targets.push(t.clone()),
                        // Still opening: Enter waits for the pidfds.
                        Opening::Pending => {
                            self.dialog = Some(Dialog::Kill(d));
                            return Vec::new();
                        }
                    }
                }
                let ssh_holder = d.ssh.is_some() && chosen.contains(&d.owner.pid);
                if ssh_holder && !d.asked_again {
                    d.asked_again = true;
                    self.dialog = Some(Dialog::Kill(d));
                    return Vec::new();
                }
                let status = match &targets[..] {
                    [one] => format!(
                        "sending {} to pid {} ({})…",
                        d.signal,
                        one.pid,
                        clean(&one.name)
                    ),
                    many => format!(
                        "sending {} to {} processes ({})…",
                        d.signal,
                        many.len(),
                        many.iter()
                            .map(|t| t.pid.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.after_signal = Some(AfterSignal {
                    selection: std::mem::take(&mut d.selection),
                    pids: targets.iter().map(|t| t.pid).collect(),
                    signal: d.signal,
                    checks: 3,
                });
                self.close_dialog(status);
                targets
                    .into_iter()
                    .map(|t| Effect::Action(ActionEffect::Signal(t, d.signal)))
                    .collect()
            }
            Some(Dialog::Destroy(mut d)) => {
                if d.ssh.is_some() && !d.asked_again {
                    d.asked_again = true;
                    self.dialog = Some(Dialog::Destroy(d));
                    return Vec::new();
                }
                let n = d.tuples.len();
                self.after_destroy = d.held.clone();
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

    /// After a signal, on each new sample: what of the selection is still
    /// held, and by whom (a forked child keeps what its parent held).
    pub(super) fn check_after_signal(&mut self) {
        let Some(after) = &mut self.after_signal else {
            return;
        };
        let (left, by) = plan::still_held(&self.snapshot, &after.selection);
        let n = after.selection.len();
        let signalled: Vec<String> = after.pids.iter().map(u32::to_string).collect();
        self.status = Some(if left == 0 {
            format!(
                "{} sent to {}: all {n} selected socket{} freed",
                after.signal,
                signalled.join(", "),
                if n == 1 { "" } else { "s" }
            )
        } else {
            let who: Vec<String> = by
                .iter()
                .take(3)
                .map(|(p, c)| {
                    let name = self
                        .snapshot
                        .process(*p)
                        .map_or("?".into(), |p| clean(&p.name).into_owned());
                    let signalled = if after.pids.contains(p) {
                        ", signalled"
                    } else {
                        ""
                    };
                    format!("{p} {name} ({c}{signalled})")
                })
                .collect();
            format!(
                "{} sent to {}: {left} of {n} still held, by {}",
                after.signal,
                signalled.join(", "),
                if who.is_empty() {
                    "no visible process".to_string()
                } else {
                    who.join(", ")
                }
            )
        });
        after.checks = after.checks.saturating_sub(1);
        if left == 0 || after.checks == 0 {
            self.after_signal = None;
        }
    }

    pub(super) fn on_action_event(&mut self, event: ActionEvent) -> Vec<Effect> {
        match event {
            ActionEvent::TargetOpened(pid, result) => {
                let Some(Dialog::Kill(d)) = &mut self.dialog else {
                    // Cancelled meanwhile: the pidfd closes as it drops.
                    return Vec::new();
                };
                if d.owner.pid != pid {
                    // Another holder: a pidfd that cannot be had takes it
                    // out of the choices, with the reason in the status.
                    let Some(at) = d.others.iter().position(|(o, _)| o.pid == pid) else {
                        return Vec::new();
                    };
                    match result {
                        Ok(t) => d.others[at].1 = Opening::Ready(t),
                        Err(e) => {
                            let (o, _) = d.others.remove(at);
                            d.choices.retain(|c| c.pids != [pid]);
                            for c in &mut d.choices {
                                c.pids.retain(|p| *p != pid);
                            }
                            d.choices.dedup_by(|a, b| a.pids == b.pids);
                            d.choice = d.choice.min(d.choices.len().saturating_sub(1));
                            self.status = Some(format!("pid {pid} ({}): {e}", clean(&o.name)));
                        }
                    }
                    return Vec::new();
                }
                if d.target != Opening::Pending {
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
                let mut status = destroy::summary(&results);
                let destroyed: Vec<u64> = results
                    .iter()
                    .filter(|(_, o)| o.label() == "destroyed")
                    .map(|(t, _)| t.socket.cookie)
                    .collect();
                let held = std::mem::take(&mut self.after_destroy);
                let left = plan::descriptors_left(&held, &destroyed);
                if let Some(note) = plan::descriptors_note(&self.snapshot, &left) {
                    status.push_str("; ");
                    status.push_str(&clean(&note));
                }
                self.status = Some(status);
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
