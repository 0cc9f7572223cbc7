//! The end-to-end tests that run the real monitor in a pseudo-terminal, one
//! binary: each module is a former `tests/e2e_*.rs` target.
//!
//! Child processes re-execute this binary with `--exact
//! child_process_entry_point` (see `common`), so that test lives here, at the
//! crate root, once.

#[path = "../common/mod.rs"]
mod common;
#[path = "../pty/mod.rs"]
mod pty;
#[path = "../ui_harness/mod.rs"]
mod ui_harness;

mod e2e_actions;
mod e2e_holders;
mod e2e_incident;
mod e2e_netns;
mod e2e_replay;
mod e2e_tui;
mod e2e_views;
mod small_items;
mod tui_hostile;

#[test]
fn child_process_entry_point() {
    common::child_main();
}
