//! `sockscope kill` and `sockscope destroy`: the monitor's `k` and `x` for
//! scripts. Both refuse an empty filter and `--read-only` (exit 2), list what
//! they would touch, ask on the terminal unless `--yes` (and refuse, exit 2,
//! when there is no terminal to ask on), then act and report per target.
//! Exit 0 when every target was handled, 1 otherwise (nothing matched,
//! the answer was no, or some target failed).

use super::{Failure, parse_filter, select};
use crate::act::destroy::{self, Outcome, Tuple};
use crate::act::plan::{self, SshSession};
use crate::act::signal::{Signal, SignalError, Target};
use crate::collect::{Collector, Options, SourceChoice, SystemCollector};
use crate::model::{Filter, Snapshot};
use crate::sanitize::clean;
use clap::Args;
use std::io::{BufRead, Write};

/// Lines of a confirmation listing before "and N more".
const LIST_LIMIT: usize = 50;

pub const ACTION_HELP: &str = "\
Without --yes, lists what would be touched and asks on the terminal (no
terminal: exit 2, use --yes). An empty filter is refused, and so is one
that selects every socket of the table (this network namespace's), even
through a negation or a /0 address, unless --all is given. With --yes, a
selection that includes this SSH session's own connection is refused
unless --own-ssh is given too.

Exit status: 0 every target handled, 1 otherwise (nothing matched, not
confirmed, or a target failed), 2 usage error (also --read-only).";

#[derive(Debug, Args)]
#[command(after_help = ACTION_HELP)]
pub struct DestroyArgs {
    /// Filter terms, all of which must match (e.g. `lport:6800 state:close-wait`). Required.
    pub filter: Vec<String>,
    /// Do it without asking.
    #[arg(long)]
    pub yes: bool,
    /// Allow a filter that selects every socket of the table.
    #[arg(long)]
    pub all: bool,
    /// With --yes: allow acting on this SSH session's own connection.
    #[arg(long)]
    pub own_ssh: bool,
}

#[derive(Debug, Args)]
#[command(after_help = ACTION_HELP)]
pub struct KillArgs {
    /// Filter terms; the processes holding matching sockets are signalled. Required.
    pub filter: Vec<String>,
    /// TERM, KILL, HUP or INT (also SIGTERM, 15, ...).
    #[arg(long, short, default_value = "TERM", value_parser = parse_signal)]
    pub signal: Signal,
    /// Signal only this one of the holders (repeatable); by default every
    /// process holding a matching socket is signalled, since a socket held
    /// by several (after fork) is freed only when all of them let go.
    #[arg(long = "pid", value_name = "PID")]
    pub only: Vec<u32>,
    /// Do it without asking.
    #[arg(long)]
    pub yes: bool,
    /// Allow a filter that selects every socket of the table.
    #[arg(long)]
    pub all: bool,
    /// With --yes: allow acting on this SSH session's own connection.
    #[arg(long)]
    pub own_ssh: bool,
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    text.parse()
}

/// An action's filter: parsed, and never empty (never "every socket").
fn action_filter(terms: &[String], what: &str) -> Result<Filter, Failure> {
    let filter = parse_filter(terms)?;
    if filter.is_empty() {
        return Err(Failure::Usage(format!(
            "{what} needs a filter (e.g. `sockscope {what} lport:6800 state:close-wait`): refusing to act on every socket"
        )));
    }
    Ok(filter)
}

/// Refuses a selection that is the whole table unless `--all`: a filter
/// such as `!pid:999999999` or `addr:0.0.0.0/0` is not empty, yet selects
/// everything. The whole table is the machine's (every namespace), or that
/// of the network namespace sockscope runs in: on its own it is what a
/// filter like `addr:127.0.0.0/8` covers in a container, while other
/// namespaces have sockets elsewhere.
fn refuse_everything(
    snap: &Snapshot,
    filter: &Filter,
    selected: usize,
    all: bool,
    what: &str,
) -> Result<(), Failure> {
    if all || snap.sockets.is_empty() {
        return Ok(());
    }
    let narrowing = filter.without_catch_all_addresses();
    let every = selected == snap.sockets.len()
        || narrowing.is_empty()
        || snap.sockets.iter().all(|s| narrowing.matches(s, snap));
    let own: Vec<_> = snap
        .sockets
        .iter()
        .filter(|s| s.netns == crate::model::HOST_NETNS)
        .collect();
    let every_own = !snap.namespaces.is_empty()
        && !own.is_empty()
        && own.iter().all(|s| narrowing.matches(s, snap));
    if every || every_own {
        let (whose, total) = if every {
            ("this machine's table", snap.sockets.len())
        } else {
            ("this network namespace's table", own.len())
        };
        return Err(Failure::Usage(format!(
            "`{}` selects every socket of {whose} ({} of {total}): refusing to {what} them all; narrow the filter, or add --all if that is what you mean",
            clean(filter.text()),
            if every { selected } else { own.len() },
        )));
    }
    Ok(())
}

/// With `--yes`, this SSH session's own connection needs `--own-ssh`: a
/// script that matches it by accident must not cut the session it runs in.
fn refuse_own_ssh(session: Option<String>, yes: bool, own_ssh: bool) -> Result<(), Failure> {
    match session {
        Some(s) if yes && !own_ssh => Err(Failure::Usage(format!(
            "the selection includes this SSH session's own connection ({s}); nothing done: narrow the filter, or add --own-ssh to act on it too"
        ))),
        _ => Ok(()),
    }
}

fn refuse_read_only(read_only: bool, what: &str) -> Result<(), Failure> {
    if read_only {
        return Err(Failure::Usage(format!(
            "`{what}` is turned off by --read-only; nothing done"
        )));
    }
    Ok(())
}

fn collect(source: SourceChoice) -> Result<Snapshot, Failure> {
    let mut collector = SystemCollector::new(Options {
        source,
        tcp_info: false,
        owners: true,
        incremental: false,
        namespaces: true,
    });
    Ok(collector.collect().map_err(anyhow::Error::from)?)
}

/// Asks `question` on the controlling terminal; true for y or yes. No
/// terminal is a usage error: scripts say `--yes`.
fn confirm(question: &str) -> Result<bool, Failure> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            Failure::Usage(format!(
                "no terminal to confirm on ({e}): add --yes to act without asking; nothing done"
            ))
        })?;
    let mut out = &tty;
    write!(out, "{question} [y/N] ")
        .and_then(|()| out.flush())
        .map_err(|e| {
            Failure::Runtime(anyhow::Error::new(e).context("cannot write to the terminal"))
        })?;
    let mut answer = String::new();
    std::io::BufReader::new(&tty)
        .read_line(&mut answer)
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("cannot read the answer")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn say(line: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("cannot write to stdout")))
}

