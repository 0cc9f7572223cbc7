//! sockscope: every TCP and UDP socket on a Linux machine, who owns it, and
//! what state it is stuck in.
//!
//! Data flows one way: [`collect`] turns the kernel into a [`model::Snapshot`],
//! [`model`] groups, filters and explains it, and [`output`] / the UI render it.

pub mod act;
pub mod app;
pub mod cli;
pub mod collect;
pub mod engine;
pub mod model;
pub mod output;
pub mod record;
pub mod replay;
pub mod sanitize;
pub mod serve;
pub mod trace;
pub mod tui;
pub mod ui;
