//! Process state as evidence: a holder that cannot run (stopped, traced, in
//! uninterruptible sleep, a zombie) explains what its sockets show, and who
//! accepts on a shared listener is told from who holds accepted connections
//! and who can run, not from the lowest pid.

use super::Input;
use super::text::list;
use crate::model::ProcState;
use crate::model::socket::{Proto, Socket, TcpState};

/// What each holder of a listener does with it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AcceptRoles {
    /// Holders that cannot run, with their state: nothing they hold moves.
    pub blocked: Vec<(u32, ProcState)>,
    /// Runnable holders that hold accepted connections on the port: the ones
    /// that do accept.
    pub accepting: Vec<u32>,
    /// Runnable holders with no accepted connection on the port, while some
    /// other holder has them or cannot run: a master that only keeps the
    /// listener open.
    pub listener_only: Vec<u32>,
    /// The service's id (its lowest pid, the parent of a prefork pool).
    pub service: Option<u32>,
}

impl AcceptRoles {
    /// Nobody who could accept can run.
    pub fn nobody_accepts(&self) -> bool {
        !self.blocked.is_empty() && self.accepting.is_empty()
    }

    /// The one responsible for the listener's queue: a holder that cannot
    /// run, else one that accepts, else the first of `holders`.
    pub fn responsible(&self, holders: &[super::Holding]) -> Option<u32> {
        self.blocked
            .first()
            .map(|b| b.0)
            .or(self.accepting.first().copied())
            .or(holders.first().map(|h| h.pid))
    }
}

impl Input<'_> {
    /// The state of a process when it cannot run.
    pub fn blocked_state(&self, pid: u32) -> Option<ProcState> {
        self.snap
            .process(pid)
            .and_then(|p| p.state)
            .filter(|s| s.cannot_run())
    }

    /// Who among the listener's holders accepts, who cannot, who only holds it.
    pub fn accept_roles(&self, listener: &Socket) -> AcceptRoles {
        let mut pids: Vec<u32> = listener.owners.iter().map(|o| o.pid).collect();
        pids.dedup();
        let index = self
            .by_local_port
            .get_or_init(|| super::PortIndex::new(&self.all));
        let mut with_accepted: Vec<u32> = Vec::new();
        for &i in index.at(listener.local.port()) {
            let s = self.all[i as usize];
            if s.proto != Proto::Tcp
                || s.inode == 0
                || matches!(s.state, TcpState::Listen | TcpState::SynRecv)
                || s.remote_is_unspecified()
            {
                continue;
            }
            for o in &s.owners {
                if pids.contains(&o.pid) && !with_accepted.contains(&o.pid) {
                    with_accepted.push(o.pid);
                }
            }
        }
        let mut roles = AcceptRoles {
            service: pids
                .first()
                .map(|&p| self.snap.holders().service_of(p).map_or(p, |s| s.id)),
            ..Default::default()
        };
        for &pid in &pids {
            if let Some(state) = self.blocked_state(pid) {
                roles.blocked.push((pid, state));
            } else if with_accepted.contains(&pid) {
                roles.accepting.push(pid);
            } else {
                roles.listener_only.push(pid);
            }
        }
        if roles.blocked.is_empty() && roles.accepting.is_empty() {
            // Nobody has accepted anything and everybody can run: no role is known.
            roles.listener_only.clear();
        }
        roles
    }

    /// `both nginx workers (29947, 29948) are stopped (SIGSTOP): nothing
    /// accepts on :18180; the master 29945 only holds the listener`, or None
    /// when every holder can run.
    pub fn accept_evidence(&self, listener: &Socket, name: Option<&str>) -> Option<String> {
        let roles = self.accept_roles(listener);
        if roles.blocked.is_empty() {
            return None;
        }
        let port = listener.local.port();
        let blocked: Vec<u32> = roles.blocked.iter().map(|b| b.0).collect();
        let workers = roles.service.is_some_and(|id| !blocked.contains(&id))
            && roles
                .service
                .is_some_and(|id| roles.listener_only.contains(&id));
        let noun = match (workers, blocked.len()) {
            (true, 1) => format!("{} worker", name.unwrap_or("the")),
            (true, _) => format!("{} workers", name.unwrap_or("the")),
            (false, 1) => name.unwrap_or("the process").to_string(),
            (false, _) => format!("{} processes", name.unwrap_or("the")),
        };
        let count = match blocked.len() {
            1 => String::new(),
            2 => "both ".into(),
            n if roles.accepting.is_empty() => format!("all {n} "),
            _ => String::new(),
        };
        let verb = if blocked.len() == 1 { "is" } else { "are" };
        let state = states(&roles.blocked);
        let mut text = format!("{count}{noun} ({}) {verb} {state}", list(&blocked, 4));
        if roles.accepting.is_empty() {
            text.push_str(&format!(": nothing accepts on :{port}"));
        } else {
            text.push_str(&format!(
                "; {} still {}",
                list(&roles.accepting, 3),
                if roles.accepting.len() == 1 {
                    "accepts"
                } else {
                    "accept"
                }
            ));
        }
        let idle: Vec<u32> = roles
            .listener_only
            .iter()
            .copied()
            .filter(|p| Some(*p) == roles.service || roles.accepting.is_empty())
            .collect();
        if !idle.is_empty() {
            let who = if workers { "the master" } else { "" };
            let verb = if idle.len() == 1 {
                "only holds"
            } else {
                "only hold"
            };
            text.push_str(&format!(
                "; {}{}{} {verb} the listener",
                who,
                if who.is_empty() { "" } else { " " },
                list(&idle, 3)
            ));
        }
        Some(text)
    }

    /// `nginx (pid 29947) is stopped (SIGSTOP)`, for holders of a finding's
    /// sockets that cannot run; None when all can. Uninterruptible sleep is
    /// left out here: one scan cannot tell a moment's disk wait from a hang,
    /// and a CLOSE_WAIT count has no evidence of its own that the holder is
    /// stuck (a listener's stale queue does: [`Input::accept_roles`]).
    pub fn holders_blocked(&self, pids: &[u32], name: Option<&str>) -> Option<String> {
        let blocked: Vec<(u32, ProcState)> = pids
            .iter()
            .filter_map(|&p| self.blocked_state(p).map(|s| (p, s)))
            .filter(|(_, s)| *s != ProcState::DiskSleep)
            .collect();
        if blocked.is_empty() {
            return None;
        }
        let ids: Vec<u32> = blocked.iter().map(|b| b.0).collect();
        let (label, verb) = if ids.len() == 1 {
            (format!("pid {}", ids[0]), "is")
        } else {
            (format!("pids {}", list(&ids, 4)), "are")
        };
        let who = match name {
            Some(n) => format!("{n} ({label})"),
            None => label,
        };
        Some(format!("{who} {verb} {}", states(&blocked)))
    }
}

