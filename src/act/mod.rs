//! Acting on what the monitor shows: signalling a socket's owner, destroying
//! sockets, exporting the view and copying a row. The side effects live here
//! and are called by the `tui` loop and the `kill` / `destroy` commands;
//! [`plan`] and the formatting functions are pure.

pub mod destroy;
pub mod export;
pub mod osc52;
pub mod plan;
pub mod signal;