fn declined() -> Failure {
    Failure::Runtime(anyhow::anyhow!("not confirmed; nothing done"))
}

fn nothing_matches(filter: &Filter, what: &str) -> Failure {
    Failure::Runtime(anyhow::anyhow!(
        "no socket matches `{}`: nothing to {what}",
        clean(filter.text())
    ))
}

pub fn destroy(args: DestroyArgs, read_only: bool) -> Result<(), Failure> {
    refuse_read_only(read_only, "destroy")?;
    let filter = action_filter(&args.filter, "destroy")?;
    // Only netlink has the cookies SOCK_DESTROY needs.
    let snap = collect(SourceChoice::Netlink)?;
    let sockets = select(&snap, &filter);
    if sockets.is_empty() {
        return Err(nothing_matches(&filter, "destroy"));
    }
    refuse_everything(&snap, &filter, sockets.len(), args.all, "destroy")?;
    // Listeners only when asked for by state: destroying a service's
    // listener makes it refuse every new client.
    let plan = plan::destroy_plan(
        sockets,
        filter.names_state(crate::model::TcpState::Listen),
        |s| {
            s.tcp_info
                .as_ref()
                .is_some_and(|t| t.last_data_recv_ms < 10_000 || t.last_data_sent_ms < 10_000)
        },
    );
    let sockets = plan.sockets;
    if plan.spared_listeners > 0 {
        say(&format!(
            "{} {} left out: add state:listen to destroy listeners",
            plan.spared_listeners,
            plural(plan.spared_listeners, "listener")
        ))?;
    }
    if sockets.is_empty() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "only listeners match `{}`: nothing destroyed",
            clean(filter.text())
        )));
    }
    let ssh = SshSession::from_env();
    let session = ssh.filter(|s| sockets.iter().any(|k| s.is(k)));
    refuse_own_ssh(session.map(|s| s.to_string()), args.yes, args.own_ssh)?;
    let counts = crate::model::group::by_state(sockets.iter().copied());
    let states: Vec<String> = counts.nonzero().map(|(s, n)| format!("{n} {s}")).collect();
    say(&format!(
        "{} matching {}: {}",
        sockets.len(),
        plural(sockets.len(), "socket"),
        states.join(", ")
    ))?;
    for s in sockets.iter().take(LIST_LIMIT) {
        let holders: Vec<String> = crate::model::holders::pids(&s.owners)
            .map(|pid| {
                let name = snap.process(pid).map_or("?", |p| p.name.as_str());
                format!("{} ({pid})", clean(name))
            })
            .collect();
        let holder = if holders.is_empty() {
            String::new()
        } else {
            format!("  {}", holders.join(", "))
        };
        say(&format!("  {}{holder}", Tuple::from(*s)))?;
    }
    if sockets.len() > LIST_LIMIT {
        say(&format!("  and {} more", sockets.len() - LIST_LIMIT))?;
    }
    for w in &plan.warnings {
        say(&format!("warning: {w}"))?;
    }
    if let Some(s) = session {
        say(&format!(
            "one of them is the connection of this SSH session ({s}): destroying it ends this session"
        ))?;
    }
    if !args.yes {
        let n = sockets.len();
        if !confirm(&format!("Destroy {n} {}?", plural(n, "socket")))? {
            return Err(declined());
        }
        if session.is_some()
            && !confirm("This includes your own SSH connection. Really destroy it?")?
        {
            return Err(declined());
        }
    }
    let tuples: Vec<Tuple> = sockets.iter().map(|s| Tuple::from(*s)).collect();
    let results = destroy::destroy_all(&tuples);
    let failed: Vec<&(Tuple, Outcome)> = results.iter().filter(|(_, o)| !o.handled()).collect();
    for (t, o) in failed.iter().take(LIST_LIMIT) {
        say(&format!("  {t}: {o}"))?;
    }
    if failed.len() > LIST_LIMIT {
        say(&format!(
            "  and {} more not destroyed",
            failed.len() - LIST_LIMIT
        ))?;
    }
    say(&destroy::summary(&results))?;
    let destroyed: Vec<u64> = results
        .iter()
        .filter(|(_, o)| o.label() == "destroyed")
        .map(|(t, _)| t.socket.cookie)
        .collect();
    if let Some(note) =
        plan::descriptors_note(&snap, &plan::descriptors_left(&plan.held, &destroyed))
    {
        say(&clean(&note))?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "{} of {} {} not destroyed",
            failed.len(),
            results.len(),
            plural(results.len(), "socket")
        )))
    }
}

