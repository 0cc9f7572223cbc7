//! The integration tests, one binary: each module is a former `tests/*.rs`
//! target. One binary instead of 20 saves most of the suite's build time and
//! disk (each target linked the whole crate and its dependencies again).
//!
//! Child processes re-execute this binary with `--exact
//! child_process_entry_point` (see `common`), so that test lives here, at the
//! crate root, once.

#[path = "../common/mod.rs"]
mod common;
#[path = "../ui_harness/mod.rs"]
mod ui_harness;

mod actions;
mod actions_guard;
mod app_actions;
mod app_behaviour;
mod collect_sources;
mod container_identity;
mod diagnose;
mod exiting_processes;
mod fd_limit;
mod holders;
mod hostile_names;
mod kernel_facts;
mod namespaces;
mod owner_scan;
mod packaging;
mod prometheus_rules;
mod prometheus_server;
mod properties;
mod real_servers;
mod record;
mod record_hostile;
mod replay_app;
mod rows_async;
mod serve;
mod serve_hostile;
mod sources_agree;
mod states;
mod transitions;
mod transitions_render;
mod tui_netns;
mod tui_render;
mod tui_render_actions;
mod tui_render_holders;
mod unprivileged;
mod usage;
mod views_behaviour;
mod views_render;

#[test]
fn child_process_entry_point() {
    common::child_main();
}