/// One state for all, or each pid's.
fn states(blocked: &[(u32, ProcState)]) -> String {
    let first = blocked[0].1;
    if blocked.iter().all(|b| b.1 == first) {
        first.short().to_string()
    } else {
        let each: Vec<String> = blocked
            .iter()
            .map(|(p, s)| format!("{p} {}", s.short()))
            .collect();
        list(&each, 4)
    }
}

/// What to do about holders that cannot run, state by state.
pub(crate) fn unblock_step(blocked: &[(u32, ProcState)]) -> String {
    let of = |want: &[ProcState]| -> Vec<u32> {
        blocked
            .iter()
            .filter(|b| want.contains(&b.1))
            .map(|b| b.0)
            .collect()
    };
    let mut steps = Vec::new();
    let stopped = of(&[ProcState::Stopped]);
    if !stopped.is_empty() {
        steps.push(format!(
            "{} stopped: resume with `kill -CONT {}` (or thaw its cgroup), and find who stopped it",
            if stopped.len() == 1 {
                "it is"
            } else {
                "they are"
            },
            stopped
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let traced = of(&[ProcState::Traced]);
    if !traced.is_empty() {
        steps.push(format!(
            "a debugger holds {} (`grep TracerPid /proc/{}/status`): continue or detach it",
            list(&traced, 3),
            traced[0]
        ));
    }
    let disk = of(&[ProcState::DiskSleep]);
    if !disk.is_empty() {
        steps.push(format!(
            "{} waits in the kernel: `cat /proc/{}/stack` (as root) or `/proc/{}/wchan` shows on \
             what (a slow disk, a hung NFS mount)",
            list(&disk, 3),
            disk[0],
            disk[0]
        ));
    }
    let dead = of(&[ProcState::Zombie, ProcState::Dead]);
    if !dead.is_empty() {
        steps.push(format!(
            "{} exited: its parent must reap it (or exit) before its sockets go",
            list(&dead, 3)
        ));
    }
    let mut text = steps.join("; ");
    if let Some(c) = text.get(..1) {
        text = c.to_uppercase() + &text[1..];
    }
    text.push('.');
    text
}

/// ` TcpExt.TCPSynRetrans rose by 120 ...`: a full queue's SYN retries
/// are its symptom, not loss. Empty when the counter is not rising.
pub(crate) fn syn_retry_clause(input: &Input) -> String {
    match input
        .counter_increase("TcpExt.TCPSynRetrans")
        .filter(|(n, _)| *n > 0)
    {
        Some((n, span)) => format!(
            " TcpExt.TCPSynRetrans rose by {n} in the last {} s ({}): that is the clients \
             sending their dropped SYNs again (and this side resending SYN-ACKs whose ACK was \
             dropped), the queue's symptom, not packet loss.",
            span.as_secs().max(1),
            super::text::format_rate(n as f64 / span.as_secs_f64().max(1e-3))
        ),
        None => String::new(),
    }
}