pub fn kill(args: KillArgs, read_only: bool) -> Result<(), Failure> {
    refuse_read_only(read_only, "kill")?;
    let filter = action_filter(&args.filter, "kill")?;
    let snap = collect(SourceChoice::Auto)?;
    let sockets = select(&snap, &filter);
    if sockets.is_empty() {
        return Err(nothing_matches(&filter, "signal"));
    }
    refuse_everything(
        &snap,
        &filter,
        sockets.len(),
        args.all,
        "signal the holders of",
    )?;
    let mut owners = plan::owners(&snap, &sockets);
    if let Some(stray) = args
        .only
        .iter()
        .find(|p| !owners.iter().any(|o| o.pid == **p))
    {
        let holders: Vec<String> = owners.iter().map(|o| o.pid.to_string()).collect();
        return Err(Failure::Usage(format!(
            "pid {stray} holds none of the matching sockets (their holders: {}); nothing done",
            if holders.is_empty() {
                "none visible".to_string()
            } else {
                holders.join(", ")
            }
        )));
    }
    if !args.only.is_empty() {
        owners.retain(|o| args.only.contains(&o.pid));
    }
    if owners.is_empty() {
        let note = snap
            .attribution
            .note()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} {} match, but no process holding them is visible{note}: nothing to signal",
            sockets.len(),
            plural(sockets.len(), "socket")
        )));
    }
    let ssh = SshSession::from_env();
    // The pidfds are taken before asking: what is listed is what gets the
    // signal, even if a pid is reused while the question waits.
    let targets: Vec<(plan::Owner, Result<Target, SignalError>)> = owners
        .into_iter()
        .map(|o| {
            let t = Target::open(o.pid, &o.holds);
            (o, t)
        })
        .collect();
    let mut session_holders = Vec::new();
    for (o, t) in &targets {
        let user = o.user.as_deref().map(clean).unwrap_or("?".into());
        say(&format!(
            "pid {}  {}  user {}  {} matching {} ({} held, {} CLOSE_WAIT)  {}",
            o.pid,
            clean(t.as_ref().map_or(&o.name, |t| &t.name)),
            user,
            o.matching,
            plural(o.matching as usize, "socket"),
            o.sockets,
            o.close_wait,
            clean(t.as_ref().map_or(&o.cmdline, |t| &t.cmdline)),
        ))?;
        say(&format!(
            "  alone, {}",
            clean(&plan::frees(&snap, &sockets, &[o.pid]).describe(&snap))
        ))?;
        if let Err(e) = t {
            say(&format!("  will not be signalled: {e}"))?;
        } else if ssh.is_some_and(|s| s.held_by(&snap, o.pid)) {
            say("  holds the connection of this SSH session: signalling it may end this session")?;
            session_holders.push(o.pid);
        }
    }
    refuse_own_ssh(
        ssh.filter(|_| !session_holders.is_empty())
            .map(|s| s.to_string()),
        args.yes,
        args.own_ssh,
    )?;
    let ready_pids: Vec<u32> = targets
        .iter()
        .filter(|(_, t)| t.is_ok())
        .map(|(o, _)| o.pid)
        .collect();
    if targets.len() > 1 {
        say(&format!(
            "all {} together: {}",
            ready_pids.len(),
            clean(&plan::frees(&snap, &sockets, &ready_pids).describe(&snap))
        ))?;
    }
    let ready = ready_pids.len();
    if ready > 0 && !args.yes {
        let q = format!(
            "Send {} to {ready} {}?",
            args.signal,
            plural(ready, "process")
        );
        if !confirm(&q)? {
            return Err(declined());
        }
        if !session_holders.is_empty()
            && !confirm("This includes a process holding your own SSH connection. Really?")?
        {
            return Err(declined());
        }
    }
    let mut failures = 0;
    for (o, t) in &targets {
        let result = t
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|t| t.send(args.signal));
        let name = clean(t.as_ref().map_or(&o.name, |t| &t.name)).into_owned();
        match result {
            Ok(()) => say(&format!("pid {} ({name}): sent {}", o.pid, args.signal))?,
            Err(e) => {
                failures += 1;
                say(&format!("pid {} ({name}): {e}", o.pid))?;
            }
        }
    }
    if failures < targets.len() {
        report_still_held(&snap, &sockets)?;
    }
    if failures == 0 {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "{failures} of {} {} not signalled",
            targets.len(),
            plural(targets.len(), "process")
        )))
    }
}

