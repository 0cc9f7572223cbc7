//! The loop's side of the monitor's actions: opening and signalling
//! processes, destroying sockets (on a thread of its own), writing exports
//! and the clipboard sequence. Results go back to the app as events.

use super::{Control, Senders, terminal};
use crate::act::{destroy, export, osc52, signal::Target};
use crate::app::actions::{ActionEffect, ActionEvent};
use crate::app::{App, Event};
use std::sync::Arc;

pub(super) fn perform(
    effect: ActionEffect,
    app: &App,
    term: &mut terminal::Guard,
    senders: &Senders,
) {
    let back = |ev: ActionEvent| {
        let _ = senders.events.send(Event::Action(ev));
    };
    match effect {
        ActionEffect::OpenTarget { pid, holds } => {
            back(ActionEvent::TargetOpened(
                pid,
                Target::open(pid, &holds).map(Arc::new),
            ));
        }
        ActionEffect::Signal(target, signal) => back(ActionEvent::Signalled {
            pid: target.pid,
            name: target.name.clone(),
            signal,
            result: target.send(signal),
        }),
        ActionEffect::Destroy(tuples) => {
            let events = senders.events.clone();
            // Thousands of sockets take two netlink round trips each: not on
            // the thread that draws.
            let shared = Arc::new(tuples);
            let theirs = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("destroy".into())
                .spawn(move || {
                    let results = destroy::destroy_all(&theirs);
                    let _ = events.send(Event::Action(ActionEvent::Destroyed(results)));
                });
            if spawned.is_err() {
                // No thread to be had: do it here rather than not at all.
                back(ActionEvent::Destroyed(destroy::destroy_all(&shared)));
            }
        }
        ActionEffect::Export(format) => {
            // 130k rows take a while to write: not on the thread that draws.
            let job = ExportJob::of(app, format);
            let events = senders.events.clone();
            let spawned = std::thread::Builder::new()
                .name("export".into())
                .spawn(move || {
                    let result = job.write();
                    let _ = events.send(Event::Action(ActionEvent::Exported(result)));
                });
            if spawned.is_err() {
                back(ActionEvent::Exported(ExportJob::of(app, format).write()));
            }
        }
        ActionEffect::Copy(text) => {
            // Best effort: a terminal that ignores OSC 52 simply does nothing.
            let _ = term.write_raw(osc52::sequence(&text).as_bytes());
        }
        ActionEffect::RefreshNow => {
            let _ = senders.control.send(Control::Now);
        }
    }
}

/// What an export writes, owned so that it can be written off the UI thread.
struct ExportJob {
    format: export::Format,
    rows: Vec<crate::model::view::Row>,
    grouping: crate::model::view::Grouping,
    filter: String,
    snapshot: Arc<crate::model::Snapshot>,
    history: Arc<crate::model::history::History>,
    names: Option<std::collections::HashMap<std::net::IpAddr, String>>,
    prefer: Vec<u32>,
}

impl ExportJob {
    fn of(app: &App, format: export::Format) -> ExportJob {
        let ctx = app.ctx();
        ExportJob {
            format,
            rows: app.rows.clone(),
            grouping: app.shown_grouping,
            filter: app.view_filter().to_string(),
            snapshot: Arc::clone(&app.snapshot),
            history: Arc::clone(&app.history),
            names: ctx.names.cloned(),
            prefer: ctx.prefer,
        }
    }

    fn write(self) -> Result<(std::path::PathBuf, usize), String> {
        let ctx = crate::model::view::ViewCtx {
            snap: &self.snapshot,
            history: &self.history,
            now: self.snapshot.monotonic,
            names: self.names.as_ref(),
            prefer: self.prefer.clone(),
        };
        write_export(&self.rows, self.grouping, &self.filter, &ctx, self.format)
    }
}

fn write_export(
    rows: &[crate::model::view::Row],
    grouping: crate::model::view::Grouping,
    filter: &str,
    ctx: &crate::model::view::ViewCtx,
    format: export::Format,
) -> Result<(std::path::PathBuf, usize), String> {
    let dir = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let name = export::file_name(std::time::SystemTime::now(), format);
    export::write_new(&dir, &name, |out| match format {
        export::Format::Csv => export::write_csv(out, rows, grouping, ctx),
        export::Format::Json => export::write_json(out, rows, grouping, filter, ctx),
    })
    .map(|path| (path, rows.len()))
    .map_err(|e| match e {
        export::WriteError::Create(e) => {
            format!("cannot create {name} in {}: {e}", dir.display())
        }
        export::WriteError::Write(path, e) => format!("cannot write {}: {e}", path.display()),
    })
}
