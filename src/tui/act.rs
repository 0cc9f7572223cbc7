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
        ActionEffect::Export(format) => back(ActionEvent::Exported(write_export(app, format))),
        ActionEffect::Copy(text) => {
            // Best effort: a terminal that ignores OSC 52 simply does nothing.
            let _ = term.write_raw(osc52::sequence(&text).as_bytes());
        }
        ActionEffect::RefreshNow => {
            let _ = senders.control.send(Control::Now);
        }
    }
}

fn write_export(app: &App, format: export::Format) -> Result<(std::path::PathBuf, usize), String> {
    let dir = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let name = export::file_name(std::time::SystemTime::now(), format);
    let ctx = app.ctx();
    export::write_new(&dir, &name, |out| match format {
        export::Format::Csv => export::write_csv(out, &app.rows, app.grouping, &ctx),
        export::Format::Json => {
            export::write_json(out, &app.rows, app.grouping, app.view_filter(), &ctx)
        }
    })
    .map(|path| (path, app.rows.len()))
    .map_err(|e| match e {
        export::WriteError::Create(e) => {
            format!("cannot create {name} in {}: {e}", dir.display())
        }
        export::WriteError::Write(path, e) => format!("cannot write {}: {e}", path.display()),
    })
}