/// After signalling: looks again (for up to two seconds, while the
/// processes exit) and says which of the matching sockets are still held,
/// and by whom.
fn report_still_held(before: &Snapshot, sockets: &[&crate::model::Socket]) -> Result<(), Failure> {
    let keys: std::collections::HashSet<crate::model::ConnKey> =
        sockets.iter().map(|s| s.key()).collect();
    let n = keys.len();
    let mut last = (n as u32, Vec::new());
    let mut after = None;
    for _ in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let snap = collect(SourceChoice::Auto)?;
        last = plan::still_held(&snap, &keys);
        after = Some(snap);
        if last.0 == 0 {
            break;
        }
    }
    let snap = after.as_ref().unwrap_or(before);
    if last.0 == 0 {
        return say(&format!("all {n} matching {} freed", plural(n, "socket")));
    }
    let who: Vec<String> = last
        .1
        .iter()
        .take(5)
        .map(|(p, c)| {
            let name = snap
                .process(*p)
                .map_or("?".into(), |p| clean(&p.name).into_owned());
            format!("pid {p} ({name}) {c}")
        })
        .collect();
    say(&format!(
        "{} of {n} matching {} still held{}",
        last.0,
        plural(n, "socket"),
        if who.is_empty() {
            String::new()
        } else {
            format!(", by {}", who.join(", "))
        }
    ))
}

fn plural(n: usize, word: &str) -> String {
    match (n, word) {
        (1, w) => w.to_string(),
        (_, "process") => "processes".into(),
        (_, w) => format!("{w}s"),
    }
}
